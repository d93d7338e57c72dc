// Package av1 handles AV1 as Quasipaa carries it: the
// AV1CodecConfigurationRecord (av1C, AV1 Codec ISO Media File Format Binding
// section 2.3) of a track, the sequence header OBU it holds, and frame
// payloads that are temporal units of OBUs in the low-overhead bitstream
// format (AV1 specification section 5.2), as MP4 and enhanced RTMP/FLV carry
// them.
//
// The sequence header parser is this package's own: it implements section
// 5.5 in full (decoder model, initial display delay and operating point
// parameters included), which encoders with hardware rate control emit.
//
// Every parser here reads untrusted network input: none panics, and OBU
// iteration and keyframe detection do not allocate.
package av1

import (
	"errors"
	"fmt"
)

// Errors returned by this package.
var (
	// ErrTruncated is returned when an OBU runs past the end of its buffer.
	ErrTruncated = errors.New("av1: truncated OBU")
	// ErrInvalidOBU is returned for a malformed OBU header or size.
	ErrInvalidOBU = errors.New("av1: invalid OBU")
	// ErrInvalidSequenceHeader is returned for a malformed sequence header OBU.
	ErrInvalidSequenceHeader = errors.New("av1: invalid sequence header")
	// ErrMissingSequenceHeader is returned when a sequence header OBU is required but absent.
	ErrMissingSequenceHeader = errors.New("av1: no sequence header OBU")
	// ErrInvalidConfigRecord is returned for a malformed AV1CodecConfigurationRecord.
	ErrInvalidConfigRecord = errors.New("av1: invalid AV1CodecConfigurationRecord")
)

// OBUType is obu_type (section 6.2.2).
type OBUType uint8

// OBU types of the AV1 specification.
const (
	OBUTypeSequenceHeader       OBUType = 1
	OBUTypeTemporalDelimiter    OBUType = 2
	OBUTypeFrameHeader          OBUType = 3
	OBUTypeTileGroup            OBUType = 4
	OBUTypeMetadata             OBUType = 5
	OBUTypeFrame                OBUType = 6
	OBUTypeRedundantFrameHeader OBUType = 7
	OBUTypeTileList             OBUType = 8
	OBUTypePadding              OBUType = 15
)

// String returns the type's name as the specification writes it.
func (t OBUType) String() string {
	switch t {
	case OBUTypeSequenceHeader:
		return "OBU_SEQUENCE_HEADER"
	case OBUTypeTemporalDelimiter:
		return "OBU_TEMPORAL_DELIMITER"
	case OBUTypeFrameHeader:
		return "OBU_FRAME_HEADER"
	case OBUTypeTileGroup:
		return "OBU_TILE_GROUP"
	case OBUTypeMetadata:
		return "OBU_METADATA"
	case OBUTypeFrame:
		return "OBU_FRAME"
	case OBUTypeRedundantFrameHeader:
		return "OBU_REDUNDANT_FRAME_HEADER"
	case OBUTypeTileList:
		return "OBU_TILE_LIST"
	case OBUTypePadding:
		return "OBU_PADDING"
	}
	return fmt.Sprintf("OBUType(%d)", uint8(t))
}

// OBU is one open bitstream unit, its slices aliasing the parsed buffer.
type OBU struct {
	// Type is obu_type.
	Type OBUType
	// HasExtension is obu_extension_flag; TemporalID and SpatialID are valid when set.
	HasExtension bool
	// TemporalID and SpatialID come from the extension header.
	TemporalID, SpatialID uint8
	// HasSize is obu_has_size_field. An OBU without it extends to the end of the buffer.
	HasSize bool
	// Raw is the whole OBU: header, size field and payload.
	Raw []byte
	// Payload is the OBU payload.
	Payload []byte
}

// maxOBUSize is the largest obu_size the specification allows (2^32 - 1).
const maxOBUSize = 1<<32 - 1

