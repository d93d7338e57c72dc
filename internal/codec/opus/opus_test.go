package opus

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/quasipaa/quasipaa/internal/codec/internal/testmedia"
	"github.com/quasipaa/quasipaa/internal/media"
)

// The vectors in testdata were produced by ffmpeg 5.1 with libopus, see
// ../testdata.sh. Expected values are what ffprobe reports for them.

// readOgg returns the OpusHead and the audio packets of an Ogg Opus file.
func readOgg(tb testing.TB, name string) (head []byte, packets [][]byte) {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	p, err := testmedia.ReadOgg(b)
	if err != nil || len(p) < 3 {
		tb.Fatalf("%s: %d packets, %v", name, len(p), err)
	}
	return p[0], p[2:] // p[1] is OpusTags
}

func TestTracks(t *testing.T) {
	for _, c := range []struct {
		file     string
		channels int
		input    uint32
		family   uint8
		samples  int
		preSkip  uint16
	}{
		{"opus_48k_stereo.opus", 2, 48000, 0, 960, 312},
		{"opus_16k_mono_60ms.opus", 1, 16000, 0, 2880, 312},
		{"opus_51.opus", 6, 48000, 1, 960, 312},
		{"opus_2_5ms.opus", 2, 48000, 0, 120, 120}, // the low-delay CELT mode
	} {
		t.Run(c.file, func(t *testing.T) {
			head, packets := readOgg(t, c.file)
			tr, err := TrackFromHead(head)
			if err != nil {
				t.Fatal(err)
			}
			if tr.Codec != media.CodecOpus || tr.SampleRate != 48000 || tr.Channels != c.channels ||
				!bytes.Equal(tr.Config, head) || &tr.Config[0] == &head[0] {
				t.Fatalf("track = %+v", tr)
			}
			h, err := ParseHead(head)
			if err != nil || h.InputSampleRate != c.input || h.MappingFamily != c.family || h.PreSkip != c.preSkip {
				t.Fatalf("head = %+v, %v", h, err)
			}
			b, err := h.Marshal()
			if err != nil || !bytes.Equal(b, head) {
				t.Fatalf("Marshal = %x, %v; want %x", b, err, head)
			}
			for i, p := range packets {
				n, err := PacketSamples(p)
				if err != nil || n != c.samples {
					t.Fatalf("packet %d (TOC %#x): %d samples, %v; want %d", i, p[0], n, err, c.samples)
				}
			}
		})
	}
}

