package rtmp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ---------------------------------------------------------------------------
// Writer

// basicHeaderLen is the length of the basic header for csid.
func basicHeaderLen(csid uint32) int {
	switch {
	case csid < 64:
		return 1
	case csid < 320:
		return 2
	}
	return 3
}

func appendBasicHeader(dst []byte, fmtBits byte, csid uint32) []byte {
	switch {
	case csid < 64:
		return append(dst, fmtBits<<6|byte(csid))
	case csid < 320:
		return append(dst, fmtBits<<6, byte(csid-64))
	}
	c := csid - 64
	return append(dst, fmtBits<<6|1, byte(c), byte(c>>8))
}

// ChunkedSize returns the exact number of bytes AppendMessage appends for a
// payload of payloadLen bytes with the same csid, timestamp and chunk size.
func ChunkedSize(csid uint32, timestamp uint32, payloadLen, chunkSize int) int {
	if chunkSize <= 0 {
		chunkSize = DefaultChunkSize
	}
	payloadLen = min(max(payloadLen, 0), MaxMessageLength)
	bh := basicHeaderLen(csid)
	ext := 0
	if timestamp >= extendedTimestamp {
		ext = 4
	}
	n := bh + 11 + ext + payloadLen
	if payloadLen > chunkSize {
		n += ((payloadLen - 1) / chunkSize) * (bh + ext)
	}
	return n
}

// AppendMessage appends one message serialised as RTMP chunks to dst: the
// first chunk with a type 0 header, continuation chunks with type 3 headers
// (repeating the extended timestamp when the timestamp needs one). The output
// depends only on the arguments, so it can be computed once and written to
// many connections that were all told the same chunk size.
//
// csid must be 2..65599 (larger values are reduced modulo the 3-byte form's
// range). A chunkSize <= 0 means DefaultChunkSize. The message length field
// has 24 bits: a payload longer than MaxMessageLength is cut to that length
// so the stream stays well-formed. It does not allocate when dst has
// ChunkedSize spare capacity.
func AppendMessage(dst []byte, csid uint32, msgType uint8, streamID uint32, timestamp uint32, payload []byte, chunkSize int) []byte {
	if chunkSize <= 0 {
		chunkSize = DefaultChunkSize
	}
	if len(payload) > MaxMessageLength {
		payload = payload[:MaxMessageLength]
	}
	if need := ChunkedSize(csid, timestamp, len(payload), chunkSize); cap(dst)-len(dst) < need {
		grown := make([]byte, len(dst), len(dst)+need)
		copy(grown, dst)
		dst = grown
	}
	ext := timestamp >= extendedTimestamp
	tsField := timestamp
	if ext {
		tsField = extendedTimestamp
	}
	n := len(payload)
	dst = appendBasicHeader(dst, 0, csid)
	dst = append(dst,
		byte(tsField>>16), byte(tsField>>8), byte(tsField),
		byte(n>>16), byte(n>>8), byte(n),
		msgType,
		byte(streamID), byte(streamID>>8), byte(streamID>>16), byte(streamID>>24))
	if ext {
		dst = binary.BigEndian.AppendUint32(dst, timestamp)
	}
	first := min(n, chunkSize)
	dst = append(dst, payload[:first]...)
	for off := first; off < n; off += chunkSize {
		dst = appendBasicHeader(dst, 3, csid)
		if ext {
			dst = binary.BigEndian.AppendUint32(dst, timestamp)
		}
		dst = append(dst, payload[off:min(n, off+chunkSize)]...)
	}
	return dst
}

// ---------------------------------------------------------------------------
// Reader

// ReaderConfig bounds what a ChunkReader accepts. Zero fields take defaults.
type ReaderConfig struct {
	// MaxChunkSize is the largest Set Chunk Size accepted (default DefaultMaxChunkSize).
	MaxChunkSize uint32
	// MaxMessageSize is the largest message length accepted (default DefaultMaxMessageSize).
	MaxMessageSize uint32
	// MaxChunkStreams bounds distinct chunk stream ids (default DefaultMaxChunkStreams).
	MaxChunkStreams int
}

// initialPayloadCap bounds the payload buffer allocated when a message starts:
// larger messages grow as their chunks arrive, so a declared length costs
// memory only once its bytes have actually been received.
const initialPayloadCap = 64 << 10

type chunkStream struct {
	started    bool   // a header has been seen on this csid
	inProgress bool   // a message is partially received
	extended   bool   // the last header used an extended timestamp
	extValue   uint32 // the last extended timestamp value read
	timestamp  uint32 // absolute timestamp of the current message
	delta      uint32 // last timestamp field (delta, or absolute for type 0)
	length     uint32
	typ        uint8
	streamID   uint32
	buf        []byte
}

