package h265

import (
	"bytes"
	"testing"
)

// seedRecords returns the hvcC records of the real vectors without the
// 2 KB x265 version SEI they carry (a large seed slows the fuzzer's
// minimisation down), plus the head of one original record.
func seedRecords(f *testing.F) [][]byte {
	var out [][]byte
	for _, file := range []string{"h265_720p.mp4", "h265_main10_426x240.mp4"} {
		hvcC := readMP4(f, file).Boxes["hvcC"]
		c, err := ParseConfigRecord(hvcC)
		if err != nil {
			f.Fatal(err)
		}
		built, err := BuildConfigRecord(c.VPS, c.SPS, c.PPS)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, built, hvcC[:128])
	}
	return out
}

// seedPayloads returns small payloads cut from the real vectors: the
// parameter sets and the head of each slice of the 720p stream, and its
// smallest whole frame. Small seeds keep the fuzzer's minimisation fast.
func seedPayloads(f *testing.F) [][]byte {
	tr := readMP4(f, "h265_720p.mp4")
	c, err := ParseConfigRecord(tr.Boxes["hvcC"])
	if err != nil {
		f.Fatal(err)
	}
	var cut []byte
	units := append(append(append([][]byte{}, c.VPS...), c.SPS...), c.PPS...)
	for _, s := range tr.Samples {
		units = append(units, nalus(f, s)...)
	}
	for _, n := range units {
		cut, _ = AppendNALU(cut, n[:min(len(n), 64)])
	}
	return [][]byte{cut, tr.Samples[2]}
}

func FuzzParseSPS(f *testing.F) {
	for _, file := range []string{"h265_720p.mp4", "h265_main10_426x240.mp4"} {
		c, err := ParseConfigRecord(readMP4(f, file).Boxes["hvcC"])
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
		if s.Width <= 0 || s.Height <= 0 || s.Width > s.CodedWidth || s.Height > s.CodedHeight || s.CodedWidth > maxDimension {
			t.Fatalf("implausible size %+v accepted", s)
		}
		if s.ProfileName() == "" || s.LevelName() == "" {
			t.Fatal("empty names")
		}
	})
}

func FuzzParseConfigRecord(f *testing.F) {
	for _, hvcC := range seedRecords(f) {
		f.Add(hvcC)
	}
	f.Fuzz(func(t *testing.T, hvcC []byte) {
		c, err := ParseConfigRecord(hvcC)
		if err != nil {
			return
		}
		if tr, err := TrackFromConfigRecord(hvcC); err == nil {
			if tr.Width <= 0 || tr.Height <= 0 || tr.Config[21]&3 != 3 {
				t.Fatalf("bad track %+v", tr)
			}
		}
		built, err := BuildConfigRecord(c.VPS, c.SPS, c.PPS)
		if err != nil {
			return
		}
		// Round trip: the rebuilt record carries the same parameter sets,
		// and its header agrees with the SPS it was built from.
		c2, err := ParseConfigRecord(built)
		if err != nil {
			t.Fatalf("rebuilt record does not parse: %v", err)
		}
		if c2.LengthSize != 4 || !sameNALUs(c.VPS, c2.VPS) || !sameNALUs(c.SPS, c2.SPS) || !sameNALUs(c.PPS, c2.PPS) || len(c2.Other) != 0 {
			t.Fatalf("round trip changed the parameter sets")
		}
		sps, err := ParseSPS(c.SPS[0])
		if err != nil {
			t.Fatalf("BuildConfigRecord accepted an SPS ParseSPS rejects: %v", err)
		}
		if c2.ProfileTierLevel != sps.ProfileTierLevel || c2.ChromaFormat != sps.ChromaFormatIDC ||
			c2.BitDepthLuma != sps.BitDepthLuma || c2.NumTemporalLayers != sps.MaxSubLayers {
			t.Fatalf("record header %+v disagrees with SPS %+v", c2, sps)
		}
		again, err := BuildConfigRecord(c2.VPS, c2.SPS, c2.PPS)
		if err != nil || !bytes.Equal(again, built) {
			t.Fatalf("BuildConfigRecord is not stable: %v", err)
		}
	})
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
			f.Fatal(err)
		}
		f.Add(annexB)
	}
	f.Add(readFile(f, "h265_720p.h265")[:200])
	f.Fuzz(func(t *testing.T, annexB []byte) {
		payload, err := AnnexBToAVCC(nil, annexB)
		if err != nil {
			return
		}
		var units, got [][]byte
		if err := ForEachAnnexBNALU(annexB, func(n []byte) bool { units = append(units, n); return true }); err != nil {
			t.Fatalf("ForEachAnnexBNALU fails where AnnexBToAVCC succeeded: %v", err)
		}
		if err := ForEachNALU(payload, func(n []byte) bool { got = append(got, n); return true }); err != nil {
			t.Fatalf("AnnexBToAVCC output does not iterate: %v", err)
		}
		if !sameNALUs(units, got) {
			t.Fatalf("NAL units differ after conversion")
		}
		back, err := AVCCToAnnexB(nil, payload)
		if err != nil {
			t.Fatalf("AVCCToAnnexB: %v", err)
		}
		again, err := AnnexBToAVCC(nil, back)
		if err != nil || !bytes.Equal(again, payload) {
			t.Fatalf("Annex B round trip differs: %v", err)
		}
	})
}

func FuzzAVCCToAnnexB(f *testing.F) {
	for _, p := range seedPayloads(f) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		annexB, err := AVCCToAnnexB(nil, payload)
		if err != nil {
			return
		}
		var units [][]byte
		clean := true
		if err := ForEachNALU(payload, func(n []byte) bool {
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
	f.Fuzz(func(t *testing.T, payload []byte) {
		want := false
		_ = ForEachNALU(payload, func(n []byte) bool {
			if TypeOf(n).IsIRAP() {
				want = true
				return false
			}
			return true
		})
		if got := IsKeyframe(payload); got != want {
			t.Fatalf("IsKeyframe = %v, scan says %v", got, want)
		}
		vps, sps, pps := ParameterSets(payload)
		if (len(vps)+len(sps)+len(pps) > 0) != HasParameterSets(payload) {
			t.Fatalf("ParameterSets and HasParameterSets disagree")
		}
		for _, set := range []struct {
			nalus [][]byte
			typ   NALUType
		}{{vps, NALUTypeVPS}, {sps, NALUTypeSPS}, {pps, NALUTypePPS}} {
			for _, n := range set.nalus {
				if TypeOf(n) != set.typ {
					t.Fatalf("%v returned as %v", TypeOf(n), set.typ)
				}
			}
		}
	})
}
