package h264

import (
	"bytes"
	"fmt"

	"github.com/quasipaa/quasipaa/internal/media"
)

// ConfigRecord is a parsed AVCDecoderConfigurationRecord (ISO/IEC 14496-15
// section 5.3.3.1), the avcC box payload and the FLV/RTMP sequence header.
// Its parameter set slices alias the parsed buffer.
type ConfigRecord struct {
	// ProfileIndication is AVCProfileIndication (profile_idc of the SPS).
	ProfileIndication uint8
	// ProfileCompatibility is the constraint flags byte of the SPS.
	ProfileCompatibility uint8
	// LevelIndication is AVCLevelIndication (level_idc of the SPS).
	LevelIndication uint8
	// LengthSize is the size in bytes (1, 2 or 4) of the NAL unit lengths of
	// the track's samples. Quasipaa's payloads always use 4, see ConvertLengthSize.
	LengthSize int
	// SPS and PPS are the sequence and picture parameter set NAL units.
	SPS, PPS [][]byte

	// HasExtension reports whether the High-profile fields below were present.
	HasExtension bool
	// ChromaFormat is chroma_format_idc.
	ChromaFormat uint8
	// BitDepthLuma and BitDepthChroma are the sample bit depths.
	BitDepthLuma, BitDepthChroma uint8
	// SPSExt are the sequence parameter set extension NAL units.
	SPSExt [][]byte
}

// highProfile reports whether the record carries the chroma/bit depth
// extension for this profile_idc.
func highProfile(profileIDC uint8) bool {
	return profileIDC == 100 || profileIDC == 110 || profileIDC == 122 || profileIDC == 144
}

// readNALUs reads count 16-bit-length-prefixed NAL units from b[pos:].
func readNALUs(b []byte, pos, count int) ([][]byte, int, bool) {
	var out [][]byte
	if count > 0 {
		out = make([][]byte, 0, min(count, len(b)/3+1))
	}
	for range count {
		if pos+2 > len(b) {
			return nil, pos, false
		}
		n := int(b[pos])<<8 | int(b[pos+1])
		pos += 2
		if n == 0 || pos+n > len(b) {
			return nil, pos, false
		}
		out = append(out, b[pos:pos+n])
		pos += n
	}
	return out, pos, true
}

// ParseConfigRecord parses an AVCDecoderConfigurationRecord. The record may
// hold no parameter set (they are then sent in-band); TrackFromConfigRecord
// requires one.
func ParseConfigRecord(avcC []byte) (ConfigRecord, error) {
	if len(avcC) < 7 {
		return ConfigRecord{}, fmt.Errorf("%w: %d bytes", ErrInvalidConfigRecord, len(avcC))
	}
	if avcC[0] != 1 {
		return ConfigRecord{}, fmt.Errorf("%w: configurationVersion %d", ErrInvalidConfigRecord, avcC[0])
	}
	c := ConfigRecord{
		ProfileIndication:    avcC[1],
		ProfileCompatibility: avcC[2],
		LevelIndication:      avcC[3],
		LengthSize:           int(avcC[4]&0x03) + 1,
	}
	if c.LengthSize == 3 {
		return ConfigRecord{}, fmt.Errorf("%w: lengthSizeMinusOne 2", ErrInvalidConfigRecord)
	}
	var ok bool
	pos := 6
	if c.SPS, pos, ok = readNALUs(avcC, pos, int(avcC[5]&0x1F)); !ok {
		return ConfigRecord{}, fmt.Errorf("%w: truncated SPS", ErrInvalidConfigRecord)
	}
	if pos >= len(avcC) {
		return ConfigRecord{}, fmt.Errorf("%w: missing numOfPictureParameterSets", ErrInvalidConfigRecord)
	}
	numPPS := int(avcC[pos])
	if c.PPS, pos, ok = readNALUs(avcC, pos+1, numPPS); !ok {
		return ConfigRecord{}, fmt.Errorf("%w: truncated PPS", ErrInvalidConfigRecord)
	}
	for _, s := range c.SPS {
		if TypeOf(s) != NALUTypeSPS {
			return ConfigRecord{}, fmt.Errorf("%w: SPS entry of type %v", ErrInvalidConfigRecord, TypeOf(s))
		}
	}
	for _, p := range c.PPS {
		if TypeOf(p) != NALUTypePPS {
			return ConfigRecord{}, fmt.Errorf("%w: PPS entry of type %v", ErrInvalidConfigRecord, TypeOf(p))
		}
	}
	// Many encoders omit or garble the High-profile extension; it only
	// repeats what the SPS says, so a bad one is ignored rather than fatal.
	if highProfile(c.ProfileIndication) && len(avcC)-pos >= 4 {
		ext, _, ok := readNALUs(avcC, pos+4, int(avcC[pos+3]))
		if ok {
			c.HasExtension = true
			c.ChromaFormat = avcC[pos] & 0x03
			c.BitDepthLuma = avcC[pos+1]&0x07 + 8
			c.BitDepthChroma = avcC[pos+2]&0x07 + 8
			c.SPSExt = ext
		}
	}
	return c, nil
}

