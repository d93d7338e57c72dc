package flv

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/quasipaa/quasipaa/internal/codec/vp9"
	"github.com/quasipaa/quasipaa/internal/media"
)

// The Append* functions below build FLV tag bodies (RTMP message payloads)
// and tags from the media model. They are called once per frame per output
// format, never per viewer, and allocate nothing when dst has capacity.
//
// H264 and AAC, MP3 and G.711 are written in the legacy form every player
// reads; H265, AV1, VP8, VP9 and Opus in the Enhanced RTMP form. Frames must
// be in the media model's canonical payload form (4-byte NAL unit lengths for
// H264/H265), which is what FLV carries once the sequence header announces
// 4-byte lengths, as AppendSequenceHeader always does.

// videoFourCC returns the Enhanced RTMP FourCC that carries codec c, or 0 for
// the legacy AVC form.
func videoFourCC(c media.Codec) (uint32, error) {
	switch c {
	case media.CodecH264:
		return 0, nil
	case media.CodecH265:
		return FourCCHEVC, nil
	case media.CodecAV1:
		return FourCCAV1, nil
	case media.CodecVP9:
		return FourCCVP9, nil
	case media.CodecVP8:
		return FourCCVP8, nil
	}
	return 0, fmt.Errorf("%w: %s in FLV video", ErrUnsupportedCodec, c)
}

// HasSequenceHeader reports whether tracks of codec c are announced by a
// sequence header (AppendSequenceHeader appends nothing for the others).
func HasSequenceHeader(c media.Codec) bool {
	switch c {
	case media.CodecH264, media.CodecH265, media.CodecAV1, media.CodecVP9, media.CodecVP8,
		media.CodecAAC, media.CodecOpus:
		return true
	}
	return false
}

// Supported reports whether tracks of codec c can be carried in FLV/RTMP by
// this package.
func Supported(c media.Codec) bool {
	return HasSequenceHeader(c) || c == media.CodecMP3 || c == media.CodecG711A || c == media.CodecG711U
}

// AppendSequenceHeader appends the body of the tag that announces track t:
// the AVC sequence header, the Enhanced RTMP SequenceStart (H265, AV1, VP8,
// VP9, Opus) or the AAC sequence header. MP3 and G.711 have none: dst is
// returned unchanged. The result is a video body for video tracks and an
// audio body for audio tracks.
func AppendSequenceHeader(dst []byte, t *media.Track) ([]byte, error) {
	if t == nil {
		return dst, fmt.Errorf("%w: nil track", ErrTrackMismatch)
	}
	switch t.Codec {
	case media.CodecH264, media.CodecH265:
		if _, err := nalLengthSize(t.Codec, t.Config); err != nil {
			return dst, err
		}
		if t.Codec == media.CodecH264 {
			dst = append(dst, frameKey<<4|VideoCodecAVC, 0, 0, 0, 0)
		} else {
			dst = appendExVideoHeader(dst, frameKey, pktSequenceStart, FourCCHEVC)
		}
		return appendConfigRecord(dst, t.Codec, t.Config), nil
	case media.CodecAV1:
		if len(t.Config) < 4 || t.Config[0] != 0x81 {
			return dst, fmt.Errorf("%w: av1C of %d bytes", ErrInvalidConfig, len(t.Config))
		}
		dst = appendExVideoHeader(dst, frameKey, pktSequenceStart, FourCCAV1)
		return append(dst, t.Config...), nil
	case media.CodecVP9, media.CodecVP8:
		cc, _ := videoFourCC(t.Codec)
		dst = appendExVideoHeader(dst, frameKey, pktSequenceStart, cc)
		return appendVPCC(dst, t), nil
	case media.CodecAAC:
		if len(t.Config) < 2 {
			return dst, fmt.Errorf("%w: AudioSpecificConfig of %d bytes", ErrInvalidConfig, len(t.Config))
		}
		dst = append(dst, aacFlags, 0)
		return append(dst, t.Config...), nil
	case media.CodecOpus:
		dst = appendExAudioHeader(dst, pktSequenceStart, FourCCOpus)
		return appendOpusHead(dst, t), nil
	case media.CodecMP3, media.CodecG711A, media.CodecG711U:
		return dst, nil
	}
	return dst, fmt.Errorf("%w: %s in FLV", ErrUnsupportedCodec, t.Codec)
}

