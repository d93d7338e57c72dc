package flv

import (
	"encoding/binary"
	"fmt"

	"github.com/quasipaa/quasipaa/internal/codec/h264"
	"github.com/quasipaa/quasipaa/internal/codec/h265"
	"github.com/quasipaa/quasipaa/internal/media"
)

// Offsets of lengthSizeMinusOne in the AVC and HEVC configuration records.
const (
	avcCLengthSizeOffset = 4
	hvcCLengthSizeOffset = 21
	avcCMinSize          = 7
	hvcCMinSize          = 23
)

// lengthSizeOffset returns where the NAL unit length size lives in the
// configuration record of codec c, or -1 for codecs without one.
func lengthSizeOffset(c media.Codec) int {
	switch c {
	case media.CodecH264:
		return avcCLengthSizeOffset
	case media.CodecH265:
		return hvcCLengthSizeOffset
	}
	return -1
}

// nalLengthSize returns the NAL unit length size (1, 2 or 4 bytes) a H264 or
// H265 configuration record announces. Other codecs return 0.
func nalLengthSize(c media.Codec, config []byte) (int, error) {
	off := lengthSizeOffset(c)
	if off < 0 {
		return 0, nil
	}
	minSize := avcCMinSize
	if c == media.CodecH265 {
		minSize = hvcCMinSize
	}
	if len(config) < minSize {
		return 0, fmt.Errorf("%w: %s record of %d bytes", ErrInvalidConfig, c, len(config))
	}
	if config[0] != 1 {
		return 0, fmt.Errorf("%w: %s record version %d", ErrInvalidConfig, c, config[0])
	}
	n := int(config[off]&3) + 1
	if n == 3 {
		return 0, fmt.Errorf("%w: %s NAL unit length size 3", ErrInvalidConfig, c)
	}
	return n, nil
}

// appendConfigRecord appends config with lengthSizeMinusOne forced to 3 (the
// canonical 4-byte NAL unit lengths) for H264 and H265; other codecs' records
// are appended unchanged.
func appendConfigRecord(dst []byte, c media.Codec, config []byte) []byte {
	start := len(dst)
	dst = append(dst, config...)
	if off := lengthSizeOffset(c); off >= 0 && len(config) > off {
		dst[start+off] |= 3
	}
	return dst
}

// validAVCC reports whether p is a sequence of non-empty NAL units each
// prefixed by a big-endian length of size bytes that ends exactly at len(p).
func validAVCC(p []byte, size int) bool {
	if len(p) == 0 {
		return false
	}
	for len(p) > 0 {
		if len(p) < size {
			return false
		}
		n := readLength(p, size)
		p = p[size:]
		if n == 0 || uint64(n) > uint64(len(p)) {
			return false
		}
		p = p[n:]
	}
	return true
}

func readLength(p []byte, size int) uint32 {
	switch size {
	case 1:
		return uint32(p[0])
	case 2:
		return uint32(binary.BigEndian.Uint16(p))
	default:
		return binary.BigEndian.Uint32(p)
	}
}

// canonicalNALUs returns a fresh copy of an FLV H264/H265 payload in the
// canonical form: NAL units prefixed by 4-byte lengths. The input uses
// lengths of size bytes; payloads sent in Annex-B form by broken encoders are
// converted too. Empty NAL units are dropped.
func canonicalNALUs(c media.Codec, p []byte, size int) ([]byte, error) {
	if size == 4 && validAVCC(p, 4) {
		out := make([]byte, len(p))
		copy(out, p)
		return out, nil
	}
	if validAVCCLoose(p, size) {
		return convertLengths(p, size), nil
	}
	if h264.LooksLikeAnnexB(p) {
		convert := h264.AnnexBToAVCC
		if c == media.CodecH265 {
			convert = h265.AnnexBToAVCC
		}
		out, err := convert(make([]byte, 0, len(p)+len(p)/2), p)
		if err != nil || len(out) == 0 {
			return nil, fmt.Errorf("%w: Annex-B payload without NAL units", ErrInvalidFrame)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: NAL unit lengths do not match the payload (%d bytes, %d-byte lengths)",
		ErrInvalidFrame, len(p), size)
}

// validAVCCLoose is validAVCC that tolerates empty NAL units but still needs one.
func validAVCCLoose(p []byte, size int) bool {
	nonEmpty := false
	for len(p) > 0 {
		if len(p) < size {
			return false
		}
		n := readLength(p, size)
		p = p[size:]
		if uint64(n) > uint64(len(p)) {
			return false
		}
		if n > 0 {
			nonEmpty = true
		}
		p = p[n:]
	}
	return nonEmpty
}

// convertLengths rewrites a length-prefixed payload validated by
// validAVCCLoose to 4-byte lengths, dropping empty NAL units.
func convertLengths(p []byte, size int) []byte {
	total := 0
	for q := p; len(q) > 0; {
		n := int(readLength(q, size))
		if n > 0 {
			total += 4 + n
		}
		q = q[size+n:]
	}
	out := make([]byte, 0, total)
	for len(p) > 0 {
		n := int(readLength(p, size))
		if n > 0 {
			out = binary.BigEndian.AppendUint32(out, uint32(n))
			out = append(out, p[size:size+n]...)
		}
		p = p[size+n:]
	}
	return out
}
