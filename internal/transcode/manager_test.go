package transcode

import (
	"context"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/media"
)

// echoTranscoder "converts" by relabelling: every input frame comes out at
// once with the output track. It lets the manager be tested without ffmpeg.
type echoTranscoder struct {
	track *media.Track
	out   chan Output

	mu      sync.Mutex
	closed  bool
	written int
}

func newEcho(in *media.Track, out media.Codec) *echoTranscoder {
	return &echoTranscoder{
		track: &media.Track{Codec: out, SampleRate: 48000, Channels: in.Channels, Config: []byte{byte(in.Channels)}},
		out:   make(chan Output, 1024),
	}
}

func (e *echoTranscoder) Write(f *media.Frame) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	e.written++
	g := *f
	g.Track = 0
	select {
	case e.out <- Output{Track: e.track, Frame: &g}:
	default:
	}
	return nil
}

func (e *echoTranscoder) Output() <-chan Output { return e.out }
func (e *echoTranscoder) Track() *media.Track   { return e.track }
func (e *echoTranscoder) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Stats{FramesIn: uint64(e.written)}
}

func (e *echoTranscoder) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// get returns the i-th transcoder made.
func (f *echoFactory) get(i int) *echoTranscoder {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.made[i]
}

func (e *echoTranscoder) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed {
		e.closed = true
		close(e.out)
	}
	return nil
}

// echoFactory makes echo transcoders and counts them.
type echoFactory struct {
	mu      sync.Mutex
	made    []*echoTranscoder
	sources []*media.Track
}

func (f *echoFactory) new(_ context.Context, in *media.Track, out media.Codec) (Transcoder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := newEcho(in, out)
	f.made = append(f.made, e)
	f.sources = append(f.sources, in)
	return e, nil
}

func (f *echoFactory) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.made)
}

var (
	aacStereo = &media.Track{Codec: media.CodecAAC, Config: []byte{0x11, 0x90}, SampleRate: 48000, Channels: 2}
	aacMono   = &media.Track{Codec: media.CodecAAC, Config: []byte{0x12, 0x08}, SampleRate: 44100, Channels: 1}
	h264      = &media.Track{Codec: media.CodecH264, Width: 640, Height: 360}
)

func audioFrame(track, i int) *media.Frame {
	ts := time.Duration(i) * 20 * time.Millisecond
	return &media.Frame{Track: track, DTS: ts, PTS: ts, Key: true, Payload: []byte{byte(i), byte(i >> 8)}, Ingest: time.Now()}
}

func newTestHub(t *testing.T) *hub.Hub {
	h := hub.New(hub.Options{Logger: testLogger(t)})
	t.Cleanup(h.Close)
	return h
}

