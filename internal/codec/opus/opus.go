// Package opus handles Opus as Quasipaa carries it: the identification
// header OpusHead (RFC 7845 section 5.1) as the track configuration, and
// packets whose duration the table-of-contents byte tells (RFC 6716 section
// 3.1). Opus always decodes at 48 kHz, whatever rate the encoder was fed.
//
// Every parser here reads untrusted network input: none panics, and packet
// inspection does not allocate.
package opus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/quasipaa/quasipaa/internal/media"
)

// SampleRate is the rate Opus decodes at and RTP/WebRTC clock it with.
const SampleRate = 48000

// Errors returned by this package.
var (
	// ErrInvalidHead is returned for a malformed OpusHead.
	ErrInvalidHead = errors.New("opus: invalid OpusHead")
	// ErrInvalidPacket is returned for a packet whose duration cannot be known.
	ErrInvalidPacket = errors.New("opus: invalid packet")
)

const (
	headMagic = "OpusHead"
	headSize  = 19 // without the channel mapping table
)

// Head is a parsed identification header.
type Head struct {
	// Version is the header version; only major version 0 (values 0 to 15) is understood.
	Version uint8
	// Channels is the output channel count.
	Channels int
	// PreSkip is the number of 48 kHz samples to drop at the start of decoding.
	PreSkip uint16
	// InputSampleRate is the encoder's input rate, for information only (0 if unknown).
	InputSampleRate uint32
	// OutputGain is the gain to apply, in Q7.8 dB.
	OutputGain int16
	// MappingFamily is the channel mapping family (0 mono/stereo, 1 Vorbis order, 255 undefined).
	MappingFamily uint8
	// StreamCount and CoupledCount describe the multistream layout (1 and Channels-1 for family 0).
	StreamCount, CoupledCount int
	// Mapping is the channel mapping table, nil for family 0.
	Mapping []byte
}

// ParseHead parses an OpusHead packet.
func ParseHead(b []byte) (Head, error) {
	if len(b) < headSize || string(b[:8]) != headMagic {
		return Head{}, fmt.Errorf("%w: no OpusHead magic", ErrInvalidHead)
	}
	h := Head{
		Version:         b[8],
		Channels:        int(b[9]),
		PreSkip:         binary.LittleEndian.Uint16(b[10:]),
		InputSampleRate: binary.LittleEndian.Uint32(b[12:]),
		OutputGain:      int16(binary.LittleEndian.Uint16(b[16:])),
		MappingFamily:   b[18],
	}
	if h.Version > 15 {
		return Head{}, fmt.Errorf("%w: version %d", ErrInvalidHead, h.Version)
	}
	if h.Channels == 0 {
		return Head{}, fmt.Errorf("%w: 0 channels", ErrInvalidHead)
	}
	if h.MappingFamily == 0 {
		if h.Channels > 2 {
			return Head{}, fmt.Errorf("%w: %d channels in mapping family 0", ErrInvalidHead, h.Channels)
		}
		h.StreamCount, h.CoupledCount = 1, h.Channels-1
		return h, nil
	}
	if h.MappingFamily == 1 && h.Channels > 8 {
		return Head{}, fmt.Errorf("%w: %d channels in mapping family 1", ErrInvalidHead, h.Channels)
	}
	if len(b) < headSize+2+h.Channels {
		return Head{}, fmt.Errorf("%w: channel mapping table truncated", ErrInvalidHead)
	}
	h.StreamCount, h.CoupledCount = int(b[19]), int(b[20])
	if h.StreamCount == 0 || h.CoupledCount > h.StreamCount || h.StreamCount+h.CoupledCount > 255 {
		return Head{}, fmt.Errorf("%w: %d streams, %d coupled", ErrInvalidHead, h.StreamCount, h.CoupledCount)
	}
	h.Mapping = b[21 : 21+h.Channels]
	for _, m := range h.Mapping {
		if m != 255 && int(m) >= h.StreamCount+h.CoupledCount {
			return Head{}, fmt.Errorf("%w: channel mapped to stream %d", ErrInvalidHead, m)
		}
	}
	return h, nil
}