// appendVPCC appends t's configuration as a vpcC box body (version 1, flags
// 0, then the VPCodecConfigurationRecord), the form MP4 tools and the
// Enhanced RTMP reference implementations read; a bare record gets the
// version and flags, a missing or malformed one defaults.
func appendVPCC(dst []byte, t *media.Track) []byte {
	switch {
	case isVPCCBox(t.Config):
		return append(dst, t.Config...)
	case len(t.Config) > 0:
		if _, err := vp9.ParseConfigRecord(t.Config); err == nil {
			dst = append(dst, 1, 0, 0, 0)
			return append(dst, t.Config...)
		}
	}
	return append(dst, defaultVPCC...)
}

// appendOpusHead appends t's OpusHead, or a minimal one (RFC 7845) when the
// track has none.
func appendOpusHead(dst []byte, t *media.Track) []byte {
	if len(t.Config) > 0 {
		return append(dst, t.Config...)
	}
	ch := t.Channels
	if ch <= 0 || ch > 2 {
		ch = 2
	}
	dst = append(dst, "OpusHead"...)
	dst = append(dst, 1, byte(ch), 0, 0) // version, channels, pre-skip
	dst = binary.LittleEndian.AppendUint32(dst, 48000)
	return append(dst, 0, 0, 0) // output gain, mapping family 0
}

func appendExVideoHeader(dst []byte, frameType, pktType uint8, cc uint32) []byte {
	dst = append(dst, 0x80|frameType<<4|pktType)
	return binary.BigEndian.AppendUint32(dst, cc)
}

func appendExAudioHeader(dst []byte, pktType uint8, cc uint32) []byte {
	dst = append(dst, SoundFormatExHeader<<4|pktType)
	return binary.BigEndian.AppendUint32(dst, cc)
}

// aacFlags is the first byte of legacy AAC bodies: the specification fixes
// SoundRate 44 kHz, 16-bit samples and stereo, whatever the real values.
const aacFlags = SoundFormatAAC<<4 | 3<<2 | 1<<1 | 1

// compositionMs returns PTS-DTS in milliseconds as the difference of both
// times floored to milliseconds, so that rebuilding PTS from the tag
// timestamp gives PTS floored to milliseconds; it is clamped to SI24.
func compositionMs(f *media.Frame) int32 {
	d := floorMs(f.PTS) - floorMs(f.DTS)
	if d > 1<<23-1 {
		d = 1<<23 - 1
	} else if d < -(1 << 23) {
		d = -(1 << 23)
	}
	return int32(d)
}

func floorMs(d time.Duration) int64 {
	ms := int64(d / time.Millisecond)
	if d < 0 && d%time.Millisecond != 0 {
		ms--
	}
	return ms
}

// TimestampMs returns the FLV timestamp of a media time: milliseconds,
// floored, modulo 2^32 (how RTMP extended timestamps wrap).
func TimestampMs(d time.Duration) uint32 { return uint32(floorMs(d)) }

func appendSI24(dst []byte, v int32) []byte {
	return append(dst, byte(v>>16), byte(v>>8), byte(v))
}

