package h264

import (
	"fmt"

	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// maxDimension bounds the picture size accepted from an SPS: far beyond any
// H.264 level, small enough that no arithmetic on it can overflow.
const maxDimension = 1 << 16

// SPS is the summary of a sequence parameter set that the server needs.
type SPS struct {
	// ProfileIDC is profile_idc (66 Baseline, 77 Main, 100 High...).
	ProfileIDC uint8
	// ConstraintFlags is the byte holding constraint_set0_flag..constraint_set5_flag
	// (set0 in the most significant bit), as in the avcC profile_compatibility field.
	ConstraintFlags uint8
	// LevelIDC is level_idc, ten times the level number (31 for 3.1).
	LevelIDC uint8
	// ID is seq_parameter_set_id.
	ID uint32
	// ChromaFormatIDC is chroma_format_idc (0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4).
	ChromaFormatIDC uint8
	// BitDepthLuma and BitDepthChroma are the sample bit depths.
	BitDepthLuma, BitDepthChroma uint8
	// Width and Height are the displayed picture size, after frame cropping.
	Width, Height int
	// Interlaced is true when the stream may carry field pictures (frame_mbs_only_flag = 0).
	Interlaced bool
	// FrameRate is the frame rate signalled in the VUI timing info, 0 when absent.
	FrameRate float64
}

// ParseSPS parses a sequence parameter set NAL unit (header byte included).
func ParseSPS(nalu []byte) (SPS, error) {
	if len(nalu) < 4 {
		return SPS{}, fmt.Errorf("%w: %d bytes", ErrInvalidSPS, len(nalu))
	}
	if TypeOf(nalu) != NALUTypeSPS {
		return SPS{}, fmt.Errorf("%w: NAL unit type %v", ErrInvalidSPS, TypeOf(nalu))
	}
	var s mch264.SPS
	if err := s.Unmarshal(nalu); err != nil {
		return SPS{}, fmt.Errorf("%w: %v", ErrInvalidSPS, err)
	}
	if s.ChromaFormatIdc > 3 {
		return SPS{}, fmt.Errorf("%w: chroma_format_idc %d", ErrInvalidSPS, s.ChromaFormatIdc)
	}
	if s.BitDepthLumaMinus8 > 6 || s.BitDepthChromaMinus8 > 6 {
		return SPS{}, fmt.Errorf("%w: bit depth", ErrInvalidSPS)
	}
	if s.PicWidthInMbsMinus1 >= maxDimension/16 || s.PicHeightInMapUnitsMinus1 >= maxDimension/16 {
		return SPS{}, fmt.Errorf("%w: picture size", ErrInvalidSPS)
	}

	// Section 7.4.2.1.1: the crop unit depends on ChromaArrayType and on
	// whether pictures are frames or fields.
	frameMbsOnly := int64(0)
	if s.FrameMbsOnlyFlag {
		frameMbsOnly = 1
	}
	chromaArrayType := int64(s.ChromaFormatIdc)
	if s.SeparateColourPlaneFlag {
		chromaArrayType = 0
	}
	cropUnitX, cropUnitY := int64(1), 2-frameMbsOnly
	if chromaArrayType != 0 {
		subWidthC, subHeightC := int64(2), int64(2)
		switch chromaArrayType {
		case 2:
			subHeightC = 1
		case 3:
			subWidthC, subHeightC = 1, 1
		}
		cropUnitX, cropUnitY = subWidthC, subHeightC*(2-frameMbsOnly)
	}
	width := (int64(s.PicWidthInMbsMinus1) + 1) * 16
	height := (2 - frameMbsOnly) * (int64(s.PicHeightInMapUnitsMinus1) + 1) * 16
	if c := s.FrameCropping; c != nil {
		width -= cropUnitX * (int64(c.LeftOffset) + int64(c.RightOffset))
		height -= cropUnitY * (int64(c.TopOffset) + int64(c.BottomOffset))
	}
	if width <= 0 || height <= 0 {
		return SPS{}, fmt.Errorf("%w: cropping leaves %dx%d", ErrInvalidSPS, width, height)
	}

	out := SPS{
		ProfileIDC:      s.ProfileIdc,
		ConstraintFlags: constraintByte(&s),
		LevelIDC:        s.LevelIdc,
		ID:              s.ID,
		ChromaFormatIDC: uint8(s.ChromaFormatIdc),
		BitDepthLuma:    uint8(s.BitDepthLumaMinus8) + 8,
		BitDepthChroma:  uint8(s.BitDepthChromaMinus8) + 8,
		Width:           int(width),
		Height:          int(height),
		Interlaced:      !s.FrameMbsOnlyFlag,
	}
	if v := s.VUI; v != nil && v.TimingInfo != nil && v.TimingInfo.NumUnitsInTick != 0 {
		out.FrameRate = float64(v.TimingInfo.TimeScale) / (2 * float64(v.TimingInfo.NumUnitsInTick))
	}
	return out, nil
}

func constraintByte(s *mch264.SPS) uint8 {
	var b uint8
	for i, f := range []bool{s.ConstraintSet0Flag, s.ConstraintSet1Flag, s.ConstraintSet2Flag,
		s.ConstraintSet3Flag, s.ConstraintSet4Flag, s.ConstraintSet5Flag} {
		if f {
			b |= 0x80 >> i
		}
	}
	return b
}

// ProfileName returns the profile's name as ffprobe prints it ("High",
// "Main", "Constrained Baseline"...).
func (s SPS) ProfileName() string { return ProfileName(s.ProfileIDC, s.ConstraintFlags) }

// LevelName returns the level as written in Table A-1 ("3.1", "4", "1b").
func (s SPS) LevelName() string { return LevelName(s.ProfileIDC, s.ConstraintFlags, s.LevelIDC) }

// Constraint flag bits of the profile_compatibility byte.
const (
	constraintSet1 = 0x40
	constraintSet3 = 0x10
	constraintSet4 = 0x08
	constraintSet5 = 0x04
)

// ProfileName names a profile_idc, refined by the constraint flags byte
// (set0 in the most significant bit) the way Annex A defines sub-profiles.
func ProfileName(profileIDC, constraintFlags uint8) string {
	switch profileIDC {
	case 66:
		if constraintFlags&constraintSet1 != 0 {
			return "Constrained Baseline"
		}
		return "Baseline"
	case 77:
		return "Main"
	case 88:
		return "Extended"
	case 100:
		switch {
		case constraintFlags&(constraintSet4|constraintSet5) == constraintSet4|constraintSet5:
			return "Constrained High"
		case constraintFlags&constraintSet4 != 0:
			return "Progressive High"
		}
		return "High"
	case 110:
		if constraintFlags&constraintSet3 != 0 {
			return "High 10 Intra"
		}
		return "High 10"
	case 122:
		if constraintFlags&constraintSet3 != 0 {
			return "High 4:2:2 Intra"
		}
		return "High 4:2:2"
	case 244:
		if constraintFlags&constraintSet3 != 0 {
			return "High 4:4:4 Intra"
		}
		return "High 4:4:4 Predictive"
	case 44:
		return "CAVLC 4:4:4 Intra"
	case 83:
		return "Scalable Baseline"
	case 86:
		return "Scalable High"
	case 118:
		return "Multiview High"
	case 128:
		return "Stereo High"
	case 134:
		return "MFC High"
	}
	return fmt.Sprintf("Profile %d", profileIDC)
}

// LevelName formats a level_idc as Table A-1 names it: "3.1", "4", and "1b"
// for level_idc 9, or 11 with constraint_set3_flag in the Baseline, Main and
// Extended profiles.
func LevelName(profileIDC, constraintFlags, levelIDC uint8) string {
	if levelIDC == 9 || (levelIDC == 11 && constraintFlags&constraintSet3 != 0 &&
		(profileIDC == 66 || profileIDC == 77 || profileIDC == 88)) {
		return "1b"
	}
	if levelIDC%10 == 0 {
		return fmt.Sprintf("%d", levelIDC/10)
	}
	return fmt.Sprintf("%d.%d", levelIDC/10, levelIDC%10)
}
