package hub

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quasipaa/quasipaa/internal/media"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testTracks = []*media.Track{
	{Codec: media.CodecH264, Width: 1280, Height: 720},
	{Codec: media.CodecAAC, SampleRate: 48000, Channels: 2},
}

// frameAt makes frame n of a 30 fps video track with a keyframe every gop frames.
func frameAt(n, gop int) *media.Frame {
	ts := time.Duration(n) * time.Second / 30
	return &media.Frame{Track: 0, DTS: ts, PTS: ts, Key: n%gop == 0, Payload: []byte{byte(n)}, Ingest: time.Now()}
}

func newTestHub(t *testing.T, opts Options) *Hub {
	h := New(opts)
	t.Cleanup(h.Close)
	return h
}

func TestReaderStartsFromGOPCache(t *testing.T) {
	h := newTestHub(t, Options{})
	p, err := h.Publish("live/a", ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	require.NoError(t, p.SetTracks(testTracks))
	for i := 0; i < 75; i++ { // keyframes at 0, 30, 60
		require.NoError(t, p.WriteFrame(frameAt(i, 30)))
	}
	r, err := h.Subscribe("live/a", ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	defer r.Close()
	got, err := r.TryNext(nil)
	require.NoError(t, err)
	require.Len(t, got, 15, "the GOP since the last keyframe")
	require.True(t, got[0].Frame.Key)
	require.Equal(t, byte(60), got[0].Frame.Payload[0])
	require.NoError(t, p.WriteFrame(frameAt(75, 30)))
	got, err = r.Next(context.Background(), got[:0])
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, byte(75), got[0].Frame.Payload[0])
}

func TestReaderWithoutGOPCacheWaitsForKeyframe(t *testing.T) {
	h := newTestHub(t, Options{DisableGOPCache: true})
	p, _ := h.Publish("live/a", ClientInfo{})
	require.NoError(t, p.SetTracks(testTracks))
	require.NoError(t, p.WriteFrame(frameAt(0, 30)))
	r, err := h.Subscribe("live/a", ClientInfo{})
	require.NoError(t, err)
	defer r.Close()
	for i := 1; i <= 30; i++ {
		require.NoError(t, p.WriteFrame(frameAt(i, 30)))
	}
	got, _ := r.TryNext(nil)
	require.Len(t, got, 1)
	require.True(t, got[0].Frame.Key)
}

func TestSubscribeMissingStream(t *testing.T) {
	h := newTestHub(t, Options{})
	_, err := h.Subscribe("live/none", ClientInfo{})
	require.ErrorIs(t, err, ErrStreamNotFound)
}

func TestSecondPublisherRefusedOrTakesOver(t *testing.T) {
	h := newTestHub(t, Options{})
	p1, err := h.Publish("live/a", ClientInfo{})
	require.NoError(t, err)
	_, err = h.Publish("live/a", ClientInfo{})
	require.ErrorIs(t, err, ErrStreamBusy)
	p1.Close()

	h2 := newTestHub(t, Options{Conflict: ConflictTakeOver})
	p1, _ = h2.Publish("live/a", ClientInfo{})
	require.NoError(t, p1.SetTracks(testTracks))
	p2, err := h2.Publish("live/a", ClientInfo{})
	require.NoError(t, err)
	<-p1.Done()
	require.ErrorIs(t, p1.WriteFrame(frameAt(0, 30)), ErrPublisherReplaced)
	require.NoError(t, p2.SetTracks(testTracks))
	require.NoError(t, p2.WriteFrame(frameAt(0, 30)))
}

func TestPublisherReconnectWithinGraceKeepsReaders(t *testing.T) {
	h := newTestHub(t, Options{PublisherGrace: time.Second})
	p, _ := h.Publish("live/a", ClientInfo{})
	require.NoError(t, p.SetTracks(testTracks))
	for i := 0; i < 10; i++ {
		require.NoError(t, p.WriteFrame(frameAt(i, 30)))
	}
	r, err := h.Subscribe("live/a", ClientInfo{})
	require.NoError(t, err)
	defer r.Close()
	got, _ := r.TryNext(nil)
	require.Len(t, got, 10)
	p.Close()
	info, ok := h.Stream("live/a")
	require.True(t, ok)
	require.Equal(t, "waiting_publisher", info.State)

	p2, err := h.Publish("live/a", ClientInfo{})
	require.NoError(t, err)
	require.NoError(t, p2.SetTracks(testTracks))
	require.NoError(t, p2.WriteFrame(frameAt(0, 30)))
	got, err = r.Next(context.Background(), got[:0])
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Greater(t, got[0].Frame.DTS, frameAt(9, 30).DTS, "timeline continues after reconnect")
	p2.Close()
}

func TestStreamEndsAfterGrace(t *testing.T) {
	h := newTestHub(t, Options{PublisherGrace: 50 * time.Millisecond})
	p, _ := h.Publish("live/a", ClientInfo{})
	require.NoError(t, p.SetTracks(testTracks))
	require.NoError(t, p.WriteFrame(frameAt(0, 30)))
	r, _ := h.Subscribe("live/a", ClientInfo{})
	defer r.Close()
	p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	got, err := r.Next(ctx, nil)
	require.NoError(t, err)
	require.Len(t, got, 1)
	_, err = r.Next(ctx, nil)
	require.ErrorIs(t, err, ErrStreamClosed)
	_, ok := h.Stream("live/a")
	require.False(t, ok)
}

func TestSlowReaderSkipsToKeyframeThenIsDisconnected(t *testing.T) {
	h := newTestHub(t, Options{QueueSize: 16, MaxDrops: 2, DropWindow: time.Minute})
	p, _ := h.Publish("live/a", ClientInfo{})
	require.NoError(t, p.SetTracks(testTracks))
	r, _ := h.Subscribe("live/a", ClientInfo{})
	defer r.Close()
	for i := 0; i < 40; i++ { // keyframes every 10
		require.NoError(t, p.WriteFrame(frameAt(i, 10)))
	}
	got, err := r.TryNext(nil)
	require.NoError(t, err)
	require.True(t, got[0].Frame.Key, "resumes on a keyframe")
	require.Equal(t, byte(30), got[0].Frame.Payload[0])
	require.Equal(t, uint64(30), r.Dropped())
	for i := 40; i < 80; i++ {
		require.NoError(t, p.WriteFrame(frameAt(i, 10)))
	}
	_, err = r.TryNext(nil)
	require.ErrorIs(t, err, ErrSlowReader)
}

// lenSerializer writes each frame as a 4-byte length and its payload.
type lenSerializer struct{}

var testFormat = NewFormat("test")

func (lenSerializer) Format() Format                              { return testFormat }
func (lenSerializer) AppendPrefix(dst []byte, _ *TrackSet) []byte { return append(dst, 'P') }
func (lenSerializer) AppendHeader(dst []byte, ts *TrackSet) []byte {
	return append(dst, 'H', byte(len(ts.Tracks)))
}
func (lenSerializer) AppendFrame(dst []byte, e *Entry) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(e.Frame.Payload)))
	return append(dst, e.Frame.Payload...)
}

