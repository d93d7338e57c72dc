package relay

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/quasipaa/quasipaa/internal/media"
)

// Reader reads a relay stream. It is not safe for concurrent use.
type Reader struct {
	r       *bufio.Reader
	max     int
	started bool
	err     error
	hdr     [msgHeaderLen]byte
}

// NewReader returns a Reader of r that refuses messages whose body is longer
// than maxMessage bytes (DefaultMaxMessage when maxMessage <= 0).
func NewReader(r io.Reader, maxMessage int) *Reader {
	if maxMessage <= 0 {
		maxMessage = DefaultMaxMessage
	}
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 32<<10)
	}
	return &Reader{r: br, max: maxMessage}
}

// Next reads the next message. It returns io.EOF when the stream ends
// cleanly between two messages (or before the stream header), ErrTruncated
// when it ends inside one, and ErrBadMagic, ErrVersion, ErrOversize or
// ErrMalformed for bad input; after an error every call returns it again.
//
// A message of a type this package does not know is skipped without being
// buffered and returned with only Type and Size set: callers ignore it, so
// new message types can be added without breaking older readers.
func (r *Reader) Next() (Message, error) {
	if r.err != nil {
		return Message{}, r.err
	}
	m, err := r.next()
	if err != nil {
		r.err = err
	}
	return m, err
}

func (r *Reader) next() (Message, error) {
	if !r.started {
		var h [headerLen]byte
		if err := r.readFull(h[:], true); err != nil {
			return Message{}, err
		}
		if string(h[:len(Magic)]) != Magic {
			return Message{}, fmt.Errorf("%w: %q", ErrBadMagic, h[:len(Magic)])
		}
		if h[len(Magic)] != Version {
			return Message{}, fmt.Errorf("%w: %d (this reader reads %d)", ErrVersion, h[len(Magic)], Version)
		}
		r.started = true
	}
	if err := r.readFull(r.hdr[:], true); err != nil {
		return Message{}, err
	}
	t := Type(r.hdr[0])
	n := binary.BigEndian.Uint32(r.hdr[1:])
	m := Message{Type: t, Size: msgHeaderLen + int(n)}
	switch t {
	case TypeTracks, TypeFrame, TypeKeepalive, TypeEnd:
	default:
		// Unknown type: skip its body without buffering it.
		if k, err := io.CopyN(io.Discard, r.r, int64(n)); err != nil {
			return Message{}, fmt.Errorf("%w: %d of %d bytes of a type %d message", ErrTruncated, k, n, t)
		}
		return m, nil
	}
	if uint64(n) > uint64(r.max) {
		return Message{}, fmt.Errorf("%w: %s of %d bytes, at most %d", ErrOversize, t, n, r.max)
	}
	if t == TypeKeepalive {
		if _, err := r.r.Discard(int(n)); err != nil {
			return Message{}, fmt.Errorf("%w: %s", ErrTruncated, t)
		}
		return m, nil
	}
	body := make([]byte, n)
	if err := r.readFull(body, false); err != nil {
		return Message{}, err
	}
	var err error
	switch t {
	case TypeTracks:
		m.Tracks, err = decodeTracks(body)
	case TypeFrame:
		m.Frame, err = decodeFrame(body)
	case TypeEnd:
		m.Reason = string(body)
	}
	return m, err
}

// readFull fills p. A clean end before the first byte is io.EOF when
// atBoundary is set; any other short read is ErrTruncated.
func (r *Reader) readFull(p []byte, atBoundary bool) error {
	k, err := io.ReadFull(r.r, p)
	switch {
	case err == nil:
		return nil
	case k == 0 && atBoundary && errors.Is(err, io.EOF):
		return io.EOF
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %d of %d bytes", ErrTruncated, k, len(p))
	default:
		return err
	}
}

// decoder reads the fields of a message body.
type decoder struct {
	p   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", ErrMalformed, what)
	}
}

func (d *decoder) byte(what string) byte {
	if d.err != nil || len(d.p) == 0 {
		d.fail(what)
		return 0
	}
	b := d.p[0]
	d.p = d.p[1:]
	return b
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.p)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.p = d.p[n:]
	return v
}

func (d *decoder) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.p)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.p = d.p[n:]
	return v
}

// int reads a varint that must fit a 32-bit int.
func (d *decoder) int(what string) int {
	v := d.varint(what)
	if v < -1<<31 || v > 1<<31-1 {
		d.fail(what)
		return 0
	}
	return int(v)
}

// bytes reads a length-prefixed byte string, aliasing the body.
func (d *decoder) bytes(what string) []byte {
	n := d.uvarint(what)
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.p)) {
		d.fail(what)
		return nil
	}
	b := d.p[:n:n]
	d.p = d.p[n:]
	if n == 0 {
		return nil
	}
	return b
}

func decodeTracks(body []byte) ([]*media.Track, error) {
	d := decoder{p: body}
	count := int(d.byte("track count"))
	tracks := make([]*media.Track, 0, count)
	for i := 0; i < count && d.err == nil; i++ {
		entry := d.bytes("track entry")
		if d.err != nil {
			break
		}
		t, err := decodeTrack(entry)
		if err != nil {
			return nil, fmt.Errorf("track %d: %w", i, err)
		}
		tracks = append(tracks, t)
	}
	if d.err != nil {
		return nil, d.err
	}
	// Bytes after the last track are room for later versions: ignored.
	return tracks, nil
}

// decodeTrack decodes one track entry; bytes after the known fields are
// ignored, so later versions may append fields.
func decodeTrack(entry []byte) (*media.Track, error) {
	d := decoder{p: entry}
	t := &media.Track{Codec: media.Codec(d.byte("codec"))}
	t.Width = d.int("width")
	t.Height = d.int("height")
	t.SampleRate = d.int("sample rate")
	t.Channels = d.int("channels")
	t.Profile = string(d.bytes("profile"))
	t.Level = string(d.bytes("level"))
	if c := d.bytes("config"); c != nil {
		// A copy: the entry aliases the whole message body.
		t.Config = append([]byte(nil), c...)
	}
	if d.err != nil {
		return nil, d.err
	}
	return t, nil
}

func decodeFrame(body []byte) (*media.Frame, error) {
	d := decoder{p: body}
	track := d.uvarint("track index")
	flags := d.byte("flags")
	dts := d.varint("dts")
	cts := d.varint("composition offset")
	ingest := d.varint("ingest time")
	if d.err != nil {
		return nil, d.err
	}
	if track >= MaxTracks {
		return nil, fmt.Errorf("%w: track index %d", ErrMalformed, track)
	}
	f := &media.Frame{
		Track:  int(track),
		Key:    flags&FlagKey != 0,
		DTS:    time.Duration(dts),
		PTS:    time.Duration(dts + cts),
		Ingest: fromUnixNano(ingest),
	}
	if len(d.p) > 0 {
		f.Payload = d.p
	}
	return f, nil
}
