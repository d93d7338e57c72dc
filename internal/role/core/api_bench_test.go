package core

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/media"
)

// BenchmarkAPIStreams measures GET /api/v1/streams (1,000 streams, one
// page) and a stream detail (10 viewers) over loopback HTTP, with 1,000
// live streams and 10,000 viewers in a real hub; p50 and p99 latencies
// are reported.
func BenchmarkAPIStreams(b *testing.B) {
	const streams, viewersPer = 1000, 10
	h := hub.New(hub.Options{QueueSize: 16, Logger: quietLog()})
	defer h.Close()
	tracks := []*media.Track{
		{Codec: media.CodecH264, Width: 1920, Height: 1080, Profile: "High", Level: "4.1"},
		{Codec: media.CodecAAC, SampleRate: 48000, Channels: 2},
	}
	var readers []*hub.Reader
	for i := 0; i < streams; i++ {
		path := fmt.Sprintf("live/cam%04d", i)
		p, err := h.Publish(path, hub.ClientInfo{Protocol: "rtmp", RemoteAddr: "127.0.0.1:1000"})
		if err != nil {
			b.Fatal(err)
		}
		if err := p.SetTracks(tracks); err != nil {
			b.Fatal(err)
		}
		for f := 0; f < 30; f++ {
			ts := time.Duration(f) * 40 * time.Millisecond
			if err := p.WriteFrame(&media.Frame{Track: 0, DTS: ts, PTS: ts, Key: f == 0, Payload: make([]byte, 64), Ingest: time.Now()}); err != nil {
				b.Fatal(err)
			}
		}
		for v := 0; v < viewersPer; v++ {
			r, err := h.Subscribe(path, hub.ClientInfo{Protocol: []string{"flv", "rtmp", "ws-flv"}[v%3], RemoteAddr: "127.0.0.1:2000"})
			if err != nil {
				b.Fatal(err)
			}
			readers = append(readers, r)
		}
	}
	defer func() {
		for _, r := range readers {
			r.Close()
		}
	}()
	api := NewAPI(h, quietLog(), WithNode("bench", "v"))
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := srv.Client()

	run := func(b *testing.B, target string) {
		lat := make([]time.Duration, 0, b.N)
		var size int
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			resp, err := client.Get(srv.URL + target)
			if err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("%s: %d", target, resp.StatusCode)
			}
			lat = append(lat, time.Since(t0))
			size = int(n)
		}
		b.StopTimer()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(size), "bytes")
	}
	b.Run("list", func(b *testing.B) { run(b, "/api/v1/streams") })
	b.Run("detail", func(b *testing.B) { run(b, "/api/v1/streams/live/cam0500") })
}
