package av1

import "testing"

// The benchmarks run on the 1280x720 libaom vector: the keyframe temporal
// unit (sequence header + frame) and an inter frame.

func BenchmarkIsKeyframe(b *testing.B) {
	tr := readMP4(b, "av1_720p.mp4")
	for _, c := range []struct {
		name    string
		payload []byte
		key     bool
	}{{"Key", tr.Samples[0], true}, {"Inter", tr.Samples[1], false}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.payload)))
			for b.Loop() {
				if IsKeyframe(c.payload) != c.key {
					b.Fatal("wrong answer")
				}
			}
		})
	}
}

func BenchmarkForEachOBU(b *testing.B) {
	data := readFile(b, "av1_720p.obu")
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		n := 0
		if err := ForEachOBU(data, func(OBU) bool { n++; return true }); err != nil || n != 7 {
			b.Fatal(err)
		}
	}
}
