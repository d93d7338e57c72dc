package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/hub"
)

// promServer is a real Prometheus server (Debian's prometheus package)
// scraping one target every second.
type promServer struct {
	base   string
	logs   string
	client *http.Client
}

// startPrometheus runs prometheus scraping target for t, and stops it when t
// ends. Without the prometheus binary the test is skipped.
func startPrometheus(t *testing.T, target string) *promServer {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skipf("prometheus not found (%v); install Debian's prometheus package to run this test", err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: quasipaa
    metrics_path: /metrics
    static_configs:
      - targets: [%q]
`, target)), 0o600))
	// A port found free may be taken before prometheus binds it: try a few.
	for attempt := 0; attempt < 3; attempt++ {
		port := freePort(t)
		logs := filepath.Join(dir, fmt.Sprintf("prometheus-%d.log", attempt))
		logf, err := os.Create(logs)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, bin, "--config.file="+cfg,
			"--storage.tsdb.path="+filepath.Join(dir, fmt.Sprintf("data-%d", attempt)),
			"--web.listen-address=127.0.0.1:"+strconv.Itoa(port), "--log.level=warn")
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.WaitDelay = 10 * time.Second
		require.NoError(t, cmd.Start())
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		p := &promServer{base: "http://127.0.0.1:" + strconv.Itoa(port), logs: logs,
			client: &http.Client{Timeout: 10 * time.Second}}
		stop := func() { cancel(); <-exited; _ = logf.Close(); p.client.CloseIdleConnections() }
		if p.waitReady(t, exited) {
			t.Cleanup(stop)
			return p
		}
		stop()
		out, _ := os.ReadFile(logs)
		t.Logf("prometheus attempt %d did not start: %s", attempt, out)
	}
	t.Fatal("prometheus did not start")
	return nil
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitReady waits up to 30 s for /-/ready; false if prometheus exited.
func (p *promServer) waitReady(t *testing.T, exited <-chan struct{}) bool {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := p.client.Get(p.base + "/-/ready")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
	}
	return false
}

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query runs an instant PromQL query; a PromQL error is returned as an error.
func (p *promServer) query(q string) ([]promSample, error) {
	resp, err := p.client.Get(p.base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	if out.Status != "success" {
		return nil, fmt.Errorf("%s: %s", q, out.Error)
	}
	if out.Data.ResultType != "vector" {
		return nil, nil
	}
	var samples []promSample
	err = json.Unmarshal(out.Data.Result, &samples)
	return samples, err
}

// waitValue polls q until it has one sample and ok(value), for up to 30 s.
func (p *promServer) waitValue(t *testing.T, q string, ok func(float64) bool) float64 {
	t.Helper()
	var last string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		samples, err := p.query(q)
		require.NoError(t, err)
		if len(samples) == 1 {
			s, _ := samples[0].Value[1].(string)
			v, err := strconv.ParseFloat(s, 64)
			require.NoError(t, err)
			if ok(v) {
				return v
			}
			last = s
		}
		time.Sleep(200 * time.Millisecond)
	}
	logs, _ := os.ReadFile(p.logs)
	t.Fatalf("%s: no satisfying sample within 30 s (last %q); prometheus log:\n%s", q, last, logs)
	return 0
}

// TestRealPrometheus has a real Prometheus scrape a node, query what it
// stored, and run every query of the Grafana dashboard.
func TestRealPrometheus(t *testing.T) {
	var m *Metrics
	h := newHub(t, hub.Options{}, &m)
	m = New(h, WithNode("node-1", "publish,pull", "test"),
		WithNodeLoad(func() cluster.Load { return cluster.Load{CPU: 0.25, Cores: 2, Connections: 2} }),
		WithRelays(func() []RelayState { return []RelayState{{Path: "live/r", State: "live", Bytes: 10}} }),
		WithJobs(func() []cluster.Lease { return []cluster.Lease{{Kind: cluster.KindHLS, Path: "live/a"}} }))
	p := publish(t, h, "live/a", 30, 1000)
	defer p.Close()
	r := subscribe(t, h, "live/a", "flv")
	defer r.Close()
	kicked := subscribe(t, h, "live/a", "hls")
	kicked.Kick()
	kicked.Close()
	m.AuthRefused("play", "whep", ReasonExpired)
	m.WebhookSent(WebhookOnPlay, OutcomeDenied)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(served) }()
	defer func() { _ = srv.Close(); <-served }()

	prom := startPrometheus(t, ln.Addr().String())
	prom.waitValue(t, `up{job="quasipaa"}`, func(v float64) bool { return v == 1 })
	require.Equal(t, 1.0, prom.waitValue(t, `quasipaa_streams`, func(float64) bool { return true }))
	require.Equal(t, 1.0, prom.waitValue(t, `quasipaa_viewers{protocol="flv"}`, func(float64) bool { return true }))
	require.Equal(t, 1.0, prom.waitValue(t, `quasipaa_client_disconnects_total{action="play",protocol="hls",reason="kicked"}`, func(float64) bool { return true }))
	require.Equal(t, 1.0, prom.waitValue(t, `quasipaa_node_info{node="node-1",roles="publish,pull"}`, func(float64) bool { return true }))
	require.Equal(t, 30_000.0, prom.waitValue(t, `quasipaa_ingress_bytes_total`, func(float64) bool { return true }))

	// More traffic: the node total grows and rate() sees it.
	now := time.Now()
	for i := 30; i < 60; i++ {
		require.NoError(t, p.WriteFrame(frame(i, 1000, now)))
	}
	prom.waitValue(t, `quasipaa_ingress_bytes_total`, func(v float64) bool { return v == 60_000 })
	prom.waitValue(t, `rate(quasipaa_ingress_bytes_total[10s])`, func(v float64) bool { return v > 0 })

	// Every query of the dashboard runs on the real PromQL engine.
	raw, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(raw, &d))
	vars := strings.NewReplacer("$__rate_interval", "10s", "$instance", ".*")
	ran := 0
	for _, pn := range d.Panels {
		for _, tg := range pn.Targets {
			_, err := prom.query(vars.Replace(tg.Expr))
			require.NoError(t, err, "panel %q", pn.Title)
			ran++
		}
	}
	require.Positive(t, ran)
	// The streams panel shows data.
	samples, err := prom.query(vars.Replace(`sum(quasipaa_streams{instance=~"$instance"})`))
	require.NoError(t, err)
	require.Len(t, samples, 1)
}

// TestPromtoolLint runs `promtool check metrics` (Prometheus's own lint of
// names, units and help texts) on a scrape with every metric present.
func TestPromtoolLint(t *testing.T) {
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Skipf("promtool not found (%v); install Debian's prometheus package to run this test", err)
	}
	var m *Metrics
	h := newHub(t, hub.Options{}, &m)
	m = New(h, WithNode("n1", "publish", "test"),
		WithNodeLoad(func() cluster.Load { return cluster.Load{} }),
		WithRelays(func() []RelayState { return []RelayState{{Path: "live/r", State: "live"}} }),
		WithJobs(func() []cluster.Lease { return nil }))
	p := publish(t, h, "live/a", 2, 10)
	defer p.Close()
	r := subscribe(t, h, "live/a", "flv")
	defer r.Close()
	m.ClientLeft(hub.Event{Action: hub.ActionPlay, Client: hub.ClientInfo{Protocol: "flv"}})
	m.AuthRefused("play", "flv", ReasonExpired)
	m.WebhookSent(WebhookOnPlay, OutcomeOK)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(rec.Body.Bytes())
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	require.NoError(t, err)
}
