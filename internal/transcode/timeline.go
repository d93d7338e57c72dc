package transcode

import (
	"sync"
	"time"
)

// timeline maps the converter's output back to the input's clock. The
// containers ffmpeg reads and writes carry no stream time, so both sides
// count samples: input frame k starts at position P_k, the sum of the
// durations of the frames fed before it, and output sample n holds the
// input's position n-delay. An anchor ties a position to the PTS of the
// frame fed there. Anchors are added on the first frame and whenever a
// frame's PTS departs from what the positions predict by tolerance or more
// (a gap, a jump, a restart of the publisher's clock); between anchors the
// output follows the sample count, which is exact for audio.
//
// One timeline serves one ffmpeg process: the feeding goroutine calls in,
// the output goroutine at.
type timeline struct {
	tolerance time.Duration

	// Owned by the feeding goroutine.
	inSamples int64
	inRate    int

	mu      sync.Mutex
	anchors []anchor
}

// anchor says that the input frame fed at position pos has timestamp pts.
type anchor struct {
	pos, pts time.Duration
}

func newTimeline(inRate int, tolerance time.Duration) *timeline {
	return &timeline{inRate: inRate, tolerance: tolerance}
}

// in registers an input frame of n samples with timestamp pts, before it is
// fed; it reports whether the frame re-anchored the timeline (not counting
// the first frame).
func (t *timeline) in(pts time.Duration, n int64) bool {
	pos := samplesToDuration(t.inSamples, t.inRate)
	t.inSamples += n
	t.mu.Lock()
	defer t.mu.Unlock()
	if k := len(t.anchors); k > 0 {
		a := t.anchors[k-1]
		d := pts - (a.pts + pos - a.pos)
		if d < t.tolerance && d > -t.tolerance {
			return false
		}
	}
	t.anchors = append(t.anchors, anchor{pos: pos, pts: pts})
	return len(t.anchors) > 1
}

// at returns the input timestamp of position pos (an output position less
// the encoder delay). Positions must be asked in increasing order: anchors
// behind pos are forgotten. ok is false before the first input frame.
func (t *timeline) at(pos time.Duration) (pts time.Duration, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.anchors) == 0 {
		return 0, false
	}
	i := 0
	for i+1 < len(t.anchors) && t.anchors[i+1].pos <= pos {
		i++
	}
	if i > 0 {
		t.anchors = append(t.anchors[:0], t.anchors[i:]...)
	}
	a := t.anchors[0]
	return a.pts + pos - a.pos, true
}
