package vp9

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/quasipaa/quasipaa/internal/codec/internal/testmedia"
	"github.com/quasipaa/quasipaa/internal/media"
)

// The vectors in testdata were produced by ffmpeg 5.1 with libvpx-vp9, see
// ../testdata.sh. Expected values are what ffprobe reports for them.

func readMP4(tb testing.TB, name string) *testmedia.MP4Track {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	tr, err := testmedia.ReadMP4(b)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	if tr.SampleEntry != "vp09" || tr.Boxes["vpcC"] == nil {
		tb.Fatalf("%s: sample entry %q without vpcC", name, tr.SampleEntry)
	}
	return tr
}

var vectors = []struct {
	file          string
	width, height int
	profile       string
	level         string
	depth         uint8
	chroma        uint8
}{
	{"vp9_720p.mp4", 1280, 720, "Profile 0", "3.1", 8, ChromaSubsampling420Colocated},
	{"vp9_p1_444.mp4", 320, 180, "Profile 1", "1.1", 8, ChromaSubsampling444},
	{"vp9_p2_10bit.mp4", 320, 180, "Profile 2", "1.1", 10, ChromaSubsampling420Colocated},
}

func TestTracks(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.file, func(t *testing.T) {
			tr := readMP4(t, v.file)
			vpcC := tr.Boxes["vpcC"]
			track, err := TrackFromConfigRecord(vpcC)
			if err != nil {
				t.Fatal(err)
			}
			if track.Codec != media.CodecVP9 || track.Profile != v.profile || track.Level != v.level || track.Width != 0 {
				t.Fatalf("track = %+v", track)
			}
			if !bytes.Equal(track.Config, vpcC) || &track.Config[0] == &vpcC[0] {
				t.Fatal("Config is not a copy of vpcC")
			}
			if err := SetKeyframe(track, tr.Samples[0]); err != nil {
				t.Fatal(err)
			}
			if track.Width != v.width || track.Height != v.height || !bytes.Equal(track.Config, vpcC) {
				t.Fatalf("after SetKeyframe: %+v", track)
			}

			// Without a record, the keyframe alone rebuilds what ffmpeg wrote.
			fromKey, err := TrackFromKeyframe(tr.Samples[0])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(fromKey.Config, vpcC) || fromKey.Width != v.width || fromKey.Height != v.height ||
				fromKey.Profile != v.profile || fromKey.Level != v.level {
				t.Fatalf("TrackFromKeyframe = %+v (%x), want vpcC %x", fromKey, fromKey.Config, vpcC)
			}
			k, err := ParseKeyframe(tr.Samples[0])
			if err != nil || k.BitDepth != v.depth {
				t.Fatalf("keyframe %+v, %v", k, err)
			}
			c, _ := ParseConfigRecord(vpcC)
			if c.BitDepth != v.depth || c.ChromaSubsampling != v.chroma {
				t.Fatalf("record %+v", c)
			}
		})
	}
}

func TestIsKeyframe(t *testing.T) {
	for _, v := range vectors {
		tr := readMP4(t, v.file)
		if len(tr.Samples) < 2 {
			t.Fatalf("%s: %d samples", v.file, len(tr.Samples))
		}
		for i, s := range tr.Samples {
			if got := IsKeyframe(s); got != tr.IsSync(i) {
				t.Errorf("%s sample %d: IsKeyframe = %v, stss says %v", v.file, i, got, tr.IsSync(i))
			}
		}
		if _, err := ParseKeyframe(tr.Samples[1]); !errors.Is(err, ErrNotKeyframe) {
			t.Errorf("%s: ParseKeyframe(inter) err = %v", v.file, err)
		}
	}
	key := readMP4(t, "vp9_720p.mp4").Samples[0]
	for name, f := range map[string][]byte{
		"empty":         nil,
		"bad marker":    append([]byte{0x02}, key[1:]...),
		"bad sync":      append(bytes.Clone(key[:2]), 0x00, 0x00, 0x00),
		"truncated":     key[:3],
		"show existing": {0x88, 0x00}, // frame_marker 2, profile 0, show_existing_frame 1
	} {
		if IsKeyframe(f) {
			t.Errorf("%s: reported as keyframe", name)
		}
		if _, err := ParseKeyframe(f); err == nil {
			t.Errorf("%s: ParseKeyframe accepted it", name)
		}
	}
	// Profile 3 has a reserved bit before show_existing_frame: 10 1 1 0 | 0 0 0 0 | sync.
	p3 := []byte{0xB0, 0x24, 0xC1, 0xA1, 0x00}
	if !IsKeyframe(p3) {
		t.Error("profile 3 keyframe not detected")
	}
	p3[0] |= 0x08 // reserved bit set
	if IsKeyframe(p3) {
		t.Error("profile 3 with reserved bit set accepted")
	}
}