// ChunkReader reassembles RTMP messages from a chunk stream. It handles Set
// Chunk Size and Abort Message itself (they are not returned). Not safe for
// concurrent use.
type ChunkReader struct {
	r         *bufio.Reader
	cfg       ReaderConfig
	chunkSize uint32
	small     [64]*chunkStream
	big       map[uint32]*chunkStream
	count     int
	hdr       [16]byte
	borrow    bool
}

// NewChunkReader returns a ChunkReader reading from r with the limits of cfg.
func NewChunkReader(r *bufio.Reader, cfg ReaderConfig) *ChunkReader {
	if cfg.MaxChunkSize == 0 {
		cfg.MaxChunkSize = DefaultMaxChunkSize
	}
	if cfg.MaxMessageSize == 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	if cfg.MaxChunkStreams <= 0 {
		cfg.MaxChunkStreams = DefaultMaxChunkStreams
	}
	return &ChunkReader{r: r, cfg: cfg, chunkSize: DefaultChunkSize}
}

// ChunkSize returns the peer's current chunk size.
func (r *ChunkReader) ChunkSize() uint32 { return r.chunkSize }

// ReadMessage reads chunks until a message is complete and returns it. The
// payload belongs to the caller. A clean end of input between chunks returns
// io.EOF.
func (r *ChunkReader) ReadMessage() (Message, error) {
	r.borrow = false
	return r.read()
}

// ReadMessageBorrowed is ReadMessage without a per-message allocation: the
// payload is only valid until the next call on r.
func (r *ChunkReader) ReadMessageBorrowed() (Message, error) {
	r.borrow = true
	return r.read()
}

func (r *ChunkReader) read() (Message, error) {
	for {
		cs, err := r.readChunk()
		if err != nil {
			return Message{}, err
		}
		if cs == nil {
			continue
		}
		m := Message{Type: cs.typ, StreamID: cs.streamID, Timestamp: cs.timestamp, Payload: cs.buf}
		if !r.borrow {
			cs.buf = nil
		}
		switch m.Type {
		case MsgSetChunkSize:
			if err := r.setChunkSize(m.Payload); err != nil {
				return Message{}, err
			}
			continue
		case MsgAbort:
			if len(m.Payload) < 4 {
				return Message{}, fmt.Errorf("%w: abort message of %d bytes", ErrBadMessage, len(m.Payload))
			}
			if a := r.lookup(binary.BigEndian.Uint32(m.Payload)); a != nil {
				a.inProgress = false
				a.buf = a.buf[:0]
			}
			continue
		}
		return m, nil
	}
}

func (r *ChunkReader) setChunkSize(p []byte) error {
	if len(p) < 4 {
		return fmt.Errorf("%w: set chunk size of %d bytes", ErrBadMessage, len(p))
	}
	v := binary.BigEndian.Uint32(p)
	if v == 0 || v&0x80000000 != 0 {
		return fmt.Errorf("%w: %d (0x%08x)", ErrInvalidChunkSize, v, v)
	}
	if v > r.cfg.MaxChunkSize {
		return fmt.Errorf("%w: %d > %d", ErrChunkSizeTooLarge, v, r.cfg.MaxChunkSize)
	}
	r.chunkSize = v
	return nil
}

// unfinished reports whether some message is partially received.
func (r *ChunkReader) unfinished() bool {
	for _, cs := range r.small {
		if cs != nil && cs.inProgress {
			return true
		}
	}
	for _, cs := range r.big {
		if cs.inProgress {
			return true
		}
	}
	return false
}

func (r *ChunkReader) lookup(csid uint32) *chunkStream {
	if csid < uint32(len(r.small)) {
		return r.small[csid]
	}
	return r.big[csid]
}

func (r *ChunkReader) stream(csid uint32) (*chunkStream, error) {
	if cs := r.lookup(csid); cs != nil {
		return cs, nil
	}
	if r.count >= r.cfg.MaxChunkStreams {
		return nil, fmt.Errorf("%w: more than %d", ErrTooManyChunkStreams, r.cfg.MaxChunkStreams)
	}
	r.count++
	cs := &chunkStream{}
	if csid < uint32(len(r.small)) {
		r.small[csid] = cs
	} else {
		if r.big == nil {
			r.big = make(map[uint32]*chunkStream)
		}
		r.big[csid] = cs
	}
	return cs, nil
}

// readFull reads exactly n header bytes; an end of input inside a chunk is
// io.ErrUnexpectedEOF.
func (r *ChunkReader) readFull(n int) ([]byte, error) {
	b := r.hdr[:n]
	if _, err := io.ReadFull(r.r, b); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

func u24(b []byte) uint32 { return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]) }

