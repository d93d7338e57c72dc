package core

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/hub"
)

// BenchmarkDispatchAPI measures GET /api/v1/dispatch over a memory registry
// of 20 nodes (10 pull, 10 publish, two regions): "handler" calls the
// handler in process, "loopback" goes through a keep-alive HTTP client over
// 127.0.0.1. It reports requests/s and the 99th percentile latency.
func BenchmarkDispatchAPI(b *testing.B) {
	reg := cluster.NewMemory()
	defer reg.Close()
	for i := range 20 {
		roles := []string{cluster.RolePull}
		if i%2 == 1 {
			roles = []string{cluster.RolePublish}
		}
		n := cluster.Node{ID: fmt.Sprintf("node-%02d", i), Roles: roles, Region: []string{"eu", "us"}[i%4/2], Weight: 1,
			HTTP: fmt.Sprintf("http://10.0.0.%d:8080", i+1), RTMP: fmt.Sprintf("10.0.0.%d:1935", i+1),
			Load: cluster.Load{Cores: 8, CPU: float64(i%5) / 2, Connections: i * 40, EgressBps: int64(i) * 50e6}}
		if err := reg.Heartbeat(context.Background(), n, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	pol := testPolicy
	pol.Fresh = time.Hour // the heartbeats stay fresh however long the benchmark runs
	h := hub.New(hub.Options{})
	defer h.Close()
	api := NewAPI(h, slog.New(slog.NewTextHandler(io.Discard, nil)), WithCluster(reg, coreOnly, DispatchOptions{Policy: pol}))
	mux := http.NewServeMux()
	api.Register(mux)
	const target = "/api/v1/dispatch?path=live/cam1&action=play&protocol=flv&region=eu&token=abc"

	b.Run("handler", func(b *testing.B) {
		lat := make([]time.Duration, 0, 1<<16)
		start := time.Now()
		for b.Loop() {
			t := time.Now()
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
			lat = append(lat, time.Since(t))
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
		report(b, lat, time.Since(start))
	})
	b.Run("loopback", func(b *testing.B) {
		srv := httptest.NewServer(mux)
		defer srv.Close()
		client := &http.Client{Timeout: 5 * time.Second}
		defer client.CloseIdleConnections()
		lat := make([]time.Duration, 0, 1<<16)
		start := time.Now()
		for b.Loop() {
			t := time.Now()
			resp, err := client.Get(srv.URL + target)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			lat = append(lat, time.Since(t))
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
		report(b, lat, time.Since(start))
	})
}

// report adds requests/s and the p99 latency (µs) to b's results.
func report(b *testing.B, lat []time.Duration, elapsed time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	p99 := lat[min(len(lat)-1, len(lat)*99/100)]
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
}
