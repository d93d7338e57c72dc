package h265

import "testing"

// The benchmarks run on the 1280x720 vectors: the IRAP access unit
// (IDR_N_LP), a TRAIL_R frame, and the whole Annex B stream.

func BenchmarkIsKeyframe(b *testing.B) {
	tr := readMP4(b, "h265_720p.mp4")
	for _, c := range []struct {
		name    string
		payload []byte
	}{{"IRAP", tr.Samples[0]}, {"TRAIL", tr.Samples[1]}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.payload)))
			for b.Loop() {
				if IsKeyframe(c.payload) != (c.name == "IRAP") {
					b.Fatal("wrong answer")
				}
			}
		})
	}
}

func BenchmarkForEachNALU(b *testing.B) {
	payload := readMP4(b, "h265_720p.mp4").Samples[0]
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		n := 0
		if err := ForEachNALU(payload, func([]byte) bool { n++; return true }); err != nil || n == 0 {
			b.Fatal(err)
		}
	}
}

func BenchmarkNextNALU(b *testing.B) {
	payload := readMP4(b, "h265_720p.mp4").Samples[0]
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		n := 0
		for nalu, rest, _ := NextNALU(payload); nalu != nil; nalu, rest, _ = NextNALU(rest) {
			n++
		}
		if n == 0 {
			b.Fatal("no NAL unit")
		}
	}
}

func BenchmarkAnnexBToAVCC(b *testing.B) {
	src := readFile(b, "h265_720p.h265")
	dst := make([]byte, 0, len(src)+len(src)/2)
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		var err error
		if dst, err = AnnexBToAVCC(dst[:0], src); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAVCCToAnnexB(b *testing.B) {
	src := readMP4(b, "h265_720p.mp4").Samples[0]
	dst := make([]byte, 0, len(src))
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		var err error
		if dst, err = AVCCToAnnexB(dst[:0], src); err != nil {
			b.Fatal(err)
		}
	}
}