func TestMultichannelHead(t *testing.T) {
	head, _ := readOgg(t, "opus_51.opus")
	h, err := ParseHead(head)
	if err != nil {
		t.Fatal(err)
	}
	// libopus codes 5.1 as 4 streams, 2 of them coupled (FL/FR, BL/BR).
	if h.StreamCount != 4 || h.CoupledCount != 2 || len(h.Mapping) != 6 {
		t.Fatalf("head = %+v", h)
	}
	for name, b := range map[string][]byte{
		"table truncated": head[:len(head)-1],
		"no streams":      append(append(bytes.Clone(head[:19]), 0, 0), head[21:]...),
		"bad mapping":     append(bytes.Clone(head[:len(head)-1]), 7),
		"9 in family 1":   append(append(append(bytes.Clone(head[:9]), 9), head[10:21]...), 0, 1, 2, 3, 4, 5, 6, 7, 255),
	} {
		if _, err := ParseHead(b); !errors.Is(err, ErrInvalidHead) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestHeadErrors(t *testing.T) {
	head, _ := readOgg(t, "opus_48k_stereo.opus")
	for name, b := range map[string][]byte{
		"empty":      nil,
		"short":      head[:18],
		"magic":      append([]byte("OpusTags"), head[8:]...),
		"version 16": append(append(bytes.Clone(head[:8]), 16), head[9:]...),
		"0 channels": append(append(bytes.Clone(head[:9]), 0), head[10:]...),
		"3 in fam 0": append(append(bytes.Clone(head[:9]), 3), head[10:]...),
	} {
		if _, err := ParseHead(b); !errors.Is(err, ErrInvalidHead) {
			t.Errorf("%s: err = %v", name, err)
		}
		if _, err := TrackFromHead(b); b != nil && !errors.Is(err, ErrInvalidHead) {
			t.Errorf("%s: TrackFromHead err = %v", name, err)
		}
	}
	// Later minor versions are compatible.
	v := bytes.Clone(head)
	v[8] = 15
	if _, err := ParseHead(v); err != nil {
		t.Errorf("version 15: %v", err)
	}
	// An empty head means 48 kHz stereo.
	tr, err := TrackFromHead(nil)
	if err != nil || tr.SampleRate != 48000 || tr.Channels != 2 || tr.Config != nil {
		t.Fatalf("empty head: %+v, %v", tr, err)
	}
	b, err := BuildHead(2, 312, 48000)
	if err != nil || !bytes.Equal(b, head) {
		t.Fatalf("BuildHead = %x, %v; want %x", b, err, head)
	}
	for name, h := range map[string]Head{
		"0 channels":    {},
		"3 in family 0": {Channels: 3},
		"short table":   {Channels: 3, MappingFamily: 1, StreamCount: 2, CoupledCount: 1, Mapping: []byte{0, 1}},
		"coupled > all": {Channels: 2, MappingFamily: 1, StreamCount: 1, CoupledCount: 2, Mapping: []byte{0, 1}},
	} {
		if _, err := h.Marshal(); !errors.Is(err, ErrInvalidHead) {
			t.Errorf("%s: Marshal err = %v", name, err)
		}
	}
}

func TestPacketDuration(t *testing.T) {
	for _, c := range []struct {
		packet []byte
		want   time.Duration
	}{
		// TOC byte: config (5 bits) | stereo (1) | code (2).
		{[]byte{0x00}, 10 * time.Millisecond},              // config 0, SILK NB 10 ms, code 0 (a DTX packet)
		{[]byte{0x18}, 60 * time.Millisecond},              // config 3, SILK NB 60 ms
		{[]byte{0x19, 1, 2}, 120 * time.Millisecond},       // config 3, code 1: two frames
		{[]byte{0x12}, 80 * time.Millisecond},              // config 2, SILK NB 40 ms, code 2
		{[]byte{0x33, 0x01}, 40 * time.Millisecond},        // config 6, SILK MB 40 ms, code 3 x 1
		{[]byte{0x4B, 0x02}, 40 * time.Millisecond},        // config 9, SILK WB 20 ms, code 3 x 2
		{[]byte{0x62}, 20 * time.Millisecond},              // config 12, Hybrid SWB 10 ms, code 2
		{[]byte{0x68, 0xAA, 0xBB}, 20 * time.Millisecond},  // config 13, Hybrid SWB 20 ms
		{[]byte{0x73, 0x06}, 60 * time.Millisecond},        // config 14, Hybrid FB 10 ms, code 3 x 6
		{[]byte{0x7C, 0xFF, 0xFF}, 20 * time.Millisecond},  // config 15, Hybrid FB 20 ms, stereo
		{[]byte{0x80}, 2500 * time.Microsecond},            // config 16, CELT NB 2.5 ms
		{[]byte{0x88}, 5 * time.Millisecond},               // config 17, CELT NB 5 ms
		{[]byte{0x83, 0x30}, 120 * time.Millisecond},       // config 16, code 3 x 48
		{[]byte{0xAB, 0x18}, 120 * time.Millisecond},       // config 21, CELT WB 5 ms, code 3 x 24
		{[]byte{0xDB, 0x02}, 40 * time.Millisecond},        // config 27, CELT SWB 20 ms, code 3 x 2
		{[]byte{0xE0}, 2500 * time.Microsecond},            // config 28, CELT FB 2.5 ms
		{[]byte{0xFB, 0x86, 0x05}, 120 * time.Millisecond}, // config 31, code 3 with VBR and padding flags, x 6
	} {
		got, err := PacketDuration(c.packet)
		if err != nil || got != c.want {
			t.Errorf("PacketDuration(%x) = %v, %v; want %v", c.packet, got, err, c.want)
		}
	}
	for name, p := range map[string][]byte{
		"empty":          nil,
		"code 3 no M":    {0x03},
		"code 3 M=0":     {0x03, 0x00},
		"over 120 ms":    {0x1B, 0x03}, // 3 x 60 ms
		"49 x 2.5 ms":    {0x83, 0x31},
		"3 x 60 ms, VBR": {0x1B, 0x83},
	} {
		if _, err := PacketSamples(p); !errors.Is(err, ErrInvalidPacket) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
