package mp3

import "testing"

func FuzzParseFrameHeader(f *testing.F) {
	for _, v := range vectors {
		b := readFile(f, v.file)
		f.Add(b[:8])
	}
	f.Add([]byte{0xFF, 0xFF, 0xC0, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseFrameHeader(b)
		if err != nil {
			return
		}
		// The smallest frame is MPEG-2 layer III at 8 kbit/s and 24 kHz (24
		// bytes), the largest MPEG-2.5 layer II at 160 kbit/s and 8 kHz, padded.
		if h.FrameLength < 24 || h.FrameLength > 2881 || h.Samples == 0 || h.Channels < 1 || h.Duration() <= 0 {
			t.Fatalf("implausible header %+v", h)
		}
		err = ForEachFrame(b, func(h2 FrameHeader, frame []byte) bool {
			if len(frame) != h2.FrameLength {
				t.Fatalf("frame of %d bytes for %+v", len(frame), h2)
			}
			return true
		})
		if err == nil && len(b) < h.FrameLength {
			t.Fatalf("ForEachFrame accepted a truncated frame")
		}
	})
}
