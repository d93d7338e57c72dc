package record

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/protocol/fmp4"
)

// Sink takes complete segment files: a storage.Store (local disk) or a
// storage.Spool in front of an object store.
type Sink interface {
	Put(ctx context.Context, key string, r io.Reader, size int64) error
}

// Policy is how one stream is recorded.
type Policy struct {
	// SegmentDuration is the target segment length; a segment ends at the
	// first video keyframe after it (default 4s).
	SegmentDuration time.Duration
}

// PolicyFunc says whether the stream on path is recorded, and how.
type PolicyFunc func(path string) (Policy, bool)

// maxSegmentBytes cuts a segment even without a keyframe, so a stream with
// no keyframes cannot grow one without bound.
const maxSegmentBytes = 256 << 20

// maxJump is how much more wall-clock than media time may pass between two
// frames before a new run starts: the publisher was gone and came back
// within the hub's grace period, which keeps the media clock continuous.
const maxJump = 2 * time.Second

// maxDrift is how far the media clock may drift from the wall clock over a
// run (a publisher slower or faster than real time) before a new run
// re-anchors the recording's times to the wall clock.
const maxDrift = 10 * time.Second

// Recorder records every stream its policy selects, from the moment it is
// published until it ends.
type Recorder struct {
	hub    *hub.Hub
	sink   Sink
	policy PolicyFunc
	log    *slog.Logger
	ctx    context.Context
	wg     sync.WaitGroup

	onSegment func(Segment)
}

// RecorderOption configures a Recorder.
type RecorderOption func(*Recorder)

// WithSegmentHook calls fn after each segment is handed to the sink.
func WithSegmentHook(fn func(Segment)) RecorderOption {
	return func(r *Recorder) { r.onSegment = fn }
}

// NewRecorder returns a recorder writing to sink. Its sessions run until
// their stream ends or ctx is done; Wait waits for them.
func NewRecorder(ctx context.Context, h *hub.Hub, sink Sink, policy PolicyFunc, log *slog.Logger, opts ...RecorderOption) *Recorder {
	r := &Recorder{hub: h, sink: sink, policy: policy, log: log.With("component", "record"), ctx: ctx}
	for _, o := range opts {
		o(r)
	}
	return r
}

// StreamStarted starts recording path if the policy says so; it is meant
// for hub.Options.OnStreamStart and does not block.
func (r *Recorder) StreamStarted(path string) {
	pol, ok := r.policy(path)
	if !ok || r.ctx.Err() != nil {
		return
	}
	if pol.SegmentDuration <= 0 {
		pol.SegmentDuration = 4 * time.Second
	}
	rd, err := r.hub.Subscribe(path, hub.ClientInfo{Protocol: "record", RemoteAddr: "internal"})
	if err != nil {
		r.log.Warn("cannot record", "path", path, "err", err)
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer rd.Close()
		s := &session{rec: r, path: path, pol: pol, log: r.log.With("path", path)}
		s.run(r.ctx, rd)
	}()
}

// startPoll is how often Start looks for a stream that is not in the hub (yet).
const startPoll = 200 * time.Millisecond

// Start records path until stop is called, whatever the policy says (a
// cluster's record job decides instead; the policy only gives the segment
// duration). It is for a stream that is in the hub or will be: Start waits
// for it, and when the stream ends (its upstream gone for longer than the
// hub's grace period) and comes back, recording goes on in a new run. stop
// ends the session, files the segment in progress and returns once it is
// stored; calling it again is a no-op. Do not also record the same path
// with StreamStarted: there would be two sessions.
func (r *Recorder) Start(path string) (stop func()) {
	pol, ok := r.policy(path)
	if !ok || pol.SegmentDuration <= 0 {
		pol.SegmentDuration = 4 * time.Second
	}
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan struct{})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(done)
		s := &session{rec: r, path: path, pol: pol, log: r.log.With("path", path, "job", "record")}
		t := time.NewTicker(startPoll)
		defer t.Stop()
		for ctx.Err() == nil {
			rd, err := r.hub.Subscribe(path, hub.ClientInfo{Protocol: "record", RemoteAddr: "internal"})
			switch {
			case err == nil:
				s.run(ctx, rd)
				rd.Close()
			case errors.Is(err, hub.ErrHubClosed):
				return
			}
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
}

// Wait returns when every recording session has ended.
func (r *Recorder) Wait() { r.wg.Wait() }

// session records one stream.
type session struct {
	rec  *Recorder
	path string
	pol  Policy
	log  *slog.Logger

	tracks *hub.TrackSet
	w      *fmp4.Writer
	init   []byte

	runWall  time.Time     // wall clock of the run's first frame
	runDTS   time.Duration // its DTS
	prevWall time.Time     // wall clock of the previous leading frame
	prevDTS  time.Duration // its DTS
	segDTS   time.Duration // first DTS of the segment being built
	started  bool          // a segment is being built
	lastDTS  time.Duration // latest DTS seen in the segment
	lastStep time.Duration // latest DTS step of the leading track
	bytes    int
	video    int // index of the leading video track, or -1
	stored   int
}

