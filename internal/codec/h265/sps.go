package h265

import (
	"fmt"

	"github.com/quasipaa/quasipaa/internal/codec/internal/annexb"
	"github.com/quasipaa/quasipaa/internal/codec/internal/bitio"
)

// maxDimension bounds the picture size accepted from an SPS: far beyond any
// H.265 level, small enough that no arithmetic on it can overflow.
const maxDimension = 1 << 16

// spsPrefix bounds how much of an SPS is unescaped: the fields read here end
// well before it even with seven sub-layers.
const spsPrefix = 512

// ProfileTierLevel is the general part of a profile_tier_level() structure,
// the same 12 bytes an hvcC record starts with.
type ProfileTierLevel struct {
	// ProfileSpace is general_profile_space.
	ProfileSpace uint8
	// HighTier is general_tier_flag.
	HighTier bool
	// ProfileIDC is general_profile_idc (1 Main, 2 Main 10, 4 range extensions...).
	ProfileIDC uint8
	// CompatibilityFlags are general_profile_compatibility_flag[0..31], flag 0 in the most significant bit.
	CompatibilityFlags uint32
	// ConstraintFlags are the 48 bits from general_progressive_source_flag on.
	ConstraintFlags uint64
	// LevelIDC is general_level_idc, thirty times the level number (93 for 3.1).
	LevelIDC uint8
}

// SPS is the summary of a sequence parameter set that the server needs.
type SPS struct {
	// VPSID is sps_video_parameter_set_id.
	VPSID uint8
	// MaxSubLayers is sps_max_sub_layers_minus1 + 1.
	MaxSubLayers uint8
	// TemporalIDNesting is sps_temporal_id_nesting_flag.
	TemporalIDNesting bool
	// ProfileTierLevel is the general profile, tier and level.
	ProfileTierLevel
	// ID is sps_seq_parameter_set_id.
	ID uint32
	// ChromaFormatIDC is chroma_format_idc (0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4).
	ChromaFormatIDC uint8
	// SeparateColourPlane is separate_colour_plane_flag.
	SeparateColourPlane bool
	// CodedWidth and CodedHeight are pic_width/height_in_luma_samples.
	CodedWidth, CodedHeight int
	// Width and Height are the displayed size, after the conformance window.
	Width, Height int
	// BitDepthLuma and BitDepthChroma are the sample bit depths.
	BitDepthLuma, BitDepthChroma uint8
}

// ParseSPS parses a sequence parameter set NAL unit (2-byte header included)
// up to the bit depths, which is all the server needs; the rest of the SPS
// (scaling lists, reference picture sets, VUI) is not read, so encoder quirks
// there cannot make a stream unplayable.
func ParseSPS(nalu []byte) (SPS, error) {
	if len(nalu) < 3 {
		return SPS{}, fmt.Errorf("%w: %d bytes", ErrInvalidSPS, len(nalu))
	}
	if TypeOf(nalu) != NALUTypeSPS {
		return SPS{}, fmt.Errorf("%w: NAL unit type %v", ErrInvalidSPS, TypeOf(nalu))
	}
	rbsp := annexb.UnescapePrefix(make([]byte, 0, min(len(nalu), spsPrefix)), nalu[2:], spsPrefix)
	s, err := parseSPS(rbsp)
	if err != nil {
		return SPS{}, fmt.Errorf("%w: %v", ErrInvalidSPS, err)
	}
	return s, nil
}

func parseSPS(rbsp []byte) (SPS, error) {
	var s SPS
	r := bitio.NewReader(rbsp)
	v, err := r.ReadBits(8)
	if err != nil {
		return s, err
	}
	s.VPSID = uint8(v >> 4)
	s.MaxSubLayers = uint8(v>>1&7) + 1
	if s.MaxSubLayers > 7 {
		return s, fmt.Errorf("sps_max_sub_layers_minus1 7")
	}
	s.TemporalIDNesting = v&1 == 1
	if s.ProfileTierLevel, err = readProfileTierLevel(&r, int(s.MaxSubLayers)-1); err != nil {
		return s, err
	}
	if s.ID, err = r.ReadUE(); err != nil {
		return s, err
	}
	if s.ID > 15 {
		return s, fmt.Errorf("sps_seq_parameter_set_id %d", s.ID)
	}
	chroma, err := r.ReadUE()
	if err != nil {
		return s, err
	}
	if chroma > 3 {
		return s, fmt.Errorf("chroma_format_idc %d", chroma)
	}
	s.ChromaFormatIDC = uint8(chroma)
	if chroma == 3 {
		if s.SeparateColourPlane, err = r.ReadFlag(); err != nil {
			return s, err
		}
	}
	w, err := r.ReadUE()
	if err != nil {
		return s, err
	}
	h, err := r.ReadUE()
	if err != nil {
		return s, err
	}
	if w == 0 || h == 0 || w > maxDimension || h > maxDimension {
		return s, fmt.Errorf("picture size %dx%d", w, h)
	}
	s.CodedWidth, s.CodedHeight = int(w), int(h)
	width, height := int64(w), int64(h)
	window, err := r.ReadFlag()
	if err != nil {
		return s, err
	}
	if window {
		var off [4]uint32 // left, right, top, bottom
		for i := range off {
			if off[i], err = r.ReadUE(); err != nil {
				return s, err
			}
		}
		// Table 6-1: SubWidthC and SubHeightC, 1 when ChromaArrayType is 0.
		subW, subH := int64(1), int64(1)
		if !s.SeparateColourPlane {
			switch chroma {
			case 1:
				subW, subH = 2, 2
			case 2:
				subW = 2
			}
		}
		width -= subW * (int64(off[0]) + int64(off[1]))
		height -= subH * (int64(off[2]) + int64(off[3]))
		if width <= 0 || height <= 0 {
			return s, fmt.Errorf("conformance window leaves %dx%d", width, height)
		}
	}
	s.Width, s.Height = int(width), int(height)
	luma, err := r.ReadUE()
	if err != nil {
		return s, err
	}
	chromaDepth, err := r.ReadUE()
	if err != nil {
		return s, err
	}
	if luma > 8 || chromaDepth > 8 {
		return s, fmt.Errorf("bit depth %d/%d", luma+8, chromaDepth+8)
	}
	s.BitDepthLuma, s.BitDepthChroma = uint8(luma)+8, uint8(chromaDepth)+8
	return s, nil
}