// AppendVideoBody appends the video tag body carrying frame f of track t.
func AppendVideoBody(dst []byte, t *media.Track, f *media.Frame) ([]byte, error) {
	if t == nil || f == nil || t.IsAudio() {
		return dst, fmt.Errorf("%w: video body needs a video track and a frame", ErrTrackMismatch)
	}
	cc, err := videoFourCC(t.Codec)
	if err != nil {
		return dst, err
	}
	frameType := uint8(frameInter)
	if f.Key {
		frameType = frameKey
	}
	switch t.Codec {
	case media.CodecH264:
		dst = append(dst, frameType<<4|VideoCodecAVC, 1)
		dst = appendSI24(dst, compositionMs(f))
	case media.CodecH265:
		if cts := compositionMs(f); cts != 0 {
			dst = appendExVideoHeader(dst, frameType, pktCodedFrames, cc)
			dst = appendSI24(dst, cts)
		} else {
			dst = appendExVideoHeader(dst, frameType, pktCodedFramesX, cc)
		}
	default: // AV1, VP8, VP9: CodedFrames without composition time
		dst = appendExVideoHeader(dst, frameType, pktCodedFrames, cc)
	}
	return append(dst, f.Payload...), nil
}

// AppendAudioBody appends the audio tag body carrying frame f of track t.
func AppendAudioBody(dst []byte, t *media.Track, f *media.Frame) ([]byte, error) {
	if t == nil || f == nil || t.IsVideo() {
		return dst, fmt.Errorf("%w: audio body needs an audio track and a frame", ErrTrackMismatch)
	}
	switch t.Codec {
	case media.CodecAAC:
		dst = append(dst, aacFlags, 1)
	case media.CodecOpus:
		dst = appendExAudioHeader(dst, pktCodedFrames, FourCCOpus)
	case media.CodecMP3:
		dst = append(dst, SoundFormatMP3<<4|mp3RateBits(t.SampleRate)<<2|1<<1|stereoBit(t))
	case media.CodecG711A:
		dst = append(dst, SoundFormatG711A<<4|1<<1|stereoBit(t))
	case media.CodecG711U:
		dst = append(dst, SoundFormatG711U<<4|1<<1|stereoBit(t))
	default:
		return dst, fmt.Errorf("%w: %s in FLV audio", ErrUnsupportedCodec, t.Codec)
	}
	return append(dst, f.Payload...), nil
}

func stereoBit(t *media.Track) byte {
	if t.Channels >= 2 {
		return 1
	}
	return 0
}

// mp3RateBits returns the legacy SoundRate closest to rate; decoders take
// the real rate from the MP3 frame header.
func mp3RateBits(rate int) byte {
	switch {
	case rate >= 32000 || rate == 0:
		return 3
	case rate >= 16000:
		return 2
	case rate >= 8000:
		return 1
	}
	return 0
}

// AppendFileHeader appends the 9-byte FLV file header and PreviousTagSize0.
func AppendFileHeader(dst []byte, hasAudio, hasVideo bool) []byte {
	var flags byte
	if hasAudio {
		flags |= 4
	}
	if hasVideo {
		flags |= 1
	}
	return append(dst, 'F', 'L', 'V', 1, flags, 0, 0, 0, FileHeaderSize, 0, 0, 0, 0)
}

// appendTagHeader appends an 11-byte tag header for a body of size bytes.
func appendTagHeader(dst []byte, tagType uint8, timestampMs uint32, size int) []byte {
	return append(dst, tagType, byte(size>>16), byte(size>>8), byte(size),
		byte(timestampMs>>16), byte(timestampMs>>8), byte(timestampMs), byte(timestampMs>>24),
		0, 0, 0)
}

// AppendTag appends a complete tag: the 11-byte header (with the extended
// timestamp byte), body and the PreviousTagSize that follows it. Bodies
// larger than 16 MiB - 1 cannot be represented; the caller must not pass them.
func AppendTag(dst []byte, tagType uint8, timestampMs uint32, body []byte) []byte {
	dst = appendTagHeader(dst, tagType, timestampMs, len(body))
	dst = append(dst, body...)
	return binary.BigEndian.AppendUint32(dst, uint32(TagHeaderSize+len(body)))
}

// maxBodySize is the largest body a tag's 24-bit size can announce.
const maxBodySize = 1<<24 - 1

