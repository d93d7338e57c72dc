// Package vp9 handles VP9 as Quasipaa carries it: the
// VPCodecConfigurationRecord of a track (the vpcC box of the VP Codec ISO
// Media File Format Binding, which enhanced RTMP/FLV sends as the sequence
// start) and the uncompressed header of a frame, which tells keyframes apart
// and holds the picture size the record lacks.
//
// Every parser here reads untrusted network input: none panics, and keyframe
// detection does not allocate.
package vp9

import (
	"errors"
	"fmt"

	mcvp9 "github.com/bluenviron/mediacommon/v2/pkg/codecs/vp9"

	"github.com/quasipaa/quasipaa/internal/codec/internal/bitio"
	"github.com/quasipaa/quasipaa/internal/media"
)

// Errors returned by this package.
var (
	// ErrInvalidConfigRecord is returned for a malformed VPCodecConfigurationRecord.
	ErrInvalidConfigRecord = errors.New("vp9: invalid VPCodecConfigurationRecord")
	// ErrInvalidFrame is returned when a frame's uncompressed header is malformed.
	ErrInvalidFrame = errors.New("vp9: invalid frame header")
	// ErrNotKeyframe is returned when a keyframe is required and the frame is not one.
	ErrNotKeyframe = errors.New("vp9: not a keyframe")
)

// Chroma subsampling values of the VPCodecConfigurationRecord.
const (
	ChromaSubsampling420Vertical  = 0
	ChromaSubsampling420Colocated = 1
	ChromaSubsampling422          = 2
	ChromaSubsampling444          = 3
)

// unspecifiedColour is the ISO/IEC 23091-2 code for "unspecified".
const unspecifiedColour uint8 = 2

// ConfigRecord is a VPCodecConfigurationRecord (VP Codec ISO Media File
// Format Binding, section 2.2).
type ConfigRecord struct {
	// Profile is the VP9 profile, 0 to 3.
	Profile uint8
	// Level is ten times the VP9 level (31 for 3.1), 0 when unspecified.
	Level uint8
	// BitDepth is 8, 10 or 12.
	BitDepth uint8
	// ChromaSubsampling is one of the ChromaSubsampling constants.
	ChromaSubsampling uint8
	// FullRange is videoFullRangeFlag.
	FullRange bool
	// ColourPrimaries, TransferCharacteristics and MatrixCoefficients follow
	// ISO/IEC 23091-2 (2 is unspecified).
	ColourPrimaries, TransferCharacteristics, MatrixCoefficients uint8
	// CodecInitializationData is empty for VP9. It aliases the parsed buffer.
	CodecInitializationData []byte
}

// ParseConfigRecord parses a VPCodecConfigurationRecord. It accepts the
// vpcC box body (version 1 and flags, then the record), which MP4 and the
// enhanced RTMP reference tools carry, and the bare record that FFmpeg's FLV
// muxer writes; the two are told apart by the record's bit depth field,
// which is never 0.
func ParseConfigRecord(vpcC []byte) (ConfigRecord, error) {
	b := vpcC
	switch {
	case len(b) >= 12 && b[0] == 1 && b[1] == 0 && b[2] == 0 && b[3] == 0:
		b = b[4:] // FullBox version 1, flags 0
	case len(b) >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0:
		return ConfigRecord{}, fmt.Errorf("%w: vpcC version 0 is not supported", ErrInvalidConfigRecord)
	}
	if len(b) < 8 {
		return ConfigRecord{}, fmt.Errorf("%w: %d bytes", ErrInvalidConfigRecord, len(vpcC))
	}
	c := ConfigRecord{
		Profile:                 b[0],
		Level:                   b[1],
		BitDepth:                b[2] >> 4,
		ChromaSubsampling:       b[2] >> 1 & 0x07,
		FullRange:               b[2]&1 == 1,
		ColourPrimaries:         b[3],
		TransferCharacteristics: b[4],
		MatrixCoefficients:      b[5],
	}
	n := int(b[6])<<8 | int(b[7])
	if 8+n > len(b) {
		return ConfigRecord{}, fmt.Errorf("%w: codecInitializationData truncated", ErrInvalidConfigRecord)
	}
	c.CodecInitializationData = b[8 : 8+n]
	if err := c.validate(); err != nil {
		return ConfigRecord{}, err
	}
	return c, nil
}