// readProfileTierLevel reads profile_tier_level(1, maxSubLayersMinus1)
// (section 7.3.3), keeping the general part and skipping the sub-layers.
func readProfileTierLevel(r *bitio.Reader, maxSubLayersMinus1 int) (ProfileTierLevel, error) {
	var p ProfileTierLevel
	v, err := r.ReadBits(8)
	if err != nil {
		return p, err
	}
	p.ProfileSpace = uint8(v >> 6)
	p.HighTier = v>>5&1 == 1
	p.ProfileIDC = uint8(v & 0x1F)
	if v, err = r.ReadBits(32); err != nil {
		return p, err
	}
	p.CompatibilityFlags = uint32(v)
	if p.ConstraintFlags, err = r.ReadBits(48); err != nil {
		return p, err
	}
	if v, err = r.ReadBits(8); err != nil {
		return p, err
	}
	p.LevelIDC = uint8(v)
	if maxSubLayersMinus1 == 0 {
		return p, nil
	}
	var profilePresent, levelPresent [8]bool
	for i := range maxSubLayersMinus1 {
		if profilePresent[i], err = r.ReadFlag(); err != nil {
			return p, err
		}
		if levelPresent[i], err = r.ReadFlag(); err != nil {
			return p, err
		}
	}
	if err := r.Skip(2 * (8 - maxSubLayersMinus1)); err != nil {
		return p, err
	}
	for i := range maxSubLayersMinus1 {
		if profilePresent[i] {
			if err := r.Skip(88); err != nil {
				return p, err
			}
		}
		if levelPresent[i] {
			if err := r.Skip(8); err != nil {
				return p, err
			}
		}
	}
	return p, nil
}

// ProfileName returns the profile's name, see ProfileName.
func (p ProfileTierLevel) ProfileName() string {
	return ProfileName(p.ProfileIDC, p.CompatibilityFlags)
}

// LevelName returns the level as Table A.8 writes it ("3.1", "4").
func (p ProfileTierLevel) LevelName() string { return LevelName(p.LevelIDC) }

// ProfileName names a general_profile_idc as ffprobe does ("Main", "Main
// 10", "Rext"...). A profile_idc of 0 is resolved through the compatibility
// flags (flag 0 in the most significant bit).
func ProfileName(profileIDC uint8, compatibilityFlags uint32) string {
	idc := profileIDC
	if idc == 0 {
		for j := uint8(1); j < 32; j++ {
			if compatibilityFlags&(1<<(31-j)) != 0 {
				idc = j
				break
			}
		}
	}
	switch idc {
	case 1:
		return "Main"
	case 2:
		return "Main 10"
	case 3:
		return "Main Still Picture"
	case 4:
		return "Rext"
	case 5:
		return "High Throughput"
	case 6:
		return "Multiview Main"
	case 7:
		return "Scalable Main"
	case 8:
		return "3D Main"
	case 9:
		return "SCC"
	case 10:
		return "Scalable Rext"
	case 11:
		return "High Throughput SCC"
	}
	return fmt.Sprintf("Profile %d", profileIDC)
}

// LevelName formats a general_level_idc (thirty times the level) as Table
// A.8 writes it: 93 is "3.1", 120 is "4".
func LevelName(levelIDC uint8) string {
	major, minor := levelIDC/30, levelIDC%30/3
	if minor == 0 {
		return fmt.Sprintf("%d", major)
	}
	return fmt.Sprintf("%d.%d", major, minor)
}
