package relay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/quasipaa/quasipaa/internal/media"
)

// ErrInvalid means the writer was given something the format cannot carry.
var ErrInvalid = errors.New("relay: cannot encode")

// maxReason bounds the reason of an END message.
const maxReason = 1024

// Writer writes a relay stream. The stream header goes out with the first
// message. A Writer is not safe for concurrent use; after a write error every
// call returns that error.
type Writer struct {
	w       io.Writer
	started bool
	err     error
	buf     []byte
}

// NewWriter returns a Writer writing to w. Each message is written with one
// Write call, or two for a frame (header, then the payload as is), so w
// should be buffered when many small messages go out.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, buf: make([]byte, 0, 64)}
}

// begin starts a message of type t in w.buf, after the stream header when
// none was written yet, and returns the offset of its length field.
func (w *Writer) begin(t Type) int {
	b := w.buf[:0]
	if !w.started {
		b = append(b, Magic...)
		b = append(b, Version)
	}
	b = append(b, byte(t), 0, 0, 0, 0)
	w.buf = b
	return len(b) - 4
}

// finish sets the message's length, counting extra bytes written after buf,
// and writes buf then extra.
func (w *Writer) finish(lenAt int, extra []byte) error {
	if w.err != nil {
		return w.err
	}
	n := uint64(len(w.buf)-lenAt-4) + uint64(len(extra))
	if n > math.MaxUint32 {
		return fmt.Errorf("%w: message of %d bytes", ErrInvalid, n)
	}
	binary.BigEndian.PutUint32(w.buf[lenAt:], uint32(n))
	if _, err := w.w.Write(w.buf); err != nil {
		w.err = err
		return err
	}
	w.started = true
	if len(extra) > 0 {
		if _, err := w.w.Write(extra); err != nil {
			w.err = err
			return err
		}
	}
	return nil
}

// WriteTracks writes a TRACKS message carrying every field of tracks.
func (w *Writer) WriteTracks(tracks []*media.Track) error {
	if len(tracks) > MaxTracks {
		return fmt.Errorf("%w: %d tracks, at most %d", ErrInvalid, len(tracks), MaxTracks)
	}
	lenAt := w.begin(TypeTracks)
	b := append(w.buf, byte(len(tracks)))
	for i, t := range tracks {
		if t == nil {
			return fmt.Errorf("%w: track %d is nil", ErrInvalid, i)
		}
		b = appendTrack(b, t)
	}
	w.buf = b
	return w.finish(lenAt, nil)
}

// appendTrack appends one track entry: its length, then its fields.
func appendTrack(b []byte, t *media.Track) []byte {
	n := 1 + varintLen(int64(t.Width)) + varintLen(int64(t.Height)) +
		varintLen(int64(t.SampleRate)) + varintLen(int64(t.Channels)) +
		uvarintLen(uint64(len(t.Profile))) + len(t.Profile) +
		uvarintLen(uint64(len(t.Level))) + len(t.Level) +
		uvarintLen(uint64(len(t.Config))) + len(t.Config)
	b = binary.AppendUvarint(b, uint64(n))
	b = append(b, byte(t.Codec))
	b = binary.AppendVarint(b, int64(t.Width))
	b = binary.AppendVarint(b, int64(t.Height))
	b = binary.AppendVarint(b, int64(t.SampleRate))
	b = binary.AppendVarint(b, int64(t.Channels))
	b = binary.AppendUvarint(b, uint64(len(t.Profile)))
	b = append(b, t.Profile...)
	b = binary.AppendUvarint(b, uint64(len(t.Level)))
	b = append(b, t.Level...)
	b = binary.AppendUvarint(b, uint64(len(t.Config)))
	return append(b, t.Config...)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func varintLen(v int64) int {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	return uvarintLen(u)
}

// WriteFrame writes a FRAME message: the header is built in the Writer's
// buffer and the payload is written as is, without a copy or an allocation.
func (w *Writer) WriteFrame(f *media.Frame) error {
	if f.Track < 0 || f.Track >= MaxTracks {
		return fmt.Errorf("%w: track index %d", ErrInvalid, f.Track)
	}
	lenAt := w.begin(TypeFrame)
	b := binary.AppendUvarint(w.buf, uint64(f.Track))
	var flags byte
	if f.Key {
		flags |= FlagKey
	}
	b = append(b, flags)
	b = binary.AppendVarint(b, int64(f.DTS))
	b = binary.AppendVarint(b, int64(f.PTS-f.DTS))
	b = binary.AppendVarint(b, unixNano(f.Ingest))
	w.buf = b
	return w.finish(lenAt, f.Payload)
}

// WriteKeepalive writes a KEEPALIVE message.
func (w *Writer) WriteKeepalive() error {
	return w.finish(w.begin(TypeKeepalive), nil)
}

// WriteEnd writes an END message; reason is cut to 1024 bytes.
// ReasonStreamEnded tells the receiver not to reconnect.
func (w *Writer) WriteEnd(reason string) error {
	if len(reason) > maxReason {
		reason = reason[:maxReason]
	}
	lenAt := w.begin(TypeEnd)
	w.buf = append(w.buf, reason...)
	return w.finish(lenAt, nil)
}