// Marshal writes the header as an OpusHead packet (version 1).
func (h Head) Marshal() ([]byte, error) {
	switch {
	case h.Channels < 1 || h.Channels > 255:
		return nil, fmt.Errorf("%w: %d channels", ErrInvalidHead, h.Channels)
	case h.MappingFamily == 0 && h.Channels > 2:
		return nil, fmt.Errorf("%w: %d channels in mapping family 0", ErrInvalidHead, h.Channels)
	case h.MappingFamily != 0 && len(h.Mapping) != h.Channels:
		return nil, fmt.Errorf("%w: mapping table of %d entries for %d channels", ErrInvalidHead, len(h.Mapping), h.Channels)
	case h.MappingFamily != 0 && (h.StreamCount < 1 || h.CoupledCount < 0 || h.CoupledCount > h.StreamCount || h.StreamCount+h.CoupledCount > 255):
		return nil, fmt.Errorf("%w: %d streams, %d coupled", ErrInvalidHead, h.StreamCount, h.CoupledCount)
	}
	b := make([]byte, headSize, headSize+2+len(h.Mapping))
	copy(b, headMagic)
	b[8] = 1
	b[9] = byte(h.Channels)
	binary.LittleEndian.PutUint16(b[10:], h.PreSkip)
	binary.LittleEndian.PutUint32(b[12:], h.InputSampleRate)
	binary.LittleEndian.PutUint16(b[16:], uint16(h.OutputGain))
	b[18] = h.MappingFamily
	if h.MappingFamily != 0 {
		b = append(b, byte(h.StreamCount), byte(h.CoupledCount))
		b = append(b, h.Mapping...)
	}
	return b, nil
}

// BuildHead writes the OpusHead of a mono or stereo stream (mapping family 0).
func BuildHead(channels int, preSkip uint16, inputSampleRate uint32) ([]byte, error) {
	return Head{Channels: channels, PreSkip: preSkip, InputSampleRate: inputSampleRate}.Marshal()
}

// TrackFromHead describes an Opus track from its OpusHead. An empty head is
// allowed (the media model assumes 48 kHz stereo then). Track.SampleRate is
// always 48000; Track.Config is a copy.
func TrackFromHead(head []byte) (*media.Track, error) {
	t := &media.Track{Codec: media.CodecOpus, SampleRate: SampleRate, Channels: 2}
	if len(head) == 0 {
		return t, nil
	}
	h, err := ParseHead(head)
	if err != nil {
		return nil, err
	}
	t.Config, t.Channels = bytes.Clone(head), h.Channels
	return t, nil
}

// frameSamples is the frame duration, in 48 kHz samples, of each TOC
// configuration (RFC 6716 Table 2).
var frameSamples = [32]uint16{
	480, 960, 1920, 2880, // SILK narrowband 10, 20, 40, 60 ms
	480, 960, 1920, 2880, // SILK mediumband
	480, 960, 1920, 2880, // SILK wideband
	480, 960, // Hybrid super-wideband 10, 20 ms
	480, 960, // Hybrid fullband
	120, 240, 480, 960, // CELT narrowband 2.5, 5, 10, 20 ms
	120, 240, 480, 960, // CELT wideband
	120, 240, 480, 960, // CELT super-wideband
	120, 240, 480, 960, // CELT fullband
}

// maxPacketSamples is 120 ms, the longest packet RFC 6716 allows.
const maxPacketSamples = 5760

// PacketSamples returns the duration of a packet in 48 kHz samples: the
// frame size of its TOC configuration times its frame count (1 for code 0,
// 2 for codes 1 and 2, the count byte's M for code 3). It rejects empty
// packets, code 3 packets without a frame count or with M = 0, and packets
// longer than 120 ms.
func PacketSamples(packet []byte) (int, error) {
	if len(packet) == 0 {
		return 0, fmt.Errorf("%w: empty", ErrInvalidPacket)
	}
	toc := packet[0]
	frames := 1
	switch toc & 3 {
	case 1, 2:
		frames = 2
	case 3:
		if len(packet) < 2 {
			return 0, fmt.Errorf("%w: code 3 without frame count", ErrInvalidPacket)
		}
		frames = int(packet[1] & 0x3F)
		if frames == 0 {
			return 0, fmt.Errorf("%w: code 3 with 0 frames", ErrInvalidPacket)
		}
	}
	n := frames * int(frameSamples[toc>>3])
	if n > maxPacketSamples {
		return 0, fmt.Errorf("%w: %d samples exceed 120 ms", ErrInvalidPacket, n)
	}
	return n, nil
}

// PacketDuration returns the duration of a packet, see PacketSamples.
func PacketDuration(packet []byte) (time.Duration, error) {
	n, err := PacketSamples(packet)
	if err != nil {
		return 0, err
	}
	return time.Duration(n) * time.Second / SampleRate, nil
}
