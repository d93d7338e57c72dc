package fmp4

import (
	"testing"
	"time"

	"github.com/quasipaa/quasipaa/internal/media"
)

// BenchmarkFlush buffers and writes 2 s fragments of 30 fps H.264 (a 60 KB
// keyframe, then 8 KB frames: about 2.3 Mbit/s) and 48 kHz AAC, the shape
// of a recording segment.
func BenchmarkFlush(b *testing.B) {
	w, err := NewWriter([]*media.Track{h264Track(b), aacTrack(b, 48000, 2)})
	if err != nil {
		b.Fatal(err)
	}
	const span = 2 * time.Second
	s := newAVStream(0, 2)
	for i, f := range s.video {
		size := 8 << 10
		if i == 0 {
			size = 60 << 10
		}
		f.Payload = make([]byte, size)
	}
	for _, f := range s.audio {
		f.Payload = make([]byte, 384)
	}
	// Interleave in DTS order, as a stream delivers them.
	var frames []*media.Frame
	vi, ai := 0, 0
	for vi < len(s.video) || ai < len(s.audio) {
		if ai == len(s.audio) || (vi < len(s.video) && s.video[vi].DTS <= s.audio[ai].DTS) {
			frames = append(frames, s.video[vi])
			vi++
		} else {
			frames = append(frames, s.audio[ai])
			ai++
		}
	}
	size := 0
	for _, f := range frames {
		size += len(f.Payload)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	var end time.Duration
	for b.Loop() {
		for _, f := range frames {
			w.Add(f)
		}
		end += span
		if _, err := w.Flush(end); err != nil {
			b.Fatal(err)
		}
		for _, f := range frames {
			f.DTS += span
			f.PTS += span
		}
	}
}
