// Package annexb holds the NAL unit framing shared by H.264 and H.265: the
// Annex B byte stream (start codes) and the length-prefixed form of ISO/IEC
// 14496-15 (AVCC/HVCC). The public h264 and h265 packages wrap it with their
// own error values. Nothing here allocates unless an output buffer must grow.
package annexb

import (
	"bytes"
	"errors"
	"math"
)

// Errors returned by this package; the codec packages translate them.
var (
	ErrTruncated    = errors.New("NAL unit length exceeds the buffer")
	ErrNoStartCode  = errors.New("Annex B data does not begin with a start code")
	ErrNoNALUs      = errors.New("no NAL unit found")
	ErrLengthSize   = errors.New("NAL unit length size must be 1, 2 or 4")
	ErrNALUTooLarge = errors.New("NAL unit too large for its length field")
	ErrEmptyNALU    = errors.New("empty NAL unit")
)

var startCode3 = []byte{0, 0, 1}

// ForEachLength calls fn with each NAL unit of b, where each is prefixed by a
// big-endian length of size bytes (1, 2 or 4). Zero-length units are skipped.
// It stops early, returning nil, when fn returns false.
func ForEachLength(b []byte, size int, fn func(nalu []byte) bool) error {
	if size != 1 && size != 2 && size != 4 {
		return ErrLengthSize
	}
	for len(b) > 0 {
		if len(b) < size {
			return ErrTruncated
		}
		var n uint64
		for i := range size {
			n = n<<8 | uint64(b[i])
		}
		b = b[size:]
		if n > uint64(len(b)) {
			return ErrTruncated
		}
		if n == 0 {
			continue
		}
		if !fn(b[:n]) {
			return nil
		}
		b = b[n:]
	}
	return nil
}

// Next returns the first NAL unit of a 4-byte-length-prefixed buffer and
// the rest of the buffer. Zero-length units are skipped. At the end of b it
// returns nil, nil, nil.
func Next(b []byte) (nalu, rest []byte, err error) {
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, nil, ErrTruncated
		}
		n := uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
		b = b[4:]
		if n > uint64(len(b)) {
			return nil, nil, ErrTruncated
		}
		if n == 0 {
			continue
		}
		return b[:n], b[n:], nil
	}
	return nil, nil, nil
}

// ForEachAnnexB calls fn with each NAL unit of an Annex B byte stream.
// Leading zero bytes and trailing zero bytes of each unit (trailing_zero_8bits)
// are dropped, and so are empty units. It stops early, returning nil, when fn
// returns false.
func ForEachAnnexB(b []byte, fn func(nalu []byte) bool) error {
	i := bytes.Index(b, startCode3)
	if i < 0 {
		return ErrNoStartCode
	}
	for _, c := range b[:i] {
		if c != 0 {
			return ErrNoStartCode
		}
	}
	b = b[i+3:]
	for len(b) > 0 {
		end := bytes.Index(b, startCode3)
		next := end + 3
		if end < 0 {
			end = len(b)
			next = len(b)
		}
		nalu := b[:end]
		for len(nalu) > 0 && nalu[len(nalu)-1] == 0 {
			nalu = nalu[:len(nalu)-1]
		}
		if len(nalu) > 0 && !fn(nalu) {
			return nil
		}
		b = b[next:]
	}
	return nil
}

// AnnexBToLength appends to dst the NAL units of the Annex B stream src, each
// prefixed by a 4-byte big-endian length.
func AnnexBToLength(dst, src []byte) ([]byte, error) {
	start := len(dst)
	count := 0
	var tooLarge bool
	err := ForEachAnnexB(src, func(nalu []byte) bool {
		if uint64(len(nalu)) > math.MaxUint32 {
			tooLarge = true
			return false
		}
		n := uint32(len(nalu))
		dst = append(dst, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
		dst = append(dst, nalu...)
		count++
		return true
	})
	switch {
	case err != nil:
		return dst[:start], err
	case tooLarge:
		return dst[:start], ErrNALUTooLarge
	case count == 0:
		return dst[:start], ErrNoNALUs
	}
	return dst, nil
}

// LengthToAnnexB appends to dst the NAL units of src, whose units are prefixed
// by size-byte lengths, each preceded by a 4-byte start code (00 00 00 01).
func LengthToAnnexB(dst, src []byte, size int) ([]byte, error) {
	start := len(dst)
	count := 0
	err := ForEachLength(src, size, func(nalu []byte) bool {
		dst = append(dst, 0, 0, 0, 1)
		dst = append(dst, nalu...)
		count++
		return true
	})
	switch {
	case err != nil:
		return dst[:start], err
	case count == 0:
		return dst[:start], ErrNoNALUs
	}
	return dst, nil
}

// ConvertLength appends to dst the NAL units of src, whose units are prefixed
// by from-byte lengths, each prefixed by a 4-byte length instead.
func ConvertLength(dst, src []byte, from int) ([]byte, error) {
	start := len(dst)
	count := 0
	err := ForEachLength(src, from, func(nalu []byte) bool {
		n := uint32(len(nalu)) // a from-byte length never exceeds 32 bits
		dst = append(dst, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
		dst = append(dst, nalu...)
		count++
		return true
	})
	switch {
	case err != nil:
		return dst[:start], err
	case count == 0:
		return dst[:start], ErrNoNALUs
	}
	return dst, nil
}

// AppendLength appends nalu to dst prefixed by its 4-byte length.
func AppendLength(dst, nalu []byte) ([]byte, error) {
	if len(nalu) == 0 {
		return dst, ErrEmptyNALU
	}
	if uint64(len(nalu)) > math.MaxUint32 {
		return dst, ErrNALUTooLarge
	}
	n := uint32(len(nalu))
	dst = append(dst, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	return append(dst, nalu...), nil
}

// LooksLikeAnnexB reports whether b starts with an Annex B start code
// (00 00 01 or 00 00 00 01). A 4-byte-length-prefixed buffer cannot start
// this way unless its first NAL unit is one byte long, which no real
// encoder produces, so this tells the two framings apart.
func LooksLikeAnnexB(b []byte) bool {
	if len(b) >= 3 && b[0] == 0 && b[1] == 0 && b[2] == 1 {
		return true
	}
	return len(b) >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 1
}

// Unescape appends to dst the RBSP of an escaped NAL unit payload: every
// emulation prevention byte (the 03 of 00 00 03) is removed.
func Unescape(dst, src []byte) []byte {
	zeros := 0
	for _, c := range src {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		dst = append(dst, c)
	}
	return dst
}

// UnescapePrefix is like Unescape but stops once dst holds max bytes.
func UnescapePrefix(dst, src []byte, max int) []byte {
	zeros := 0
	for _, c := range src {
		if len(dst) >= max {
			break
		}
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		dst = append(dst, c)
	}
	return dst
}
