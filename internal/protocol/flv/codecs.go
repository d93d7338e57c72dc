package flv

// This file is the only place that asks the codec packages about
// bitstreams: building a media.Track (with its summary fields) from a
// configuration record, telling keyframes, and reading picture sizes.

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/quasipaa/quasipaa/internal/codec/aac"
	"github.com/quasipaa/quasipaa/internal/codec/av1"
	"github.com/quasipaa/quasipaa/internal/codec/h264"
	"github.com/quasipaa/quasipaa/internal/codec/h265"
	"github.com/quasipaa/quasipaa/internal/codec/mp3"
	"github.com/quasipaa/quasipaa/internal/codec/opus"
	"github.com/quasipaa/quasipaa/internal/codec/vp9"
	"github.com/quasipaa/quasipaa/internal/media"
)

// videoTrack returns the track a video configuration record describes. The
// record is copied; H264/H265 records are rewritten to 4-byte NAL lengths.
func videoTrack(c media.Codec, config []byte) (*media.Track, error) {
	var t *media.Track
	var err error
	switch c {
	case media.CodecH264:
		t, err = h264.TrackFromConfigRecord(config)
	case media.CodecH265:
		t, err = h265.TrackFromConfigRecord(config)
	case media.CodecAV1:
		t, err = av1.TrackFromConfigRecord(config)
	case media.CodecVP8, media.CodecVP9:
		t = &media.Track{Codec: c, Config: vpcc(config)}
		if rec, err := vp9.ParseConfigRecord(t.Config); err == nil && c == media.CodecVP9 {
			t.Profile, t.Level = vp9.ProfileName(rec.Profile), vp9.LevelName(rec.Level)
		}
	default:
		return nil, fmt.Errorf("%w: %s", ErrUnsupportedCodec, c)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return t, nil
}

// defaultVPCC is the vpcC box body (version 1, flags 0, then the
// VPCodecConfigurationRecord) given to VP8/VP9 tracks without a valid
// record: profile 0, level unspecified, 8 bits, 4:2:0 colocated, limited
// range, unspecified colour description, no initialization data.
var defaultVPCC = []byte{1, 0, 0, 0, 0, 0, 8<<4 | 1<<1, 2, 2, 2, 0, 0}

// vpcc returns a VP8/VP9 configuration in the media model's form, the vpcC
// box body, from the bare record FFmpeg writes or the box body other
// writers send. The record only informs (decoders do not need it): a
// missing or malformed one gets defaultVPCC rather than refusing the stream.
func vpcc(config []byte) []byte {
	rec, err := vp9.ParseConfigRecord(config)
	if err != nil {
		return bytes.Clone(defaultVPCC)
	}
	out, err := vp9.BuildConfigRecord(rec)
	if err != nil {
		return bytes.Clone(defaultVPCC)
	}
	return out
}

// isVPCCBox reports whether config starts with the vpcC FullBox version 1
// and flags 0 (a bare record never does: its bit depth is not 0).
func isVPCCBox(config []byte) bool {
	return len(config) >= 12 && config[0] == 1 && config[1] == 0 && config[2] == 0 && config[3] == 0
}

// audioTrack returns the track an audio configuration describes (AAC
// AudioSpecificConfig, Opus OpusHead). The configuration is copied. An empty
// OpusHead is replaced by the one AppendSequenceHeader would send.
func audioTrack(c media.Codec, config []byte) (*media.Track, error) {
	var t *media.Track
	var err error
	switch c {
	case media.CodecAAC:
		t, err = aac.TrackFromConfig(config)
	case media.CodecOpus:
		if len(config) == 0 {
			config = appendOpusHead(nil, &media.Track{Codec: c})
		}
		t, err = opus.TrackFromHead(config)
	default:
		return nil, fmt.Errorf("%w: %s", ErrUnsupportedCodec, c)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return t, nil
}

// isKeyFrame reports whether a video payload (in canonical form) is a random
// access point.
func isKeyFrame(c media.Codec, payload []byte) bool {
	switch c {
	case media.CodecH264:
		return h264.IsKeyframe(payload)
	case media.CodecH265:
		return h265.IsKeyframe(payload)
	case media.CodecAV1:
		return av1.IsKeyframe(payload)
	case media.CodecVP9:
		return vp9.IsKeyframe(payload)
	case media.CodecVP8:
		return vp8Keyframe(payload)
	}
	return false
}

// vp8Keyframe reports whether a VP8 frame is a key frame: frame tag bit 0
// clear and the start code 9d 01 2a (RFC 6386 section 9.1).
func vp8Keyframe(p []byte) bool {
	return len(p) >= 10 && p[0]&1 == 0 && p[3] == 0x9d && p[4] == 0x01 && p[5] == 0x2a
}

// frameDimensions returns the picture size a key frame announces, for codecs
// whose configuration record may not say it (VP8 and VP9 never do, av1C may
// omit its sequence header).
func frameDimensions(c media.Codec, payload []byte) (w, h int, ok bool) {
	switch c {
	case media.CodecVP9:
		k, err := vp9.ParseKeyframe(payload)
		if err != nil {
			return 0, 0, false
		}
		return k.Width, k.Height, true
	case media.CodecVP8:
		if !vp8Keyframe(payload) {
			return 0, 0, false
		}
		return int(binary.LittleEndian.Uint16(payload[6:]) & 0x3fff),
			int(binary.LittleEndian.Uint16(payload[8:]) & 0x3fff), true
	case media.CodecAV1:
		obu := av1.SequenceHeaderOBU(payload)
		if obu == nil {
			return 0, 0, false
		}
		h, err := av1.ParseSequenceHeaderOBU(obu)
		if err != nil {
			return 0, 0, false
		}
		return h.MaxWidth, h.MaxHeight, true
	}
	return 0, 0, false
}

// selfDescribedTrack returns the track of an MP3 or G.711 frame, codecs whose
// frames carry their parameters: an MP3 frame header when it parses, the
// legacy SoundRate and SoundType bits of flags otherwise (G.711 is 8 kHz
// whatever the SoundRate field says).
func selfDescribedTrack(c media.Codec, flags byte, data []byte) *media.Track {
	if c == media.CodecMP3 {
		if t, err := mp3.TrackFromFrame(data); err == nil {
			return t
		}
	}
	t := &media.Track{Codec: c, SampleRate: legacyRates[(flags>>2)&3], Channels: int(flags&1) + 1}
	if c != media.CodecMP3 {
		t.SampleRate = 8000
	}
	return t
}
