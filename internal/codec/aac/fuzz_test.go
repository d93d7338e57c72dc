package aac

import (
	"testing"
)

func FuzzParseAudioSpecificConfig(f *testing.F) {
	asc, _ := flvConfig(f)
	f.Add(asc)
	for _, s := range []string{"1190", "2b920800", "eb098800", "131056e598", "11b4", "1780560c10", "f940"} {
		f.Add(unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, asc []byte) {
		c, err := ParseAudioSpecificConfig(asc)
		if err != nil {
			return
		}
		if c.SampleRate <= 0 || c.Channels < 0 || c.OutputChannels() < c.Channels || c.FrameLength <= 0 || c.ProfileName() == "" {
			t.Fatalf("implausible config %+v", c)
		}
		tr, err := TrackFromConfig(asc)
		if err != nil || tr.SampleRate != c.OutputSampleRate() || tr.Channels != c.OutputChannels() {
			t.Fatalf("TrackFromConfig: %+v, %v", tr, err)
		}
		// Round trip for the configurations Marshal supports.
		b, err := c.Marshal()
		if err != nil {
			return
		}
		back, err := ParseAudioSpecificConfig(b)
		if err != nil || back != c {
			t.Fatalf("round trip %+v -> %x -> %+v, %v", c, b, back, err)
		}
	})
}

func FuzzADTS(f *testing.F) {
	file := readFile(f, "aac_48k_stereo.aac")
	h, _, err := StripADTS(file)
	if err != nil {
		f.Fatal(err)
	}
	// The first frame cut short (header and a few payload bytes, length fixed
	// up), and a run of two such frames.
	short := append([]byte{}, file[:7+16]...)
	short[3] = short[3]&^3 | byte(23>>11)
	short[4] = byte(23 >> 3)
	short[5] = short[5]&0x1F | byte(23&7)<<5
	f.Add(short)
	f.Add(append(append([]byte{}, short...), short...))
	f.Add(file[:h.FrameLength])
	f.Fuzz(func(t *testing.T, b []byte) {
		total := 0
		err := ForEachADTSFrame(b, func(h ADTSHeader, au []byte) bool {
			if len(au) != h.FrameLength-h.HeaderLength() || h.RawDataBlocks != 1 {
				t.Fatalf("access unit of %d bytes for header %+v", len(au), h)
			}
			total += h.FrameLength
			// Rebuilding the header gives back the same fields.
			c := h.Config()
			rebuilt, err := AppendADTSHeader(nil, c, len(au))
			if err != nil {
				t.Fatalf("AppendADTSHeader(%+v): %v", c, err)
			}
			h2, err := ParseADTSHeader(rebuilt)
			if err != nil || h2.ObjectType != h.ObjectType || h2.SampleRate != h.SampleRate ||
				h2.ChannelConfig != h.ChannelConfig || h2.FrameLength != len(au)+7 {
				t.Fatalf("rebuilt header %+v from %+v, %v", h2, h, err)
			}
			return true
		})
		if err == nil && total != len(b) {
			t.Fatalf("frames cover %d of %d bytes", total, len(b))
		}
		if tr, err := TrackFromADTS(b); err == nil && (tr.SampleRate <= 0 || tr.Channels <= 0) {
			t.Fatalf("TrackFromADTS = %+v", tr)
		}
	})
}
