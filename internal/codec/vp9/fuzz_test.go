package vp9

import (
	"bytes"
	"testing"
)

func FuzzParseConfigRecord(f *testing.F) {
	for _, v := range vectors {
		vpcC := readMP4(f, v.file).Boxes["vpcC"]
		f.Add(vpcC)
		f.Add(vpcC[4:])
	}
	f.Fuzz(func(t *testing.T, vpcC []byte) {
		c, err := ParseConfigRecord(vpcC)
		if err != nil {
			return
		}
		// Round trip: the box body rebuilt from the record parses back to it.
		built, err := BuildConfigRecord(c)
		if err != nil {
			t.Fatalf("BuildConfigRecord rejects a parsed record: %v", err)
		}
		c2, err := ParseConfigRecord(built)
		if err != nil || !sameRecord(c, c2) {
			t.Fatalf("round trip: %+v -> %+v, %v", c, c2, err)
		}
		tr, err := TrackFromConfigRecord(vpcC)
		if err != nil || !bytes.Equal(tr.Config, built) {
			t.Fatalf("TrackFromConfigRecord: %v", err)
		}
	})
}

// seedFrames returns the head of each frame of the real vectors: the
// uncompressed header is all these parsers read.
func seedFrames(f *testing.F) [][]byte {
	var out [][]byte
	for _, v := range vectors {
		for _, s := range readMP4(f, v.file).Samples {
			out = append(out, s[:min(len(s), 32)])
		}
	}
	return out
}

func FuzzIsKeyframe(f *testing.F) {
	for _, s := range seedFrames(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		key := IsKeyframe(frame)
		k, err := ParseKeyframe(frame)
		if !key {
			if err == nil {
				t.Fatal("ParseKeyframe accepted a frame IsKeyframe rejects")
			}
			return
		}
		if err != nil {
			return // a keyframe header truncated after the sync code
		}
		if k.Width < 1 || k.Height < 1 || k.Width > 65536 || k.Height > 65536 || k.Profile > 3 {
			t.Fatalf("implausible keyframe %+v", k)
		}
		c, err := ConfigRecordFromKeyframe(frame)
		if err != nil {
			t.Fatalf("ConfigRecordFromKeyframe: %v", err)
		}
		tr, err := TrackFromKeyframe(frame)
		if err != nil || tr.Width != k.Width || tr.Height != k.Height {
			t.Fatalf("TrackFromKeyframe: %+v, %v", tr, err)
		}
		if back, err := ParseConfigRecord(tr.Config); err != nil || !sameRecord(back, c) {
			t.Fatalf("track record %+v, want %+v, %v", back, c, err)
		}
	})
}
