// Package h264 handles H.264/AVC (ITU-T H.264) as Quasipaa carries it: the
// AVCDecoderConfigurationRecord (avcC, ISO/IEC 14496-15) of a track, the
// sequence parameter set it holds, and frame payloads made of NAL units each
// prefixed by a 4-byte big-endian length (AVCC). It converts to and from the
// Annex B byte stream used by MPEG-TS, SRT and raw .h264 files.
//
// Every parser here reads untrusted network input: none panics, and the
// per-frame functions (NAL unit iteration, keyframe detection, conversions
// into a large enough buffer) do not allocate.
package h264

import (
	"errors"
	"fmt"

	"github.com/quasipaa/quasipaa/internal/codec/internal/annexb"
)

// Errors returned by this package.
var (
	// ErrTruncated is returned when a NAL unit length runs past the payload.
	ErrTruncated = errors.New("h264: NAL unit length exceeds the payload")
	// ErrNoStartCode is returned when Annex B data does not begin with a start code.
	ErrNoStartCode = errors.New("h264: Annex B data does not begin with a start code")
	// ErrNoNALUs is returned when a payload holds no NAL unit at all.
	ErrNoNALUs = errors.New("h264: no NAL unit in payload")
	// ErrInvalidLengthSize is returned for a NAL unit length size other than 1, 2 or 4.
	ErrInvalidLengthSize = errors.New("h264: NAL unit length size must be 1, 2 or 4")
	// ErrNALUTooLarge is returned when a NAL unit does not fit its length field.
	ErrNALUTooLarge = errors.New("h264: NAL unit too large")
	// ErrInvalidConfigRecord is returned for a malformed AVCDecoderConfigurationRecord.
	ErrInvalidConfigRecord = errors.New("h264: invalid AVCDecoderConfigurationRecord")
	// ErrInvalidSPS is returned for a malformed sequence parameter set.
	ErrInvalidSPS = errors.New("h264: invalid sequence parameter set")
	// ErrMissingSPS is returned when a sequence parameter set is required but absent.
	ErrMissingSPS = errors.New("h264: no sequence parameter set")
	// ErrMissingPPS is returned when a picture parameter set is required but absent.
	ErrMissingPPS = errors.New("h264: no picture parameter set")
	// ErrInvalidParameterSet is returned when a parameter set is empty, too
	// large for the record, of the wrong NAL unit type, or too numerous.
	ErrInvalidParameterSet = errors.New("h264: invalid parameter set")
)

// NALUType is the nal_unit_type of a NAL unit header (Table 7-1).
type NALUType uint8

// NAL unit types of ITU-T H.264 Table 7-1.
const (
	NALUTypeUnspecified    NALUType = 0
	NALUTypeNonIDR         NALUType = 1
	NALUTypeDataPartitionA NALUType = 2
	NALUTypeDataPartitionB NALUType = 3
	NALUTypeDataPartitionC NALUType = 4
	NALUTypeIDR            NALUType = 5
	NALUTypeSEI            NALUType = 6
	NALUTypeSPS            NALUType = 7
	NALUTypePPS            NALUType = 8
	NALUTypeAUD            NALUType = 9
	NALUTypeEndOfSequence  NALUType = 10
	NALUTypeEndOfStream    NALUType = 11
	NALUTypeFillerData     NALUType = 12
	NALUTypeSPSExtension   NALUType = 13
	NALUTypePrefix         NALUType = 14
	NALUTypeSubsetSPS      NALUType = 15
	NALUTypeDPS            NALUType = 16
	NALUTypeAuxiliarySlice NALUType = 19
	NALUTypeSliceExtension NALUType = 20
)

var naluTypeNames = [...]string{
	NALUTypeUnspecified:    "Unspecified",
	NALUTypeNonIDR:         "NonIDR",
	NALUTypeDataPartitionA: "DataPartitionA",
	NALUTypeDataPartitionB: "DataPartitionB",
	NALUTypeDataPartitionC: "DataPartitionC",
	NALUTypeIDR:            "IDR",
	NALUTypeSEI:            "SEI",
	NALUTypeSPS:            "SPS",
	NALUTypePPS:            "PPS",
	NALUTypeAUD:            "AUD",
	NALUTypeEndOfSequence:  "EndOfSequence",
	NALUTypeEndOfStream:    "EndOfStream",
	NALUTypeFillerData:     "FillerData",
	NALUTypeSPSExtension:   "SPSExtension",
	NALUTypePrefix:         "Prefix",
	NALUTypeSubsetSPS:      "SubsetSPS",
	NALUTypeDPS:            "DPS",
	17:                     "",
	18:                     "",
	NALUTypeAuxiliarySlice: "AuxiliarySlice",
	NALUTypeSliceExtension: "SliceExtension",
}

// String returns the type's name as used in the specification's Table 7-1.
func (t NALUType) String() string {
	if int(t) < len(naluTypeNames) && naluTypeNames[t] != "" {
		return naluTypeNames[t]
	}
	return fmt.Sprintf("NALUType(%d)", uint8(t))
}

// TypeOf returns the type of a NAL unit (0 for an empty slice).
func TypeOf(nalu []byte) NALUType {
	if len(nalu) == 0 {
		return NALUTypeUnspecified
	}
	return NALUType(nalu[0] & 0x1F)
}

// mapErr translates the shared framing errors into this package's errors.
func mapErr(err error) error {
	switch err {
	case nil:
		return nil
	case annexb.ErrTruncated:
		return ErrTruncated
	case annexb.ErrNoStartCode:
		return ErrNoStartCode
	case annexb.ErrNoNALUs:
		return ErrNoNALUs
	case annexb.ErrLengthSize:
		return ErrInvalidLengthSize
	case annexb.ErrNALUTooLarge:
		return ErrNALUTooLarge
	case annexb.ErrEmptyNALU:
		return ErrInvalidParameterSet
	}
	return err
}
