// Package h265 handles H.265/HEVC (ITU-T H.265) as Quasipaa carries it: the
// HEVCDecoderConfigurationRecord (hvcC, ISO/IEC 14496-15) of a track, the
// sequence parameter set it holds, and frame payloads made of NAL units each
// prefixed by a 4-byte big-endian length. It converts to and from the Annex B
// byte stream used by MPEG-TS, SRT and raw .h265 files.
//
// Every parser here reads untrusted network input: none panics, and the
// per-frame functions (NAL unit iteration, keyframe detection, conversions
// into a large enough buffer) do not allocate.
package h265

import (
	"errors"
	"fmt"

	"github.com/quasipaa/quasipaa/internal/codec/internal/annexb"
)

// Errors returned by this package.
var (
	// ErrTruncated is returned when a NAL unit length runs past the payload.
	ErrTruncated = errors.New("h265: NAL unit length exceeds the payload")
	// ErrNoStartCode is returned when Annex B data does not begin with a start code.
	ErrNoStartCode = errors.New("h265: Annex B data does not begin with a start code")
	// ErrNoNALUs is returned when a payload holds no NAL unit at all.
	ErrNoNALUs = errors.New("h265: no NAL unit in payload")
	// ErrInvalidLengthSize is returned for a NAL unit length size other than 1, 2 or 4.
	ErrInvalidLengthSize = errors.New("h265: NAL unit length size must be 1, 2 or 4")
	// ErrNALUTooLarge is returned when a NAL unit does not fit its length field.
	ErrNALUTooLarge = errors.New("h265: NAL unit too large")
	// ErrInvalidConfigRecord is returned for a malformed HEVCDecoderConfigurationRecord.
	ErrInvalidConfigRecord = errors.New("h265: invalid HEVCDecoderConfigurationRecord")
	// ErrInvalidSPS is returned for a malformed sequence parameter set.
	ErrInvalidSPS = errors.New("h265: invalid sequence parameter set")
	// ErrMissingVPS is returned when a video parameter set is required but absent.
	ErrMissingVPS = errors.New("h265: no video parameter set")
	// ErrMissingSPS is returned when a sequence parameter set is required but absent.
	ErrMissingSPS = errors.New("h265: no sequence parameter set")
	// ErrMissingPPS is returned when a picture parameter set is required but absent.
	ErrMissingPPS = errors.New("h265: no picture parameter set")
	// ErrInvalidParameterSet is returned when a parameter set is empty, too
	// large for the record, of the wrong NAL unit type, or too numerous.
	ErrInvalidParameterSet = errors.New("h265: invalid parameter set")
)

// NALUType is the nal_unit_type of a NAL unit header (Table 7-1).
type NALUType uint8

// NAL unit types of ITU-T H.265 Table 7-1.
const (
	NALUTypeTrailN         NALUType = 0
	NALUTypeTrailR         NALUType = 1
	NALUTypeTSAN           NALUType = 2
	NALUTypeTSAR           NALUType = 3
	NALUTypeSTSAN          NALUType = 4
	NALUTypeSTSAR          NALUType = 5
	NALUTypeRADLN          NALUType = 6
	NALUTypeRADLR          NALUType = 7
	NALUTypeRASLN          NALUType = 8
	NALUTypeRASLR          NALUType = 9
	NALUTypeBLAWLP         NALUType = 16
	NALUTypeBLAWRADL       NALUType = 17
	NALUTypeBLANLP         NALUType = 18
	NALUTypeIDRWRADL       NALUType = 19
	NALUTypeIDRNLP         NALUType = 20
	NALUTypeCRA            NALUType = 21
	NALUTypeReservedIRAP22 NALUType = 22
	NALUTypeReservedIRAP23 NALUType = 23
	NALUTypeVPS            NALUType = 32
	NALUTypeSPS            NALUType = 33
	NALUTypePPS            NALUType = 34
	NALUTypeAUD            NALUType = 35
	NALUTypeEOS            NALUType = 36
	NALUTypeEOB            NALUType = 37
	NALUTypeFD             NALUType = 38
	NALUTypePrefixSEI      NALUType = 39
	NALUTypeSuffixSEI      NALUType = 40
)

var naluTypeNames = map[NALUType]string{
	NALUTypeTrailN: "TRAIL_N", NALUTypeTrailR: "TRAIL_R",
	NALUTypeTSAN: "TSA_N", NALUTypeTSAR: "TSA_R",
	NALUTypeSTSAN: "STSA_N", NALUTypeSTSAR: "STSA_R",
	NALUTypeRADLN: "RADL_N", NALUTypeRADLR: "RADL_R",
	NALUTypeRASLN: "RASL_N", NALUTypeRASLR: "RASL_R",
	NALUTypeBLAWLP: "BLA_W_LP", NALUTypeBLAWRADL: "BLA_W_RADL", NALUTypeBLANLP: "BLA_N_LP",
	NALUTypeIDRWRADL: "IDR_W_RADL", NALUTypeIDRNLP: "IDR_N_LP", NALUTypeCRA: "CRA_NUT",
	NALUTypeReservedIRAP22: "RSV_IRAP_VCL22", NALUTypeReservedIRAP23: "RSV_IRAP_VCL23",
	NALUTypeVPS: "VPS_NUT", NALUTypeSPS: "SPS_NUT", NALUTypePPS: "PPS_NUT",
	NALUTypeAUD: "AUD_NUT", NALUTypeEOS: "EOS_NUT", NALUTypeEOB: "EOB_NUT", NALUTypeFD: "FD_NUT",
	NALUTypePrefixSEI: "PREFIX_SEI_NUT", NALUTypeSuffixSEI: "SUFFIX_SEI_NUT",
}

// String returns the type's name as used in the specification's Table 7-1.
func (t NALUType) String() string {
	if n, ok := naluTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("NALUType(%d)", uint8(t))
}

// IsIRAP reports whether the type is an intra random access point picture (16 to 23).
func (t NALUType) IsIRAP() bool { return t >= NALUTypeBLAWLP && t <= NALUTypeReservedIRAP23 }

// TypeOf returns the type of a NAL unit (0 for an empty slice).
func TypeOf(nalu []byte) NALUType {
	if len(nalu) == 0 {
		return 0
	}
	return NALUType(nalu[0]>>1) & 0x3F
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