func publish(t *testing.T, h *hub.Hub, path string, tracks ...*media.Track) *hub.Publisher {
	t.Helper()
	p, err := h.Publish(path, hub.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	require.NoError(t, p.SetTracks(tracks))
	return p
}

// next returns the next batch of a job, failing after a second.
func next(t *testing.T, j *Job) ([]Output, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	return j.Next(ctx, nil)
}

func TestManagerSharesOneJob(t *testing.T) {
	h := newTestHub(t)
	f := &echoFactory{}
	m := NewManager(h, ManagerOptions{New: f.new, Logger: testLogger(t), IdleTimeout: 50 * time.Millisecond})
	defer m.Close()
	p := publish(t, h, "live/a", aacStereo)

	j1, err := m.Acquire("live/a", media.CodecOpus)
	require.NoError(t, err)
	j2, err := m.Acquire("live/a", media.CodecOpus)
	require.NoError(t, err)
	jobs := m.Jobs()
	require.Len(t, jobs, 1)
	assert.Equal(t, JobInfo{Path: "live/a", Codec: media.CodecOpus, Consumers: 2}, jobs[0])

	for i := range 10 {
		require.NoError(t, p.WriteFrame(audioFrame(0, i)))
	}
	var got1, got2 []Output
	for len(got1) < 10 {
		b, err := next(t, j1)
		require.NoError(t, err)
		got1 = append(got1, b...)
	}
	for len(got2) < 10 {
		b, err := next(t, j2)
		require.NoError(t, err)
		got2 = append(got2, b...)
	}
	assert.Equal(t, 1, f.count(), "one converter for both consumers")
	for i := range 10 {
		assert.Same(t, got1[i].Frame, got2[i].Frame, "shared frames")
		assert.Equal(t, time.Duration(i)*20*time.Millisecond, got1[i].Frame.PTS)
		assert.Equal(t, media.CodecOpus, got1[i].Track.Codec)
	}
	assert.Same(t, got1[0].Track, j1.Track())
	info := m.Jobs()[0]
	assert.Equal(t, media.CodecAAC, info.Source)
	assert.Equal(t, uint64(10), info.Stats.FramesIn)

	// Another codec is another job.
	j3, err := m.Acquire("live/a", media.CodecAAC)
	require.NoError(t, err)
	require.Len(t, m.Jobs(), 2)
	require.Eventually(t, func() bool { return m.Jobs()[0].PassThrough }, time.Second, 5*time.Millisecond, "AAC from AAC passes through")
	j3.Release()

	// Released by one: still running; by both: stopped after the idle timeout.
	j1.Release()
	j1.Release()
	require.Len(t, m.Jobs(), 2)
	assert.Equal(t, 1, m.Jobs()[1].Consumers)
	_, err = j1.Next(t.Context(), nil)
	assert.ErrorIs(t, err, ErrClosed, "a released job")
	j2.Release()
	require.Eventually(t, func() bool { return len(m.Jobs()) == 0 }, time.Second, 5*time.Millisecond)
	require.Eventually(t, f.get(0).isClosed, time.Second, 5*time.Millisecond, "converter closed")
}

func TestManagerIdleReacquire(t *testing.T) {
	h := newTestHub(t)
	f := &echoFactory{}
	m := NewManager(h, ManagerOptions{New: f.new, Logger: testLogger(t), IdleTimeout: 200 * time.Millisecond})
	defer m.Close()
	p := publish(t, h, "live/a", aacStereo)
	j, err := m.Acquire("live/a", media.CodecOpus)
	require.NoError(t, err)
	require.NoError(t, p.WriteFrame(audioFrame(0, 0)))
	_, err = next(t, j)
	require.NoError(t, err)
	j.Release()
	time.Sleep(50 * time.Millisecond)
	j, err = m.Acquire("live/a", media.CodecOpus)
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond)
	require.Len(t, m.Jobs(), 1, "re-acquired within the idle timeout: kept")
	assert.Equal(t, 1, f.count(), "the same converter")
	j.Release()
	require.Eventually(t, func() bool { return len(m.Jobs()) == 0 }, time.Second, 5*time.Millisecond)
}

func TestManagerStreamEnds(t *testing.T) {
	h := newTestHub(t)
	f := &echoFactory{}
	m := NewManager(h, ManagerOptions{New: f.new, Logger: testLogger(t)})
	defer m.Close()
	p := publish(t, h, "live/a", aacStereo)
	j, err := m.Acquire("live/a", media.CodecOpus)
	require.NoError(t, err)
	defer j.Release()
	for i := range 3 {
		require.NoError(t, p.WriteFrame(audioFrame(0, i)))
	}
	p.Close() // no grace period: the stream ends
	var got []Output
	for {
		b, err := next(t, j)
		got = append(got, b...)
		if err != nil {
			require.ErrorIs(t, err, hub.ErrStreamClosed)
			break
		}
	}
	assert.Len(t, got, 3, "what was converted before the end")
	require.Eventually(t, func() bool { return len(m.Jobs()) == 0 }, time.Second, 5*time.Millisecond)
	_, err = m.Acquire("live/a", media.CodecOpus)
	assert.ErrorIs(t, err, hub.ErrStreamNotFound)
}

