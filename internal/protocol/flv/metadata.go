package flv

import (
	"github.com/quasipaa/quasipaa/internal/media"
	"github.com/quasipaa/quasipaa/internal/protocol/amf0"
)

// VideoCodecID returns the onMetaData videocodecid of codec c: the legacy
// CodecID for H264 (7), the Enhanced RTMP FourCC number for the others, and
// 0 for codecs FLV does not carry.
func VideoCodecID(c media.Codec) uint32 {
	if c == media.CodecH264 {
		return VideoCodecAVC
	}
	cc, err := videoFourCC(c)
	if err != nil {
		return 0
	}
	return cc
}

// AudioCodecID returns the onMetaData audiocodecid of codec c: the legacy
// SoundFormat for AAC (10), MP3 (2) and G.711 (7, 8), the FourCC number for
// Opus, and 0 for codecs FLV does not carry.
func AudioCodecID(c media.Codec) uint32 {
	switch c {
	case media.CodecAAC:
		return SoundFormatAAC
	case media.CodecMP3:
		return SoundFormatMP3
	case media.CodecG711A:
		return SoundFormatG711A
	case media.CodecG711U:
		return SoundFormatG711U
	case media.CodecOpus:
		return FourCCOpus
	}
	return 0
}

// AppendMetadataBody appends an AMF0 "onMetaData" script tag body describing
// tracks: width, height and videocodecid of the first video track,
// audiocodecid, audiosamplerate, audiosamplesize and stereo of the first
// audio track, and encoder. Duration is left out: the stream is live.
func AppendMetadataBody(dst []byte, tracks []*media.Track) ([]byte, error) {
	props := make(amf0.ECMAArray, 0, 10)
	var video, audio *media.Track
	for _, t := range tracks {
		if t == nil {
			continue
		}
		if video == nil && t.IsVideo() && Supported(t.Codec) {
			video = t
		}
		if audio == nil && t.IsAudio() && Supported(t.Codec) {
			audio = t
		}
	}
	if video != nil {
		if video.Width > 0 && video.Height > 0 {
			props = append(props,
				amf0.Property{Key: "width", Value: float64(video.Width)},
				amf0.Property{Key: "height", Value: float64(video.Height)})
		}
		props = append(props, amf0.Property{Key: "videocodecid", Value: float64(VideoCodecID(video.Codec))})
	}
	if audio != nil {
		props = append(props, amf0.Property{Key: "audiocodecid", Value: float64(AudioCodecID(audio.Codec))})
		if audio.SampleRate > 0 {
			props = append(props, amf0.Property{Key: "audiosamplerate", Value: float64(audio.SampleRate)})
		}
		props = append(props,
			amf0.Property{Key: "audiosamplesize", Value: float64(16)},
			amf0.Property{Key: "stereo", Value: audio.Channels >= 2})
	}
	props = append(props, amf0.Property{Key: "encoder", Value: "Quasipaa"})
	return amf0.Append(dst, "onMetaData", props)
}

// AppendMetadataTag appends a complete script tag (timestamp 0) holding
// AppendMetadataBody.
func AppendMetadataTag(dst []byte, tracks []*media.Track) ([]byte, error) {
	start := len(dst)
	dst = appendTagHeader(dst, TagScript, 0, 0)
	dst, err := AppendMetadataBody(dst, tracks)
	if err != nil {
		return dst[:start], err
	}
	return finishTag(dst, start)
}
