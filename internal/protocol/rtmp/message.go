// Package rtmp implements the RTMP wire protocol: the handshake (simple and
// Flash-style digest), the chunk stream (reader and a stateless shared-bytes
// writer), the NetConnection/NetStream command exchange for servers
// (ServerConn) and a client (ClientConn) for publishing and playing.
//
// The media hot path of a server is AppendMessage: it serialises one message
// into RTMP chunks as a pure function of its arguments, so a frame is
// serialised once and the same bytes are written to every player (all play
// connections use one fixed outgoing chunk size, see WithChunkSize).
package rtmp

import (
	"errors"
	"fmt"
)

// Message is one reassembled RTMP message.
type Message struct {
	// Type is the message type id (MsgAudio, MsgVideo, MsgDataAMF0…).
	Type uint8
	// StreamID is the message stream id.
	StreamID uint32
	// Timestamp is the absolute timestamp in milliseconds (deltas applied).
	Timestamp uint32
	// Payload is the message body.
	Payload []byte
}

// Message type ids.
const (
	MsgSetChunkSize     uint8 = 1  // MsgSetChunkSize is protocol control: set chunk size.
	MsgAbort            uint8 = 2  // MsgAbort is protocol control: abort message.
	MsgAck              uint8 = 3  // MsgAck is protocol control: acknowledgement.
	MsgUserControl      uint8 = 4  // MsgUserControl is a user control event.
	MsgWindowAckSize    uint8 = 5  // MsgWindowAckSize is protocol control: window acknowledgement size.
	MsgSetPeerBandwidth uint8 = 6  // MsgSetPeerBandwidth is protocol control: set peer bandwidth.
	MsgAudio            uint8 = 8  // MsgAudio is an audio message (an FLV audio tag body).
	MsgVideo            uint8 = 9  // MsgVideo is a video message (an FLV video tag body).
	MsgDataAMF3         uint8 = 15 // MsgDataAMF3 is a data message in AMF3 form.
	MsgSharedObjAMF3    uint8 = 16 // MsgSharedObjAMF3 is a shared object message in AMF3 form.
	MsgCommandAMF3      uint8 = 17 // MsgCommandAMF3 is a command message in AMF3 form.
	MsgDataAMF0         uint8 = 18 // MsgDataAMF0 is a data message (onMetaData, @setDataFrame…).
	MsgSharedObjAMF0    uint8 = 19 // MsgSharedObjAMF0 is a shared object message.
	MsgCommandAMF0      uint8 = 20 // MsgCommandAMF0 is a command message (connect, play…).
	MsgAggregate        uint8 = 22 // MsgAggregate carries several FLV-tag-shaped sub-messages.
)

// User control event types (the first two bytes of a MsgUserControl payload).
const (
	EventStreamBegin      uint16 = 0 // EventStreamBegin tells a stream has become functional.
	EventStreamEOF        uint16 = 1 // EventStreamEOF tells playback of a stream is over.
	EventStreamDry        uint16 = 2 // EventStreamDry tells there is no more data on a stream.
	EventSetBufferLength  uint16 = 3 // EventSetBufferLength carries the client's buffer length in ms.
	EventStreamIsRecorded uint16 = 4 // EventStreamIsRecorded tells a stream is recorded.
	EventPingRequest      uint16 = 6 // EventPingRequest asks the peer to echo a timestamp.
	EventPingResponse     uint16 = 7 // EventPingResponse echoes a ping request's timestamp.
)

// Chunk stream ids and the message stream id the server uses.
const (
	CSIDControl uint32 = 2 // CSIDControl carries protocol control and user control messages.
	CSIDCommand uint32 = 3 // CSIDCommand carries NetConnection commands and their results.
	CSIDData    uint32 = 5 // CSIDData carries NetStream commands, onStatus and data (metadata) messages.
	CSIDAudio   uint32 = 6 // CSIDAudio carries audio messages.
	CSIDVideo   uint32 = 7 // CSIDVideo carries video messages.

	// PlayStreamID is the message stream id createStream returns; media for
	// players is sent on it.
	PlayStreamID uint32 = 1
)

