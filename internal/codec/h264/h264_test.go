package h264

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/quasipaa/quasipaa/internal/codec/internal/testmedia"
	"github.com/quasipaa/quasipaa/internal/media"
)

// The vectors in testdata were produced by ffmpeg 5.1 with libx264, see
// ../testdata.sh. Expected values are what ffprobe reports for them.

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
	if tr.SampleEntry != "avc1" || tr.Boxes["avcC"] == nil {
		tb.Fatalf("%s: sample entry %q without avcC", name, tr.SampleEntry)
	}
	return tr
}

func nalus(tb testing.TB, avcc []byte) [][]byte {
	tb.Helper()
	var out [][]byte
	if err := ForEachNALU(avcc, func(n []byte) bool { out = append(out, n); return true }); err != nil {
		tb.Fatalf("ForEachNALU: %v", err)
	}
	return out
}

func TestTrackFromConfigRecord(t *testing.T) {
	for _, c := range []struct {
		file          string
		width, height int
		profile       string
		level         string
	}{
		{"h264_720p.mp4", 1280, 720, "High", "3.1"},
		{"h264_1080p_baseline.mp4", 1920, 1080, "Constrained Baseline", "4"},
		{"h264_main_360p.mp4", 640, 360, "Main", "3"},
	} {
		t.Run(c.file, func(t *testing.T) {
			avcC := readMP4(t, c.file).Boxes["avcC"]
			tr, err := TrackFromConfigRecord(avcC)
			if err != nil {
				t.Fatal(err)
			}
			if tr.Codec != media.CodecH264 || tr.Width != c.width || tr.Height != c.height ||
				tr.Profile != c.profile || tr.Level != c.level {
				t.Fatalf("track = %+v, want %dx%d %s %s", tr, c.width, c.height, c.profile, c.level)
			}
			if !bytes.Equal(tr.Config, avcC) {
				t.Fatalf("Config differs from the 4-byte-length avcC it was built from")
			}
			if &tr.Config[0] == &avcC[0] {
				t.Fatalf("Config aliases the caller's buffer")
			}
		})
	}
}

func TestParseConfigRecord(t *testing.T) {
	avcC := readMP4(t, "h264_720p.mp4").Boxes["avcC"]
	c, err := ParseConfigRecord(avcC)
	if err != nil {
		t.Fatal(err)
	}
	if c.ProfileIndication != 100 || c.LevelIndication != 31 || c.LengthSize != 4 {
		t.Fatalf("record = %+v", c)
	}
	if len(c.SPS) != 1 || len(c.PPS) != 1 || TypeOf(c.SPS[0]) != NALUTypeSPS || TypeOf(c.PPS[0]) != NALUTypePPS {
		t.Fatalf("parameter sets: %d SPS, %d PPS", len(c.SPS), len(c.PPS))
	}
	if !c.HasExtension || c.ChromaFormat != 1 || c.BitDepthLuma != 8 || c.BitDepthChroma != 8 {
		t.Fatalf("High profile extension = %v chroma %d depth %d/%d", c.HasExtension, c.ChromaFormat, c.BitDepthLuma, c.BitDepthChroma)
	}
	sps, err := ParseSPS(c.SPS[0])
	if err != nil {
		t.Fatal(err)
	}
	if sps.Width != 1280 || sps.Height != 720 || sps.FrameRate != 30 || sps.Interlaced || sps.ChromaFormatIDC != 1 {
		t.Fatalf("SPS = %+v", sps)
	}
}

func TestBuildConfigRecordMatchesFFmpeg(t *testing.T) {
	for _, file := range []string{"h264_720p.mp4", "h264_1080p_baseline.mp4", "h264_main_360p.mp4"} {
		avcC := readMP4(t, file).Boxes["avcC"]
		c, err := ParseConfigRecord(avcC)
		if err != nil {
			t.Fatal(err)
		}
		built, err := BuildConfigRecord(c.SPS, c.PPS)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(built, avcC) {
			t.Fatalf("%s: built\n%x\nffmpeg wrote\n%x", file, built, avcC)
		}
	}
}

