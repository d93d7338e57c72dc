package h265

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/quasipaa/quasipaa/internal/codec/internal/annexb"
	"github.com/quasipaa/quasipaa/internal/codec/internal/bitio"
	"github.com/quasipaa/quasipaa/internal/codec/internal/testmedia"
	"github.com/quasipaa/quasipaa/internal/media"
)

// The vectors in testdata were produced by ffmpeg 5.1 with libx265, see
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
	if tr.SampleEntry != "hvc1" || tr.Boxes["hvcC"] == nil {
		tb.Fatalf("%s: sample entry %q without hvcC", name, tr.SampleEntry)
	}
	return tr
}

func nalus(tb testing.TB, payload []byte) [][]byte {
	tb.Helper()
	var out [][]byte
	if err := ForEachNALU(payload, func(n []byte) bool { out = append(out, n); return true }); err != nil {
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
		{"h265_720p.mp4", 1280, 720, "Main", "3.1"},
		// 426 is not a multiple of the minimum coding block: coded 432 wide, cropped by the conformance window.
		{"h265_main10_426x240.mp4", 426, 240, "Main 10", "2"},
	} {
		t.Run(c.file, func(t *testing.T) {
			hvcC := readMP4(t, c.file).Boxes["hvcC"]
			tr, err := TrackFromConfigRecord(hvcC)
			if err != nil {
				t.Fatal(err)
			}
			if tr.Codec != media.CodecH265 || tr.Width != c.width || tr.Height != c.height ||
				tr.Profile != c.profile || tr.Level != c.level {
				t.Fatalf("track = %+v, want %dx%d %s %s", tr, c.width, c.height, c.profile, c.level)
			}
			if !bytes.Equal(tr.Config, hvcC) || &tr.Config[0] == &hvcC[0] {
				t.Fatalf("Config is not a copy of the 4-byte-length hvcC")
			}
		})
	}
}

func TestParseConfigRecord(t *testing.T) {
	c, err := ParseConfigRecord(readMP4(t, "h265_main10_426x240.mp4").Boxes["hvcC"])
	if err != nil {
		t.Fatal(err)
	}
	if c.ProfileIDC != 2 || c.LevelIDC != 60 || c.HighTier || c.ChromaFormat != 1 ||
		c.BitDepthLuma != 10 || c.BitDepthChroma != 10 || c.LengthSize != 4 || c.NumTemporalLayers != 1 || !c.TemporalIDNested {
		t.Fatalf("record = %+v", c)
	}
	if len(c.VPS) != 1 || len(c.SPS) != 1 || len(c.PPS) != 1 || len(c.Other) != 1 || TypeOf(c.Other[0]) != NALUTypePrefixSEI {
		t.Fatalf("arrays: %d VPS %d SPS %d PPS %d other", len(c.VPS), len(c.SPS), len(c.PPS), len(c.Other))
	}
	sps, err := ParseSPS(c.SPS[0])
	if err != nil {
		t.Fatal(err)
	}
	if sps.CodedWidth != 432 || sps.CodedHeight != 240 || sps.Width != 426 || sps.BitDepthLuma != 10 ||
		sps.MaxSubLayers != 1 || sps.ProfileTierLevel != c.ProfileTierLevel {
		t.Fatalf("SPS = %+v", sps)
	}
}

func TestBuildConfigRecordMatchesFFmpeg(t *testing.T) {
	for _, file := range []string{"h265_720p.mp4", "h265_main10_426x240.mp4"} {
		hvcC := readMP4(t, file).Boxes["hvcC"]
		c, err := ParseConfigRecord(hvcC)
		if err != nil {
			t.Fatal(err)
		}
		built, err := BuildConfigRecord(c.VPS, c.SPS, c.PPS)
		if err != nil {
			t.Fatal(err)
		}
		// ffmpeg's record differs only in carrying the SEI as a fourth array:
		// the 22 header bytes are the same.
		if !bytes.Equal(built[:22], hvcC[:22]) {
			t.Fatalf("%s: header\n%x\nffmpeg wrote\n%x", file, built[:22], hvcC[:22])
		}
		b, err := ParseConfigRecord(built)
		if err != nil {
			t.Fatal(err)
		}
		b.Other, c.Other = nil, nil
		if !equalRecords(b, c) {
			t.Fatalf("%s: rebuilt record = %+v, want %+v", file, b, c)
		}
	}
}

