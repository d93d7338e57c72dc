package record

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/media"
	"github.com/quasipaa/quasipaa/internal/storage"
)

// aacTrack is AAC-LC, 48 kHz stereo.
func aacTrack() *media.Track {
	return &media.Track{Codec: media.CodecAAC, Config: []byte{0x11, 0x90}, SampleRate: 48000, Channels: 2}
}

const aacFrame = 1024 * time.Second / 48000

func TestRecorderSegmentsRunsAndEnd(t *testing.T) {
	defer goleak.VerifyNone(t)
	fs, err := storage.NewFS(t.TempDir())
	require.NoError(t, err)
	defer fs.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var rec *Recorder
	h := hub.New(hub.Options{OnStreamStart: func(p string) { rec.StreamStarted(p) }})
	var filed []Segment
	done := make(chan Segment, 100)
	rec = NewRecorder(ctx, h, fs, func(p string) (Policy, bool) {
		return Policy{SegmentDuration: 2 * time.Second}, p == "live/a"
	}, slogDiscard(), WithSegmentHook(func(s Segment) { done <- s }))

	other, err := h.Publish("live/unrecorded", hub.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	other.Close()

	pub, err := h.Publish("live/a", hub.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	require.NoError(t, pub.SetTracks([]*media.Track{aacTrack()}))
	wall := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	write := func(from, to time.Duration, wallOffset time.Duration) {
		for d := from; d < to; d += aacFrame {
			require.NoError(t, pub.WriteFrame(&media.Frame{DTS: d, PTS: d, Key: true, Payload: []byte{1, 2, 3, 4}, Ingest: wall.Add(d + wallOffset)}))
		}
	}
	// 7 s of audio: segments of 2 s.
	write(0, 7*time.Second, 0)
	// The publisher was away for 10 s (wall clock) while the media clock
	// went on: a new run starts.
	write(7*time.Second, 9*time.Second, 10*time.Second)
	pub.Close()
	h.Close()
	rec.Wait()
	close(done)
	for s := range done {
		filed = append(filed, s)
	}

	ix := NewIndex(fs)
	segs, err := ix.Segments(ctx, "live/a", time.Time{}, time.Time{})
	require.NoError(t, err)
	require.Len(t, segs, len(filed))
	require.GreaterOrEqual(t, len(segs), 5)
	var total time.Duration
	for i, s := range segs {
		assert.Equal(t, filed[i].Key(), s.Key())
		assert.Greater(t, s.Size, s.InitLen)
		assert.InDelta(t, 2*time.Second, s.Duration, float64(50*time.Millisecond)+float64(time.Second), "segment %d", i)
		total += s.Duration
	}
	assert.InDelta(t, 9*time.Second, total, float64(100*time.Millisecond))
	spans := Spans(segs)
	require.Len(t, spans, 2, "the wall-clock jump is a gap: %+v", spans)
	assert.Equal(t, wall, spans[0].Start)
	assert.InDelta(t, 7*time.Second, spans[0].Duration(), float64(30*time.Millisecond))
	assert.WithinDuration(t, wall.Add(17*time.Second), spans[1].Start, 30*time.Millisecond)
	assert.NotEqual(t, segs[0].Run, segs[len(segs)-1].Run)

	none, err := ix.Segments(ctx, "live/unrecorded", time.Time{}, time.Time{})
	require.NoError(t, err)
	assert.Empty(t, none)
}

// TestRecorderStartUnderJob records through Start (the cluster's record
// job): it waits for a stream that is not there yet, goes on in a new run
// when the stream ends and comes back, resumes within the grace period into
// a new run, and stop files the segment in progress.
func TestRecorderStartUnderJob(t *testing.T) {
	defer goleak.VerifyNone(t)
	fs, err := storage.NewFS(t.TempDir())
	require.NoError(t, err)
	defer fs.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	h := hub.New(hub.Options{PublisherGrace: 2 * time.Second})
	defer h.Close()
	filed := make(chan Segment, 100)
	// The policy does not select live/a: the job decides, the policy only
	// gives no segment duration (default 4 s).
	rec := NewRecorder(ctx, h, fs, func(string) (Policy, bool) { return Policy{}, false },
		slogDiscard(), WithSegmentHook(func(s Segment) { filed <- s }))

	stop := rec.Start("live/a")

	wall := time.Now().Add(-time.Hour)
	publish := func(from, to time.Duration, wallOffset time.Duration) *hub.Publisher {
		pub, err := h.Publish("live/a", hub.ClientInfo{Protocol: "test"})
		require.NoError(t, err)
		require.NoError(t, pub.SetTracks([]*media.Track{aacTrack()}))
		// Start subscribes within a poll: write once the recorder reads.
		require.Eventually(t, func() bool {
			info, ok := h.Stream("live/a")
			return ok && info.ViewersTotal == 1
		}, 2*time.Second, 10*time.Millisecond)
		for d := from; d < to; d += aacFrame {
			require.NoError(t, pub.WriteFrame(&media.Frame{DTS: d, PTS: d, Key: true, Payload: []byte{1, 2, 3, 4}, Ingest: wall.Add(d + wallOffset)}))
		}
		return pub
	}
	waitFiled := func(n int) []Segment {
		t.Helper()
		var got []Segment
		deadline := time.After(5 * time.Second)
		for len(got) < n {
			select {
			case s := <-filed:
				got = append(got, s)
			case <-deadline:
				t.Fatalf("%d segments filed, want %d", len(got), n)
			}
		}
		return got
	}

	// Run 1: 9 s → segments of 4 s, 4 s; the last 1 s waits for the end.
	pub := publish(0, 9*time.Second, 0)
	run1 := waitFiled(2)
	// The upstream reconnects within the grace period: a new publisher on
	// the same stream; the reader stays and a new run starts.
	pub.Close()
	pub = publish(0, 5*time.Second, 20*time.Second)
	run2 := waitFiled(2) // the end of run 1, then 4 s of run 2
	assert.Equal(t, run1[0].Run, run1[1].Run)
	assert.Equal(t, run1[0].Run, run2[0].Run)
	assert.InDelta(t, time.Second, run2[0].Duration, float64(50*time.Millisecond))
	assert.NotEqual(t, run1[0].Run, run2[1].Run)

	// The stream ends (kicked: no grace) and comes back later: Start
	// subscribes again and records a third run.
	pub.Kick()
	run2end := waitFiled(1)
	assert.Equal(t, run2[1].Run, run2end[0].Run)
	pub = publish(0, 6*time.Second, 60*time.Second)
	defer pub.Close()
	run3 := waitFiled(1)
	assert.NotEqual(t, run2[1].Run, run3[0].Run)

	// stop files the 2 s in progress before it returns.
	stop()
	last := waitFiled(1)
	assert.Equal(t, run3[0].Run, last[0].Run)
	assert.InDelta(t, 2*time.Second, last[0].Duration, float64(50*time.Millisecond))
	stop() // no-op

	segs, err := NewIndex(fs).Segments(ctx, "live/a", time.Time{}, time.Time{})
	require.NoError(t, err)
	assert.Len(t, segs, 7)
	select {
	case s := <-filed:
		t.Fatalf("unexpected segment after stop: %+v", s)
	default:
	}
	cancel()
	rec.Wait()
}