func (c ConfigRecord) validate() error {
	switch {
	case c.Profile > 3:
		return fmt.Errorf("%w: profile %d", ErrInvalidConfigRecord, c.Profile)
	case c.BitDepth != 8 && c.BitDepth != 10 && c.BitDepth != 12:
		return fmt.Errorf("%w: bit depth %d", ErrInvalidConfigRecord, c.BitDepth)
	case c.ChromaSubsampling > ChromaSubsampling444:
		return fmt.Errorf("%w: chroma subsampling %d", ErrInvalidConfigRecord, c.ChromaSubsampling)
	case len(c.CodecInitializationData) > 0xFFFF:
		return fmt.Errorf("%w: codecInitializationData too large", ErrInvalidConfigRecord)
	}
	return nil
}

// BuildConfigRecord writes a record as the vpcC box body: version 1 and
// flags 0, then the VPCodecConfigurationRecord.
func BuildConfigRecord(c ConfigRecord) ([]byte, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	full := byte(0)
	if c.FullRange {
		full = 1
	}
	n := len(c.CodecInitializationData)
	b := make([]byte, 0, 12+n)
	b = append(b, 1, 0, 0, 0,
		c.Profile, c.Level, c.BitDepth<<4|c.ChromaSubsampling<<1|full,
		c.ColourPrimaries, c.TransferCharacteristics, c.MatrixCoefficients,
		byte(n>>8), byte(n))
	return append(b, c.CodecInitializationData...), nil
}

// Keyframe is what the uncompressed header of a keyframe tells.
type Keyframe struct {
	// Profile is the VP9 profile, 0 to 3.
	Profile uint8
	// BitDepth is 8, 10 or 12.
	BitDepth uint8
	// ColorSpace is color_space (0 unknown, 1 BT.601, 2 BT.709, ... 7 sRGB).
	ColorSpace uint8
	// FullRange is color_range.
	FullRange bool
	// SubsamplingX and SubsamplingY are the chroma subsampling flags (both set for 4:2:0).
	SubsamplingX, SubsamplingY bool
	// Width and Height are the frame size.
	Width, Height int
}

// ParseKeyframe reads the uncompressed header of a keyframe (the first frame
// of a superframe). It returns ErrNotKeyframe for any other frame.
func ParseKeyframe(frame []byte) (Keyframe, error) {
	if !IsKeyframe(frame) {
		if len(frame) == 0 || frame[0]>>6 != 2 {
			return Keyframe{}, fmt.Errorf("%w: no frame marker", ErrInvalidFrame)
		}
		return Keyframe{}, ErrNotKeyframe
	}
	var h mcvp9.Header
	if err := h.Unmarshal(frame); err != nil {
		return Keyframe{}, fmt.Errorf("%w: %v", ErrInvalidFrame, err)
	}
	if h.ColorConfig == nil || h.FrameSize == nil {
		return Keyframe{}, fmt.Errorf("%w: keyframe without colour config or size", ErrInvalidFrame)
	}
	return Keyframe{
		Profile:      h.Profile,
		BitDepth:     h.ColorConfig.BitDepth,
		ColorSpace:   h.ColorConfig.ColorSpace,
		FullRange:    h.ColorConfig.ColorRange,
		SubsamplingX: h.ColorConfig.SubsamplingX,
		SubsamplingY: h.ColorConfig.SubsamplingY,
		Width:        h.Width(),
		Height:       h.Height(),
	}, nil
}

// IsKeyframe reports whether a frame (or the first frame of a superframe) is
// a keyframe: frame_type KEY_FRAME, not a show_existing_frame, followed by
// the frame sync code. A malformed frame is not a keyframe.
func IsKeyframe(frame []byte) bool {
	r := bitio.NewReader(frame)
	v, err := r.ReadBits(4) // frame_marker(2) profile_low_bit(1) profile_high_bit(1)
	if err != nil || v>>2 != 2 {
		return false
	}
	if v&3 == 3 { // profile 3 (bits read low first): reserved_zero
		if z, err := r.ReadBits(1); err != nil || z != 0 {
			return false
		}
	}
	// show_existing_frame(1) frame_type(1) show_frame(1) error_resilient_mode(1)
	v, err = r.ReadBits(4)
	if err != nil || v&0b1100 != 0 {
		return false
	}
	sync, err := r.ReadBits(24)
	return err == nil && sync == 0x498342
}

// matrixCoefficients maps a VP9 color_space to ISO/IEC 23091-2 matrix
// coefficients, as decoders interpret it.
var matrixCoefficients = [8]uint8{
	0: unspecifiedColour, // CS_UNKNOWN
	1: 5,                 // CS_BT_601: BT.470BG
	2: 1,                 // CS_BT_709
	3: 6,                 // CS_SMPTE_170
	4: 7,                 // CS_SMPTE_240
	5: 9,                 // CS_BT_2020: non-constant luminance
	6: 3,                 // CS_RESERVED
	7: 0,                 // CS_RGB: identity
}

