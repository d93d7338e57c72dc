// Package media is Quasipaa's codec-agnostic media model: every protocol converts
// to and from these types, and nothing protocol-specific crosses the hub.
package media

import (
	"fmt"
	"time"
)

// Codec identifies the coding format of a track.
type Codec uint8

// Codecs known to the media model.
const (
	CodecUnknown Codec = iota
	CodecH264
	CodecH265
	CodecAV1
	CodecVP8
	CodecVP9
	CodecAAC
	CodecOpus
	CodecMP3
	CodecG711A
	CodecG711U
)

var codecNames = [...]string{
	CodecUnknown: "unknown",
	CodecH264:    "h264",
	CodecH265:    "h265",
	CodecAV1:     "av1",
	CodecVP8:     "vp8",
	CodecVP9:     "vp9",
	CodecAAC:     "aac",
	CodecOpus:    "opus",
	CodecMP3:     "mp3",
	CodecG711A:   "pcma",
	CodecG711U:   "pcmu",
}

// String returns the lower-case codec name used in logs and the API.
func (c Codec) String() string {
	if int(c) < len(codecNames) {
		return codecNames[c]
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// IsVideo reports whether the codec carries video.
func (c Codec) IsVideo() bool {
	return c == CodecH264 || c == CodecH265 || c == CodecAV1 || c == CodecVP8 || c == CodecVP9
}

// IsAudio reports whether the codec carries audio.
func (c Codec) IsAudio() bool {
	return c == CodecAAC || c == CodecOpus || c == CodecMP3 || c == CodecG711A || c == CodecG711U
}

// Track describes one elementary stream of a media stream. A Track is immutable
// once handed to the hub; a change of parameters is a new Track.
//
// Config holds the codec configuration in its ISO-BMFF record form, the form
// FLV, RTMP and MP4 carry it in:
//   - H264: AVCDecoderConfigurationRecord (avcC)
//   - H265: HEVCDecoderConfigurationRecord (hvcC)
//   - AV1: AV1CodecConfigurationRecord (av1C)
//   - VP9: VPCodecConfigurationRecord (vpcC), may be empty
//   - AAC: AudioSpecificConfig
//   - Opus: OpusHead (may be empty: 48 kHz stereo assumed)
type Track struct {
	Codec  Codec
	Config []byte

	// Video summary, parsed from Config by the codec packages.
	Width   int
	Height  int
	Profile string
	Level   string

	// Audio summary.
	SampleRate int
	Channels   int
}

// IsVideo reports whether the track carries video.
func (t *Track) IsVideo() bool { return t.Codec.IsVideo() }

// IsAudio reports whether the track carries audio.
func (t *Track) IsAudio() bool { return t.Codec.IsAudio() }

// Frame is one access unit of one track. Frames are immutable once published:
// every reader shares the same Payload bytes, so nobody may modify them.
//
// Payload is the codec's canonical form in Quasipaa:
//   - H264, H265: NAL units each prefixed by a 4-byte big-endian length (AVCC)
//   - AV1: OBUs in low-overhead bitstream format (the MP4/FLV 'av01' sample)
//   - VP8, VP9: one compressed frame
//   - AAC: one raw access unit (no ADTS header)
//   - Opus, MP3, G711: one packet/frame as coded
type Frame struct {
	// Track is the index of the frame's track in the stream's track list.
	Track int
	// DTS is the decoding time from the start of the stream.
	DTS time.Duration
	// PTS is the presentation time; PTS >= DTS.
	PTS time.Duration
	// Key marks a random access point (video keyframe; every audio frame is one).
	Key bool
	// Payload is the coded data, see the type comment for its form.
	Payload []byte
	// Ingest is the wall-clock time the frame entered the server.
	Ingest time.Time
}

// CompositionOffset returns PTS-DTS.
func (f *Frame) CompositionOffset() time.Duration { return f.PTS - f.DTS }

// PickTracks returns the index of the track a single-video, single-audio
// output carries for each kind, or -1: the first video track the output can
// carry, and the first audio track in the order of prefer (then any other
// audio track it can carry). A stream published over WebRTC with its audio
// converted carries both Opus and AAC; FLV and HLS pick AAC, WHEP Opus.
func PickTracks(tracks []*Track, canCarry func(Codec) bool, prefer ...Codec) (video, audio int) {
	video, audio = -1, -1
	rank := len(prefer) + 1
	for i, t := range tracks {
		if t == nil || !canCarry(t.Codec) {
			continue
		}
		switch {
		case t.IsVideo() && video < 0:
			video = i
		case t.IsAudio():
			r := len(prefer)
			for j, c := range prefer {
				if c == t.Codec {
					r = j
					break
				}
			}
			if r < rank {
				audio, rank = i, r
			}
		}
	}
	return video, audio
}