func TestManagerTrackChanges(t *testing.T) {
	h := newTestHub(t)
	f := &echoFactory{}
	m := NewManager(h, ManagerOptions{New: f.new, Logger: testLogger(t)})
	defer m.Close()
	p := publish(t, h, "live/a", h264, aacStereo)
	j, err := m.Acquire("live/a", media.CodecOpus)
	require.NoError(t, err)
	defer j.Release()
	// The hub hands a reader the stream from a video keyframe on.
	require.NoError(t, p.WriteFrame(&media.Frame{Track: 0, Key: true, Payload: []byte{1}}))
	require.NoError(t, p.WriteFrame(audioFrame(1, 0)))
	got, err := next(t, j)
	require.NoError(t, err)
	require.Len(t, got, 1)
	first := got[0].Track
	assert.Equal(t, 2, first.Channels)

	// Video changes, audio does not: the converter keeps running.
	require.NoError(t, p.SetTracks([]*media.Track{{Codec: media.CodecH264, Width: 1280, Height: 720}, aacStereo}))
	require.NoError(t, p.WriteFrame(&media.Frame{Track: 0, Key: true, Payload: []byte{1}}))
	require.NoError(t, p.WriteFrame(audioFrame(1, 1)))
	got, err = next(t, j)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Same(t, first, got[0].Track)
	assert.Equal(t, 1, f.count())

	// The audio changes: a new converter, a new output track; audio moved
	// to index 0.
	require.NoError(t, p.SetTracks([]*media.Track{aacMono, h264}))
	require.NoError(t, p.WriteFrame(audioFrame(0, 2)))
	got, err = next(t, j)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.NotSame(t, first, got[0].Track)
	assert.Equal(t, 1, got[0].Track.Channels)
	assert.Equal(t, 2, f.count())
	assert.True(t, f.get(0).isClosed(), "closed before the next one started")
	f.mu.Lock()
	assert.Same(t, aacMono, f.sources[1])
	f.mu.Unlock()

	// The publisher switches to Opus: passed through as it is.
	require.NoError(t, p.SetTracks([]*media.Track{opusTrack}))
	frame := opusFrame(3)
	require.NoError(t, p.WriteFrame(frame))
	got, err = next(t, j)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Same(t, opusTrack, got[0].Track)
	assert.Equal(t, frame.Payload, got[0].Frame.Payload)
	assert.True(t, m.Jobs()[0].PassThrough)

	// No audio at all: nothing, and no converter.
	require.NoError(t, p.SetTracks([]*media.Track{h264}))
	require.NoError(t, p.WriteFrame(&media.Frame{Track: 0, Key: true, Payload: []byte{1}}))
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	got, err = j.Next(ctx, nil)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Empty(t, got)
	assert.Equal(t, media.CodecUnknown, m.Jobs()[0].Source)
}

func TestManagerSlowConsumer(t *testing.T) {
	h := newTestHub(t)
	f := &echoFactory{}
	m := NewManager(h, ManagerOptions{New: f.new, Logger: testLogger(t), RingSize: 16})
	defer m.Close()
	p := publish(t, h, "live/a", aacStereo)
	slow, err := m.Acquire("live/a", media.CodecOpus)
	require.NoError(t, err)
	defer slow.Release()
	fast, err := m.Acquire("live/a", media.CodecOpus)
	require.NoError(t, err)
	defer fast.Release()
	var seen int
	for i := range 100 {
		require.NoError(t, p.WriteFrame(audioFrame(0, i)))
		b, err := next(t, fast) // the fast consumer keeps up...
		require.NoError(t, err)
		seen += len(b)
	}
	assert.Equal(t, 100, seen)
	// ... the slow one skipped to the oldest frame still held.
	got, err := next(t, slow)
	require.NoError(t, err)
	require.Len(t, got, 16)
	assert.Equal(t, 84*20*time.Millisecond, got[0].Frame.PTS)
	assert.Equal(t, uint64(84), slow.Dropped())
	assert.Zero(t, fast.Dropped())

	// Seek back to a given time within what is held.
	fast.Seek(90 * 20 * time.Millisecond)
	got, err = next(t, fast)
	require.NoError(t, err)
	require.Len(t, got, 10)
	assert.Equal(t, 90*20*time.Millisecond, got[0].Frame.PTS)
}

