package aac

import "testing"

func BenchmarkForEachADTSFrame(b *testing.B) {
	file := readFile(b, "aac_48k_stereo.aac")
	b.ReportAllocs()
	b.SetBytes(int64(len(file)))
	for b.Loop() {
		n := 0
		if err := ForEachADTSFrame(file, func(ADTSHeader, []byte) bool { n++; return true }); err != nil || n != 6 {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendADTSHeader(b *testing.B) {
	c := AudioSpecificConfig{ObjectType: ObjectTypeLC, SampleRate: 48000, ChannelConfig: 2}
	dst := make([]byte, 0, ADTSHeaderSize)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = AppendADTSHeader(dst[:0], c, 300); err != nil {
			b.Fatal(err)
		}
	}
}