// Protocol sizes and defaults.
const (
	// DefaultChunkSize is the chunk size both ends start with.
	DefaultChunkSize = 128
	// DefaultServerChunkSize is the chunk size a ServerConn sends with.
	DefaultServerChunkSize = 60000
	// DefaultClientChunkSize is the chunk size a ClientConn sends with.
	DefaultClientChunkSize = 4096
	// MaxChunkSize is the largest chunk size the protocol can express.
	MaxChunkSize = 0x7fffffff
	// DefaultMaxChunkSize is the largest incoming chunk size accepted by default.
	DefaultMaxChunkSize = 16 << 20
	// DefaultMaxMessageSize is the largest incoming message accepted by default.
	DefaultMaxMessageSize = 16 << 20
	// DefaultMaxChunkStreams is the default bound on distinct incoming chunk stream ids.
	DefaultMaxChunkStreams = 64
	// DefaultWindowAckSize is the acknowledgement window announced by default.
	DefaultWindowAckSize = 2500000
	// MaxMessageLength is the largest message the 24-bit length field can express.
	MaxMessageLength = 0xffffff
	// MaxCSID is the largest chunk stream id (3-byte basic header).
	MaxCSID = 65599

	extendedTimestamp = 0xffffff
)

// Sentinel errors; returned errors wrap one of these (or io.EOF /
// io.ErrUnexpectedEOF / a net error for transport problems).
var (
	// ErrHandshake means the peer's handshake was invalid.
	ErrHandshake = errors.New("rtmp: bad handshake")
	// ErrInvalidChunkSize means a Set Chunk Size of 0 or with bit 31 set.
	ErrInvalidChunkSize = errors.New("rtmp: invalid chunk size")
	// ErrChunkSizeTooLarge means a Set Chunk Size above the configured maximum.
	ErrChunkSizeTooLarge = errors.New("rtmp: chunk size above limit")
	// ErrMessageTooLarge means a message length above the configured maximum.
	ErrMessageTooLarge = errors.New("rtmp: message size above limit")
	// ErrTooManyChunkStreams means more distinct chunk stream ids than allowed.
	ErrTooManyChunkStreams = errors.New("rtmp: too many chunk streams")
	// ErrNoPreviousHeader means a compressed chunk header on a chunk stream with no prior header.
	ErrNoPreviousHeader = errors.New("rtmp: compressed chunk header without a previous header")
	// ErrUnexpectedHeader means a new message header arrived before the previous message was complete.
	ErrUnexpectedHeader = errors.New("rtmp: message header inside an unfinished message")
	// ErrBadMessage means a control or command message could not be parsed.
	ErrBadMessage = errors.New("rtmp: malformed message")
	// ErrProtocol means the peer broke the command sequence.
	ErrProtocol = errors.New("rtmp: protocol violation")
	// ErrState means a method was called in the wrong connection state.
	ErrState = errors.New("rtmp: method not valid in this connection state")
	// ErrBadURL means an rtmp:// URL could not be used.
	ErrBadURL = errors.New("rtmp: bad URL")
)

// StatusError is an onStatus or _error reply with level "error" received by a ClientConn.
type StatusError struct {
	Level       string
	Code        string
	Description string
}

// Error implements error.
func (e *StatusError) Error() string {
	if e.Description != "" {
		return fmt.Sprintf("rtmp: %s: %s", e.Code, e.Description)
	}
	return "rtmp: " + e.Code
}

// Status codes used in onStatus messages.
const (
	CodeConnectSuccess      = "NetConnection.Connect.Success"  // CodeConnectSuccess answers connect.
	CodeConnectRejected     = "NetConnection.Connect.Rejected" // CodeConnectRejected refuses a connection.
	CodePublishStart        = "NetStream.Publish.Start"        // CodePublishStart accepts a publisher.
	CodePublishBadName      = "NetStream.Publish.BadName"      // CodePublishBadName refuses a busy stream path.
	CodePublishUnauthorized = "NetStream.Publish.Unauthorized" // CodePublishUnauthorized refuses a publisher's credentials.
	CodeUnpublishSuccess    = "NetStream.Unpublish.Success"    // CodeUnpublishSuccess acknowledges an unpublish.
	CodePlayReset           = "NetStream.Play.Reset"           // CodePlayReset precedes Play.Start.
	CodePlayStart           = "NetStream.Play.Start"           // CodePlayStart accepts a player.
	CodePlayStop            = "NetStream.Play.Stop"            // CodePlayStop ends playback.
	CodePlayStreamNotFound  = "NetStream.Play.StreamNotFound"  // CodePlayStreamNotFound refuses a player: no such stream.
	CodePlayUnpublish       = "NetStream.Play.UnpublishNotify" // CodePlayUnpublish tells players the publisher left.
	CodePauseNotify         = "NetStream.Pause.Notify"         // CodePauseNotify acknowledges a pause.
	CodeUnpauseNotify       = "NetStream.Unpause.Notify"       // CodeUnpauseNotify acknowledges an unpause.
	CodeStreamFailed        = "NetStream.Failed"               // CodeStreamFailed is a generic stream failure.
)
