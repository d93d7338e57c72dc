package av1

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/quasipaa/quasipaa/internal/codec/internal/bitio"
	"github.com/quasipaa/quasipaa/internal/codec/internal/testmedia"
	"github.com/quasipaa/quasipaa/internal/media"
)

// The vectors in testdata were produced by ffmpeg 5.1 with libaom-av1 and
// libsvtav1, see ../testdata.sh. Expected values are what ffprobe reports.

func readFile(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func readMP4(tb testing.TB, name string) *testmedia.MP4Track {
	tb.Helper()
	tr, err := testmedia.ReadMP4(readFile(tb, name))
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	if tr.SampleEntry != "av01" || tr.Boxes["av1C"] == nil {
		tb.Fatalf("%s: sample entry %q without av1C", name, tr.SampleEntry)
	}
	return tr
}

// temporalUnits splits a low-overhead .obu file at its temporal delimiters.
func temporalUnits(tb testing.TB, data []byte) [][]byte {
	tb.Helper()
	var units [][]byte
	start := -1
	off := 0
	err := ForEachOBU(data, func(o OBU) bool {
		if o.Type == OBUTypeTemporalDelimiter {
			if start >= 0 {
				units = append(units, data[start:off])
			}
			start = off
		}
		off += len(o.Raw)
		return true
	})
	if err != nil || start < 0 {
		tb.Fatalf("splitting temporal units: %v", err)
	}
	return append(units, data[start:])
}

func TestTrackFromConfigRecord(t *testing.T) {
	for _, c := range []struct {
		file          string
		width, height int
		level         string
		depth         uint8
	}{
		{"av1_720p.mp4", 1280, 720, "3.1", 8},
		{"av1_svt_720p.mp4", 1280, 720, "3.1", 8},
		{"av1_10bit.mp4", 320, 180, "2.0", 10},
	} {
		t.Run(c.file, func(t *testing.T) {
			av1C := readMP4(t, c.file).Boxes["av1C"]
			tr, err := TrackFromConfigRecord(av1C)
			if err != nil {
				t.Fatal(err)
			}
			if tr.Codec != media.CodecAV1 || tr.Width != c.width || tr.Height != c.height ||
				tr.Profile != "Main" || tr.Level != c.level {
				t.Fatalf("track = %+v", tr)
			}
			if !bytes.Equal(tr.Config, av1C) || &tr.Config[0] == &av1C[0] {
				t.Fatal("Config is not a copy of av1C")
			}
			rec, _ := ParseConfigRecord(av1C)
			h, err := rec.SequenceHeader()
			if err != nil || rec.BitDepth() != c.depth || h.BitDepth != c.depth || !h.SubsamplingX || !h.SubsamplingY {
				t.Fatalf("record %+v, header %+v, %v", rec, h, err)
			}
		})
	}
}

func TestBuildConfigRecordMatchesFFmpeg(t *testing.T) {
	for _, file := range []string{"av1_720p.mp4", "av1_svt_720p.mp4", "av1_10bit.mp4"} {
		av1C := readMP4(t, file).Boxes["av1C"]
		c, err := ParseConfigRecord(av1C)
		if err != nil {
			t.Fatal(err)
		}
		built, err := BuildConfigRecord(SequenceHeaderOBU(c.ConfigOBUs))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(built, av1C) {
			t.Fatalf("%s: built %x, ffmpeg wrote %x", file, built, av1C)
		}
	}
}

func TestBuildConfigRecordAddsSizeField(t *testing.T) {
	c, _ := ParseConfigRecord(readMP4(t, "av1_720p.mp4").Boxes["av1C"])
	obu, _, _ := NextOBU(c.ConfigOBUs)
	// The same OBU without obu_has_size_field, as the last OBU of a sample may be.
	bare := append([]byte{obu.Raw[0] &^ 0x02}, obu.Payload...)
	built, err := BuildConfigRecord(bare)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(built[4:], obu.Raw) {
		t.Fatalf("configOBUs = %x, want %x", built[4:], obu.Raw)
	}
	// And with an extension header.
	ext := append([]byte{obu.Raw[0]&^0x02 | 0x04, 0x28}, obu.Payload...)
	built, err = BuildConfigRecord(ext)
	if err != nil {
		t.Fatal(err)
	}
	o, rest, err := NextOBU(built[4:])
	if err != nil || len(rest) != 0 || !o.HasSize || !o.HasExtension || o.TemporalID != 1 || o.SpatialID != 1 || !bytes.Equal(o.Payload, obu.Payload) {
		t.Fatalf("OBU %+v, rest %d, %v", o, len(rest), err)
	}
}

func TestIsKeyframe(t *testing.T) {
	for _, file := range []string{"av1_720p.mp4", "av1_svt_720p.mp4", "av1_10bit.mp4"} {
		tr := readMP4(t, file)
		for i, s := range tr.Samples {
			if got := IsKeyframe(s); got != tr.IsSync(i) {
				t.Errorf("%s sample %d: IsKeyframe = %v, stss says %v", file, i, got, tr.IsSync(i))
			}
		}
	}
	// The .obu file is the 720p stream with its temporal delimiters.
	units := temporalUnits(t, readFile(t, "av1_720p.obu"))
	if len(units) != 3 {
		t.Fatalf("%d temporal units", len(units))
	}
	for i, u := range units {
		if IsKeyframe(u) != (i == 0) {
			t.Errorf("temporal unit %d: IsKeyframe = %v", i, !(i == 0))
		}
	}
	// A reduced still picture header makes every frame a key frame.
	if !IsKeyframe(readFile(t, "av1_still.obu")) {
		t.Error("still picture is not a keyframe")
	}
	for name, p := range map[string][]byte{
		"empty":             nil,
		"forbidden bit":     {0x80},
		"truncated":         {0x32, 0x05, 0x10},
		"show existing key": {0x32, 0x01, 0x80}, // OBU_FRAME, show_existing_frame = 1
		"inter":             {0x32, 0x01, 0x20}, // frame_type INTER_FRAME
		"delimiter only":    {0x12, 0x00},
	} {
		if IsKeyframe(p) {
			t.Errorf("%s: reported as keyframe", name)
		}
	}
	if !IsKeyframe([]byte{0x12, 0x00, 0x1A, 0x01, 0x10}) { // TD, OBU_FRAME_HEADER KEY_FRAME shown
		t.Error("bare key frame header not detected")
	}
}

func TestDecoderModelAndStillPicture(t *testing.T) {
	// libaom with timing-info=model writes timing info and a decoder model,
	// which parsers that stop at decoder_model_info_present_flag reject.
	units := temporalUnits(t, readFile(t, "av1_decmodel.obu"))
	tr, err := TrackFromSequenceHeader(units[0])
	if err != nil {
		t.Fatal(err)
	}
	if tr.Width != 320 || tr.Height != 180 || tr.Profile != "Main" || tr.Level != "2.0" {
		t.Fatalf("track = %+v", tr)
	}
	h, err := ParseSequenceHeaderOBU(SequenceHeaderOBU(units[0]))
	if err != nil || h.TimeScale == 0 || h.FrameRate() <= 0 {
		t.Fatalf("header %+v, %v", h, err)
	}
	if !IsKeyframe(units[0]) {
		t.Fatal("first temporal unit is not a keyframe")
	}

	still := readFile(t, "av1_still.obu")
	h, err = ParseSequenceHeaderOBU(SequenceHeaderOBU(still))
	if err != nil || !h.StillPicture || !h.ReducedStillPictureHeader || h.MaxWidth != 64 || h.MaxHeight != 64 {
		t.Fatalf("still header %+v, %v", h, err)
	}
}

// TestSequenceHeaderSyntax checks branches no vector reaches: several
// operating points with decoder model and display delay parameters,
// frame ids, 12-bit 4:2:2 colour and a mono stream.
func TestSequenceHeaderSyntax(t *testing.T) {
	var w bitio.Writer
	w.WriteBits(2, 3)   // seq_profile 2
	w.WriteBits(0, 2)   // still_picture, reduced_still_picture_header
	w.WriteBits(1, 1)   // timing_info_present_flag
	w.WriteBits(1, 32)  // num_units_in_display_tick
	w.WriteBits(60, 32) // time_scale
	w.WriteBits(1, 1)   // equal_picture_interval
	w.WriteBits(1, 1)   // uvlc 0
	w.WriteBits(1, 1)   // decoder_model_info_present_flag
	w.WriteBits(9, 5)   // buffer_delay_length_minus_1: 10-bit delays
	w.WriteBits(1, 32)  // num_units_in_decoding_tick
	w.WriteBits(0, 10)  // buffer_removal_time_length_minus_1, frame_presentation_time_length_minus_1
	w.WriteBits(1, 1)   // initial_display_delay_present_flag
	w.WriteBits(1, 5)   // operating_points_cnt_minus_1: two points
	for i := range 2 {
		w.WriteBits(0x101, 12)       // operating_point_idc
		w.WriteBits(uint64(12+i), 5) // seq_level_idx 12 (5.0) then 13
		w.WriteBits(1, 1)            // seq_tier: high
		w.WriteBits(1, 1)            // decoder_model_present_for_this_op
		w.WriteBits(0, 21)           // decoder/encoder buffer delays, low_delay_mode_flag
		w.WriteBits(1, 1)            // initial_display_delay_present_for_this_op
		w.WriteBits(3, 4)            // initial_display_delay_minus_1
	}
	w.WriteBits(11, 4)    // frame_width_bits_minus_1
	w.WriteBits(11, 4)    // frame_height_bits_minus_1
	w.WriteBits(3839, 12) // max_frame_width_minus_1
	w.WriteBits(2159, 12) // max_frame_height_minus_1
	w.WriteBits(1, 1)     // frame_id_numbers_present_flag
	w.WriteBits(0, 7)     // frame id lengths
	w.WriteBits(0, 3)     // 128x128 superblock, filter intra, intra edge
	w.WriteBits(0, 4)     // interintra, masked, warped, dual filter
	w.WriteBits(1, 1)     // enable_order_hint
	w.WriteBits(0, 2)     // jnt_comp, ref_frame_mvs
	w.WriteBits(1, 1)     // seq_choose_screen_content_tools
	w.WriteBits(1, 1)     // seq_choose_integer_mv
	w.WriteBits(6, 3)     // order_hint_bits_minus_1
	w.WriteBits(0, 3)     // superres, cdef, restoration
	// color_config: 12-bit, not mono, BT.2020/PQ, 4:2:2 limited range.
	w.WriteBits(1, 1) // high_bitdepth
	w.WriteBits(1, 1) // twelve_bit
	w.WriteBits(0, 1) // mono_chrome
	w.WriteBits(1, 1) // color_description_present_flag
	w.WriteBits(9, 8)
	w.WriteBits(16, 8)
	w.WriteBits(9, 8)
	w.WriteBits(0, 1) // color_range
	w.WriteBits(1, 1) // subsampling_x
	w.WriteBits(0, 1) // subsampling_y
	w.WriteBits(0, 1) // separate_uv_delta_q
	w.WriteBits(1, 1) // film_grain_params_present
	w.WriteBits(1, 1) // trailing one bit
	h, err := ParseSequenceHeader(w.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := SequenceHeader{
		Profile: 2, OperatingPoints: 2, Level: 12, HighTier: true, NumUnitsInDisplayTick: 1, TimeScale: 60,
		MaxWidth: 3840, MaxHeight: 2160, BitDepth: 12, SubsamplingX: true,
		ColorPrimaries: 9, TransferCharacteristics: 16, MatrixCoefficients: 9, FilmGrainParamsPresent: true,
	}
	if h != want {
		t.Fatalf("header\n%+v\nwant\n%+v", h, want)
	}
	if h.ProfileName() != "Professional" || h.LevelName() != "5.0" || h.FrameRate() != 60 {
		t.Fatalf("names %q %q %v", h.ProfileName(), h.LevelName(), h.FrameRate())
	}
	// Every truncation of it fails cleanly.
	for n := range len(w.Bytes()) - 1 {
		if _, err := ParseSequenceHeader(w.Bytes()[:n]); !errors.Is(err, ErrInvalidSequenceHeader) {
			t.Fatalf("truncated to %d bytes: err = %v", n, err)
		}
	}

	// Monochrome profile 0.
	var m bitio.Writer
	m.WriteBits(0, 3)
	m.WriteBits(0b01, 2) // still_picture 0, reduced_still_picture_header 1
	m.WriteBits(31, 5)   // seq_level_idx: max
	m.WriteBits(3, 4)
	m.WriteBits(3, 4)
	m.WriteBits(15, 4) // 16 wide
	m.WriteBits(7, 4)  // 8 high
	m.WriteBits(0, 3)
	m.WriteBits(0, 3)
	m.WriteBits(0, 1) // high_bitdepth
	m.WriteBits(1, 1) // mono_chrome
	m.WriteBits(0, 1) // no colour description
	m.WriteBits(1, 1) // color_range
	m.WriteBits(0, 1) // film grain
	h, err = ParseSequenceHeader(m.Bytes())
	if err != nil || !h.MonoChrome || !h.FullRange || h.MaxWidth != 16 || h.MaxHeight != 8 || h.LevelName() != "max" {
		t.Fatalf("mono header %+v, %v", h, err)
	}
}

func TestConfigRecordErrors(t *testing.T) {
	good := readMP4(t, "av1_720p.mp4").Boxes["av1C"]
	for name, b := range map[string][]byte{
		"short":       good[:3],
		"version 0":   append([]byte{0x80}, good[1:]...),
		"no marker":   append([]byte{0x01}, good[1:]...),
		"bad obu":     append(bytes.Clone(good[:4]), 0x0A, 0x20, 0x00),
		"forbidden":   append(bytes.Clone(good[:4]), 0x8A),
		"leb overrun": append(bytes.Clone(good[:4]), 0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF),
	} {
		if _, err := ParseConfigRecord(b); !errors.Is(err, ErrInvalidConfigRecord) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	// A record without configOBUs is valid and gives a track without size.
	tr, err := TrackFromConfigRecord(good[:4])
	if err != nil || tr.Width != 0 || tr.Profile != "Main" || tr.Level != "3.1" {
		t.Fatalf("record without configOBUs: %+v, %v", tr, err)
	}
	if _, err := BuildConfigRecord([]byte{0x12, 0x00}); !errors.Is(err, ErrMissingSequenceHeader) {
		t.Fatalf("temporal delimiter: err = %v", err)
	}
	if _, err := TrackFromSequenceHeader([]byte{0x12, 0x00}); !errors.Is(err, ErrMissingSequenceHeader) {
		t.Fatalf("no sequence header: err = %v", err)
	}
}

func TestOBUs(t *testing.T) {
	data := readFile(t, "av1_720p.obu")
	var types []OBUType
	total := 0
	if err := ForEachOBU(data, func(o OBU) bool {
		types = append(types, o.Type)
		total += len(o.Raw)
		if !o.HasSize || o.HasExtension {
			t.Errorf("OBU %v: size %v extension %v", o.Type, o.HasSize, o.HasExtension)
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	want := []OBUType{2, 1, 6, 2, 6, 2, 6}
	if len(types) != len(want) || total != len(data) {
		t.Fatalf("types %v, %d of %d bytes", types, total, len(data))
	}
	for i := range want {
		if types[i] != want[i] {
			t.Fatalf("types %v, want %v", types, want)
		}
	}
	if OBUTypeFrame.String() != "OBU_FRAME" || OBUType(9).String() != "OBUType(9)" {
		t.Fatal("OBUType names wrong")
	}
	// leb128 round trip at the edges.
	for _, v := range []uint64{0, 127, 128, 16383, 16384, maxOBUSize} {
		b := appendLEB128(nil, v)
		got, n, err := readLEB128(b)
		if err != nil || got != v || n != len(b) {
			t.Fatalf("leb128 %d: %d, %d, %v", v, got, n, err)
		}
	}
	if _, _, err := readLEB128(appendLEB128(nil, maxOBUSize+1)); !errors.Is(err, ErrInvalidOBU) {
		t.Fatalf("oversized leb128: %v", err)
	}
}