func equalRecords(a, b ConfigRecord) bool {
	return a.ProfileTierLevel == b.ProfileTierLevel && a.ChromaFormat == b.ChromaFormat &&
		a.BitDepthLuma == b.BitDepthLuma && a.BitDepthChroma == b.BitDepthChroma &&
		a.NumTemporalLayers == b.NumTemporalLayers && a.TemporalIDNested == b.TemporalIDNested &&
		a.LengthSize == b.LengthSize && sameNALUs(a.VPS, b.VPS) && sameNALUs(a.SPS, b.SPS) &&
		sameNALUs(a.PPS, b.PPS) && sameNALUs(a.Other, b.Other)
}

func TestConfigRecordErrors(t *testing.T) {
	good := readMP4(t, "h265_720p.mp4").Boxes["hvcC"]
	c, _ := ParseConfigRecord(good)
	mutate := func(f func(b []byte)) []byte { b := bytes.Clone(good); f(b); return b }
	for name, b := range map[string][]byte{
		"empty":     nil,
		"short":     good[:22],
		"version 2": mutate(func(b []byte) { b[0] = 2 }),
		"length 3":  mutate(func(b []byte) { b[21] = b[21]&^3 | 2 }),
		"truncated": good[:40],
		"tiny nalu": mutate(func(b []byte) { b[26], b[27] = 0, 1 }),
	} {
		if _, err := ParseConfigRecord(b); !errors.Is(err, ErrInvalidConfigRecord) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	for name, tc := range map[string]struct {
		vps, sps, pps [][]byte
		want          error
	}{
		"no vps":   {nil, c.SPS, c.PPS, ErrMissingVPS},
		"no sps":   {c.VPS, nil, c.PPS, ErrMissingSPS},
		"no pps":   {c.VPS, c.SPS, nil, ErrMissingPPS},
		"swapped":  {c.SPS, c.VPS, c.PPS, ErrInvalidParameterSet},
		"bad sps":  {c.VPS, [][]byte{{0x42, 0x01, 0xFF}}, c.PPS, ErrInvalidSPS},
		"one byte": {c.VPS, c.SPS, [][]byte{{0x44}}, ErrInvalidParameterSet},
	} {
		if _, err := BuildConfigRecord(tc.vps, tc.sps, tc.pps); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
	noSPS := mutate(func(b []byte) { b[22] = 0 })
	if _, err := TrackFromConfigRecord(noSPS); !errors.Is(err, ErrMissingSPS) {
		t.Errorf("record without arrays: err = %v", err)
	}
}

func TestLengthSizeNormalised(t *testing.T) {
	tr := readMP4(t, "h265_720p.mp4")
	hvcC := bytes.Clone(tr.Boxes["hvcC"])
	hvcC[21] = hvcC[21]&^3 | 1 // declare 2-byte lengths
	track, err := TrackFromConfigRecord(hvcC)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(track.Config, tr.Boxes["hvcC"]) {
		t.Fatalf("Config not normalised to 4-byte lengths")
	}
	for _, s := range tr.Samples {
		var two []byte
		for _, n := range nalus(t, s) {
			two = append(two, byte(len(n)>>8), byte(len(n)))
			two = append(two, n...)
		}
		back, err := ConvertLengthSize(nil, two, 2)
		if err != nil || !bytes.Equal(back, s) {
			t.Fatalf("ConvertLengthSize: %v", err)
		}
	}
}

func TestAnnexBToAVCC(t *testing.T) {
	tr := readMP4(t, "h265_720p.mp4")
	c, _ := ParseConfigRecord(tr.Boxes["hvcC"])
	// h265_720p.h265 is the same stream remuxed by hevc_mp4toannexb, which
	// inserts every NAL unit of the hvcC arrays before the IRAP picture.
	var want [][]byte
	for _, s := range tr.Samples {
		for _, n := range nalus(t, s) {
			if TypeOf(n).IsIRAP() {
				want = append(want, c.VPS...)
				want = append(want, c.SPS...)
				want = append(want, c.PPS...)
				want = append(want, c.Other...)
			}
			want = append(want, n)
		}
	}
	annexB := readFile(t, "h265_720p.h265")
	payload, err := AnnexBToAVCC(nil, annexB)
	if err != nil {
		t.Fatal(err)
	}
	if got := nalus(t, payload); !sameNALUs(got, want) {
		t.Fatalf("%d NAL units differ from the %d expected", len(got), len(want))
	}
	back, err := AVCCToAnnexB(nil, payload)
	if err != nil {
		t.Fatal(err)
	}
	again, err := AnnexBToAVCC(nil, back)
	if err != nil || !bytes.Equal(again, payload) {
		t.Fatalf("round trip differs: %v", err)
	}

	vps, sps, pps := ParameterSets(payload)
	if !sameNALUs(vps, c.VPS) || !sameNALUs(sps, c.SPS) || !sameNALUs(pps, c.PPS) {
		t.Fatalf("ParameterSets: %d VPS, %d SPS, %d PPS", len(vps), len(sps), len(pps))
	}
	if !HasParameterSets(payload) || HasParameterSets(tr.Samples[1]) {
		t.Fatal("HasParameterSets wrong")
	}
	track, err := TrackFromParameterSets(vps, sps, pps)
	if err != nil || track.Width != 1280 || track.Height != 720 || track.Profile != "Main" {
		t.Fatalf("TrackFromParameterSets = %+v, %v", track, err)
	}
	if !LooksLikeAnnexB(annexB) || LooksLikeAnnexB(tr.Samples[0]) {
		t.Fatal("LooksLikeAnnexB wrong")
	}
}

func TestFramingErrors(t *testing.T) {
	if _, err := AnnexBToAVCC(nil, []byte{1, 2, 3}); !errors.Is(err, ErrNoStartCode) {
		t.Errorf("no start code: %v", err)
	}
	if _, err := AnnexBToAVCC(nil, []byte{0, 0, 1}); !errors.Is(err, ErrNoNALUs) {
		t.Errorf("no NAL unit: %v", err)
	}
	if _, err := AVCCToAnnexB(nil, []byte{0, 0, 0, 3, 0x26}); !errors.Is(err, ErrTruncated) {
		t.Errorf("truncated: %v", err)
	}
	if _, err := ConvertLengthSize(nil, []byte{1, 0x26}, 3); !errors.Is(err, ErrInvalidLengthSize) {
		t.Errorf("length size 3: %v", err)
	}
	if _, err := AppendNALU(nil, nil); !errors.Is(err, ErrNoNALUs) {
		t.Errorf("AppendNALU(empty): %v", err)
	}
	var n int
	for nalu, rest, err := NextNALU([]byte{0, 0, 0, 2, 0x26, 1, 0, 0, 0, 2, 0x02, 1}); nalu != nil || err != nil; nalu, rest, err = NextNALU(rest) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("NextNALU saw %d units", n)
	}
	got := 0
	if err := ForEachAnnexBNALU([]byte{0, 0, 1, 0x26, 1, 0, 0, 1, 0x02, 1}, func([]byte) bool { got++; return true }); err != nil || got != 2 {
		t.Fatalf("ForEachAnnexBNALU: %d, %v", got, err)
	}
}

func TestIsKeyframe(t *testing.T) {
	tr := readMP4(t, "h265_720p.mp4")
	if len(tr.Samples) != 3 {
		t.Fatalf("%d samples", len(tr.Samples))
	}
	for i, s := range tr.Samples {
		if got := IsKeyframe(s); got != tr.IsSync(i) {
			t.Errorf("sample %d: IsKeyframe = %v, stss says %v", i, got, tr.IsSync(i))
		}
	}
	for typ := range NALUType(64) {
		payload := []byte{0, 0, 0, 2, byte(typ) << 1, 1}
		if IsKeyframe(payload) != (typ >= 16 && typ <= 23) {
			t.Errorf("type %d: IsKeyframe = %v", typ, IsKeyframe(payload))
		}
	}
	if IsKeyframe(nil) || IsKeyframe([]byte{0, 0, 0, 9, 0x26}) {
		t.Fatal("malformed payload reported as keyframe")
	}
}

func TestNames(t *testing.T) {
	for _, c := range []struct {
		idc    uint8
		compat uint32
		want   string
	}{{1, 0, "Main"}, {2, 0, "Main 10"}, {3, 0, "Main Still Picture"}, {4, 0, "Rext"}, {0, 1 << 29, "Main 10"}, {31, 0, "Profile 31"}} {
		if got := ProfileName(c.idc, c.compat); got != c.want {
			t.Errorf("ProfileName(%d, %#x) = %q, want %q", c.idc, c.compat, got, c.want)
		}
	}
	for idc, want := range map[uint8]string{30: "1", 60: "2", 63: "2.1", 93: "3.1", 120: "4", 123: "4.1", 153: "5.1", 186: "6.2"} {
		if got := LevelName(idc); got != want {
			t.Errorf("LevelName(%d) = %q, want %q", idc, got, want)
		}
	}
	if NALUTypeCRA.String() != "CRA_NUT" || NALUType(50).String() != "NALUType(50)" || !NALUTypeIDRNLP.IsIRAP() || NALUTypeTrailR.IsIRAP() {
		t.Fatal("NALUType helpers wrong")
	}
}

func TestParseSPSErrors(t *testing.T) {
	c, _ := ParseConfigRecord(readMP4(t, "h265_720p.mp4").Boxes["hvcC"])
	for name, b := range map[string][]byte{
		"empty":     nil,
		"vps":       c.VPS[0],
		"truncated": c.SPS[0][:10],
		"zero size": {0x42, 0x01, 0x01, 0x01, 0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x5d, 0xA0, 0x01, 0x01, 0x80},
	} {
		if _, err := ParseSPS(b); !errors.Is(err, ErrInvalidSPS) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// TestSubLayers checks an SPS with temporal sub-layers and sub-layer
// profile/level information, which some parsers reject.
func TestSubLayers(t *testing.T) {
	c, _ := ParseConfigRecord(readMP4(t, "h265_720p.mp4").Boxes["hvcC"])
	base, err := ParseSPS(c.SPS[0])
	if err != nil {
		t.Fatal(err)
	}
	// Rewrite the SPS with sps_max_sub_layers_minus1 = 2, both sub-layers
	// signalling profile and level.
	orig := annexb.Unescape(nil, c.SPS[0][2:])
	rbsp := []byte{orig[0]&0xF1 | 2<<1}
	rbsp = append(rbsp, orig[1:13]...) // general profile_tier_level; it holds no 00 00 03 to escape
	// 2 sub-layers x (profile_present=1, level_present=1), 6 x reserved 2 bits: 1111 0000 0000 0000
	rbsp = append(rbsp, 0xF0, 0x00)
	for range 2 {
		rbsp = append(rbsp, bytes.Repeat([]byte{0x11}, 11)...) // sub_layer profile (88 bits)
		rbsp = append(rbsp, 0x5D)                              // sub_layer_level_idc
	}
	// sps_seq_parameter_set_id 0, chroma_format_idc 1, 1280x720, no
	// conformance window, bit depths 8/8.
	var w bitio.Writer
	for _, v := range []uint32{0, 1, 1280, 720} {
		writeUE(&w, v)
	}
	w.WriteFlag(false)
	writeUE(&w, 0)
	writeUE(&w, 0)
	bitsTail := w.Bytes()
	nalu := append([]byte{0x42, 0x01}, append(rbsp, bitsTail...)...)
	s, err := ParseSPS(nalu)
	if err != nil {
		t.Fatal(err)
	}
	if s.MaxSubLayers != 3 || s.Width != 1280 || s.Height != 720 || s.ProfileTierLevel != base.ProfileTierLevel {
		t.Fatalf("SPS = %+v", s)
	}
}

func writeUE(w *bitio.Writer, v uint32) {
	n := 0
	for x := uint64(v) + 1; x > 1; x >>= 1 {
		n++
	}
	w.WriteBits(0, n)
	w.WriteBits(uint64(v)+1, n+1)
}

func sameNALUs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