// run records what rd delivers until it ends or ctx is done, then files the
// segment in progress.
func (s *session) run(ctx context.Context, rd *hub.Reader) {
	s.log.Info("recording started")
	var buf []*hub.Entry
	for {
		var err error
		buf, err = rd.Next(ctx, buf[:0])
		for _, e := range buf {
			s.add(e)
		}
		clear(buf)
		if err != nil {
			s.finish()
			s.log.Info("recording stopped", "segments", s.stored, "reason", err)
			return
		}
	}
}

// add puts one frame into the segment being built, cutting a segment or
// starting a new run first when needed.
func (s *session) add(e *hub.Entry) {
	f := e.Frame
	if e.Tracks != s.tracks {
		s.finish()
		s.newRun(e.Tracks)
	}
	if s.w == nil || !s.w.Accepts(f.Track) {
		return
	}
	wall := f.Ingest
	if wall.IsZero() {
		wall = time.Now()
	}
	lead := f.Track == s.video || s.video < 0
	if !s.started {
		if s.video >= 0 && !(f.Track == s.video && f.Key) {
			return // a run starts on a video keyframe
		}
		s.runWall, s.runDTS = wall, f.DTS
		s.begin(f.DTS)
	} else if lead && (f.Key || s.video < 0) {
		drift := wall.Sub(s.runWall.Add(f.DTS - s.runDTS))
		jump := wall.Sub(s.prevWall) - (f.DTS - s.prevDTS)
		switch {
		case jump > maxJump || drift > maxDrift || drift < -maxDrift:
			// The media clock and the wall clock parted: file what we have
			// and start a new run anchored at this frame.
			s.cut(f.DTS)
			s.newRun(e.Tracks)
			s.runWall, s.runDTS = wall, f.DTS
			s.begin(f.DTS)
		case f.DTS-s.segDTS >= s.pol.SegmentDuration || s.bytes >= maxSegmentBytes:
			s.cut(f.DTS)
			s.begin(f.DTS)
		}
	} else if s.bytes >= maxSegmentBytes && lead {
		s.cut(f.DTS)
		s.begin(f.DTS)
	}
	if lead && f.DTS > s.lastDTS {
		s.lastStep = f.DTS - s.lastDTS
	}
	if lead {
		s.prevWall, s.prevDTS = wall, f.DTS
	}
	if f.DTS > s.lastDTS {
		s.lastDTS = f.DTS
	}
	s.w.Add(f)
	s.bytes += len(f.Payload)
}

// newRun starts a run for tracks: a new init and timeline.
func (s *session) newRun(ts *hub.TrackSet) {
	s.tracks, s.w, s.init, s.started = ts, nil, nil, false
	s.video = -1
	if ts == nil || len(ts.Tracks) == 0 {
		return
	}
	w, err := fmp4.NewWriter(ts.Tracks)
	if err != nil {
		s.log.Warn("cannot record these tracks", "err", err)
		return
	}
	if sk := w.Skipped(); len(sk) > 0 {
		s.log.Warn("tracks not recorded", "codecs", sk)
	}
	s.w, s.init = w, w.Init()
	for i, t := range ts.Tracks {
		if t.IsVideo() && w.Accepts(i) {
			s.video = i
			break
		}
	}
}

func (s *session) begin(dts time.Duration) {
	s.started, s.segDTS, s.lastDTS, s.bytes = true, dts, dts, 0
}

// finish files the segment in progress at the end of a run.
func (s *session) finish() {
	if !s.started || s.w == nil || !s.w.Buffered() {
		return
	}
	step := s.lastStep
	if step <= 0 || step > time.Second {
		step = 33 * time.Millisecond
	}
	s.cut(s.lastDTS + step)
	s.started = false
}

// cut files the buffered samples as one segment ending at end.
func (s *session) cut(end time.Duration) {
	if !s.w.Buffered() {
		return
	}
	frag, err := s.w.Flush(end)
	if err != nil {
		s.log.Error("segment not recorded", "err", err)
		return
	}
	seg := Segment{
		Path:     s.path,
		Start:    s.runWall.Add(s.segDTS - s.runDTS).Truncate(time.Millisecond).UTC(),
		Duration: (end - s.segDTS).Round(time.Millisecond),
		InitLen:  int64(len(s.init)),
		Run:      s.runWall.Truncate(time.Millisecond).UTC(),
		Size:     int64(len(s.init) + len(frag)),
	}
	if seg.Duration <= 0 {
		return
	}
	// Stored even when the recorder is being shut down: the segment is complete.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.rec.ctx), 30*time.Second)
	defer cancel()
	body := io.MultiReader(bytes.NewReader(s.init), bytes.NewReader(frag))
	if err := s.rec.sink.Put(ctx, seg.Key(), body, seg.Size); err != nil {
		s.log.Error("segment not stored", "key", seg.Key(), "err", err)
		return
	}
	s.stored++
	s.log.Debug("segment stored", "key", seg.Key(), "duration", seg.Duration, "size", seg.Size)
	if s.rec.onSegment != nil {
		s.rec.onSegment(seg)
	}
}