func TestManagerErrors(t *testing.T) {
	h := newTestHub(t)
	m := NewManager(h, ManagerOptions{Logger: testLogger(t), FFmpeg: FFmpegOptions{Path: "no-such-ffmpeg-quasipaa"}})
	_, err := m.Acquire("live/a", media.CodecOpus)
	assert.ErrorIs(t, err, ErrFFmpegNotFound)
	m.Close()

	f := &echoFactory{}
	m = NewManager(h, ManagerOptions{New: f.new, Logger: testLogger(t)})
	_, err = m.Acquire("live/a", media.CodecMP3)
	assert.ErrorIs(t, err, ErrUnsupported)
	_, err = m.Acquire("live/none", media.CodecOpus)
	assert.ErrorIs(t, err, hub.ErrStreamNotFound)

	publish(t, h, "live/a", aacStereo)
	j, err := m.Acquire("live/a", media.CodecOpus)
	require.NoError(t, err)
	done := make(chan error)
	go func() {
		_, err := j.Next(context.Background(), nil)
		done <- err
	}()
	m.Close()
	assert.ErrorIs(t, <-done, ErrClosed, "a consumer waiting when the manager closes")
	j.Release()
	_, err = m.Acquire("live/a", media.CodecOpus)
	assert.ErrorIs(t, err, ErrClosed)
}

// TestManagerFFmpeg runs the manager with real ffmpeg: a stream published
// in real time, two consumers of Opus that share one ffmpeg, which is gone
// once both released the job and the idle timeout ran out.
func TestManagerFFmpeg(t *testing.T) {
	needFFmpeg(t)
	in := genAAC(t, 48000, 2, 3)
	h := newTestHub(t)
	m := NewManager(h, ManagerOptions{Logger: testLogger(t), IdleTimeout: 100 * time.Millisecond})
	defer m.Close()
	p := publish(t, h, "live/a", in.track)
	j1, err := m.Acquire("live/a", media.CodecOpus)
	require.NoError(t, err)
	j2, err := m.Acquire("live/a", media.CodecOpus)
	require.NoError(t, err)

	written := make([]time.Time, len(in.frames))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		for k, f := range in.frames {
			time.Sleep(time.Until(start.Add(f.PTS)))
			g := *f
			g.Ingest = time.Now()
			written[k] = g.Ingest
			if p.WriteFrame(&g) != nil {
				return
			}
		}
	}()
	consume := func(j *Job, until time.Duration) []Output {
		var got []Output
		for len(got) == 0 || got[len(got)-1].Frame.PTS < until {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			b, err := j.Next(ctx, nil)
			cancel()
			require.NoError(t, err)
			got = append(got, b...)
		}
		return got
	}
	got1 := consume(j1, 2*time.Second)
	got2 := consume(j2, 2*time.Second)
	wg.Wait()
	jobs := m.Jobs()
	require.Len(t, jobs, 1)
	pid := jobs[0].Stats.PID
	require.NotZero(t, pid)
	n := min(len(got1), len(got2))
	assert.Equal(t, got1[:n], got2[:n], "both consumers get the same frames")
	for _, o := range got1 {
		assert.Equal(t, media.CodecOpus, o.Track.Codec)
	}
	// Latency: from writing the input frame that completes an output
	// frame's audio to the output frame coming out of the job.
	var lats []time.Duration
	for _, o := range got1 {
		end := o.Frame.PTS + 20*time.Millisecond
		for k, f := range in.frames {
			if f.PTS+samplesToDuration(1024, 48000) >= end {
				lats = append(lats, o.Frame.Ingest.Sub(written[k]))
				break
			}
		}
	}
	require.NotEmpty(t, lats)
	sort.Slice(lats, func(a, b int) bool { return lats[a] < lats[b] })
	t.Logf("latency over %d frames: median %v, 90th percentile %v, max %v", len(lats), lats[len(lats)/2], lats[len(lats)*9/10], lats[len(lats)-1])
	// A loose bound: the machine may be busy (about 20 ms when idle).
	assert.Less(t, lats[len(lats)/2], 500*time.Millisecond)

	j1.Release()
	j2.Release()
	require.Eventually(t, func() bool { return len(m.Jobs()) == 0 }, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return syscall.Kill(pid, 0) == syscall.ESRCH }, 5*time.Second, 10*time.Millisecond, "ffmpeg is gone")
}
