package vp9

import "testing"

// The benchmarks run on the 1280x720 libvpx vector: its keyframe and an
// inter frame.

func BenchmarkIsKeyframe(b *testing.B) {
	tr := readMP4(b, "vp9_720p.mp4")
	for _, c := range []struct {
		name  string
		frame []byte
		key   bool
	}{{"Key", tr.Samples[0], true}, {"Inter", tr.Samples[1], false}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if IsKeyframe(c.frame) != c.key {
					b.Fatal("wrong answer")
				}
			}
		})
	}
}

func BenchmarkParseKeyframe(b *testing.B) {
	frame := readMP4(b, "vp9_720p.mp4").Samples[0]
	b.ReportAllocs()
	for b.Loop() {
		if k, err := ParseKeyframe(frame); err != nil || k.Width != 1280 {
			b.Fatal(err)
		}
	}
}
