// Package bitio reads and writes big-endian bit fields, the way the H.264,
// H.265, AV1, VP9 and MPEG-4 audio specifications lay out their headers.
// It never panics and never allocates on the read side.
package bitio

import "errors"

// ErrTruncated is returned when a read goes past the end of the buffer.
var ErrTruncated = errors.New("bitio: not enough data")

// ErrInvalid is returned when a variable-length code is malformed.
var ErrInvalid = errors.New("bitio: invalid variable-length code")

// Reader reads bit fields from a byte slice, most significant bit first.
type Reader struct {
	buf []byte
	pos int // in bits
}

// NewReader returns a Reader positioned on the first bit of buf.
func NewReader(buf []byte) Reader {
	return Reader{buf: buf}
}

// Pos returns the number of bits consumed so far.
func (r *Reader) Pos() int { return r.pos }

// BitsLeft returns the number of unread bits.
func (r *Reader) BitsLeft() int { return len(r.buf)*8 - r.pos }

// ReadBits reads n bits (0 <= n <= 64) as an unsigned integer.
func (r *Reader) ReadBits(n int) (uint64, error) {
	if n < 0 || n > 64 {
		return 0, ErrInvalid
	}
	if n > r.BitsLeft() {
		r.pos = len(r.buf) * 8
		return 0, ErrTruncated
	}
	var v uint64
	for n > 0 {
		byteIdx := r.pos >> 3
		bitOff := r.pos & 7
		avail := 8 - bitOff
		take := min(avail, n)
		b := uint64(r.buf[byteIdx]>>(avail-take)) & (1<<take - 1)
		v = v<<take | b
		n -= take
		r.pos += take
	}
	return v, nil
}

// ReadFlag reads one bit as a boolean.
func (r *Reader) ReadFlag() (bool, error) {
	v, err := r.ReadBits(1)
	return v == 1, err
}

// Skip advances n bits.
func (r *Reader) Skip(n int) error {
	if n < 0 || n > r.BitsLeft() {
		r.pos = len(r.buf) * 8
		return ErrTruncated
	}
	r.pos += n
	return nil
}

// ReadUE reads an unsigned Exp-Golomb code, ue(v) in H.264/H.265.
func (r *Reader) ReadUE() (uint32, error) {
	zeros := 0
	for {
		b, err := r.ReadBits(1)
		if err != nil {
			return 0, err
		}
		if b == 1 {
			break
		}
		zeros++
		if zeros > 31 {
			return 0, ErrInvalid
		}
	}
	if zeros == 0 {
		return 0, nil
	}
	v, err := r.ReadBits(zeros)
	if err != nil {
		return 0, err
	}
	return uint32((uint64(1)<<zeros - 1) + v), nil
}

// ReadSE reads a signed Exp-Golomb code, se(v) in H.264/H.265.
func (r *Reader) ReadSE() (int32, error) {
	v, err := r.ReadUE()
	if err != nil {
		return 0, err
	}
	if v&1 == 1 {
		return int32((uint64(v) + 1) / 2), nil
	}
	return -int32(uint64(v) / 2), nil
}

// ReadUVLC reads an AV1 uvlc() code.
func (r *Reader) ReadUVLC() (uint32, error) {
	zeros := 0
	for {
		b, err := r.ReadBits(1)
		if err != nil {
			return 0, err
		}
		if b == 1 {
			break
		}
		zeros++
	}
	if zeros >= 32 {
		return 1<<32 - 1, nil
	}
	v, err := r.ReadBits(zeros)
	if err != nil {
		return 0, err
	}
	return uint32(v + (uint64(1)<<zeros - 1)), nil
}

// Writer appends bit fields to a byte slice, most significant bit first.
type Writer struct {
	buf []byte
	n   int // bits written
}

// WriteBits writes the n low bits of v (0 <= n <= 64).
func (w *Writer) WriteBits(v uint64, n int) {
	for i := n - 1; i >= 0; i-- {
		if w.n&7 == 0 {
			w.buf = append(w.buf, 0)
		}
		if v>>uint(i)&1 == 1 {
			w.buf[len(w.buf)-1] |= 0x80 >> uint(w.n&7)
		}
		w.n++
	}
}

// WriteFlag writes one bit.
func (w *Writer) WriteFlag(b bool) {
	if b {
		w.WriteBits(1, 1)
	} else {
		w.WriteBits(0, 1)
	}
}

// Bytes returns the written bits, zero-padded to a whole byte.
func (w *Writer) Bytes() []byte { return w.buf }
