package opus

import (
	"bytes"
	"testing"
)

var vectorFiles = []string{"opus_48k_stereo.opus", "opus_16k_mono_60ms.opus", "opus_51.opus", "opus_2_5ms.opus"}

func FuzzParseHead(f *testing.F) {
	for _, name := range vectorFiles {
		head, _ := readOgg(f, name)
		f.Add(head)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHead(b)
		if err != nil {
			return
		}
		if h.Channels < 1 || h.StreamCount < 1 || h.CoupledCount > h.StreamCount {
			t.Fatalf("implausible head %+v", h)
		}
		tr, err := TrackFromHead(b)
		if err != nil || tr.Channels != h.Channels || tr.SampleRate != SampleRate {
			t.Fatalf("TrackFromHead: %+v, %v", tr, err)
		}
		// Round trip: Marshal writes version 1 and drops trailing bytes;
		// everything else survives.
		m, err := h.Marshal()
		if err != nil {
			t.Fatalf("Marshal rejects a parsed head: %v", err)
		}
		h2, err := ParseHead(m)
		if err != nil {
			t.Fatalf("marshalled head does not parse: %v", err)
		}
		h.Version = 1
		if h2.Version != h.Version || h2.Channels != h.Channels || h2.PreSkip != h.PreSkip ||
			h2.InputSampleRate != h.InputSampleRate || h2.OutputGain != h.OutputGain ||
			h2.MappingFamily != h.MappingFamily || h2.StreamCount != h.StreamCount ||
			h2.CoupledCount != h.CoupledCount || !bytes.Equal(h2.Mapping, h.Mapping) {
			t.Fatalf("round trip %+v -> %+v", h, h2)
		}
	})
}

func FuzzPacketSamples(f *testing.F) {
	for _, name := range vectorFiles {
		_, packets := readOgg(f, name)
		f.Add(packets[0][:min(len(packets[0]), 8)])
	}
	f.Add([]byte{0x83, 0x30})
	f.Fuzz(func(t *testing.T, p []byte) {
		n, err := PacketSamples(p)
		if err != nil {
			return
		}
		if n < 120 || n > maxPacketSamples || n%120 != 0 {
			t.Fatalf("%d samples for %x", n, p)
		}
		d, err := PacketDuration(p)
		if err != nil || d.Microseconds() != int64(n)*1000/48 {
			t.Fatalf("PacketDuration = %v, %v for %d samples", d, err, n)
		}
	})
}
