// Package flv converts between FLV tag bodies and Quasipaa's media model, and
// reads and writes the FLV container.
//
// FLV tag bodies are byte for byte the payloads of RTMP audio (type 8) and
// video (type 9) messages, so this package is the single place where both
// FLV and RTMP are turned into media.Track / media.Frame values (Demuxer) and
// back (the Append* functions).
//
// Supported on input: legacy AVC (CodecID 7), the widespread legacy HEVC
// extension (CodecID 12), Enhanced RTMP v1/v2 video (avc1, hvc1, av01, vp09,
// vp08; ModEx, Metadata, command frames and multitrack messages), legacy AAC,
// MP3, G.711 A-law and µ-law, and Enhanced RTMP v2 audio (Opus, mp4a, .mp3).
//
// On output H264 and AAC/MP3/G.711 use the legacy form that every player
// understands; H265, AV1, VP8, VP9 and Opus use the Enhanced RTMP form.
package flv

import "errors"

// Tag types of the FLV container (the same numbers as RTMP message types).
const (
	TagAudio  uint8 = 8  // TagAudio is an audio tag.
	TagVideo  uint8 = 9  // TagVideo is a video tag.
	TagScript uint8 = 18 // TagScript is a script data (AMF0) tag such as onMetaData.
)

// Sizes of the fixed parts of the FLV container.
const (
	FileHeaderSize      = 9  // FileHeaderSize is the size of the FLV file header.
	TagHeaderSize       = 11 // TagHeaderSize is the size of a tag header.
	PreviousTagSizeSize = 4  // PreviousTagSizeSize is the size of a PreviousTagSize field.
)

// Legacy video codec ids (the low nibble of the first video byte).
const (
	VideoCodecAVC  = 7  // VideoCodecAVC is H.264 in the legacy layout.
	VideoCodecHEVC = 12 // VideoCodecHEVC is H.265 in the legacy layout (a de facto extension).
)

// Legacy audio sound formats (the high nibble of the first audio byte).
const (
	SoundFormatMP3      = 2  // SoundFormatMP3 is MPEG-1/2 audio layer 3.
	SoundFormatG711A    = 7  // SoundFormatG711A is G.711 A-law.
	SoundFormatG711U    = 8  // SoundFormatG711U is G.711 µ-law.
	SoundFormatExHeader = 9  // SoundFormatExHeader introduces an Enhanced RTMP audio header.
	SoundFormatAAC      = 10 // SoundFormatAAC is AAC.
)

// Enhanced RTMP FourCCs, as the big-endian numbers onMetaData uses.
const (
	FourCCAVC  uint32 = 'a'<<24 | 'v'<<16 | 'c'<<8 | '1' // FourCCAVC is "avc1".
	FourCCHEVC uint32 = 'h'<<24 | 'v'<<16 | 'c'<<8 | '1' // FourCCHEVC is "hvc1".
	FourCCAV1  uint32 = 'a'<<24 | 'v'<<16 | '0'<<8 | '1' // FourCCAV1 is "av01".
	FourCCVP9  uint32 = 'v'<<24 | 'p'<<16 | '0'<<8 | '9' // FourCCVP9 is "vp09".
	FourCCVP8  uint32 = 'v'<<24 | 'p'<<16 | '0'<<8 | '8' // FourCCVP8 is "vp08".
	FourCCOpus uint32 = 'O'<<24 | 'p'<<16 | 'u'<<8 | 's' // FourCCOpus is "Opus".
	FourCCAAC  uint32 = 'm'<<24 | 'p'<<16 | '4'<<8 | 'a' // FourCCAAC is "mp4a".
	FourCCMP3  uint32 = '.'<<24 | 'm'<<16 | 'p'<<8 | '3' // FourCCMP3 is ".mp3".
	FourCCFLAC uint32 = 'f'<<24 | 'L'<<16 | 'a'<<8 | 'C' // FourCCFLAC is "fLaC".
	FourCCAC3  uint32 = 'a'<<24 | 'c'<<16 | '-'<<8 | '3' // FourCCAC3 is "ac-3".
	FourCCEAC3 uint32 = 'e'<<24 | 'c'<<16 | '-'<<8 | '3' // FourCCEAC3 is "ec-3".
)

// Sentinel errors. Functions wrap them with details; test with errors.Is.
var (
	// ErrTruncated means a body or file ended before a field it announced.
	ErrTruncated = errors.New("flv: truncated data")
	// ErrUnsupportedCodec means a codec id or FourCC this package does not carry.
	ErrUnsupportedCodec = errors.New("flv: unsupported codec")
	// ErrNoSequenceHeader means a coded frame arrived before its codec's
	// sequence header; the frame is dropped and counted, the stream goes on.
	ErrNoSequenceHeader = errors.New("flv: frame before sequence header")
	// ErrInvalidConfig means a sequence header (codec configuration) is malformed.
	ErrInvalidConfig = errors.New("flv: invalid codec configuration")
	// ErrInvalidFrame means a coded frame is malformed (bad NAL unit lengths...).
	ErrInvalidFrame = errors.New("flv: invalid frame")
	// ErrInvalidPacket means a header field holds a value the format does not define.
	ErrInvalidPacket = errors.New("flv: invalid packet")
	// ErrBadSignature means the input does not start with "FLV".
	ErrBadSignature = errors.New("flv: not an FLV stream")
	// ErrTagTooLarge means a tag is larger than the reader's limit.
	ErrTagTooLarge = errors.New("flv: tag too large")
	// ErrEncrypted means a tag has the filter (encryption) bit set.
	ErrEncrypted = errors.New("flv: encrypted tags are not supported")
	// ErrTrackMismatch means a frame was passed with a track of another kind or codec.
	ErrTrackMismatch = errors.New("flv: frame does not match track")
)
