// Package mp3 parses MPEG audio frame headers (ISO/IEC 11172-3 and 13818-3,
// with the unofficial MPEG-2.5 extension): MP3 as FLV and MPEG-TS carry it,
// and its layer I and II siblings. A frame is self-describing, so an MP3
// track needs no configuration record.
//
// Every parser here reads untrusted network input: none panics, and none
// allocates.
package mp3

import (
	"errors"
	"fmt"
	"time"

	"github.com/quasipaa/quasipaa/internal/media"
)

// Errors returned by this package.
var (
	// ErrInvalidHeader is returned for a malformed frame header.
	ErrInvalidHeader = errors.New("mp3: invalid frame header")
	// ErrFreeFormat is returned for free-format streams (bitrate index 0), whose frame length a header cannot give.
	ErrFreeFormat = errors.New("mp3: free-format bitrate is not supported")
	// ErrTruncated is returned when a frame runs past the end of its buffer.
	ErrTruncated = errors.New("mp3: truncated frame")
)

// HeaderSize is the size of a frame header.
const HeaderSize = 4

// Version is the MPEG audio version.
type Version uint8

// MPEG audio versions.
const (
	MPEG1  Version = 1
	MPEG2  Version = 2
	MPEG25 Version = 3 // MPEG-2.5, the unofficial low sample rate extension
)

// String returns "MPEG-1", "MPEG-2" or "MPEG-2.5".
func (v Version) String() string {
	switch v {
	case MPEG1:
		return "MPEG-1"
	case MPEG2:
		return "MPEG-2"
	case MPEG25:
		return "MPEG-2.5"
	}
	return fmt.Sprintf("Version(%d)", uint8(v))
}

// ChannelMode is the header's mode field.
type ChannelMode uint8

// Channel modes.
const (
	ChannelModeStereo      ChannelMode = 0
	ChannelModeJointStereo ChannelMode = 1
	ChannelModeDualChannel ChannelMode = 2
	ChannelModeMono        ChannelMode = 3
)

// FrameHeader is a parsed frame header.
type FrameHeader struct {
	// Version is the MPEG audio version.
	Version Version
	// Layer is 1, 2 or 3.
	Layer int
	// CRC tells that a 16-bit CRC follows the header (protection_bit 0).
	CRC bool
	// Bitrate is in bits per second.
	Bitrate int
	// SampleRate is in Hz.
	SampleRate int
	// Padding tells that the frame has one extra slot.
	Padding bool
	// ChannelMode is the mode field.
	ChannelMode ChannelMode
	// Channels is 1 for mono, 2 otherwise.
	Channels int
	// FrameLength is the frame size in bytes, header included.
	FrameLength int
	// Samples is the number of samples per channel in the frame.
	Samples int
}

// Duration returns the frame's duration.
func (h FrameHeader) Duration() time.Duration {
	return time.Duration(h.Samples) * time.Second / time.Duration(h.SampleRate)
}

// bitrates in kbit/s by [MPEG-1?0:1][layer-1][index].
var bitrates = [2][3][15]uint16{
	{ // MPEG-1
		{0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448},
		{0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384},
		{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320},
	},
	{ // MPEG-2 and 2.5
		{0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256},
		{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},
		{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},
	},
}

// sampleRates in Hz by [version-1][index].
var sampleRates = [3][3]int{
	{44100, 48000, 32000},
	{22050, 24000, 16000},
	{11025, 12000, 8000},
}

// ParseFrameHeader parses the frame header at the start of b.
func ParseFrameHeader(b []byte) (FrameHeader, error) {
	if len(b) < HeaderSize {
		return FrameHeader{}, ErrTruncated
	}
	if b[0] != 0xFF || b[1]&0xE0 != 0xE0 {
		return FrameHeader{}, fmt.Errorf("%w: no frame sync", ErrInvalidHeader)
	}
	var h FrameHeader
	switch b[1] >> 3 & 3 {
	case 0:
		h.Version = MPEG25
	case 2:
		h.Version = MPEG2
	case 3:
		h.Version = MPEG1
	default:
		return FrameHeader{}, fmt.Errorf("%w: reserved version", ErrInvalidHeader)
	}
	h.Layer = 4 - int(b[1]>>1&3)
	if h.Layer == 4 {
		return FrameHeader{}, fmt.Errorf("%w: reserved layer", ErrInvalidHeader)
	}
	h.CRC = b[1]&1 == 0
	bitrateIndex := b[2] >> 4
	switch bitrateIndex {
	case 0:
		return FrameHeader{}, ErrFreeFormat
	case 15:
		return FrameHeader{}, fmt.Errorf("%w: bitrate index 15", ErrInvalidHeader)
	}
	rateIndex := b[2] >> 2 & 3
	if rateIndex == 3 {
		return FrameHeader{}, fmt.Errorf("%w: reserved sample rate", ErrInvalidHeader)
	}
	if b[3]&3 == 2 {
		return FrameHeader{}, fmt.Errorf("%w: reserved emphasis", ErrInvalidHeader)
	}
	table := 1
	if h.Version == MPEG1 {
		table = 0
	}
	h.Bitrate = int(bitrates[table][h.Layer-1][bitrateIndex]) * 1000
	h.SampleRate = sampleRates[h.Version-1][rateIndex]
	h.Padding = b[2]&2 != 0
	h.ChannelMode = ChannelMode(b[3] >> 6)
	h.Channels = 2
	if h.ChannelMode == ChannelModeMono {
		h.Channels = 1
	}
	padding := 0
	if h.Padding {
		padding = 1
	}
	switch {
	case h.Layer == 1:
		h.Samples = 384
		h.FrameLength = (12*h.Bitrate/h.SampleRate + padding) * 4
	case h.Layer == 2 || h.Version == MPEG1:
		h.Samples = 1152
		h.FrameLength = 144*h.Bitrate/h.SampleRate + padding
	default: // layer III of MPEG-2 and 2.5: half the samples
		h.Samples = 576
		h.FrameLength = 72*h.Bitrate/h.SampleRate + padding
	}
	return h, nil
}

// ForEachFrame calls fn with the header and the bytes of each frame of b (a
// run of frames, as an MPEG-TS PES payload holds), in order, until fn
// returns false. The frames alias b. It does not allocate when fn does not
// escape.
func ForEachFrame(b []byte, fn func(h FrameHeader, frame []byte) bool) error {
	for len(b) > 0 {
		h, err := ParseFrameHeader(b)
		if err != nil {
			return err
		}
		if h.FrameLength > len(b) {
			return ErrTruncated
		}
		if !fn(h, b[:h.FrameLength]) {
			return nil
		}
		b = b[h.FrameLength:]
	}
	return nil
}

// TrackFromFrame describes an MP3 track from its first frame.
func TrackFromFrame(frame []byte) (*media.Track, error) {
	h, err := ParseFrameHeader(frame)
	if err != nil {
		return nil, err
	}
	return &media.Track{
		Codec:      media.CodecMP3,
		Profile:    fmt.Sprintf("%v Layer %d", h.Version, h.Layer),
		SampleRate: h.SampleRate,
		Channels:   h.Channels,
	}, nil
}
