package bench

import (
	"sync"
	"time"
)

// sendLogSize is how many video frames a send log remembers: over two
// minutes at 30 fps, far more than any latency worth measuring.
const sendLogSize = 4096

// sentFrame is one video frame a publisher sent.
type sentFrame struct {
	dts, pts int64     // ms, on the publisher's timeline (file timestamp plus the loop offset)
	sent     time.Time // when the publisher handed it to its RTMP connection
	key      bool      // a keyframe
	vcl      uint32    // bytes of its H.264 slice NAL units, 0 if unknown
}

// sendLog is a publisher's record of the video frames it sent, read by the
// WHEP players of its stream to tell each frame's latency. The publisher
// adds frames (about 30 a second), the players look them up.
type sendLog struct {
	mu    sync.RWMutex
	ring  [sendLogSize]sentFrame
	n     uint64           // frames added; frame k is in ring[k % sendLogSize]
	byPTS map[int64]uint64 // PTS -> k of the frames in the ring
}

func newSendLog() *sendLog { return &sendLog{byPTS: make(map[int64]uint64, sendLogSize)} }

// add records a frame sent.
func (l *sendLog) add(f sentFrame) {
	l.mu.Lock()
	defer l.mu.Unlock()
	slot := &l.ring[l.n%sendLogSize]
	if l.n >= sendLogSize {
		if k, ok := l.byPTS[slot.pts]; ok && k == l.n-sendLogSize {
			delete(l.byPTS, slot.pts)
		}
	}
	*slot = f
	l.byPTS[f.pts] = l.n
	l.n++
}

// lookup returns the frame of a PTS.
func (l *sendLog) lookup(pts int64) (sentFrame, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	k, ok := l.byPTS[pts]
	if !ok {
		return sentFrame{}, false
	}
	return l.ring[k%sendLogSize], true
}

// maxKeyAge bounds how long before its arrival a player's first keyframe
// may have been sent, for findKey.
const maxKeyAge = 30 * time.Second

// findKey identifies the keyframe a player received at arrival whose slice
// NAL units total vcl bytes: the latest keyframe sent before arrival, at
// most maxKeyAge before, with that size (bySize), or when none has it (vcl
// unknown, or a server that rewrites slices), the latest keyframe sent
// before arrival.
func (l *sendLog) findKey(vcl uint32, arrival time.Time) (f sentFrame, bySize, ok bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var fallback *sentFrame
	for k := l.n; k > 0 && l.n-k < sendLogSize; k-- {
		c := &l.ring[(k-1)%sendLogSize]
		if !c.key || c.sent.After(arrival) {
			continue
		}
		if arrival.Sub(c.sent) > maxKeyAge {
			break
		}
		if vcl != 0 && c.vcl == vcl {
			return *c, true, true
		}
		if fallback == nil {
			fallback = c
		}
	}
	if fallback == nil {
		return sentFrame{}, false, false
	}
	return *fallback, false, true
}
