package h265

import (
	"bytes"
	"fmt"

	"github.com/quasipaa/quasipaa/internal/codec/internal/annexb"
	"github.com/quasipaa/quasipaa/internal/media"
)

// configHeaderSize is the size of the fixed part of an hvcC record.
const configHeaderSize = 23

// ConfigRecord is a parsed HEVCDecoderConfigurationRecord (ISO/IEC 14496-15
// section 8.3.3.1), the hvcC box payload and the enhanced RTMP/FLV sequence
// start. Its NAL unit slices alias the parsed buffer.
type ConfigRecord struct {
	// ProfileTierLevel holds general_profile_space .. general_level_idc.
	ProfileTierLevel
	// MinSpatialSegmentationIDC is min_spatial_segmentation_idc.
	MinSpatialSegmentationIDC uint16
	// ParallelismType is parallelismType.
	ParallelismType uint8
	// ChromaFormat is chroma_format_idc.
	ChromaFormat uint8
	// BitDepthLuma and BitDepthChroma are the sample bit depths.
	BitDepthLuma, BitDepthChroma uint8
	// AvgFrameRate is the average frame rate in frames per 256 seconds, 0 if unspecified.
	AvgFrameRate uint16
	// ConstantFrameRate is constantFrameRate.
	ConstantFrameRate uint8
	// NumTemporalLayers is numTemporalLayers.
	NumTemporalLayers uint8
	// TemporalIDNested is temporalIdNested.
	TemporalIDNested bool
	// LengthSize is the size in bytes (1, 2 or 4) of the NAL unit lengths of
	// the track's samples. Quasipaa's payloads always use 4, see ConvertLengthSize.
	LengthSize int
	// VPS, SPS and PPS are the parameter set NAL units, sorted by their own
	// NAL unit header whatever array carried them.
	VPS, SPS, PPS [][]byte
	// Other are the remaining NAL units of the arrays (usually SEI).
	Other [][]byte
}

// ParseConfigRecord parses an HEVCDecoderConfigurationRecord. The record may
// hold no parameter set (they are then sent in-band); TrackFromConfigRecord
// requires an SPS. configurationVersion 0, written by some early encoders, is
// accepted as well as 1.
func ParseConfigRecord(hvcC []byte) (ConfigRecord, error) {
	if len(hvcC) < configHeaderSize {
		return ConfigRecord{}, fmt.Errorf("%w: %d bytes", ErrInvalidConfigRecord, len(hvcC))
	}
	if hvcC[0] > 1 {
		return ConfigRecord{}, fmt.Errorf("%w: configurationVersion %d", ErrInvalidConfigRecord, hvcC[0])
	}
	c := ConfigRecord{
		ProfileTierLevel: ProfileTierLevel{
			ProfileSpace:       hvcC[1] >> 6,
			HighTier:           hvcC[1]>>5&1 == 1,
			ProfileIDC:         hvcC[1] & 0x1F,
			CompatibilityFlags: uint32(hvcC[2])<<24 | uint32(hvcC[3])<<16 | uint32(hvcC[4])<<8 | uint32(hvcC[5]),
			LevelIDC:           hvcC[12],
		},
		MinSpatialSegmentationIDC: uint16(hvcC[13]&0x0F)<<8 | uint16(hvcC[14]),
		ParallelismType:           hvcC[15] & 0x03,
		ChromaFormat:              hvcC[16] & 0x03,
		BitDepthLuma:              hvcC[17]&0x07 + 8,
		BitDepthChroma:            hvcC[18]&0x07 + 8,
		AvgFrameRate:              uint16(hvcC[19])<<8 | uint16(hvcC[20]),
		ConstantFrameRate:         hvcC[21] >> 6,
		NumTemporalLayers:         hvcC[21] >> 3 & 0x07,
		TemporalIDNested:          hvcC[21]>>2&1 == 1,
		LengthSize:                int(hvcC[21]&0x03) + 1,
	}
	for _, b := range hvcC[6:12] {
		c.ConstraintFlags = c.ConstraintFlags<<8 | uint64(b)
	}
	if c.LengthSize == 3 {
		return ConfigRecord{}, fmt.Errorf("%w: lengthSizeMinusOne 2", ErrInvalidConfigRecord)
	}
	numArrays := int(hvcC[22])
	pos := configHeaderSize
	for range numArrays {
		if pos+3 > len(hvcC) {
			return ConfigRecord{}, fmt.Errorf("%w: truncated array header", ErrInvalidConfigRecord)
		}
		count := int(hvcC[pos+1])<<8 | int(hvcC[pos+2])
		pos += 3
		for range count {
			if pos+2 > len(hvcC) {
				return ConfigRecord{}, fmt.Errorf("%w: truncated NAL unit length", ErrInvalidConfigRecord)
			}
			n := int(hvcC[pos])<<8 | int(hvcC[pos+1])
			pos += 2
			if n < 2 || pos+n > len(hvcC) {
				return ConfigRecord{}, fmt.Errorf("%w: NAL unit of %d bytes", ErrInvalidConfigRecord, n)
			}
			nalu := hvcC[pos : pos+n]
			pos += n
			switch TypeOf(nalu) {
			case NALUTypeVPS:
				c.VPS = append(c.VPS, nalu)
			case NALUTypeSPS:
				c.SPS = append(c.SPS, nalu)
			case NALUTypePPS:
				c.PPS = append(c.PPS, nalu)
			default:
				c.Other = append(c.Other, nalu)
			}
		}
	}
	return c, nil
}