// ConfigRecordFromKeyframe derives a record from a keyframe's header, for
// publishers that send none (WebRTC, or FLV without a sequence start). The
// level is estimated from the picture size alone, see EstimateLevel.
func ConfigRecordFromKeyframe(frame []byte) (ConfigRecord, error) {
	k, err := ParseKeyframe(frame)
	if err != nil {
		return ConfigRecord{}, err
	}
	c := ConfigRecord{
		Profile:                 k.Profile,
		Level:                   EstimateLevel(k.Width, k.Height),
		BitDepth:                k.BitDepth,
		FullRange:               k.FullRange,
		ColourPrimaries:         unspecifiedColour,
		TransferCharacteristics: unspecifiedColour,
		MatrixCoefficients:      matrixCoefficients[k.ColorSpace&7],
	}
	switch {
	case k.SubsamplingX && k.SubsamplingY:
		c.ChromaSubsampling = ChromaSubsampling420Colocated
	case k.SubsamplingX:
		c.ChromaSubsampling = ChromaSubsampling422
	default:
		c.ChromaSubsampling = ChromaSubsampling444
	}
	return c, nil
}

// levels lists the VP9 levels with their maximum luma picture size.
var levels = []struct {
	level   uint8
	picture int
}{
	{10, 36864}, {11, 73728}, {20, 122880}, {21, 245760}, {30, 552960}, {31, 983040},
	{40, 2228224}, {50, 8912896}, {60, 35651584},
}

// EstimateLevel returns the lowest VP9 level (times ten) whose maximum
// picture size holds width x height, ignoring the sample rate and bit rate
// limits that a live server cannot know in advance; 0 if none does.
func EstimateLevel(width, height int) uint8 {
	if width <= 0 || height <= 0 {
		return 0
	}
	size := width * height
	for _, l := range levels {
		if size <= l.picture {
			return l.level
		}
	}
	return 0
}

// ProfileName returns "Profile 0" to "Profile 3", as ffprobe names them.
func ProfileName(profile uint8) string { return fmt.Sprintf("Profile %d", profile) }

// LevelName formats a level times ten as the VP9 levels are named ("3.1",
// "4"), or "" when unspecified (0).
func LevelName(level uint8) string {
	switch {
	case level == 0:
		return ""
	case level%10 == 0:
		return fmt.Sprintf("%d", level/10)
	}
	return fmt.Sprintf("%d.%d", level/10, level%10)
}

// TrackFromConfigRecord describes a VP9 track from its vpcC record, which
// may be empty (the media model allows that). The record carries no picture
// size: fill it with SetKeyframe once the first keyframe arrives. A bare
// record (without version and flags) is rewritten as a vpcC box body.
func TrackFromConfigRecord(vpcC []byte) (*media.Track, error) {
	t := &media.Track{Codec: media.CodecVP9}
	if len(vpcC) == 0 {
		return t, nil
	}
	c, err := ParseConfigRecord(vpcC)
	if err != nil {
		return nil, err
	}
	if t.Config, err = BuildConfigRecord(c); err != nil {
		return nil, err
	}
	t.Profile, t.Level = ProfileName(c.Profile), LevelName(c.Level)
	return t, nil
}

// TrackFromKeyframe describes a VP9 track from a keyframe alone, building a
// vpcC record with ConfigRecordFromKeyframe.
func TrackFromKeyframe(frame []byte) (*media.Track, error) {
	c, err := ConfigRecordFromKeyframe(frame)
	if err != nil {
		return nil, err
	}
	t, err := TrackFromConfigRecord(mustBuild(c))
	if err != nil {
		return nil, err
	}
	return t, SetKeyframe(t, frame)
}

func mustBuild(c ConfigRecord) []byte {
	b, _ := BuildConfigRecord(c) // c comes from a parsed keyframe: always valid
	return b
}

// SetKeyframe fills a track's Width and Height from a keyframe, and its
// Config and Profile when the track has no record yet. Call it before the
// track is handed to the hub: tracks are immutable afterwards.
func SetKeyframe(t *media.Track, frame []byte) error {
	k, err := ParseKeyframe(frame)
	if err != nil {
		return err
	}
	t.Width, t.Height = k.Width, k.Height
	if len(t.Config) == 0 {
		c, err := ConfigRecordFromKeyframe(frame)
		if err != nil {
			return err
		}
		t.Config = mustBuild(c)
		t.Profile, t.Level = ProfileName(c.Profile), LevelName(c.Level)
	}
	return nil
}