// finishTag patches the body size of the tag that starts at dst[start] and
// appends its PreviousTagSize.
func finishTag(dst []byte, start int) ([]byte, error) {
	size := len(dst) - start - TagHeaderSize
	if size > maxBodySize {
		return dst[:start], fmt.Errorf("%w: body of %d bytes", ErrTagTooLarge, size)
	}
	dst[start+1], dst[start+2], dst[start+3] = byte(size>>16), byte(size>>8), byte(size)
	return binary.BigEndian.AppendUint32(dst, uint32(TagHeaderSize+size)), nil
}

// AppendVideoTag appends the complete video tag (header, body, PreviousTagSize)
// carrying frame f of track t, stamped with f's DTS. It writes straight into
// dst without a temporary body buffer.
func AppendVideoTag(dst []byte, t *media.Track, f *media.Frame) ([]byte, error) {
	if f == nil {
		return dst, fmt.Errorf("%w: nil frame", ErrTrackMismatch)
	}
	start := len(dst)
	dst = appendTagHeader(dst, TagVideo, TimestampMs(f.DTS), 0)
	dst, err := AppendVideoBody(dst, t, f)
	if err != nil {
		return dst[:start], err
	}
	return finishTag(dst, start)
}

// AppendAudioTag appends the complete audio tag carrying frame f of track t,
// stamped with f's DTS.
func AppendAudioTag(dst []byte, t *media.Track, f *media.Frame) ([]byte, error) {
	if f == nil {
		return dst, fmt.Errorf("%w: nil frame", ErrTrackMismatch)
	}
	start := len(dst)
	dst = appendTagHeader(dst, TagAudio, TimestampMs(f.DTS), 0)
	dst, err := AppendAudioBody(dst, t, f)
	if err != nil {
		return dst[:start], err
	}
	return finishTag(dst, start)
}

// AppendSequenceHeaderTag appends the complete tag announcing track t (see
// AppendSequenceHeader); for MP3 and G.711 it appends nothing.
func AppendSequenceHeaderTag(dst []byte, t *media.Track, timestampMs uint32) ([]byte, error) {
	if t == nil {
		return dst, fmt.Errorf("%w: nil track", ErrTrackMismatch)
	}
	if !HasSequenceHeader(t.Codec) {
		if Supported(t.Codec) {
			return dst, nil
		}
		return dst, fmt.Errorf("%w: %s in FLV", ErrUnsupportedCodec, t.Codec)
	}
	tagType := TagAudio
	if t.IsVideo() {
		tagType = TagVideo
	}
	start := len(dst)
	dst = appendTagHeader(dst, tagType, timestampMs, 0)
	dst, err := AppendSequenceHeader(dst, t)
	if err != nil {
		return dst[:start], err
	}
	return finishTag(dst, start)
}

// AppendFrameTag appends the complete audio or video tag carrying frame f of
// track t (AppendVideoTag or AppendAudioTag, after the track's kind).
func AppendFrameTag(dst []byte, t *media.Track, f *media.Frame) ([]byte, error) {
	if t != nil && t.IsAudio() {
		return AppendAudioTag(dst, t, f)
	}
	return AppendVideoTag(dst, t, f)
}

// AppendHeaderTags appends what announces a track set to an FLV reader:
// the onMetaData tag, then the sequence header tag of every track, stamped
// with timestampMs. Tracks FLV cannot carry are left out (their frames
// should be skipped too, see Supported).
func AppendHeaderTags(dst []byte, tracks []*media.Track, timestampMs uint32) ([]byte, error) {
	start := len(dst)
	dst, err := AppendMetadataTag(dst, tracks)
	if err != nil {
		return dst[:start], err
	}
	for _, t := range tracks {
		if t == nil || !Supported(t.Codec) {
			continue
		}
		if dst, err = AppendSequenceHeaderTag(dst, t, timestampMs); err != nil {
			return dst[:start], err
		}
	}
	return dst, nil
}
