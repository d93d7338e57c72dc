package h264

import (
	"bytes"
	"testing"
)

// seedRecords adds the avcC records of the real vectors.
func seedRecords(f *testing.F) [][]byte {
	var out [][]byte
	for _, file := range []string{"h264_720p.mp4", "h264_1080p_baseline.mp4", "h264_main_360p.mp4"} {
		out = append(out, readMP4(f, file).Boxes["avcC"])
	}
	return out
}

// seedPayloads returns small AVCC payloads cut from the real vectors: whole
// frames of the 360p stream are a few hundred bytes, and the 720p IDR access
// unit is cut to its parameter sets and the head of its slices. Small seeds
// keep the fuzzer's minimisation fast.
func seedPayloads(f *testing.F) [][]byte {
	tr := readMP4(f, "h264_720p.mp4")
	c, err := ParseConfigRecord(tr.Boxes["avcC"])
	if err != nil {
		f.Fatal(err)
	}
	var cut []byte
	for _, n := range append(append(c.SPS, c.PPS...), nalus(f, tr.Samples[0])...) {
		cut, _ = AppendNALU(cut, n[:min(len(n), 96)])
	}
	p := readMP4(f, "h264_main_360p.mp4").Samples[1]
	return [][]byte{cut, p, tr.Samples[1][:100]}
}

func FuzzParseSPS(f *testing.F) {
	for _, avcC := range seedRecords(f) {
		c, err := ParseConfigRecord(avcC)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(c.SPS[0])
	}
	f.Fuzz(func(t *testing.T, nalu []byte) {
		s, err := ParseSPS(nalu)
		if err != nil {
			return
		}
		if s.Width <= 0 || s.Height <= 0 || s.Width > maxDimension || s.Height > 2*maxDimension {
			t.Fatalf("implausible size %dx%d accepted", s.Width, s.Height)
		}
		if s.ProfileName() == "" || s.LevelName() == "" {
			t.Fatal("empty names")
		}
	})
}

func FuzzParseConfigRecord(f *testing.F) {
	for _, avcC := range seedRecords(f) {
		f.Add(avcC)
	}
	f.Fuzz(func(t *testing.T, avcC []byte) {
		c, err := ParseConfigRecord(avcC)
		if err != nil {
			return
		}
		if tr, err := TrackFromConfigRecord(avcC); err == nil {
			if tr.Width <= 0 || tr.Height <= 0 || tr.Config[4]&3 != 3 {
				t.Fatalf("bad track %+v", tr)
			}
		}
		built, err := BuildConfigRecord(c.SPS, c.PPS)
		if err != nil {
			return
		}
		// Round trip: the rebuilt record carries the same parameter sets.
		c2, err := ParseConfigRecord(built)
		if err != nil {
			t.Fatalf("rebuilt record does not parse: %v", err)
		}
		if c2.LengthSize != 4 || !sameNALUs(c.SPS, c2.SPS) || !sameNALUs(c.PPS, c2.PPS) {
			t.Fatalf("round trip changed the parameter sets")
		}
		again, err := BuildConfigRecord(c2.SPS, c2.PPS)
		if err != nil || !bytes.Equal(again, built) {
			t.Fatalf("BuildConfigRecord is not stable: %v", err)
		}
	})
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

// cleanNALU reports whether a NAL unit survives Annex B framing unchanged:
// no start code emulation inside and no trailing zero byte.
func cleanNALU(n []byte) bool {
	if len(n) == 0 || n[len(n)-1] == 0 {
		return false
	}
	for i := 0; i+2 < len(n); i++ {
		if n[i] == 0 && n[i+1] == 0 && n[i+2] <= 1 {
			return false
		}
	}
	return true
}

func FuzzAnnexBToAVCC(f *testing.F) {
	for _, p := range seedPayloads(f) {
		annexB, err := AVCCToAnnexB(nil, p)
		if err != nil {
			annexB = p // the truncated frame is not valid AVCC: use it raw
		}
		f.Add(annexB)
	}
	f.Add(readFile(f, "h264_720p.h264")[:200])
	f.Add([]byte{0, 0, 1, 0x65, 1, 0, 0, 0, 1, 0x41, 0})
	f.Fuzz(func(t *testing.T, annexB []byte) {
		avcc, err := AnnexBToAVCC(nil, annexB)
		if err != nil {
			return
		}
		var units [][]byte
		if err := ForEachAnnexBNALU(annexB, func(n []byte) bool { units = append(units, n); return true }); err != nil {
			t.Fatalf("ForEachAnnexBNALU fails where AnnexBToAVCC succeeded: %v", err)
		}
		var got [][]byte
		if err := ForEachNALU(avcc, func(n []byte) bool { got = append(got, n); return true }); err != nil {
			t.Fatalf("AnnexBToAVCC output does not iterate: %v", err)
		}
		if !sameNALUs(units, got) {
			t.Fatalf("NAL units differ after conversion")
		}
		back, err := AVCCToAnnexB(nil, avcc)
		if err != nil {
			t.Fatalf("AVCCToAnnexB: %v", err)
		}
		again, err := AnnexBToAVCC(nil, back)
		if err != nil || !bytes.Equal(again, avcc) {
			t.Fatalf("Annex B round trip differs: %v", err)
		}
	})
}

func FuzzAVCCToAnnexB(f *testing.F) {
	for _, p := range seedPayloads(f) {
		f.Add(p)
	}
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0x65})
	f.Fuzz(func(t *testing.T, avcc []byte) {
		annexB, err := AVCCToAnnexB(nil, avcc)
		if err != nil {
			return
		}
		var units [][]byte
		clean := true
		if err := ForEachNALU(avcc, func(n []byte) bool {
			units = append(units, n)
			clean = clean && cleanNALU(n)
			return true
		}); err != nil {
			t.Fatalf("ForEachNALU fails where AVCCToAnnexB succeeded: %v", err)
		}
		back, err := AnnexBToAVCC(nil, annexB)
		if !clean {
			return // start code emulation or trailing zeros do not survive Annex B
		}
		if err != nil {
			t.Fatalf("AnnexBToAVCC: %v", err)
		}
		var got [][]byte
		_ = ForEachNALU(back, func(n []byte) bool { got = append(got, n); return true })
		if !sameNALUs(units, got) {
			t.Fatalf("round trip changed the NAL units")
		}
	})
}

func FuzzIsKeyframe(f *testing.F) {
	for _, p := range seedPayloads(f) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, avcc []byte) {
		// IsKeyframe agrees with a scan by ForEachNALU up to the first error.
		want := false
		_ = ForEachNALU(avcc, func(n []byte) bool {
			if TypeOf(n) == NALUTypeIDR {
				want = true
				return false
			}
			return true
		})
		if got := IsKeyframe(avcc); got != want {
			t.Fatalf("IsKeyframe = %v, scan says %v", got, want)
		}
		sps, pps := ParameterSets(avcc)
		if (len(sps)+len(pps) > 0) != HasParameterSets(avcc) {
			t.Fatalf("ParameterSets and HasParameterSets disagree")
		}
		for _, s := range sps {
			if TypeOf(s) != NALUTypeSPS {
				t.Fatalf("non-SPS returned")
			}
		}
		for _, p := range pps {
			if TypeOf(p) != NALUTypePPS {
				t.Fatalf("non-PPS returned")
			}
		}
	})
}
