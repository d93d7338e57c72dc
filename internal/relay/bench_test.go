package relay

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/media"
)

// benchRelay sets up hub A → relay server → loopback HTTP → Upstreams →
// hub B, and returns A's publisher and a reader on B.
func benchRelay(b *testing.B) (*hub.Publisher, *hub.Reader) {
	a := newNode(b, hub.Options{})
	pull := newPullNode(b, hub.Options{}, UpstreamOptions{}, a.http.URL)
	p := publish(b, a, "live/bench", synthTracks)
	require.NoError(b, p.WriteFrame(benchFrame(0)))
	require.NoError(b, pull.ups.Ensure(context.Background(), "live/bench"))
	r, err := pull.hub.Subscribe("live/bench", hub.ClientInfo{Protocol: "bench"})
	require.NoError(b, err)
	b.Cleanup(r.Close)
	readN(b, r, 1, 5*time.Second)
	return p, r
}

var benchPayload = make([]byte, 4000) // a 4 kB frame: ~1 Mbit/s at 30 fps

func benchFrame(n int) *media.Frame {
	ts := time.Duration(n) * 33 * time.Millisecond
	return &media.Frame{Track: 0, DTS: ts, PTS: ts, Key: n%250 == 0, Ingest: time.Now(), Payload: benchPayload}
}

// BenchmarkRelayThroughput pushes frames through the relay in windows of
// 64: ns/op is the cost of one frame end to end (both nodes on this
// machine), latency-ns the mean time from publishing on A to reading on B.
func BenchmarkRelayThroughput(b *testing.B) {
	p, r := benchRelay(b)
	const window = 64
	var latency time.Duration
	b.SetBytes(int64(len(benchPayload)))
	b.ReportAllocs()
	b.ResetTimer()
	ctx := context.Background()
	batch := make([]*hub.Entry, 0, 256)
	for sent := 0; sent < b.N; {
		n := min(window, b.N-sent)
		for i := range n {
			if err := p.WriteFrame(benchFrame(sent + i + 1)); err != nil {
				b.Fatal(err)
			}
		}
		sent += n
		for got := 0; got < n; {
			var err error
			batch, err = r.Next(ctx, batch[:0])
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			for _, e := range batch {
				latency += now.Sub(e.Frame.Ingest)
			}
			got += len(batch)
		}
	}
	b.ReportMetric(float64(latency.Nanoseconds())/float64(b.N), "latency-ns/frame")
	require.Zero(b, r.Dropped())
}

// BenchmarkRelayLatency publishes one frame at a time and waits for it on
// B: latency-ns is what the relay adds to a frame on an idle path.
func BenchmarkRelayLatency(b *testing.B) {
	p, r := benchRelay(b)
	var latency time.Duration
	ctx := context.Background()
	batch := make([]*hub.Entry, 0, 256)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := p.WriteFrame(benchFrame(i + 1)); err != nil {
			b.Fatal(err)
		}
		var err error
		batch, err = r.Next(ctx, batch[:0])
		if err != nil || len(batch) != 1 {
			b.Fatal(err, len(batch))
		}
		latency += time.Since(batch[0].Frame.Ingest)
	}
	b.ReportMetric(float64(latency.Nanoseconds())/float64(b.N), "latency-ns/frame")
}
