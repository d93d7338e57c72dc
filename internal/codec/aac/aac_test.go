package aac

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/quasipaa/quasipaa/internal/codec/internal/bitio"
	"github.com/quasipaa/quasipaa/internal/codec/internal/testmedia"
	"github.com/quasipaa/quasipaa/internal/media"
)

// The vectors in testdata were produced by ffmpeg 5.1's native AAC encoder,
// see ../testdata.sh. Expected values are what ffprobe reports for them.

func readFile(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// flvConfig returns the AudioSpecificConfig of the FLV vector's AAC
// sequence header, and its raw access units.
func flvConfig(tb testing.TB) (asc []byte, aus [][]byte) {
	tb.Helper()
	tags, err := testmedia.ReadFLV(readFile(tb, "aac_44k_mono.flv"))
	if err != nil {
		tb.Fatal(err)
	}
	for _, tag := range tags {
		if tag.Type != 8 || len(tag.Data) < 2 || tag.Data[0]>>4 != 10 {
			continue
		}
		if tag.Data[1] == 0 {
			asc = tag.Data[2:]
		} else {
			aus = append(aus, tag.Data[2:])
		}
	}
	if asc == nil || len(aus) == 0 {
		tb.Fatal("no AAC sequence header in the FLV vector")
	}
	return asc, aus
}

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestTrackFromConfigFLV(t *testing.T) {
	asc, _ := flvConfig(t)
	tr, err := TrackFromConfig(asc)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Codec != media.CodecAAC || tr.SampleRate != 44100 || tr.Channels != 1 || tr.Profile != "LC" {
		t.Fatalf("track = %+v", tr)
	}
	if !bytes.Equal(tr.Config, asc) || &tr.Config[0] == &asc[0] {
		t.Fatal("Config is not a copy")
	}
	// ffmpeg appends the backward-compatible SBR extension with
	// sbrPresentFlag 0: it must not turn the stream into HE-AAC.
	c, err := ParseAudioSpecificConfig(asc)
	if err != nil || c.SBR || c.FrameLength != 1024 || c.ObjectType != ObjectTypeLC {
		t.Fatalf("config %+v, %v", c, err)
	}
}

func TestADTS(t *testing.T) {
	file := readFile(t, "aac_48k_stereo.aac")
	var rebuilt []byte
	n := 0
	err := ForEachADTSFrame(file, func(h ADTSHeader, au []byte) bool {
		if h.SampleRate != 48000 || h.ChannelConfig != 2 || h.ObjectType != ObjectTypeLC || h.MPEG2 ||
			!h.ProtectionAbsent || h.RawDataBlocks != 1 || len(au) != h.FrameLength-7 {
			t.Fatalf("frame %d header %+v", n, h)
		}
		var err error
		if rebuilt, err = AppendADTSFrame(rebuilt, h.Config(), au); err != nil {
			t.Fatal(err)
		}
		n++
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 6 {
		t.Fatalf("%d frames", n)
	}
	// ffmpeg's headers are exactly what AppendADTSHeader writes.
	if !bytes.Equal(rebuilt, file) {
		t.Fatal("rebuilt ADTS stream differs from ffmpeg's")
	}
	tr, err := TrackFromADTS(file)
	if err != nil {
		t.Fatal(err)
	}
	if tr.SampleRate != 48000 || tr.Channels != 2 || !bytes.Equal(tr.Config, []byte{0x11, 0x90}) {
		t.Fatalf("TrackFromADTS = %+v", tr)
	}
	h, au, err := StripADTS(file)
	if err != nil || len(au) != h.FrameLength-7 || !bytes.Equal(au, file[7:h.FrameLength]) {
		t.Fatalf("StripADTS: %+v, %v", h, err)
	}
	// Stopping early.
	n = 0
	_ = ForEachADTSFrame(file, func(ADTSHeader, []byte) bool { n++; return false })
	if n != 1 {
		t.Fatalf("did not stop: %d", n)
	}
}

func TestADTSErrors(t *testing.T) {
	file := readFile(t, "aac_48k_stereo.aac")
	frame := file[:7]
	for name, c := range map[string]struct {
		in   []byte
		want error
	}{
		"short":           {frame[:6], ErrTruncated},
		"no sync":         {append([]byte{0xFE}, frame[1:]...), ErrInvalidADTS},
		"layer 1":         {append([]byte{0xFF, 0xF3}, frame[2:]...), ErrInvalidADTS},
		"rate index 13":   {append([]byte{0xFF, 0xF1, 0x74}, frame[3:]...), ErrInvalidADTS},
		"frame too short": {[]byte{0xFF, 0xF1, 0x4C, 0x80, 0x00, 0x9F, 0xFC}, ErrInvalidADTS},
		"truncated body":  {file[:100], ErrTruncated},
		"two blocks":      {append(bytes.Clone(frame[:6]), frame[6]|1), ErrMultipleRawDataBlocks},
	} {
		_, _, err := StripADTS(c.in)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", name, err, c.want)
		}
	}
	// With a CRC the header is 9 bytes.
	crc := bytes.Clone(file[:139])
	crc[1] &^= 1
	h, au, err := StripADTS(crc)
	if err != nil || h.HeaderLength() != 9 || len(au) != 130 {
		t.Fatalf("CRC frame: %+v, %d, %v", h, len(au), err)
	}
	lc := AudioSpecificConfig{ObjectType: 2, SampleRate: 48000, ChannelConfig: 2}
	for name, c := range map[string]AudioSpecificConfig{
		"he-aac type": {ObjectType: 5, SampleRate: 48000, ChannelConfig: 2},
		"odd rate":    {ObjectType: 2, SampleRate: 44000, ChannelConfig: 2},
		"channels 8":  {ObjectType: 2, SampleRate: 48000, ChannelConfig: 8},
	} {
		if _, err := AppendADTSHeader(nil, c, 10); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := AppendADTSHeader(nil, lc, 8200); !errors.Is(err, ErrUnsupported) {
		t.Errorf("oversized frame: err = %v", err)
	}
}

func TestHEAAC(t *testing.T) {
	for _, c := range []struct {
		name, asc         string
		want              AudioSpecificConfig
		profile           string
		outRate, outChans int
	}{
		{
			// Explicit hierarchical signalling: object type 5, 22050 Hz core, stereo, 44100 Hz SBR.
			"explicit", "2b920800",
			AudioSpecificConfig{ObjectType: 2, SampleRate: 22050, ChannelConfig: 2, Channels: 2, SBR: true, ExtensionSampleRate: 44100, FrameLength: 1024},
			"HE-AAC", 44100, 2,
		},
		{
			// HE-AAC v2: object type 29, 24000 Hz mono core, 48000 Hz SBR, parametric stereo.
			"v2", "eb098800",
			AudioSpecificConfig{ObjectType: 2, SampleRate: 24000, ChannelConfig: 1, Channels: 1, SBR: true, PS: true, ExtensionSampleRate: 48000, FrameLength: 1024},
			"HE-AACv2", 48000, 2,
		},
		{
			// Backward-compatible signalling: AAC LC 24000 Hz stereo, then the
			// 0x2B7 extension announcing SBR at 48000 Hz.
			"backward compatible", "131056e598",
			AudioSpecificConfig{ObjectType: 2, SampleRate: 24000, ChannelConfig: 2, Channels: 2, SBR: true, ExtensionSampleRate: 48000, FrameLength: 1024},
			"HE-AAC", 48000, 2,
		},
		{
			// LC 48000 Hz 5.1 with 960-sample frames.
			"960", "11b4",
			AudioSpecificConfig{ObjectType: 2, SampleRate: 48000, ChannelConfig: 6, Channels: 6, FrameLength: 960},
			"LC", 48000, 6,
		},
	} {
		got, err := ParseAudioSpecificConfig(unhex(t, c.asc))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want || got.ProfileName() != c.profile || got.OutputSampleRate() != c.outRate || got.OutputChannels() != c.outChans {
			t.Fatalf("%s: %+v (%s, %d Hz, %d ch), want %+v", c.name, got, got.ProfileName(), got.OutputSampleRate(), got.OutputChannels(), c.want)
		}
		// Marshal writes the explicit form, which parses back to the same.
		b, err := got.Marshal()
		if err != nil {
			t.Fatalf("%s: Marshal: %v", c.name, err)
		}
		back, err := ParseAudioSpecificConfig(b)
		if err != nil || back != got {
			t.Fatalf("%s: round trip %+v, %v", c.name, back, err)
		}
		if c.name != "backward compatible" && !bytes.Equal(b, unhex(t, c.asc)) {
			t.Fatalf("%s: Marshal = %x, want %s", c.name, b, c.asc)
		}
	}
}

func TestEscapesAndPCE(t *testing.T) {
	// Object type escape (USAC, 42) and explicit sample rate (escape index 15).
	var w bitio.Writer
	w.WriteBits(31, 5)
	w.WriteBits(42-32, 6)
	w.WriteBits(15, 4)
	w.WriteBits(44056, 24)
	w.WriteBits(2, 4)
	c, err := ParseAudioSpecificConfig(w.Bytes())
	if err != nil || c.ObjectType != ObjectTypeUSAC || c.SampleRate != 44056 || c.Channels != 2 || c.ProfileName() != "USAC" {
		t.Fatalf("escapes: %+v, %v", c, err)
	}

	// channelConfiguration 0 with a program config element for 5.1:
	// front C + L/R pair, back Ls/Rs pair, one LFE.
	w = bitio.Writer{}
	w.WriteBits(2, 5)  // AAC LC
	w.WriteBits(3, 4)  // 48000
	w.WriteBits(0, 4)  // channelConfiguration 0
	w.WriteBits(0, 3)  // frameLengthFlag, dependsOnCoreCoder, extensionFlag
	w.WriteBits(0, 4)  // element_instance_tag
	w.WriteBits(1, 2)  // object_type
	w.WriteBits(3, 4)  // sampling_frequency_index
	w.WriteBits(2, 4)  // num_front_channel_elements
	w.WriteBits(0, 4)  // num_side_channel_elements
	w.WriteBits(1, 4)  // num_back_channel_elements
	w.WriteBits(1, 2)  // num_lfe_channel_elements
	w.WriteBits(0, 3)  // num_assoc_data_elements
	w.WriteBits(0, 4)  // num_valid_cc_elements
	w.WriteBits(0, 3)  // no mixdowns
	w.WriteBits(0, 5)  // front SCE
	w.WriteBits(16, 5) // front CPE
	w.WriteBits(16, 5) // back CPE
	w.WriteBits(0, 4)  // LFE
	w.WriteBits(0, 3)  // byte alignment: 16+3+... so far 77 bits, pad to 80
	w.WriteBits(2, 8)  // comment_field_bytes
	w.WriteBits(0x4142, 16)
	c, err = ParseAudioSpecificConfig(w.Bytes())
	if err != nil || c.ChannelConfig != 0 || c.Channels != 6 {
		t.Fatalf("PCE: %+v, %v", c, err)
	}
	if _, err := c.Marshal(); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Marshal with a PCE: %v", err)
	}
	if _, err := ParseAudioSpecificConfig(w.Bytes()[:9]); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("truncated PCE: %v", err)
	}
}

func TestBuildAudioSpecificConfig(t *testing.T) {
	for _, c := range []struct {
		objectType, rate, channels int
		want                       string
	}{
		{2, 48000, 2, "1190"},
		{2, 44100, 1, "1208"},
		{2, 8000, 1, "1588"},
		{2, 48000, 8, "11b8"},
		{1, 96000, 2, "0810"},
		{2, 44056, 2, "1780560c10"},
	} {
		b, err := BuildAudioSpecificConfig(c.objectType, c.rate, c.channels)
		if err != nil || hex.EncodeToString(b) != c.want {
			t.Errorf("Build(%d, %d, %d) = %x, %v; want %s", c.objectType, c.rate, c.channels, b, err, c.want)
			continue
		}
		got, err := ParseAudioSpecificConfig(b)
		if err != nil || got.SampleRate != c.rate || got.OutputChannels() != c.channels || got.ObjectType != c.objectType {
			t.Errorf("parse back %+v, %v", got, err)
		}
	}
	for name, c := range map[string][3]int{"0 channels": {2, 48000, 0}, "7 channels": {2, 48000, 7}, "er type": {17, 48000, 2}, "rate 0": {2, 0, 2}} {
		if _, err := BuildAudioSpecificConfig(c[0], c[1], c[2]); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for name, s := range map[string]string{
		"empty":            "",
		"one byte":         "12",
		"rate index 13":    "1688",
		"channel config 8": "1240",
		"object type 0":    "0010",
		"escape rate 0":    "178000000100",
		"truncated ga":     "8991", // ER AAC LC with extensionFlag: its flags and epConfig are missing
	} {
		b, _ := hex.DecodeString(s)
		if _, err := ParseAudioSpecificConfig(b); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := TrackFromConfig(nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("TrackFromConfig(nil): %v", err)
	}
	if SampleRateIndex(7350) != 12 || SampleRateIndex(44000) != -1 {
		t.Error("SampleRateIndex wrong")
	}
}
