package av1

import (
	"fmt"

	"github.com/quasipaa/quasipaa/internal/codec/internal/bitio"
)

// SequenceHeader is a parsed sequence_header_obu() (section 5.5), with the
// fields of operating point 0, the one a decoder picks by default.
type SequenceHeader struct {
	// Profile is seq_profile (0 Main, 1 High, 2 Professional).
	Profile uint8
	// StillPicture is still_picture.
	StillPicture bool
	// ReducedStillPictureHeader is reduced_still_picture_header.
	ReducedStillPictureHeader bool
	// OperatingPoints is operating_points_cnt_minus_1 + 1.
	OperatingPoints int
	// Level is seq_level_idx[0]: 0 is level 2.0, 5 is 3.1, 31 means no level.
	Level uint8
	// HighTier is seq_tier[0].
	HighTier bool
	// NumUnitsInDisplayTick and TimeScale come from timing_info(), 0 when absent.
	NumUnitsInDisplayTick, TimeScale uint32
	// MaxWidth and MaxHeight are max_frame_width_minus_1 + 1 and max_frame_height_minus_1 + 1.
	MaxWidth, MaxHeight int
	// BitDepth is 8, 10 or 12.
	BitDepth uint8
	// MonoChrome is mono_chrome.
	MonoChrome bool
	// SubsamplingX and SubsamplingY are the chroma subsampling flags (both set for 4:2:0).
	SubsamplingX, SubsamplingY bool
	// ChromaSamplePosition is chroma_sample_position (0 unknown, 1 vertical, 2 colocated).
	ChromaSamplePosition uint8
	// ColorPrimaries, TransferCharacteristics and MatrixCoefficients are the
	// colour description, 2 (unspecified) when absent.
	ColorPrimaries, TransferCharacteristics, MatrixCoefficients uint8
	// FullRange is color_range.
	FullRange bool
	// FilmGrainParamsPresent is film_grain_params_present.
	FilmGrainParamsPresent bool
}

// ProfileName returns the profile's name ("Main", "High", "Professional").
func (h SequenceHeader) ProfileName() string { return ProfileName(h.Profile) }

// LevelName returns the level of operating point 0 ("3.1").
func (h SequenceHeader) LevelName() string { return LevelName(h.Level) }

// FrameRate returns the frame rate the timing info implies, 0 when absent.
func (h SequenceHeader) FrameRate() float64 {
	if h.NumUnitsInDisplayTick == 0 {
		return 0
	}
	return float64(h.TimeScale) / float64(h.NumUnitsInDisplayTick)
}

// ParseSequenceHeaderOBU parses a whole sequence header OBU (its header included).
func ParseSequenceHeaderOBU(obu []byte) (SequenceHeader, error) {
	o, _, err := NextOBU(obu)
	if err != nil {
		return SequenceHeader{}, err
	}
	if o.Raw == nil || o.Type != OBUTypeSequenceHeader {
		return SequenceHeader{}, fmt.Errorf("%w: OBU type %v", ErrInvalidSequenceHeader, o.Type)
	}
	return ParseSequenceHeader(o.Payload)
}

// ParseSequenceHeader parses the payload of a sequence header OBU.
func ParseSequenceHeader(payload []byte) (SequenceHeader, error) {
	h, err := parseSequenceHeader(payload)
	if err != nil {
		return SequenceHeader{}, fmt.Errorf("%w: %v", ErrInvalidSequenceHeader, err)
	}
	return h, nil
}

// reader wraps bitio.Reader so that a run of reads checks one sticky error.
type reader struct {
	bitio.Reader
	err error
}

func (r *reader) f(n int) uint64 {
	if r.err != nil {
		return 0
	}
	v, err := r.ReadBits(n)
	r.err = err
	return v
}

func (r *reader) flag() bool { return r.f(1) == 1 }