// BuildConfigRecord builds an HEVCDecoderConfigurationRecord with 4-byte NAL
// unit lengths from parameter set NAL units. Profile, tier, level, chroma
// format, bit depths and temporal layering come from the first SPS, which
// must parse. Fields only the VUI or PPS tell (min_spatial_segmentation_idc,
// parallelismType, frame rate) are written as "unknown" (0).
func BuildConfigRecord(vps, sps, pps [][]byte) ([]byte, error) {
	switch {
	case len(vps) == 0:
		return nil, ErrMissingVPS
	case len(sps) == 0:
		return nil, ErrMissingSPS
	case len(pps) == 0:
		return nil, ErrMissingPPS
	}
	size := configHeaderSize
	for _, set := range []struct {
		nalus [][]byte
		typ   NALUType
	}{{vps, NALUTypeVPS}, {sps, NALUTypeSPS}, {pps, NALUTypePPS}} {
		if len(set.nalus) > 0xFFFF {
			return nil, fmt.Errorf("%w: %d NAL units of type %v", ErrInvalidParameterSet, len(set.nalus), set.typ)
		}
		size += 3
		for _, n := range set.nalus {
			if len(n) < 2 || len(n) > 0xFFFF || TypeOf(n) != set.typ {
				return nil, fmt.Errorf("%w: %v entry", ErrInvalidParameterSet, set.typ)
			}
			size += 2 + len(n)
		}
	}
	info, err := ParseSPS(sps[0])
	if err != nil {
		return nil, err
	}
	if info.BitDepthLuma > 15 || info.BitDepthChroma > 15 {
		return nil, fmt.Errorf("%w: bit depth %d does not fit the record", ErrInvalidSPS, info.BitDepthLuma)
	}
	// The record repeats the SPS's 12 general profile_tier_level bytes.
	rbsp := annexb.UnescapePrefix(make([]byte, 0, 13), sps[0][2:], 13)

	b := make([]byte, 0, size)
	b = append(b, 1)
	b = append(b, rbsp[1:13]...)
	nested := byte(0)
	if info.TemporalIDNesting {
		nested = 1
	}
	b = append(b,
		0xF0, 0x00, // reserved, min_spatial_segmentation_idc 0
		0xFC,                         // reserved, parallelismType 0 (unknown)
		0xFC|info.ChromaFormatIDC,    // reserved, chroma_format_idc
		0xF8|(info.BitDepthLuma-8),   // reserved, bit_depth_luma_minus8
		0xF8|(info.BitDepthChroma-8), // reserved, bit_depth_chroma_minus8
		0, 0,                         // avgFrameRate unknown
		info.MaxSubLayers<<3|nested<<2|3, // constantFrameRate 0, numTemporalLayers, temporalIdNested, lengthSizeMinusOne 3
		3,                                // numOfArrays
	)
	for _, set := range []struct {
		nalus [][]byte
		typ   NALUType
	}{{vps, NALUTypeVPS}, {sps, NALUTypeSPS}, {pps, NALUTypePPS}} {
		b = append(b, 0x80|byte(set.typ), byte(len(set.nalus)>>8), byte(len(set.nalus)))
		for _, n := range set.nalus {
			b = append(b, byte(len(n)>>8), byte(len(n)))
			b = append(b, n...)
		}
	}
	return b, nil
}

// TrackFromConfigRecord describes an H.265 track from its hvcC record.
// Track.Config is a copy of the record with its length size set to 4, the
// length size of Quasipaa's payloads: when the record declared another size
// (ConfigRecord.LengthSize), the protocol must convert each frame with
// ConvertLengthSize.
func TrackFromConfigRecord(hvcC []byte) (*media.Track, error) {
	c, err := ParseConfigRecord(hvcC)
	if err != nil {
		return nil, err
	}
	if len(c.SPS) == 0 {
		return nil, ErrMissingSPS
	}
	info, err := ParseSPS(c.SPS[0])
	if err != nil {
		return nil, err
	}
	config := bytes.Clone(hvcC)
	config[21] |= 3
	return &media.Track{
		Codec:   media.CodecH265,
		Config:  config,
		Width:   info.Width,
		Height:  info.Height,
		Profile: info.ProfileName(),
		Level:   info.LevelName(),
	}, nil
}

// TrackFromParameterSets describes an H.265 track from VPS, SPS and PPS NAL
// units, as found in-band in Annex B streams (MPEG-TS, SRT, WebRTC), building
// its hvcC record.
func TrackFromParameterSets(vps, sps, pps [][]byte) (*media.Track, error) {
	hvcC, err := BuildConfigRecord(vps, sps, pps)
	if err != nil {
		return nil, err
	}
	return TrackFromConfigRecord(hvcC)
}