func TestBuildConfigRecordErrors(t *testing.T) {
	c, _ := ParseConfigRecord(readMP4(t, "h264_720p.mp4").Boxes["avcC"])
	for name, tc := range map[string]struct {
		sps, pps [][]byte
		want     error
	}{
		"no sps":      {nil, c.PPS, ErrMissingSPS},
		"no pps":      {c.SPS, nil, ErrMissingPPS},
		"pps as sps":  {c.PPS, c.PPS, ErrInvalidParameterSet},
		"empty pps":   {c.SPS, [][]byte{{}}, ErrInvalidParameterSet},
		"garbage sps": {[][]byte{{0x67, 0xFF}}, c.PPS, ErrInvalidSPS},
	} {
		if _, err := BuildConfigRecord(tc.sps, tc.pps); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
}

func TestParseConfigRecordErrors(t *testing.T) {
	good := readMP4(t, "h264_720p.mp4").Boxes["avcC"]
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for name, b := range map[string][]byte{
		"empty":        nil,
		"short":        good[:6],
		"version 0":    mutate(func(b []byte) []byte { b[0] = 0; return b }),
		"length 3":     mutate(func(b []byte) []byte { b[4] = 0xFE; return b }),
		"truncated":    good[:20],
		"no pps count": good[:8+(int(good[6])<<8|int(good[7]))],
		"sps type":     mutate(func(b []byte) []byte { b[8] = 0x68; return b }),
	} {
		if _, err := ParseConfigRecord(b); !errors.Is(err, ErrInvalidConfigRecord) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := TrackFromConfigRecord([]byte{1, 100, 0, 31, 0xFF, 0xE0, 0}); !errors.Is(err, ErrMissingSPS) {
		t.Errorf("record without SPS: err = %v", err)
	}
}

func TestLengthSizeNormalised(t *testing.T) {
	tr := readMP4(t, "h264_720p.mp4")
	avcC := bytes.Clone(tr.Boxes["avcC"])
	avcC[4] = 0xFC | 1 // declare 2-byte lengths
	c, err := ParseConfigRecord(avcC)
	if err != nil || c.LengthSize != 2 {
		t.Fatalf("LengthSize = %d, %v", c.LengthSize, err)
	}
	track, err := TrackFromConfigRecord(avcC)
	if err != nil {
		t.Fatal(err)
	}
	if track.Config[4]&3 != 3 || !bytes.Equal(track.Config, tr.Boxes["avcC"]) {
		t.Fatalf("Config not normalised to 4-byte lengths: %x", track.Config[:6])
	}

	// A sample re-framed with 2-byte lengths converts back to the original.
	for _, s := range tr.Samples {
		var two []byte
		for _, n := range nalus(t, s) {
			if len(n) > 0xFFFF {
				t.Skip("NAL unit too large for 2-byte lengths")
			}
			two = append(two, byte(len(n)>>8), byte(len(n)))
			two = append(two, n...)
		}
		back, err := ConvertLengthSize(nil, two, 2)
		if err != nil || !bytes.Equal(back, s) {
			t.Fatalf("ConvertLengthSize: %v", err)
		}
	}
	if _, err := ConvertLengthSize(nil, []byte{0, 5, 1}, 2); !errors.Is(err, ErrTruncated) {
		t.Fatalf("truncated: err = %v", err)
	}
	if _, err := ConvertLengthSize(nil, []byte{0, 1, 1}, 3); !errors.Is(err, ErrInvalidLengthSize) {
		t.Fatalf("size 3: err = %v", err)
	}
}

func TestAnnexBToAVCC(t *testing.T) {
	tr := readMP4(t, "h264_720p.mp4")
	c, _ := ParseConfigRecord(tr.Boxes["avcC"])
	// h264_720p.h264 is the same stream remuxed by h264_mp4toannexb, which
	// inserts the avcC parameter sets before the IDR slice.
	var want [][]byte
	for _, s := range tr.Samples {
		for _, n := range nalus(t, s) {
			if TypeOf(n) == NALUTypeIDR {
				want = append(want, c.SPS...)
				want = append(want, c.PPS...)
			}
			want = append(want, n)
		}
	}
	annexB := readFile(t, "h264_720p.h264")
	avcc, err := AnnexBToAVCC(nil, annexB)
	if err != nil {
		t.Fatal(err)
	}
	got := nalus(t, avcc)
	if len(got) != len(want) {
		t.Fatalf("%d NAL units, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("NAL unit %d (%v) differs", i, TypeOf(got[i]))
		}
	}

	// Round trip through Annex B with 4-byte start codes.
	back, err := AVCCToAnnexB(nil, avcc)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(avcc) {
		t.Fatalf("AVCCToAnnexB changed the size: %d -> %d", len(avcc), len(back))
	}
	again, err := AnnexBToAVCC(nil, back)
	if err != nil || !bytes.Equal(again, avcc) {
		t.Fatalf("round trip differs: %v", err)
	}

	// In-band parameter sets are found.
	sps, pps := ParameterSets(avcc)
	if len(sps) != 1 || len(pps) != 1 || !bytes.Equal(sps[0], c.SPS[0]) || !bytes.Equal(pps[0], c.PPS[0]) {
		t.Fatalf("ParameterSets: %d SPS, %d PPS", len(sps), len(pps))
	}
	if !HasParameterSets(avcc) || HasParameterSets(tr.Samples[1]) {
		t.Fatalf("HasParameterSets wrong")
	}
	track, err := TrackFromParameterSets(sps, pps)
	if err != nil || track.Width != 1280 || track.Height != 720 || !bytes.Equal(track.Config, tr.Boxes["avcC"]) {
		t.Fatalf("TrackFromParameterSets = %+v, %v", track, err)
	}

	// Appending keeps what dst held.
	prefix := []byte("keep")
	out, err := AnnexBToAVCC(prefix, annexB)
	if err != nil || !bytes.Equal(out[:4], prefix) || !bytes.Equal(out[4:], avcc) {
		t.Fatalf("append to dst broken: %v", err)
	}
}

func TestAnnexBEdgeCases(t *testing.T) {
	for name, c := range map[string]struct {
		in   []byte
		want [][]byte
		err  error
	}{
		"3-byte start codes":  {[]byte{0, 0, 1, 0x65, 1, 0, 0, 1, 0x41, 2}, [][]byte{{0x65, 1}, {0x41, 2}}, nil},
		"leading zeros":       {[]byte{0, 0, 0, 0, 0, 1, 0x09, 0xF0}, [][]byte{{0x09, 0xF0}}, nil},
		"trailing zeros":      {[]byte{0, 0, 0, 1, 0x67, 5, 0, 0, 0, 0, 0, 1, 0x68, 6, 0, 0}, [][]byte{{0x67, 5}, {0x68, 6}}, nil},
		"empty units skipped": {[]byte{0, 0, 1, 0, 0, 1, 0x41, 7}, [][]byte{{0x41, 7}}, nil},
		"no start code":       {[]byte{0x65, 1, 2}, nil, ErrNoStartCode},
		"garbage before":      {[]byte{7, 0, 0, 1, 0x65}, nil, ErrNoStartCode},
		"only start codes":    {[]byte{0, 0, 1, 0, 0, 0, 1}, nil, ErrNoNALUs},
		"empty":               {nil, nil, ErrNoStartCode},
	} {
		out, err := AnnexBToAVCC(nil, c.in)
		if !errors.Is(err, c.err) {
			t.Errorf("%s: err = %v, want %v", name, err, c.err)
			continue
		}
		if err != nil {
			if len(out) != 0 {
				t.Errorf("%s: output on error", name)
			}
			continue
		}
		got := nalus(t, out)
		if len(got) != len(c.want) {
			t.Errorf("%s: got %x", name, got)
			continue
		}
		for i := range got {
			if !bytes.Equal(got[i], c.want[i]) {
				t.Errorf("%s: unit %d = %x, want %x", name, i, got[i], c.want[i])
			}
		}
	}
}

func TestAVCCErrors(t *testing.T) {
	for name, in := range map[string][]byte{
		"short length": {0, 0, 1},
		"overlong":     {0, 0, 0, 9, 0x65, 1},
		"second bad":   {0, 0, 0, 1, 0x65, 0, 0},
	} {
		if err := ForEachNALU(in, func([]byte) bool { return true }); !errors.Is(err, ErrTruncated) {
			t.Errorf("%s: ForEachNALU err = %v", name, err)
		}
		if _, err := AVCCToAnnexB(nil, in); !errors.Is(err, ErrTruncated) {
			t.Errorf("%s: AVCCToAnnexB err = %v", name, err)
		}
	}
	if _, err := AVCCToAnnexB(nil, nil); !errors.Is(err, ErrNoNALUs) {
		t.Errorf("empty: err = %v", err)
	}
	// NextNALU walks the same units as ForEachNALU, zero-length ones skipped.
	in := []byte{0, 0, 0, 0, 0, 0, 0, 2, 0x65, 1, 0, 0, 0, 1, 0x41}
	var got [][]byte
	for n, rest, err := NextNALU(in); n != nil || err != nil; n, rest, err = NextNALU(rest) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
	}
	if len(got) != 2 || !bytes.Equal(got[0], []byte{0x65, 1}) || !bytes.Equal(got[1], []byte{0x41}) {
		t.Fatalf("NextNALU = %x", got)
	}
	if _, err := AppendNALU(nil, nil); !errors.Is(err, ErrNoNALUs) {
		t.Fatalf("AppendNALU(empty) err = %v", err)
	}
	if out, _ := AppendNALU([]byte{9}, []byte{0x65, 1}); !bytes.Equal(out, []byte{9, 0, 0, 0, 2, 0x65, 1}) {
		t.Fatalf("AppendNALU = %x", out)
	}
}

func TestIsKeyframe(t *testing.T) {
	for _, file := range []string{"h264_720p.mp4", "h264_main_360p.mp4"} {
		tr := readMP4(t, file)
		if len(tr.Samples) < 2 {
			t.Fatalf("%s: %d samples", file, len(tr.Samples))
		}
		for i, s := range tr.Samples {
			if got := IsKeyframe(s); got != tr.IsSync(i) {
				t.Errorf("%s sample %d: IsKeyframe = %v, stss says %v", file, i, got, tr.IsSync(i))
			}
		}
	}
	if IsKeyframe(nil) || IsKeyframe([]byte{0, 0, 0, 1}) || IsKeyframe([]byte{0, 0, 0, 5, 0x65}) {
		t.Fatal("malformed payload reported as keyframe")
	}
	if !IsKeyframe([]byte{0, 0, 0, 1, 0x09, 0, 0, 0, 1, 0x65}) {
		t.Fatal("IDR after AUD not found")
	}
	if LooksLikeAnnexB(tr0(t)) || !LooksLikeAnnexB(readFile(t, "h264_720p.h264")) {
		t.Fatal("LooksLikeAnnexB wrong")
	}
}

func tr0(t *testing.T) []byte { return readMP4(t, "h264_720p.mp4").Samples[0] }

func TestNames(t *testing.T) {
	for _, c := range []struct {
		idc, flags, level uint8
		profile, lvl      string
	}{
		{66, 0x40, 11, "Constrained Baseline", "1.1"},
		{66, 0x50, 11, "Constrained Baseline", "1b"},
		{66, 0, 9, "Baseline", "1b"},
		{77, 0, 40, "Main", "4"},
		{100, 0, 51, "High", "5.1"},
		{100, 0x0C, 42, "Constrained High", "4.2"},
		{100, 0x08, 42, "Progressive High", "4.2"},
		{100, 0x10, 11, "High", "1.1"},
		{110, 0, 30, "High 10", "3"},
		{122, 0x10, 30, "High 4:2:2 Intra", "3"},
		{244, 0, 62, "High 4:4:4 Predictive", "6.2"},
		{42, 0, 10, "Profile 42", "1"},
	} {
		if p := ProfileName(c.idc, c.flags); p != c.profile {
			t.Errorf("ProfileName(%d, %#x) = %q, want %q", c.idc, c.flags, p, c.profile)
		}
		if l := LevelName(c.idc, c.flags, c.level); l != c.lvl {
			t.Errorf("LevelName(%d, %#x, %d) = %q, want %q", c.idc, c.flags, c.level, l, c.lvl)
		}
	}
	if NALUTypeIDR.String() != "IDR" || NALUType(30).String() != "NALUType(30)" || TypeOf(nil) != 0 {
		t.Fatal("NALUType names wrong")
	}
}

func TestParseSPSErrors(t *testing.T) {
	c, _ := ParseConfigRecord(readMP4(t, "h264_720p.mp4").Boxes["avcC"])
	sps := c.SPS[0]
	for name, b := range map[string][]byte{
		"empty":     nil,
		"pps":       c.PPS[0],
		"truncated": sps[:6],
	} {
		if _, err := ParseSPS(b); !errors.Is(err, ErrInvalidSPS) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