// readLEB128 decodes a leb128() value (section 4.10.5) and returns it with
// the number of bytes it took.
func readLEB128(b []byte) (uint64, int, error) {
	var v uint64
	for i := range 8 {
		if i >= len(b) {
			return 0, 0, ErrTruncated
		}
		v |= uint64(b[i]&0x7F) << (7 * i)
		if b[i]&0x80 == 0 {
			if v > maxOBUSize {
				return 0, 0, fmt.Errorf("%w: size %d", ErrInvalidOBU, v)
			}
			return v, i + 1, nil
		}
	}
	return 0, 0, fmt.Errorf("%w: leb128 longer than 8 bytes", ErrInvalidOBU)
}

// appendLEB128 appends the shortest leb128() encoding of v.
func appendLEB128(dst []byte, v uint64) []byte {
	for {
		b := byte(v & 0x7F)
		v >>= 7
		if v == 0 {
			return append(dst, b)
		}
		dst = append(dst, b|0x80)
	}
}

// NextOBU splits the first OBU off a buffer of OBUs in low-overhead format
// and returns it with the rest of the buffer. An OBU without a size field
// takes the whole buffer, as the ISO-BMFF binding allows for the last OBU of
// a sample. At the end of data it returns a zero OBU (nil Raw) and nil rest.
func NextOBU(data []byte) (obu OBU, rest []byte, err error) {
	if len(data) == 0 {
		return OBU{}, nil, nil
	}
	h := data[0]
	if h&0x80 != 0 {
		return OBU{}, nil, fmt.Errorf("%w: forbidden bit set", ErrInvalidOBU)
	}
	obu.Type = OBUType(h >> 3 & 0x0F)
	obu.HasExtension = h&0x04 != 0
	obu.HasSize = h&0x02 != 0
	pos := 1
	if obu.HasExtension {
		if len(data) < 2 {
			return OBU{}, nil, ErrTruncated
		}
		obu.TemporalID = data[1] >> 5
		obu.SpatialID = data[1] >> 3 & 0x03
		pos = 2
	}
	end := len(data)
	if obu.HasSize {
		size, n, err := readLEB128(data[pos:])
		if err != nil {
			return OBU{}, nil, err
		}
		pos += n
		if size > uint64(len(data)-pos) {
			return OBU{}, nil, ErrTruncated
		}
		end = pos + int(size)
	}
	obu.Raw = data[:end]
	obu.Payload = data[pos:end]
	return obu, data[end:], nil
}

// ForEachOBU calls fn with each OBU of a buffer in low-overhead format, in
// order, until fn returns false. It does not allocate when fn does not escape.
func ForEachOBU(data []byte, fn func(obu OBU) bool) error {
	for len(data) > 0 {
		obu, rest, err := NextOBU(data)
		if err != nil {
			return err
		}
		if !fn(obu) {
			return nil
		}
		data = rest
	}
	return nil
}

// SequenceHeaderOBU returns the first sequence header OBU of a temporal unit
// (aliasing data), or nil when there is none before the end or an error.
func SequenceHeaderOBU(data []byte) []byte {
	for len(data) > 0 {
		obu, rest, err := NextOBU(data)
		if err != nil {
			return nil
		}
		if obu.Type == OBUTypeSequenceHeader {
			return obu.Raw
		}
		data = rest
	}
	return nil
}

// IsKeyframe reports whether a temporal unit starts a random access point:
// its first frame header (in an OBU_FRAME or OBU_FRAME_HEADER) is a key frame
// that is not a show_existing_frame repeat. A frame header that follows a
// sequence header with reduced_still_picture_header is always a key frame.
// A malformed payload is not a keyframe.
func IsKeyframe(data []byte) bool {
	reducedStill := false
	for len(data) > 0 {
		obu, rest, err := NextOBU(data)
		if err != nil {
			return false
		}
		switch obu.Type {
		case OBUTypeSequenceHeader:
			// seq_profile(3) still_picture(1) reduced_still_picture_header(1)
			reducedStill = len(obu.Payload) > 0 && obu.Payload[0]&0x08 != 0
		case OBUTypeFrame, OBUTypeFrameHeader:
			if reducedStill {
				return true
			}
			if len(obu.Payload) == 0 {
				return false
			}
			// show_existing_frame(1) frame_type(2): KEY_FRAME is 0.
			return obu.Payload[0]&0x80 == 0 && obu.Payload[0]>>5&0x03 == 0
		}
		data = rest
	}
	return false
}
