package opus

import "testing"

func BenchmarkPacketSamples(b *testing.B) {
	_, packets := readOgg(b, "opus_48k_stereo.opus")
	p := packets[0]
	b.ReportAllocs()
	for b.Loop() {
		if n, err := PacketSamples(p); err != nil || n != 960 {
			b.Fatal(err)
		}
	}
}
