package aac

import (
	"fmt"

	"github.com/quasipaa/quasipaa/internal/media"
)

// ADTSHeaderSize is the size of an ADTS header without CRC.
const ADTSHeaderSize = 7

// maxADTSFrameLength is the largest aac_frame_length (13 bits).
const maxADTSFrameLength = 1<<13 - 1

// ADTSHeader is a parsed adts_fixed_header and adts_variable_header.
type ADTSHeader struct {
	// MPEG2 is the ID bit: set for MPEG-2 AAC, clear for MPEG-4.
	MPEG2 bool
	// ProtectionAbsent is set when no CRC follows the header.
	ProtectionAbsent bool
	// ObjectType is profile_ObjectType + 1 (1 Main, 2 LC, 3 SSR, 4 LTP).
	ObjectType int
	// SampleRateIndex is sampling_frequency_index and SampleRate its value in Hz.
	SampleRateIndex, SampleRate int
	// ChannelConfig is channel_configuration (0: a program config element in the payload).
	ChannelConfig int
	// FrameLength is aac_frame_length: header, CRC and payload bytes.
	FrameLength int
	// BufferFullness is adts_buffer_fullness (0x7FF for variable bit rate).
	BufferFullness int
	// RawDataBlocks is number_of_raw_data_blocks_in_frame + 1.
	RawDataBlocks int
}

// HeaderLength returns the bytes before the payload: 7, plus the CRC and
// block positions when protection is present.
func (h ADTSHeader) HeaderLength() int {
	if h.ProtectionAbsent {
		return ADTSHeaderSize
	}
	return ADTSHeaderSize + 2*h.RawDataBlocks
}

// Config returns the AudioSpecificConfig the header implies.
func (h ADTSHeader) Config() AudioSpecificConfig {
	return AudioSpecificConfig{
		ObjectType:    h.ObjectType,
		SampleRate:    h.SampleRate,
		ChannelConfig: h.ChannelConfig,
		Channels:      channelCounts[h.ChannelConfig],
		FrameLength:   1024,
	}
}

// ParseADTSHeader parses the ADTS header at the start of b.
func ParseADTSHeader(b []byte) (ADTSHeader, error) {
	if len(b) < ADTSHeaderSize {
		return ADTSHeader{}, ErrTruncated
	}
	if b[0] != 0xFF || b[1]&0xF6 != 0xF0 { // syncword, layer 00
		return ADTSHeader{}, fmt.Errorf("%w: no syncword", ErrInvalidADTS)
	}
	h := ADTSHeader{
		MPEG2:            b[1]&0x08 != 0,
		ProtectionAbsent: b[1]&0x01 != 0,
		ObjectType:       int(b[2]>>6) + 1,
		SampleRateIndex:  int(b[2] >> 2 & 0x0F),
		ChannelConfig:    int(b[2]&0x01)<<2 | int(b[3]>>6),
		FrameLength:      int(b[3]&0x03)<<11 | int(b[4])<<3 | int(b[5]>>5),
		BufferFullness:   int(b[5]&0x1F)<<6 | int(b[6]>>2),
		RawDataBlocks:    int(b[6]&0x03) + 1,
	}
	if h.SampleRateIndex >= len(sampleRates) {
		return ADTSHeader{}, fmt.Errorf("%w: sampling_frequency_index %d", ErrInvalidADTS, h.SampleRateIndex)
	}
	h.SampleRate = sampleRates[h.SampleRateIndex]
	if h.FrameLength < h.HeaderLength() {
		return ADTSHeader{}, fmt.Errorf("%w: aac_frame_length %d", ErrInvalidADTS, h.FrameLength)
	}
	return h, nil
}

// StripADTS parses the ADTS frame at the start of b and returns its header
// and its access unit (aliasing b). The frame may be followed by more data.
func StripADTS(b []byte) (ADTSHeader, []byte, error) {
	h, err := ParseADTSHeader(b)
	if err != nil {
		return ADTSHeader{}, nil, err
	}
	if h.RawDataBlocks > 1 {
		return ADTSHeader{}, nil, ErrMultipleRawDataBlocks
	}
	if h.FrameLength > len(b) {
		return ADTSHeader{}, nil, ErrTruncated
	}
	return h, b[h.HeaderLength():h.FrameLength], nil
}

// ForEachADTSFrame calls fn with the header and access unit of each ADTS
// frame of b (an MPEG-TS PES payload or a .aac file), in order, until fn
// returns false. The access units alias b. It does not allocate when fn
// does not escape.
func ForEachADTSFrame(b []byte, fn func(h ADTSHeader, au []byte) bool) error {
	for len(b) > 0 {
		h, au, err := StripADTS(b)
		if err != nil {
			return err
		}
		if !fn(h, au) {
			return nil
		}
		b = b[h.FrameLength:]
	}
	return nil
}

// AppendADTSHeader appends to dst the 7-byte ADTS header (MPEG-4, no CRC)
// of an access unit of auLength bytes coded with configuration c. HE-AAC is
// signalled implicitly: the header carries the core object type and rate.
func AppendADTSHeader(dst []byte, c AudioSpecificConfig, auLength int) ([]byte, error) {
	rate := SampleRateIndex(c.SampleRate)
	frame := ADTSHeaderSize + auLength
	switch {
	case c.ObjectType < 1 || c.ObjectType > 4:
		return dst, fmt.Errorf("%w: object type %d in ADTS", ErrUnsupported, c.ObjectType)
	case rate < 0:
		return dst, fmt.Errorf("%w: sample rate %d in ADTS", ErrUnsupported, c.SampleRate)
	case c.ChannelConfig < 0 || c.ChannelConfig > 7:
		return dst, fmt.Errorf("%w: channelConfiguration %d in ADTS", ErrUnsupported, c.ChannelConfig)
	case auLength < 0 || frame > maxADTSFrameLength:
		return dst, fmt.Errorf("%w: access unit of %d bytes in ADTS", ErrUnsupported, auLength)
	}
	const fullness = 0x7FF // variable bit rate
	return append(dst,
		0xFF,
		0xF1, // syncword, MPEG-4, layer 0, protection absent
		byte(c.ObjectType-1)<<6|byte(rate)<<2|byte(c.ChannelConfig>>2),
		byte(c.ChannelConfig&3)<<6|byte(frame>>11),
		byte(frame>>3),
		byte(frame&7)<<5|fullness>>6,
		byte(fullness&0x3F)<<2, // one raw data block
	), nil
}

// AppendADTSFrame appends to dst an ADTS header followed by the access unit.
func AppendADTSFrame(dst []byte, c AudioSpecificConfig, au []byte) ([]byte, error) {
	dst, err := AppendADTSHeader(dst, c, len(au))
	if err != nil {
		return dst, err
	}
	return append(dst, au...), nil
}

// TrackFromADTS describes an AAC track from the header of its first ADTS
// frame, as MPEG-TS and SRT publishers send it, building its
// AudioSpecificConfig.
func TrackFromADTS(frame []byte) (*media.Track, error) {
	h, err := ParseADTSHeader(frame)
	if err != nil {
		return nil, err
	}
	c := h.Config()
	if c.ChannelConfig == 0 {
		return nil, fmt.Errorf("%w: ADTS channel configuration 0", ErrUnsupported)
	}
	asc, err := c.Marshal()
	if err != nil {
		return nil, err
	}
	return TrackFromConfig(asc)
}
