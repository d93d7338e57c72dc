package transcode

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/quasipaa/quasipaa/internal/codec/aac"
	"github.com/quasipaa/quasipaa/internal/codec/opus"
)

// oggSeeds are Ogg streams for the fuzzer to start from.
func oggSeeds(f *testing.F) [][]byte {
	head, err := opus.BuildHead(2, 312, 48000)
	if err != nil {
		f.Fatal(err)
	}
	w := oggWriter{serial: 1}
	var small []byte
	small = w.appendPacket(small, head, 0, oggBOS)
	small = w.appendPacket(small, opusTags, 0, 0)
	small = w.appendPacket(small, []byte{0xFC, 1, 2, 3}, 960, oggEOS)
	// A packet continued on a second page (the writer only splits packets
	// of 64 KiB, too large a seed), then an empty packet.
	w = oggWriter{serial: 2}
	spans := w.appendPage(nil, oggBOS, -1, bytes.Repeat([]byte{7}, 255), false)
	spans = w.appendPage(spans, oggContinued, 5, []byte{8, 8, 8}, true)
	spans = w.appendPacket(spans, nil, 6, 0)
	w = oggWriter{serial: 3}
	other := oggWriter{serial: 4}
	muxed := w.appendPacket(nil, head, 0, oggBOS)
	muxed = other.appendPacket(muxed, []byte("x"), 0, oggBOS)
	muxed = w.appendPacket(muxed, opusTags, 0, 0)
	return [][]byte{
		small, spans, muxed, readTestdata(f, "tiny.ogg"),
		small[:len(small)-2], // truncated
		nil, []byte("OggS"), bytes.Repeat([]byte{0}, 64),
	}
}

// FuzzOggReader feeds arbitrary bytes to the Ogg reader and to the Ogg Opus
// output reader built on it: no panic, bounded packets, and the packets read
// written again read back the same.
func FuzzOggReader(f *testing.F) {
	for _, s := range oggSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		packets, err := readOgg(b)
		if err != nil && err != io.ErrUnexpectedEOF && !errors.Is(err, errOgg) {
			t.Fatalf("unexpected error %v", err)
		}
		var again []byte
		w := oggWriter{serial: 9}
		for i, p := range packets {
			if len(p.Data) > oggMaxPacket {
				t.Fatalf("packet of %d bytes", len(p.Data))
			}
			var flags byte
			if i == 0 {
				flags = oggBOS
			}
			again = w.appendPacket(again, p.Data, int64(i), flags)
		}
		back, err := readOgg(again)
		if err != nil || len(back) != len(packets) {
			t.Fatalf("round trip: %d packets, then %d, %v", len(packets), len(back), err)
		}
		for i := range back {
			if !bytes.Equal(back[i].Data, packets[i].Data) || back[i].Granule != int64(i) {
				t.Fatalf("round trip: packet %d differs", i)
			}
		}

		r := &opusReader{r: newOggReader(bytes.NewReader(b))}
		for range len(b) + 1 {
			p, n, err := r.read()
			if err != nil {
				break
			}
			if r.track() == nil || n <= 0 || n > 5760 || len(p) == 0 {
				t.Fatalf("packet of %d bytes, %d samples, track %v", len(p), n, r.track())
			}
		}
	})
}

// FuzzADTSReader feeds arbitrary bytes to the ADTS reader and to the AAC
// output reader built on it: no panic, access units as long as their
// headers say, and the frames read written again read back the same.
func FuzzADTSReader(f *testing.F) {
	cfg := aac.AudioSpecificConfig{ObjectType: 2, SampleRate: 48000, ChannelConfig: 2, Channels: 2, FrameLength: 1024}
	var two []byte
	for _, n := range []int{10, 600} {
		two, _ = aac.AppendADTSFrame(two, cfg, bytes.Repeat([]byte{1}, n))
	}
	for _, s := range [][]byte{
		two, readTestdata(f, "tiny.aac"), two[:len(two)-1], two[:5],
		{0xFF, 0xF1, 0x50, 0x80, 0x01, 0x1F, 0xFC},             // a header and nothing else
		{0xFF, 0xF0, 0x50, 0x80, 0x02, 0x3F, 0xFC, 0, 0, 1, 2}, // with CRC
		nil, bytes.Repeat([]byte{0xFF}, 16),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := newADTSReader(bytes.NewReader(b))
		var again []byte
		var aus [][]byte
		for {
			h, au, err := r.ReadFrame()
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, errADTS) {
					t.Fatalf("unexpected error %v", err)
				}
				break
			}
			if len(au) != h.FrameLength-h.HeaderLength() {
				t.Fatalf("access unit of %d bytes in a frame of %d", len(au), h.FrameLength)
			}
			c := h.Config()
			if next, err := aac.AppendADTSFrame(again, c, au); err == nil {
				again = next
				aus = append(aus, bytes.Clone(au))
			}
		}
		r = newADTSReader(bytes.NewReader(again))
		for i, want := range aus {
			_, au, err := r.ReadFrame()
			if err != nil || !bytes.Equal(au, want) {
				t.Fatalf("round trip: frame %d: %v", i, err)
			}
		}

		ar := &aacReader{r: newADTSReader(bytes.NewReader(b))}
		for range len(b) + 1 {
			_, n, err := ar.read()
			if err != nil {
				break
			}
			if ar.track() == nil || n != 1024 || ar.rate() <= 0 {
				t.Fatalf("frame of %d samples at %d Hz, track %v", n, ar.rate(), ar.track())
			}
		}
	})
}