func parseSequenceHeader(payload []byte) (SequenceHeader, error) {
	var h SequenceHeader
	r := &reader{Reader: bitio.NewReader(payload)}
	h.Profile = uint8(r.f(3))
	if r.err == nil && h.Profile > 2 {
		return h, fmt.Errorf("seq_profile %d", h.Profile)
	}
	h.StillPicture = r.flag()
	h.ReducedStillPictureHeader = r.flag()
	h.OperatingPoints = 1
	if h.ReducedStillPictureHeader {
		h.Level = uint8(r.f(5))
	} else {
		decoderModelInfo := false
		bufferDelayLength := 0
		if r.flag() { // timing_info_present_flag
			h.NumUnitsInDisplayTick = uint32(r.f(32))
			h.TimeScale = uint32(r.f(32))
			if r.flag() { // equal_picture_interval
				if r.err == nil {
					_, r.err = r.ReadUVLC() // num_ticks_per_picture_minus_1
				}
			}
			decoderModelInfo = r.flag()
			if decoderModelInfo {
				bufferDelayLength = int(r.f(5)) + 1
				r.f(32) // num_units_in_decoding_tick
				r.f(5)  // buffer_removal_time_length_minus_1
				r.f(5)  // frame_presentation_time_length_minus_1
			}
		}
		initialDisplayDelay := r.flag()
		h.OperatingPoints = int(r.f(5)) + 1
		for i := range h.OperatingPoints {
			r.f(12) // operating_point_idc
			level := uint8(r.f(5))
			tier := false
			if level > 7 {
				tier = r.flag()
			}
			if i == 0 {
				h.Level, h.HighTier = level, tier
			}
			if decoderModelInfo && r.flag() { // decoder_model_present_for_this_op
				r.f(bufferDelayLength) // decoder_buffer_delay
				r.f(bufferDelayLength) // encoder_buffer_delay
				r.f(1)                 // low_delay_mode_flag
			}
			if initialDisplayDelay && r.flag() { // initial_display_delay_present_for_this_op
				r.f(4) // initial_display_delay_minus_1
			}
		}
	}
	widthBits := int(r.f(4)) + 1
	heightBits := int(r.f(4)) + 1
	h.MaxWidth = int(r.f(widthBits)) + 1
	h.MaxHeight = int(r.f(heightBits)) + 1
	if !h.ReducedStillPictureHeader && r.flag() { // frame_id_numbers_present_flag
		r.f(4) // delta_frame_id_length_minus_2
		r.f(3) // additional_frame_id_length_minus_1
	}
	r.f(3) // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
	if !h.ReducedStillPictureHeader {
		r.f(4) // enable_interintra_compound, enable_masked_compound, enable_warped_motion, enable_dual_filter
		orderHint := r.flag()
		if orderHint {
			r.f(2) // enable_jnt_comp, enable_ref_frame_mvs
		}
		forceScreenContentTools := uint64(2) // SELECT_SCREEN_CONTENT_TOOLS
		if !r.flag() {                       // seq_choose_screen_content_tools
			forceScreenContentTools = r.f(1)
		}
		if forceScreenContentTools > 0 && !r.flag() { // seq_choose_integer_mv
			r.f(1) // seq_force_integer_mv
		}
		if orderHint {
			r.f(3) // order_hint_bits_minus_1
		}
	}
	r.f(3) // enable_superres, enable_cdef, enable_restoration
	readColorConfig(r, &h)
	h.FilmGrainParamsPresent = r.flag()
	if r.err != nil {
		return h, r.err
	}
	return h, nil
}

// readColorConfig reads color_config() (section 5.5.2).
func readColorConfig(r *reader, h *SequenceHeader) {
	highBitDepth := r.flag()
	h.BitDepth = 8
	switch {
	case h.Profile == 2 && highBitDepth:
		h.BitDepth = 10
		if r.flag() { // twelve_bit
			h.BitDepth = 12
		}
	case highBitDepth:
		h.BitDepth = 10
	}
	if h.Profile != 1 {
		h.MonoChrome = r.flag()
	}
	h.ColorPrimaries, h.TransferCharacteristics, h.MatrixCoefficients = 2, 2, 2
	if r.flag() { // color_description_present_flag
		h.ColorPrimaries = uint8(r.f(8))
		h.TransferCharacteristics = uint8(r.f(8))
		h.MatrixCoefficients = uint8(r.f(8))
	}
	switch {
	case h.MonoChrome:
		h.FullRange = r.flag()
		h.SubsamplingX, h.SubsamplingY = true, true
		return // no separate_uv_delta_q
	case h.ColorPrimaries == 1 && h.TransferCharacteristics == 13 && h.MatrixCoefficients == 0:
		// BT.709 primaries, sRGB transfer, identity matrix: 4:4:4 full range.
		h.FullRange = true
	default:
		h.FullRange = r.flag()
		switch {
		case h.Profile == 0:
			h.SubsamplingX, h.SubsamplingY = true, true
		case h.Profile == 1:
		case h.BitDepth == 12:
			h.SubsamplingX = r.flag()
			if h.SubsamplingX {
				h.SubsamplingY = r.flag()
			}
		default:
			h.SubsamplingX = true
		}
		if h.SubsamplingX && h.SubsamplingY {
			h.ChromaSamplePosition = uint8(r.f(2))
		}
	}
	r.f(1) // separate_uv_delta_q
}

// ProfileName names a seq_profile.
func ProfileName(profile uint8) string {
	switch profile {
	case 0:
		return "Main"
	case 1:
		return "High"
	case 2:
		return "Professional"
	}
	return fmt.Sprintf("Profile %d", profile)
}

// LevelName formats a seq_level_idx as Annex A names levels: 0 is "2.0",
// 5 is "3.1", 31 (no level constraint) is "max".
func LevelName(idx uint8) string {
	if idx == 31 {
		return "max"
	}
	return fmt.Sprintf("%d.%d", 2+idx>>2, idx&3)
}
