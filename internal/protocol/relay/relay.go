// Package relay is the wire format Quasipaa nodes use to carry a live stream
// losslessly from the node publishing it to the nodes that need it: a stream
// header, then framed messages (track descriptors, frames, keepalives, end).
// docs/relay.md describes it byte by byte.
//
// Stream: "QPRL" | version u8, then messages type u8 | length u32 (big
// endian) | body. Readers skip message types they do not know, so new types
// can be added without a version change.
package relay

import (
	"errors"
	"time"

	"github.com/quasipaa/quasipaa/internal/media"
)

// Magic opens every relay stream.
const Magic = "QPRL"

// Version is the version of the format this package writes and reads.
const Version = 1

// headerLen is the size of the stream header: Magic and the version byte.
const headerLen = len(Magic) + 1

// msgHeaderLen is the size of a message header: type u8 and length u32.
const msgHeaderLen = 5

// DefaultMaxMessage is a sensible bound for NewReader: a 4K keyframe fits.
const DefaultMaxMessage = 16 << 20

// MaxTracks bounds the tracks of one TRACKS message.
const MaxTracks = 255

// Type is the type of a message.
type Type uint8

// Message types.
const (
	// TypeTracks announces the stream's tracks; frames index them.
	TypeTracks Type = 1
	// TypeFrame carries one media.Frame.
	TypeFrame Type = 2
	// TypeKeepalive is sent when the stream is idle, to prove the link alive.
	TypeKeepalive Type = 3
	// TypeEnd ends the relay, with a reason.
	TypeEnd Type = 4
)

// String returns the message type's name.
func (t Type) String() string {
	switch t {
	case TypeTracks:
		return "TRACKS"
	case TypeFrame:
		return "FRAME"
	case TypeKeepalive:
		return "KEEPALIVE"
	case TypeEnd:
		return "END"
	default:
		return "unknown"
	}
}

// Frame flags.
const (
	// FlagKey marks a keyframe (media.Frame.Key).
	FlagKey = 1 << 0
)

// Reasons of END messages with a meaning for the receiver.
const (
	// ReasonStreamEnded says the stream ended at its source: do not reconnect.
	ReasonStreamEnded = "stream ended"
)

// Sentinel errors of the reader.
var (
	// ErrBadMagic means the stream does not start with Magic.
	ErrBadMagic = errors.New("relay: bad magic, not a relay stream")
	// ErrVersion means the stream's version is not one this package reads.
	ErrVersion = errors.New("relay: unsupported version")
	// ErrOversize means a message is longer than the reader's bound.
	ErrOversize = errors.New("relay: message too large")
	// ErrTruncated means the stream ended in the middle of a message.
	ErrTruncated = errors.New("relay: truncated message")
	// ErrMalformed means a message body does not decode.
	ErrMalformed = errors.New("relay: malformed message")
)

// Message is one decoded message. Only the fields of its Type are set.
type Message struct {
	Type Type
	// Tracks is the track list of a TRACKS message.
	Tracks []*media.Track
	// Frame is the frame of a FRAME message; the reader allocates it and
	// its payload afresh, so the caller owns both.
	Frame *media.Frame
	// Reason is the reason of an END message.
	Reason string
	// Size is the message's size on the wire, header included.
	Size int
}

// unixNano encodes a wall-clock time; the zero time is 0.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromUnixNano is the inverse of unixNano.
func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
