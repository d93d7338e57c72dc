package av1

import (
	"bytes"
	"fmt"

	"github.com/quasipaa/quasipaa/internal/media"
)

// ConfigRecord is a parsed AV1CodecConfigurationRecord, the av1C box payload
// and the enhanced RTMP/FLV sequence start.
type ConfigRecord struct {
	// Profile is seq_profile.
	Profile uint8
	// Level is seq_level_idx_0.
	Level uint8
	// HighTier is seq_tier_0.
	HighTier bool
	// HighBitDepth and TwelveBit give the bit depth, see BitDepth.
	HighBitDepth, TwelveBit bool
	// MonoChrome is mono_chrome.
	MonoChrome bool
	// SubsamplingX and SubsamplingY are chroma_subsampling_x and chroma_subsampling_y.
	SubsamplingX, SubsamplingY bool
	// ChromaSamplePosition is chroma_sample_position.
	ChromaSamplePosition uint8
	// InitialPresentationDelayPresent tells whether InitialPresentationDelayMinusOne is meaningful.
	InitialPresentationDelayPresent bool
	// InitialPresentationDelayMinusOne is initial_presentation_delay_minus_one.
	InitialPresentationDelayMinusOne uint8
	// ConfigOBUs are the configOBUs: normally the sequence header OBU, possibly
	// followed by metadata OBUs. They alias the parsed record.
	ConfigOBUs []byte
}

// BitDepth returns 8, 10 or 12.
func (c ConfigRecord) BitDepth() uint8 {
	switch {
	case c.HighBitDepth && c.TwelveBit:
		return 12
	case c.HighBitDepth:
		return 10
	}
	return 8
}

// SequenceHeader parses the sequence header OBU of ConfigOBUs. It returns
// ErrMissingSequenceHeader when the record carries none (the specification
// allows that; the sequence header is then in-band).
func (c ConfigRecord) SequenceHeader() (SequenceHeader, error) {
	obu := SequenceHeaderOBU(c.ConfigOBUs)
	if obu == nil {
		return SequenceHeader{}, ErrMissingSequenceHeader
	}
	return ParseSequenceHeaderOBU(obu)
}

// ParseConfigRecord parses an AV1CodecConfigurationRecord (marker 1, version 1).
func ParseConfigRecord(av1C []byte) (ConfigRecord, error) {
	if len(av1C) < 4 {
		return ConfigRecord{}, fmt.Errorf("%w: %d bytes", ErrInvalidConfigRecord, len(av1C))
	}
	if av1C[0] != 0x81 {
		return ConfigRecord{}, fmt.Errorf("%w: marker/version byte %#x", ErrInvalidConfigRecord, av1C[0])
	}
	c := ConfigRecord{
		Profile:                          av1C[1] >> 5,
		Level:                            av1C[1] & 0x1F,
		HighTier:                         av1C[2]&0x80 != 0,
		HighBitDepth:                     av1C[2]&0x40 != 0,
		TwelveBit:                        av1C[2]&0x20 != 0,
		MonoChrome:                       av1C[2]&0x10 != 0,
		SubsamplingX:                     av1C[2]&0x08 != 0,
		SubsamplingY:                     av1C[2]&0x04 != 0,
		ChromaSamplePosition:             av1C[2] & 0x03,
		InitialPresentationDelayPresent:  av1C[3]&0x10 != 0,
		InitialPresentationDelayMinusOne: av1C[3] & 0x0F,
		ConfigOBUs:                       av1C[4:],
	}
	if err := ForEachOBU(c.ConfigOBUs, func(OBU) bool { return true }); err != nil {
		return ConfigRecord{}, fmt.Errorf("%w: configOBUs: %v", ErrInvalidConfigRecord, err)
	}
	return c, nil
}

// BuildConfigRecord builds an AV1CodecConfigurationRecord from a sequence
// header OBU, which becomes its configOBUs (with a size field added if it had
// none). The record's fields are taken from the sequence header.
func BuildConfigRecord(sequenceHeaderOBU []byte) ([]byte, error) {
	obu, _, err := NextOBU(sequenceHeaderOBU)
	if err != nil {
		return nil, err
	}
	if obu.Raw == nil || obu.Type != OBUTypeSequenceHeader {
		return nil, fmt.Errorf("%w: OBU type %v", ErrMissingSequenceHeader, obu.Type)
	}
	h, err := ParseSequenceHeader(obu.Payload)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 4+len(obu.Raw)+8)
	flags := h.ChromaSamplePosition & 0x03
	for i, f := range []bool{h.HighTier, h.BitDepth > 8, h.BitDepth == 12, h.MonoChrome, h.SubsamplingX, h.SubsamplingY} {
		if f {
			flags |= 0x80 >> i
		}
	}
	b = append(b, 0x81, h.Profile<<5|h.Level&0x1F, flags, 0)
	if obu.HasSize {
		return append(b, obu.Raw...), nil
	}
	hdr := 1
	if obu.HasExtension {
		hdr = 2
	}
	b = append(b, obu.Raw[0]|0x02)
	b = append(b, obu.Raw[1:hdr]...)
	b = appendLEB128(b, uint64(len(obu.Payload)))
	return append(b, obu.Payload...), nil
}

// TrackFromConfigRecord describes an AV1 track from its av1C record.
// Width and height come from the sequence header in configOBUs; a record
// without one yields a track without dimensions. Track.Config is a copy.
func TrackFromConfigRecord(av1C []byte) (*media.Track, error) {
	c, err := ParseConfigRecord(av1C)
	if err != nil {
		return nil, err
	}
	t := &media.Track{
		Codec:   media.CodecAV1,
		Config:  bytes.Clone(av1C),
		Profile: ProfileName(c.Profile),
		Level:   LevelName(c.Level),
	}
	h, err := c.SequenceHeader()
	switch {
	case err == ErrMissingSequenceHeader:
		return t, nil
	case err != nil:
		return nil, err
	}
	t.Width, t.Height = h.MaxWidth, h.MaxHeight
	t.Profile, t.Level = h.ProfileName(), h.LevelName()
	return t, nil
}

// TrackFromSequenceHeader describes an AV1 track from the first sequence
// header OBU found in data (a keyframe temporal unit, or configOBUs sent
// without the av1C wrapper), building its av1C record.
func TrackFromSequenceHeader(data []byte) (*media.Track, error) {
	obu := SequenceHeaderOBU(data)
	if obu == nil {
		return nil, ErrMissingSequenceHeader
	}
	av1C, err := BuildConfigRecord(obu)
	if err != nil {
		return nil, err
	}
	return TrackFromConfigRecord(av1C)
}
