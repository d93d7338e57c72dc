package bench

import (
	"slices"
	"sync/atomic"
	"time"
)

// StallThreshold is the longest a player may go without a video frame, once
// playing, before the gap counts as a stall.
const StallThreshold = time.Second

// maxDelta bounds the DTS step between consecutive video frames that is
// taken as a gap in the same timeline; a larger step, or one backwards, is a
// discontinuity (publisher restart, timestamp reset) and is not counted as
// dropped frames.
const maxDelta = 10000 // ms

// intervalSamples is how many DTS deltas give the stream's frame interval.
const intervalSamples = 31

// Player states, as seen by the progress ticker.
const (
	stateWaiting    uint32 = iota // not started yet (ramp)
	stateConnecting               // dialing, handshake, play request
	stateConnected                // playing
	stateDone                     // ended without error
	stateFailed                   // ended with an error
)

// counters are what the progress ticker reads while a player runs.
type counters struct {
	state  atomic.Uint32
	bytes  atomic.Uint64
	video  atomic.Uint64
	audio  atomic.Uint64
	drops  atomic.Uint64
	stalls atomic.Uint32

	// HLS players only, added to by each media playlist's goroutine.
	requests   atomic.Uint64
	media      atomic.Uint64 // parts and segments
	httpErrors atomic.Uint64
}

// accounting tracks one player's frames. Its methods run on the player's
// goroutine; only counters may be read by others while it runs.
type accounting struct {
	c counters

	haveVideo   bool
	firstVideo  time.Time // wall clock of the first coded video frame
	lastVideo   time.Time // wall clock of the last one
	lastDTS     uint32
	mediaMs     int64 // sum of the in-timeline DTS steps
	steps       int64 // number of those steps
	interval    int32 // frame interval in ms (median DTS step), 0 until known
	samples     [intervalSamples]int32
	nsamples    int
	dropped     uint64
	discont     int
	stalls      int
	stallTime   time.Duration
	longestGap  time.Duration
	videoFrames uint64 // mirrors c.video, readable without atomics afterwards
	audioFrames uint64
	bytes       uint64
}

// message accounts one audio or video message (RTMP) or tag (FLV) of type
// typ (8 audio, 9 video; anything else only counts bytes) received at now.
// It does not allocate.
func (a *accounting) message(typ uint8, ts uint32, body []byte, now time.Time) {
	a.bytes += uint64(len(body))
	a.c.bytes.Store(a.bytes)
	switch typ {
	case 9:
		if videoKind(body) == kindVideoFrame {
			a.videoFrame(ts, now)
		}
	case 8:
		if audioKind(body) == kindAudioFrame {
			a.audioFrames++
			a.c.audio.Store(a.audioFrames)
		}
	}
}

func (a *accounting) videoFrame(ts uint32, now time.Time) {
	a.videoFrames++
	a.c.video.Store(a.videoFrames)
	if !a.haveVideo {
		a.haveVideo = true
		a.firstVideo, a.lastVideo, a.lastDTS = now, now, ts
		return
	}
	gap := now.Sub(a.lastVideo)
	a.lastVideo = now
	a.noteGap(gap)
	d := int32(ts - a.lastDTS)
	a.lastDTS = ts
	if d <= 0 || d > maxDelta {
		if d != 0 {
			a.discont++
		}
		return
	}
	a.mediaMs += int64(d)
	a.steps++
	if a.interval == 0 {
		a.samples[a.nsamples] = d
		a.nsamples++
		if a.nsamples == len(a.samples) {
			a.settleInterval()
		}
		return
	}
	a.countGap(d)
}

// noteGap records a wall-clock gap between video frames.
func (a *accounting) noteGap(gap time.Duration) {
	if gap > a.longestGap {
		a.longestGap = gap
	}
	if gap > StallThreshold {
		a.stalls++
		a.stallTime += gap
		a.c.stalls.Add(1)
	}
}

// settleInterval fixes the frame interval as the median of the sampled DTS
// steps, and accounts the sampled steps for gaps.
func (a *accounting) settleInterval() {
	s := a.samples[:a.nsamples]
	sorted := a.samples // a copy: the array is a value
	slices.Sort(sorted[:len(s)])
	a.interval = sorted[len(s)/2]
	if a.interval <= 0 {
		a.interval = 1
	}
	for _, d := range s {
		a.countGap(d)
	}
}

// countGap counts the frames missing in a DTS step of d ms: a step longer
// than 1.5 intervals holds round(d/interval)-1 missing frames. Timestamps in
// whole milliseconds jitter by one (33, 33, 34 at 30 fps), which stays far
// below the threshold.
func (a *accounting) countGap(d int32) {
	if 2*d <= 3*a.interval {
		return
	}
	missing := uint64((d+a.interval/2)/a.interval) - 1
	a.dropped += missing
	a.c.drops.Store(a.dropped)
}

// finish closes the accounting at end: an ongoing gap longer than the stall
// threshold counts as a stall, and a stream too short to settle the frame
// interval is accounted with what it has.
func (a *accounting) finish(end time.Time) {
	if a.interval == 0 && a.nsamples > 0 {
		a.settleInterval()
	}
	if a.haveVideo {
		a.noteGap(end.Sub(a.lastVideo))
	}
}

// fps is the frame rate the timestamps show: the frame steps, received or
// missing, over the media time.
func (a *accounting) fps() float64 {
	if a.mediaMs <= 0 {
		return 0
	}
	return float64(a.steps+int64(a.dropped)) * 1000 / float64(a.mediaMs)
}

// expected is the number of video frames the timestamps imply.
func (a *accounting) expected() uint64 { return a.videoFrames + a.dropped }
