package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/hub"
)

// Size of the large node of BenchmarkScrape and TestScrapeLargeUnder100ms.
const (
	largeStreams = 1000
	largeReaders = 10_000
)

var largeProtocols = []string{"flv", "ws-flv", "hls", "rtmp", "whep", "srt"}

// largeNode returns the metrics of a hub with largeStreams live streams
// (two frames each) and largeReaders readers spread across them.
func largeNode(tb testing.TB) *Metrics {
	tb.Helper()
	h := hub.New(hub.Options{QueueSize: 16, Logger: slog.New(slog.DiscardHandler)})
	tb.Cleanup(h.Close)
	now := time.Now()
	for i := 0; i < largeStreams; i++ {
		path := fmt.Sprintf("live/stream-%04d", i)
		p, err := h.Publish(path, hub.ClientInfo{Protocol: "rtmp"})
		require.NoError(tb, err)
		require.NoError(tb, p.SetTracks(testTracks))
		require.NoError(tb, p.WriteFrame(frame(0, 1500, now)))
		require.NoError(tb, p.WriteFrame(frame(1, 1500, now.Add(time.Second))))
	}
	for i := 0; i < largeReaders; i++ {
		path := fmt.Sprintf("live/stream-%04d", i%largeStreams)
		r, err := h.Subscribe(path, hub.ClientInfo{Protocol: largeProtocols[i%len(largeProtocols)], RemoteAddr: "127.0.0.1:9"})
		require.NoError(tb, err)
		r.AddBytesOut(1000 + i)
	}
	return New(h, WithNode("node-1", "publish,pull", "test"))
}

// scrapeOnce serves one uncompressed text scrape and returns its size.
func scrapeOnce(tb testing.TB, h http.Handler) int {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		tb.Fatalf("scrape: HTTP %d: %.200s", rec.Code, rec.Body.String())
	}
	return rec.Body.Len()
}

func BenchmarkScrape(b *testing.B) {
	h := largeNode(b).Handler()
	size := scrapeOnce(b, h)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		scrapeOnce(b, h)
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}

func TestScrapeLargeUnder100ms(t *testing.T) {
	if raceEnabled {
		t.Skip("timing is meaningless under the race detector")
	}
	if testing.Short() {
		t.Skip("builds a node with 10 000 readers")
	}
	m := largeNode(t)
	h := m.Handler()
	scrapeOnce(t, h) // warm-up
	best := time.Duration(1<<63 - 1)
	var size int
	for i := 0; i < 3; i++ {
		start := time.Now()
		size = scrapeOnce(t, h)
		best = min(best, time.Since(start))
	}
	t.Logf("one scrape of %d streams and %d readers: best of 3 %v, %d bytes", largeStreams, largeReaders, best, size)
	require.Less(t, best, 100*time.Millisecond)

	// Every stream is there, with its viewers.
	fams := scrape(t, m)
	require.Equal(t, float64(largeStreams), value(t, fams, "quasipaa_streams"))
	total := 0.0
	for _, p := range largeProtocols {
		total += value(t, fams, "quasipaa_viewers", "protocol", p)
	}
	require.Equal(t, float64(largeReaders), total)
	require.Len(t, fams["quasipaa_stream_up"].GetMetric(), largeStreams)
}
