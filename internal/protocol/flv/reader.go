package flv

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxTagSize is the largest tag body a Reader accepts by default.
const DefaultMaxTagSize = 16 << 20

// ReaderOptions tunes a Reader; the zero value gives the defaults.
type ReaderOptions struct {
	// MaxTagSize is the largest tag body accepted; 0 means DefaultMaxTagSize.
	MaxTagSize int
	// BufferSize is the read buffer size; 0 means 64 KiB. A *bufio.Reader
	// passed to NewReader is used as it is.
	BufferSize int
}

// Header is the FLV file header.
type Header struct {
	Version  uint8 // Version is the file version, 1.
	HasAudio bool  // HasAudio is the audio flag of the header.
	HasVideo bool  // HasVideo is the video flag of the header.
}

// Tag is one FLV tag. Body is only valid until the next ReadTag call: the
// Reader reuses its buffer.
type Tag struct {
	Type      uint8  // Type is TagAudio, TagVideo, TagScript or an unknown value.
	Timestamp uint32 // Timestamp is in milliseconds, extended byte included.
	StreamID  uint32 // StreamID is always 0 in conforming files.
	Body      []byte // Body is the tag body, valid until the next ReadTag.
}

// Reader reads an FLV file or stream (HTTP-FLV, WS-FLV payloads) tag by tag.
// It is not safe for concurrent use.
type Reader struct {
	r       *bufio.Reader
	max     int
	buf     []byte
	hdr     [TagHeaderSize]byte
	pts     [PreviousTagSizeSize]byte
	started bool
	eof     bool
}

// NewReader returns a Reader reading from r.
func NewReader(r io.Reader, opts ReaderOptions) *Reader {
	limit := opts.MaxTagSize
	if limit <= 0 {
		limit = DefaultMaxTagSize
	}
	br, ok := r.(*bufio.Reader)
	if !ok {
		size := opts.BufferSize
		if size <= 0 {
			size = 64 << 10
		}
		br = bufio.NewReaderSize(r, size)
	}
	return &Reader{r: br, max: limit}
}

// Reset makes r read a new stream from src, keeping its buffers; ReadHeader
// must be called again.
func (r *Reader) Reset(src io.Reader) {
	r.r.Reset(src)
	r.started, r.eof = false, false
}

// ReadHeader reads the file header and PreviousTagSize0. It must be called
// once, before ReadTag.
func (r *Reader) ReadHeader() (Header, error) {
	var b [FileHeaderSize]byte
	if _, err := io.ReadFull(r.r, b[:]); err != nil {
		return Header{}, readErr("file header", err)
	}
	if b[0] != 'F' || b[1] != 'L' || b[2] != 'V' {
		return Header{}, ErrBadSignature
	}
	offset := binary.BigEndian.Uint32(b[5:])
	if offset < FileHeaderSize || offset > 1<<20 {
		return Header{}, fmt.Errorf("%w: header size %d", ErrInvalidPacket, offset)
	}
	if _, err := r.r.Discard(int(offset) - FileHeaderSize + PreviousTagSizeSize); err != nil {
		return Header{}, readErr("file header", err)
	}
	r.started = true
	return Header{Version: b[3], HasAudio: b[4]&4 != 0, HasVideo: b[4]&1 != 0}, nil
}

// ReadTag reads the next tag and the PreviousTagSize after it, which is not
// checked (many writers get it wrong). It returns io.EOF at a clean end of
// stream, including one that omits the last PreviousTagSize, and an error
// wrapping ErrTruncated inside a tag.
func (r *Reader) ReadTag() (Tag, error) {
	if !r.started {
		return Tag{}, errors.New("flv: ReadTag before ReadHeader")
	}
	if r.eof {
		return Tag{}, io.EOF
	}
	n, err := io.ReadFull(r.r, r.hdr[:])
	if err != nil {
		if n == 0 && err == io.EOF {
			return Tag{}, io.EOF
		}
		return Tag{}, readErr("tag header", err)
	}
	h := r.hdr[:]
	if h[0]&0x20 != 0 {
		return Tag{}, ErrEncrypted
	}
	size := u24(h[1:])
	if size > r.max {
		return Tag{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTagTooLarge, size, r.max)
	}
	tag := Tag{
		Type:      h[0] & 0x1f,
		Timestamp: uint32(h[7])<<24 | uint32(u24(h[4:])),
		StreamID:  uint32(u24(h[8:])),
	}
	if cap(r.buf) < size {
		r.buf = make([]byte, min(max(size, 2*cap(r.buf)), r.max))
	}
	tag.Body = r.buf[:size]
	if _, err := io.ReadFull(r.r, tag.Body); err != nil {
		return Tag{}, readErr(fmt.Sprintf("tag body of %d bytes", size), err)
	}
	if n, err := io.ReadFull(r.r, r.pts[:]); err != nil {
		if n == 0 && err == io.EOF {
			r.eof = true
			return tag, nil
		}
		return Tag{}, readErr("previous tag size", err)
	}
	return tag, nil
}

// readErr describes a read failure: the end of the input inside a structure
// wraps ErrTruncated and io.ErrUnexpectedEOF, other errors are passed on.
func readErr(what string, err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: %s: %w", ErrTruncated, what, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("flv: reading %s: %w", what, err)
}