func TestConfigRecord(t *testing.T) {
	vpcC := readMP4(t, "vp9_720p.mp4").Boxes["vpcC"]
	c, err := ParseConfigRecord(vpcC)
	if err != nil {
		t.Fatal(err)
	}
	want := ConfigRecord{Level: 31, BitDepth: 8, ChromaSubsampling: 1, ColourPrimaries: 2, TransferCharacteristics: 2,
		MatrixCoefficients: 2, CodecInitializationData: []byte{}}
	if !sameRecord(c, want) {
		t.Fatalf("record = %+v", c)
	}
	built, err := BuildConfigRecord(c)
	if err != nil || !bytes.Equal(built, vpcC) {
		t.Fatalf("BuildConfigRecord = %x, %v; want %x", built, err, vpcC)
	}
	// FFmpeg's FLV muxer writes the record without version and flags.
	bare, err := ParseConfigRecord(vpcC[4:])
	if err != nil || !sameRecord(bare, c) {
		t.Fatalf("bare record = %+v, %v", bare, err)
	}
	track, err := TrackFromConfigRecord(vpcC[4:])
	if err != nil || !bytes.Equal(track.Config, vpcC) {
		t.Fatalf("bare record not rewritten as a box body: %x, %v", track.Config, err)
	}
	// An empty record is allowed by the media model; the first keyframe
	// then fills in the record as well as the size.
	track, err = TrackFromConfigRecord(nil)
	if err != nil || track.Codec != media.CodecVP9 || track.Config != nil {
		t.Fatalf("empty record: %+v, %v", track, err)
	}
	frames := readMP4(t, "vp9_720p.mp4").Samples
	if err := SetKeyframe(track, frames[1]); !errors.Is(err, ErrNotKeyframe) {
		t.Fatalf("SetKeyframe(inter frame): %v", err)
	}
	if err := SetKeyframe(track, frames[0]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(track.Config, vpcC) || track.Width != 1280 || track.Height != 720 || track.Profile != "Profile 0" || track.Level != "3.1" {
		t.Fatalf("after SetKeyframe: %+v", track)
	}

	for name, b := range map[string][]byte{
		"short":       vpcC[:7],
		"version 0":   append([]byte{0, 0, 0, 0}, vpcC[4:]...),
		"bit depth 9": append(bytes.Clone(vpcC[:6]), 0x92, 2, 2, 2, 0, 0),
		"profile 4":   append(append(bytes.Clone(vpcC[:4]), 4), vpcC[5:]...),
		"chroma 5":    append(bytes.Clone(vpcC[:6]), 0x8A, 2, 2, 2, 0, 0),
		"init data":   append(bytes.Clone(vpcC[:10]), 0, 9, 1),
	} {
		if _, err := ParseConfigRecord(b); !errors.Is(err, ErrInvalidConfigRecord) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestNamesAndLevels(t *testing.T) {
	for _, c := range []struct {
		w, h int
		want uint8
	}{{256, 144, 10}, {320, 180, 11}, {640, 360, 21}, {854, 480, 30}, {1280, 720, 31}, {1920, 1080, 40},
		{3840, 2160, 50}, {7680, 4320, 60}, {16384, 16384, 0}, {0, 10, 0}} {
		if got := EstimateLevel(c.w, c.h); got != c.want {
			t.Errorf("EstimateLevel(%d, %d) = %d, want %d", c.w, c.h, got, c.want)
		}
	}
	for level, want := range map[uint8]string{0: "", 10: "1", 11: "1.1", 31: "3.1", 40: "4", 62: "6.2"} {
		if got := LevelName(level); got != want {
			t.Errorf("LevelName(%d) = %q, want %q", level, got, want)
		}
	}
	if ProfileName(2) != "Profile 2" {
		t.Error("ProfileName wrong")
	}
}

func sameRecord(a, b ConfigRecord) bool {
	return a.Profile == b.Profile && a.Level == b.Level && a.BitDepth == b.BitDepth &&
		a.ChromaSubsampling == b.ChromaSubsampling && a.FullRange == b.FullRange &&
		a.ColourPrimaries == b.ColourPrimaries && a.TransferCharacteristics == b.TransferCharacteristics &&
		a.MatrixCoefficients == b.MatrixCoefficients && bytes.Equal(a.CodecInitializationData, b.CodecInitializationData)
}