// BuildConfigRecord builds an AVCDecoderConfigurationRecord with 4-byte NAL
// unit lengths from parameter set NAL units. Profile, compatibility and level
// come from the first SPS, which must parse; the High-profile extension is
// written for the profiles that require it.
func BuildConfigRecord(sps, pps [][]byte) ([]byte, error) {
	if len(sps) == 0 {
		return nil, ErrMissingSPS
	}
	if len(pps) == 0 {
		return nil, ErrMissingPPS
	}
	if len(sps) > 31 || len(pps) > 255 {
		return nil, fmt.Errorf("%w: %d SPS, %d PPS", ErrInvalidParameterSet, len(sps), len(pps))
	}
	size := 7
	for _, s := range sps {
		if len(s) == 0 || len(s) > 0xFFFF || TypeOf(s) != NALUTypeSPS {
			return nil, fmt.Errorf("%w: SPS entry", ErrInvalidParameterSet)
		}
		size += 2 + len(s)
	}
	for _, p := range pps {
		if len(p) == 0 || len(p) > 0xFFFF || TypeOf(p) != NALUTypePPS {
			return nil, fmt.Errorf("%w: PPS entry", ErrInvalidParameterSet)
		}
		size += 2 + len(p)
	}
	info, err := ParseSPS(sps[0])
	if err != nil {
		return nil, err
	}
	ext := highProfile(info.ProfileIDC)
	if ext {
		size += 4
	}

	b := make([]byte, 0, size)
	b = append(b, 1, info.ProfileIDC, info.ConstraintFlags, info.LevelIDC, 0xFC|3, 0xE0|byte(len(sps)))
	for _, s := range sps {
		b = append(b, byte(len(s)>>8), byte(len(s)))
		b = append(b, s...)
	}
	b = append(b, byte(len(pps)))
	for _, p := range pps {
		b = append(b, byte(len(p)>>8), byte(len(p)))
		b = append(b, p...)
	}
	if ext {
		b = append(b,
			0xFC|info.ChromaFormatIDC,
			0xF8|(info.BitDepthLuma-8),
			0xF8|(info.BitDepthChroma-8),
			0)
	}
	return b, nil
}

// TrackFromConfigRecord describes an H.264 track from its avcC record.
// Track.Config is a copy of the record with its length size set to 4, the
// length size of Quasipaa's payloads: when the record declared another size
// (ConfigRecord.LengthSize), the protocol must convert each frame with
// ConvertLengthSize.
func TrackFromConfigRecord(avcC []byte) (*media.Track, error) {
	c, err := ParseConfigRecord(avcC)
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
	config := bytes.Clone(avcC)
	config[4] = 0xFC | 3
	return &media.Track{
		Codec:   media.CodecH264,
		Config:  config,
		Width:   info.Width,
		Height:  info.Height,
		Profile: info.ProfileName(),
		Level:   info.LevelName(),
	}, nil
}

// TrackFromParameterSets describes an H.264 track from SPS and PPS NAL units,
// as found in-band in Annex B streams (MPEG-TS, SRT, WebRTC), building its
// avcC record.
func TrackFromParameterSets(sps, pps [][]byte) (*media.Track, error) {
	avcC, err := BuildConfigRecord(sps, pps)
	if err != nil {
		return nil, err
	}
	return TrackFromConfigRecord(avcC)
}