// readChunk reads one chunk; it returns the chunk stream when the chunk
// completed a message, nil otherwise.
func (r *ChunkReader) readChunk() (*chunkStream, error) {
	b0, err := r.r.ReadByte()
	if err != nil {
		// io.EOF between chunks is a clean end, unless a message is unfinished.
		if errors.Is(err, io.EOF) && r.unfinished() {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	fmtBits := b0 >> 6
	csid := uint32(b0 & 0x3f)
	switch csid {
	case 0:
		b, err := r.readFull(1)
		if err != nil {
			return nil, err
		}
		csid = uint32(b[0]) + 64
	case 1:
		b, err := r.readFull(2)
		if err != nil {
			return nil, err
		}
		csid = uint32(b[1])<<8 + uint32(b[0]) + 64
	}
	cs, err := r.stream(csid)
	if err != nil {
		return nil, err
	}

	if fmtBits != 3 && cs.inProgress {
		return nil, fmt.Errorf("%w: type %d header on csid %d with %d of %d bytes received",
			ErrUnexpectedHeader, fmtBits, csid, len(cs.buf), cs.length)
	}
	if !cs.started && fmtBits >= 2 {
		// A fresh csid may start with type 1 (librtmp does, e.g. for pings);
		// types 2 and 3 need a length nobody sent.
		return nil, fmt.Errorf("%w: type %d header on new csid %d", ErrNoPreviousHeader, fmtBits, csid)
	}

	switch fmtBits {
	case 0:
		h, err := r.readFull(11)
		if err != nil {
			return nil, err
		}
		ts := u24(h)
		cs.length = u24(h[3:])
		cs.typ = h[6]
		cs.streamID = binary.LittleEndian.Uint32(h[7:])
		if cs.extended = ts == extendedTimestamp; cs.extended {
			if ts, err = r.readExt(cs); err != nil {
				return nil, err
			}
		}
		cs.timestamp, cs.delta = ts, ts
	case 1:
		h, err := r.readFull(7)
		if err != nil {
			return nil, err
		}
		d := u24(h)
		cs.length = u24(h[3:])
		cs.typ = h[6]
		if cs.extended = d == extendedTimestamp; cs.extended {
			if d, err = r.readExt(cs); err != nil {
				return nil, err
			}
		}
		cs.delta = d
		cs.timestamp += d
	case 2:
		h, err := r.readFull(3)
		if err != nil {
			return nil, err
		}
		d := u24(h)
		if cs.extended = d == extendedTimestamp; cs.extended {
			if d, err = r.readExt(cs); err != nil {
				return nil, err
			}
		}
		cs.delta = d
		cs.timestamp += d
	case 3:
		if cs.inProgress {
			// Continuation: the extended timestamp is repeated by conforming
			// senders (FMS, ffmpeg); tolerate senders that omit it.
			if cs.extended {
				p, err := r.r.Peek(4)
				if err != nil {
					if errors.Is(err, io.EOF) {
						return nil, io.ErrUnexpectedEOF
					}
					return nil, err
				}
				if binary.BigEndian.Uint32(p) == cs.extValue {
					_, _ = r.r.Discard(4)
				}
			}
		} else {
			// A new message reusing the previous header, delta included.
			if cs.extended {
				d, err := r.readExt(cs)
				if err != nil {
					return nil, err
				}
				cs.delta = d
			}
			cs.timestamp += cs.delta
		}
	}
	cs.started = true

	if !cs.inProgress {
		if cs.length > r.cfg.MaxMessageSize {
			return nil, fmt.Errorf("%w: %d > %d bytes (type %d, csid %d)",
				ErrMessageTooLarge, cs.length, r.cfg.MaxMessageSize, cs.typ, csid)
		}
		cs.inProgress = true
		if r.borrow {
			cs.buf = cs.buf[:0]
		} else {
			cs.buf = nil
		}
	}

	want := int(cs.length) - len(cs.buf)
	n := min(want, int(r.chunkSize))
	if n > 0 {
		if cap(cs.buf)-len(cs.buf) < n {
			cs.buf = grow(cs.buf, n, int(cs.length))
		}
		start := len(cs.buf)
		cs.buf = cs.buf[:start+n]
		if _, err := io.ReadFull(r.r, cs.buf[start:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	if len(cs.buf) < int(cs.length) {
		return nil, nil
	}
	cs.inProgress = false
	return cs, nil
}

// grow returns b with room for n more bytes, never beyond total capacity.
func grow(b []byte, n, total int) []byte {
	c := max(2*cap(b), len(b)+n)
	if cap(b) == 0 {
		c = max(min(total, initialPayloadCap), n)
	}
	c = min(c, total)
	nb := make([]byte, len(b), c)
	copy(nb, b)
	return nb
}

func (r *ChunkReader) readExt(cs *chunkStream) (uint32, error) {
	b, err := r.readFull(4)
	if err != nil {
		return 0, err
	}
	cs.extValue = binary.BigEndian.Uint32(b)
	return cs.extValue, nil
}
