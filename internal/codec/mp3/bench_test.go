package mp3

import "testing"

func BenchmarkForEachFrame(b *testing.B) {
	data := readFile(b, "mp3_44k_stereo.mp3")
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		n := 0
		if err := ForEachFrame(data, func(FrameHeader, []byte) bool { n++; return true }); err != nil || n != 5 {
			b.Fatal(err)
		}
	}
}