func TestDeliverWritesPrefixHeaderAndFramesOnce(t *testing.T) {
	h := newTestHub(t, Options{})
	p, _ := h.Publish("live/a", ClientInfo{})
	require.NoError(t, p.SetTracks(testTracks))
	require.NoError(t, p.WriteFrame(frameAt(0, 30)))

	const readers = 5
	var wg sync.WaitGroup
	outs := make([][]byte, readers)
	for i := 0; i < readers; i++ {
		r, err := h.Subscribe("live/a", ClientInfo{Protocol: "test"})
		require.NoError(t, err)
		server, client := net.Pipe()
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer r.Close()
			defer server.Close()
			_ = Deliver(context.Background(), r, server, lenSerializer{}, DeliverOptions{WriteMerge: time.Millisecond})
		}()
		go func(i int) {
			defer wg.Done()
			outs[i], _ = io.ReadAll(client)
		}(i)
	}
	for i := 1; i < 5; i++ {
		require.NoError(t, p.WriteFrame(frameAt(i, 30)))
	}
	require.Eventually(t, func() bool {
		info, _ := h.Stream("live/a")
		return info.BytesOut == readers*(3+5*5)
	}, 2*time.Second, 5*time.Millisecond)
	info, _ := h.Stream("live/a")
	require.Equal(t, readers, info.Viewers["test"])
	p.Kick()
	wg.Wait()
	want := []byte{'P', 'H', 2, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 2, 0, 0, 0, 1, 3, 0, 0, 0, 1, 4}
	for _, out := range outs {
		require.Equal(t, want, out)
	}
}

func TestStalledReaderDoesNotSlowOthers(t *testing.T) {
	h := newTestHub(t, Options{QueueSize: 256})
	p, _ := h.Publish("live/a", ClientInfo{})
	require.NoError(t, p.SetTracks(testTracks))
	stalled, _ := h.Subscribe("live/a", ClientInfo{})
	defer stalled.Close()
	fast, _ := h.Subscribe("live/a", ClientInfo{})
	defer fast.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got int
	done := make(chan error, 1)
	go func() {
		var buf []*Entry
		for {
			var err error
			buf, err = fast.Next(ctx, buf[:0])
			got += len(buf)
			if err != nil {
				done <- err
				return
			}
		}
	}()
	var spent time.Duration
	for i := 0; i < 1000; i++ {
		start := time.Now()
		require.NoError(t, p.WriteFrame(frameAt(i, 30)))
		spent += time.Since(start)
		if i%16 == 15 {
			time.Sleep(time.Millisecond) // a live pace, far faster than real time
		}
	}
	require.Less(t, spent, time.Second, "publishing never waits for readers")
	p.Kick()
	require.True(t, errors.Is(<-done, ErrKicked))
	require.Equal(t, 1000, got)
}

func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(itoa(n)+"readers", func(b *testing.B) {
			h := New(Options{QueueSize: 4096})
			defer h.Close()
			p, _ := h.Publish("live/a", ClientInfo{})
			_ = p.SetTracks(testTracks)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			payload := make([]byte, 10_000)
			for i := 0; i < n; i++ {
				r, _ := h.Subscribe("live/a", ClientInfo{})
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer r.Close()
					buf := make([]*Entry, 0, maxBatch)
					for {
						var err error
						buf, err = r.Next(ctx, buf[:0])
						for _, e := range buf {
							_ = e.Bytes(lenSerializer{})
						}
						if err != nil {
							return
						}
					}
				}()
			}
			frames := make([]*media.Frame, b.N)
			for i := range frames {
				frames[i] = &media.Frame{DTS: time.Duration(i), Key: i%60 == 0, Payload: payload}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_ = p.WriteFrame(frames[i])
			}
			p.Kick()
			wg.Wait()
			b.StopTimer()
			cancel()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/frame/reader")
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
