package metrics

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/media"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testTracks = []*media.Track{
	{Codec: media.CodecH264, Width: 1280, Height: 720},
	{Codec: media.CodecAAC, SampleRate: 48000, Channels: 2},
}

// frame makes video frame n (30 fps, a keyframe every 30) of size bytes,
// ingested at ingest.
func frame(n, size int, ingest time.Time) *media.Frame {
	ts := time.Duration(n) * time.Second / 30
	return &media.Frame{Track: 0, DTS: ts, PTS: ts, Key: n%30 == 0, Payload: make([]byte, size), Ingest: ingest}
}

// publish starts a stream on path with frames of size bytes, the last one
// ingested two seconds after the first so the hub measures a bit rate.
func publish(t testing.TB, h *hub.Hub, path string, frames, size int) *hub.Publisher {
	t.Helper()
	p, err := h.PublishContext(t.Context(), path, hub.ClientInfo{Protocol: "rtmp", RemoteAddr: "127.0.0.1:1"})
	require.NoError(t, err)
	require.NoError(t, p.SetTracks(testTracks))
	start := time.Now()
	for i := 0; i < frames; i++ {
		ingest := start
		if i == frames-1 {
			ingest = start.Add(2 * time.Second)
		}
		require.NoError(t, p.WriteFrame(frame(i, size, ingest)))
	}
	return p
}

func subscribe(t testing.TB, h *hub.Hub, path, protocol string) *hub.Reader {
	t.Helper()
	r, err := h.SubscribeContext(t.Context(), path, hub.ClientInfo{Protocol: protocol, RemoteAddr: "127.0.0.1:2"})
	require.NoError(t, err)
	return r
}

// newHub returns a hub whose leaving clients are counted by the Metrics
// that *m points to when they leave.
func newHub(t testing.TB, opts hub.Options, m **Metrics) *hub.Hub {
	opts.OnLeave = func(ev hub.Event) { (*m).ClientLeft(ev) }
	opts.Logger = slog.New(slog.DiscardHandler)
	h := hub.New(opts)
	t.Cleanup(h.Close)
	return h
}

// scrape fetches /metrics from a real HTTP server and parses the text exposition.
// It fails on any gathering error (which the handler would log and skip).
func scrape(t testing.TB, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	_, err := m.Registry().Gather()
	require.NoError(t, err, "gathering")
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return parse(t, body)
}

func parse(t testing.TB, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	require.NoError(t, err)
	return fams
}

// value returns the value of the series of name whose labels include want.
func value(t testing.TB, fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	v, ok := lookup(fams, name, want...)
	require.True(t, ok, "no series %s%v", name, want)
	return v
}

func lookup(fams map[string]*dto.MetricFamily, name string, want ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(want); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == want[i] && l.GetValue() == want[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

func TestStreamMetrics(t *testing.T) {
	var m *Metrics
	h := newHub(t, hub.Options{}, &m)
	m = New(h)
	pa := publish(t, h, "live/a", 60, 1000)
	defer pa.Close()
	pb := publish(t, h, "live/b", 10, 100)
	defer pb.Close()
	for _, proto := range []string{"flv", "flv", "hls"} {
		r := subscribe(t, h, "live/a", proto)
		r.AddBytesOut(500)
		defer r.Close()
	}
	rb := subscribe(t, h, "live/b", "rtmp")
	defer rb.Close()

	fams := scrape(t, m)
	info, ok := h.Stream("live/a")
	require.True(t, ok)
	require.Positive(t, info.IngressBitrate)
	// 60 000 bytes over two seconds.
	require.InDelta(t, 30_000, value(t, fams, "quasipaa_stream_ingress_bytes_per_second", "path", "live/a"), 1_000)
	require.Equal(t, float64(info.IngressBitrate)/8, value(t, fams, "quasipaa_stream_ingress_bytes_per_second", "path", "live/a"))
	require.Equal(t, 60.0, value(t, fams, "quasipaa_stream_frames_in_total", "path", "live/a"))
	require.Equal(t, 60_000.0, value(t, fams, "quasipaa_stream_bytes_in_total", "path", "live/a"))
	require.Equal(t, 1_000.0, value(t, fams, "quasipaa_stream_bytes_in_total", "path", "live/b"))
	require.Equal(t, 1_500.0, value(t, fams, "quasipaa_stream_bytes_out_total", "path", "live/a"))
	require.Equal(t, 0.0, value(t, fams, "quasipaa_stream_dropped_frames_total", "path", "live/a"))
	require.Equal(t, 2.0, value(t, fams, "quasipaa_stream_viewers", "path", "live/a", "protocol", "flv"))
	require.Equal(t, 1.0, value(t, fams, "quasipaa_stream_viewers", "path", "live/a", "protocol", "hls"))
	require.Equal(t, 1.0, value(t, fams, "quasipaa_stream_viewers", "path", "live/b", "protocol", "rtmp"))
	require.Equal(t, 1.0, value(t, fams, "quasipaa_stream_up", "path", "live/a", "state", "live"))
	up := value(t, fams, "quasipaa_stream_uptime_seconds", "path", "live/a")
	require.True(t, up >= 0 && up < 60, "uptime %v", up)

	require.Equal(t, 2.0, value(t, fams, "quasipaa_streams"))
	require.Equal(t, 2.0, value(t, fams, "quasipaa_publishers"))
	require.Equal(t, 2.0, value(t, fams, "quasipaa_viewers", "protocol", "flv"))
	require.Equal(t, 1.0, value(t, fams, "quasipaa_viewers", "protocol", "hls"))
	require.Equal(t, 1.0, value(t, fams, "quasipaa_viewers", "protocol", "rtmp"))
	require.Equal(t, 61_000.0, value(t, fams, "quasipaa_ingress_bytes_total"))
	require.Equal(t, 1_500.0, value(t, fams, "quasipaa_egress_bytes_total"))
	require.Equal(t, dto.MetricType_COUNTER, fams["quasipaa_egress_bytes_total"].GetType())

	// The Go and process collectors are there too.
	require.Positive(t, value(t, fams, "go_goroutines"))
	require.Positive(t, value(t, fams, "go_memstats_heap_alloc_bytes"))
	require.Contains(t, fams, "go_gc_cycles_total_gc_cycles_total")
	require.Contains(t, fams, "process_start_time_seconds")

	// A publisher in its grace period.
	var m2 *Metrics
	h2 := newHub(t, hub.Options{PublisherGrace: time.Minute}, &m2)
	m2 = New(h2)
	publish(t, h2, "live/g", 2, 10).Close()
	fams = scrape(t, m2)
	require.Equal(t, 1.0, value(t, fams, "quasipaa_stream_up", "path", "live/g", "state", "waiting_publisher"))
	require.Equal(t, 0.0, value(t, fams, "quasipaa_publishers"))
	require.Equal(t, 1.0, value(t, fams, "quasipaa_client_disconnects_total", "action", "publish", "reason", "normal"))
}

func TestDisconnectReasons(t *testing.T) {
	var m *Metrics
	h := newHub(t, hub.Options{QueueSize: 16, MaxDrops: 1, Conflict: hub.ConflictTakeOver}, &m)
	m = New(h)
	p := publish(t, h, "live/a", 2, 10)

	kicked := subscribe(t, h, "live/a", "flv")
	require.NoError(t, h.Kick("live/a", kicked.Info().ID))
	kicked.Close()

	// A reader that falls a whole ring behind is disconnected at once with MaxDrops 1.
	slow := subscribe(t, h, "live/a", "ws-flv")
	for i := 2; i < 60; i++ {
		require.NoError(t, p.WriteFrame(frame(i, 10, time.Now())))
	}
	_, err := slow.TryNext(nil)
	require.ErrorIs(t, err, hub.ErrSlowReader)
	slow.Close()
	fams := scrape(t, m)
	require.Equal(t, float64(slow.Dropped()), value(t, fams, "quasipaa_stream_dropped_frames_total", "path", "live/a"))
	require.Positive(t, slow.Dropped())
	require.Equal(t, float64(slow.Dropped()), value(t, fams, "quasipaa_dropped_frames_total"))

	normal := subscribe(t, h, "live/a", "hls")
	normal.Close()

	// A second publisher takes the path over.
	p2, err := h.PublishContext(t.Context(), "live/a", hub.ClientInfo{Protocol: "srt"})
	require.NoError(t, err)
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the replaced publisher was not stopped")
	}
	p2.Close()
	// An error the hub does not name, and a client with an address for a protocol.
	m.ClientLeft(hub.Event{Action: hub.ActionPlay, Client: hub.ClientInfo{Protocol: "10.0.0.1"}, Err: io.ErrUnexpectedEOF})

	fams = scrape(t, m)
	require.Equal(t, 1.0, value(t, fams, "quasipaa_client_disconnects_total", "action", "play", "protocol", "flv", "reason", "kicked"))
	require.Equal(t, 1.0, value(t, fams, "quasipaa_client_disconnects_total", "action", "play", "protocol", "ws-flv", "reason", "slow_reader"))
	require.Equal(t, 1.0, value(t, fams, "quasipaa_client_disconnects_total", "action", "play", "protocol", "hls", "reason", "normal"))
	require.Equal(t, 1.0, value(t, fams, "quasipaa_client_disconnects_total", "action", "publish", "protocol", "rtmp", "reason", "replaced"))
	require.Equal(t, 1.0, value(t, fams, "quasipaa_client_disconnects_total", "action", "publish", "protocol", "srt", "reason", "normal"))
	require.Equal(t, 1.0, value(t, fams, "quasipaa_client_disconnects_total", "action", "play", "protocol", "other", "reason", "error"))
	require.Len(t, fams["quasipaa_client_disconnects_total"].GetMetric(), 6)
}

func TestAuthRefusalsAndWebhooks(t *testing.T) {
	m := New(hub.New(hub.Options{}))
	for i := 0; i < 3; i++ {
		m.AuthRefused("publish", "rtmp", ReasonBadCredential)
	}
	m.AuthRefused("play", "whep", ReasonExpired)
	m.AuthRefused("play", "whep", "token for 10.1.2.3 on live/secret") // free text: "other"
	m.AuthRefused("delete", "192.168.0.1:1935", ReasonForbidden)
	m.WebhookSent(WebhookOnPublish, OutcomeOK)
	m.WebhookSent(WebhookOnPublish, OutcomeOK)
	m.WebhookSent(WebhookOnPlay, OutcomeTimeout)
	m.WebhookSent("https://hooks.example/x", "500")

	fams := scrape(t, m)
	require.Equal(t, 3.0, value(t, fams, "quasipaa_auth_refusals_total", "action", "publish", "protocol", "rtmp", "reason", "bad_credential"))
	require.Equal(t, 1.0, value(t, fams, "quasipaa_auth_refusals_total", "action", "play", "protocol", "whep", "reason", "expired"))
	require.Equal(t, 1.0, value(t, fams, "quasipaa_auth_refusals_total", "action", "play", "protocol", "whep", "reason", "other"))
	require.Equal(t, 1.0, value(t, fams, "quasipaa_auth_refusals_total", "action", "other", "protocol", "other", "reason", "forbidden"))
	require.Equal(t, 2.0, value(t, fams, "quasipaa_webhooks_total", "event", "on_publish", "outcome", "ok"))
	require.Equal(t, 1.0, value(t, fams, "quasipaa_webhooks_total", "event", "on_play", "outcome", "timeout"))
	require.Equal(t, 1.0, value(t, fams, "quasipaa_webhooks_total", "event", "other", "outcome", "other"))
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				require.NotContains(t, l.GetValue(), "10.1.2.3")
				require.NotContains(t, l.GetValue(), "192.168")
			}
		}
	}
}

func TestProtocolLabelsStayBounded(t *testing.T) {
	m := New(hub.New(hub.Options{}))
	for i := 0; i < 3*maxLabelValues; i++ {
		m.AuthRefused("play", fmt.Sprintf("proto%d", i), ReasonForbidden)
	}
	fams := scrape(t, m)
	require.Len(t, fams["quasipaa_auth_refusals_total"].GetMetric(), maxLabelValues+1)
	require.Equal(t, float64(2*maxLabelValues), value(t, fams, "quasipaa_auth_refusals_total", "protocol", "other"))
}

func TestRelaysJobsLoadAndNode(t *testing.T) {
	var mu sync.Mutex
	relays := []RelayState{
		{Path: "live/a", Source: "http://10.0.0.2:8080", State: "live", Frames: 10, Bytes: 1000},
		{Path: "live/b", Source: "http://10.0.0.2:8080", State: "live", Frames: 5, Bytes: 500},
		{Path: "live/b", Source: "http://10.0.0.3:8080", State: "connecting", Frames: 1, Bytes: 50},
	}
	jobs := []cluster.Lease{{Kind: cluster.KindRecord, Path: "live/a"}, {Kind: cluster.KindRecord, Path: "live/b"},
		{Kind: cluster.KindHLS, Path: "live/a"}}
	m := New(hub.New(hub.Options{}),
		WithNodeLoad(func() cluster.Load {
			return cluster.Load{CPU: 1.5, Cores: 2, Connections: 7, Publishers: 2, Viewers: 5, IngressBps: 4e6, EgressBps: 9e6}
		}),
		WithRelays(func() []RelayState { mu.Lock(); defer mu.Unlock(); return relays }),
		WithJobs(func() []cluster.Lease { mu.Lock(); defer mu.Unlock(); return jobs }),
		WithNode("edge-1", "pull,exchange", "v1.2.3"))

	fams := scrape(t, m)
	require.Equal(t, 1.5, value(t, fams, "quasipaa_node_cpu_cores"))
	require.Equal(t, 2.0, value(t, fams, "quasipaa_node_cores"))
	require.Equal(t, 7.0, value(t, fams, "quasipaa_node_connections"))
	require.Equal(t, 2.0, value(t, fams, "quasipaa_node_publishers"))
	require.Equal(t, 5.0, value(t, fams, "quasipaa_node_viewers"))
	require.Equal(t, 5e5, value(t, fams, "quasipaa_node_ingress_bytes_per_second"))
	require.Equal(t, 9e6/8, value(t, fams, "quasipaa_node_egress_bytes_per_second"))
	require.Equal(t, 2.0, value(t, fams, "quasipaa_relay_upstreams", "state", "live"))
	require.Equal(t, 1.0, value(t, fams, "quasipaa_relay_upstreams", "state", "connecting"))
	require.Equal(t, 1000.0, value(t, fams, "quasipaa_relay_bytes_total", "path", "live/a"))
	require.Equal(t, 550.0, value(t, fams, "quasipaa_relay_bytes_total", "path", "live/b"))
	require.Equal(t, 6.0, value(t, fams, "quasipaa_relay_frames_total", "path", "live/b"))
	require.Equal(t, 2.0, value(t, fams, "quasipaa_jobs", "kind", "record"))
	require.Equal(t, 1.0, value(t, fams, "quasipaa_jobs", "kind", "hls"))
	require.Equal(t, 1.0, value(t, fams, "quasipaa_node_info", "node", "edge-1", "roles", "pull,exchange", "version", "v1.2.3"))

	mu.Lock()
	relays = relays[:1]
	relays[0].State = "retrying"
	jobs = nil
	mu.Unlock()
	fams = scrape(t, m)
	require.Equal(t, 0.0, value(t, fams, "quasipaa_relay_upstreams", "state", "live"), "a state seen before reads 0")
	require.Equal(t, 0.0, value(t, fams, "quasipaa_relay_upstreams", "state", "connecting"))
	require.Equal(t, 1.0, value(t, fams, "quasipaa_relay_upstreams", "state", "retrying"))
	_, ok := lookup(fams, "quasipaa_relay_bytes_total", "path", "live/b")
	require.False(t, ok)
	require.Equal(t, 0.0, value(t, fams, "quasipaa_jobs", "kind", "record"))
	require.Equal(t, 0.0, value(t, fams, "quasipaa_jobs", "kind", "hls"))
}

func TestTotalsStayMonotonicWhenStreamsEnd(t *testing.T) {
	var m *Metrics
	h := newHub(t, hub.Options{}, &m)
	m = New(h)
	p := publish(t, h, "live/a", 10, 100)
	r := subscribe(t, h, "live/a", "flv")
	r.AddBytesOut(700)
	fams := scrape(t, m)
	require.Equal(t, 1000.0, value(t, fams, "quasipaa_ingress_bytes_total"))
	require.Equal(t, 700.0, value(t, fams, "quasipaa_egress_bytes_total"))

	// The stream ends: its series go, the node totals keep what was seen.
	r.Close()
	p.Close()
	fams = scrape(t, m)
	_, ok := lookup(fams, "quasipaa_stream_bytes_in_total", "path", "live/a")
	require.False(t, ok, "an ended stream has no series")
	require.Equal(t, 0.0, value(t, fams, "quasipaa_streams"))
	require.Equal(t, 0.0, value(t, fams, "quasipaa_viewers", "protocol", "flv"))
	require.Equal(t, 1000.0, value(t, fams, "quasipaa_ingress_bytes_total"))
	require.Equal(t, 700.0, value(t, fams, "quasipaa_egress_bytes_total"))

	// Published again with less traffic: the per-stream counter restarts,
	// the node totals add up.
	p = publish(t, h, "live/a", 3, 100)
	fams = scrape(t, m)
	require.Equal(t, 300.0, value(t, fams, "quasipaa_stream_bytes_in_total", "path", "live/a"))
	require.Equal(t, 1300.0, value(t, fams, "quasipaa_ingress_bytes_total"))

	// Ended and published again between two scrapes (same path, new stream).
	p.Close()
	p = publish(t, h, "live/a", 5, 100)
	defer p.Close()
	fams = scrape(t, m)
	require.Equal(t, 500.0, value(t, fams, "quasipaa_stream_bytes_in_total", "path", "live/a"))
	require.Equal(t, 1800.0, value(t, fams, "quasipaa_ingress_bytes_total"))
}

// fakeSource returns fixed snapshots: the unit test of the monotonic guard.
type fakeSource struct{ infos []hub.StreamInfo }

func (f *fakeSource) Streams() []hub.StreamInfo { return f.infos }

func TestPerStreamCountersNeverGoDown(t *testing.T) {
	created := time.Now()
	src := &fakeSource{infos: []hub.StreamInfo{{Path: "live/a", State: "live", Created: created, BytesIn: 100, BytesOut: 500}}}
	m := New(src)
	fams := scrape(t, m)
	require.Equal(t, 500.0, value(t, fams, "quasipaa_stream_bytes_out_total", "path", "live/a"))
	// A reader leaving can make a snapshot briefly miss its bytes.
	src.infos[0].BytesOut = 300
	src.infos[0].BytesIn = 150
	fams = scrape(t, m)
	require.Equal(t, 500.0, value(t, fams, "quasipaa_stream_bytes_out_total", "path", "live/a"))
	require.Equal(t, 500.0, value(t, fams, "quasipaa_egress_bytes_total"))
	require.Equal(t, 150.0, value(t, fams, "quasipaa_stream_bytes_in_total", "path", "live/a"))
}

func TestOddPathsAndPanickingSources(t *testing.T) {
	var logs bytes.Buffer
	src := &fakeSource{infos: []hub.StreamInfo{
		{Path: "live/\xff\xfe", State: "live", Created: time.Now(), Viewers: map[string]int{"flv": 1, "": 2, "Bad Proto": 3}},
		{Path: `live/"quoted"\n`, State: "live", Created: time.Now()},
	}}
	m := New(src, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		WithRelays(func() []RelayState { panic("relay table broken") }))
	fams := scrape(t, m)
	require.Equal(t, 2.0, value(t, fams, "quasipaa_streams"))
	require.Equal(t, 1.0, value(t, fams, "quasipaa_stream_up", "path", "live/\uFFFD"))
	require.Equal(t, 1.0, value(t, fams, "quasipaa_stream_up", "path", `live/"quoted"\n`))
	require.Equal(t, 2.0, value(t, fams, "quasipaa_stream_viewers", "protocol", "unknown"))
	require.Equal(t, 3.0, value(t, fams, "quasipaa_stream_viewers", "protocol", "other"))
	require.Equal(t, 3.0, value(t, fams, "quasipaa_viewers", "protocol", "other"))
	require.Contains(t, logs.String(), "relay table broken")
}

func TestNilMetricsIsANoOp(t *testing.T) {
	var m *Metrics
	m.ClientLeft(hub.Event{})
	m.AuthRefused("play", "flv", ReasonExpired)
	m.WebhookSent(WebhookOnPlay, OutcomeOK)
	require.Nil(t, m.Registry())
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusNotFound, rec.Code)
}

func TestHandlerGzip(t *testing.T) {
	m := New(hub.New(hub.Options{}))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	m.Handler().ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "gzip", rec.Header().Get("Content-Encoding"))
	zr, err := gzip.NewReader(rec.Body)
	require.NoError(t, err)
	body, err := io.ReadAll(zr)
	require.NoError(t, err)
	require.True(t, strings.Contains(string(body), "quasipaa_streams 0"), "body: %.200s", body)
	// The handler counts its own scrapes.
	fams := parse(t, body)
	require.Equal(t, 0.0, value(t, fams, "promhttp_metric_handler_requests_total", "code", "200"))
}

func TestConcurrentScrapesWhileStreamsChurn(t *testing.T) {
	var m *Metrics
	h := newHub(t, hub.Options{QueueSize: 16}, &m)
	m = New(h)
	const workers, rounds = 4, 100
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := fmt.Sprintf("live/churn-%d", w)
			for i := 0; i < rounds; i++ {
				p, err := h.Publish(path, hub.ClientInfo{Protocol: "rtmp"})
				if err != nil {
					t.Error(err)
					return
				}
				_ = p.SetTracks(testTracks)
				_ = p.WriteFrame(frame(0, 100, time.Now()))
				r, err := h.SubscribeContext(t.Context(), path, hub.ClientInfo{Protocol: "flv"})
				if err == nil {
					r.AddBytesOut(10)
					r.Close()
				}
				p.Close()
			}
		}()
	}
	var lastIn, lastOut float64
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for scrapes := 0; ; scrapes++ {
		fams := scrape(t, m)
		in, out := value(t, fams, "quasipaa_ingress_bytes_total"), value(t, fams, "quasipaa_egress_bytes_total")
		require.GreaterOrEqual(t, in, lastIn, "scrape %d", scrapes)
		require.GreaterOrEqual(t, out, lastOut, "scrape %d", scrapes)
		lastIn, lastOut = in, out
		select {
		case <-done:
			fams = scrape(t, m)
			require.GreaterOrEqual(t, value(t, fams, "quasipaa_ingress_bytes_total"), lastIn)
			require.Equal(t, float64(workers*rounds), value(t, fams, "quasipaa_client_disconnects_total", "action", "play"))
			require.Equal(t, 0.0, value(t, fams, "quasipaa_streams"))
			return
		case <-time.After(time.Millisecond):
		}
		require.Less(t, scrapes, 10_000, "the workers never finished")
	}
}

func TestStreamEndedCountsTrafficSinceTheLastScrape(t *testing.T) {
	var m *Metrics
	h := newHub(t, hub.Options{OnStreamEnd: func(info hub.StreamInfo) { m.StreamEnded(info) }}, &m)
	m = New(h)
	// Scraped once while live, then more traffic, then the stream ends
	// before the next scrape.
	p := publish(t, h, "live/a", 10, 100)
	before := value(t, scrape(t, m), "quasipaa_ingress_bytes_total")
	for i := 10; i < 20; i++ {
		require.NoError(t, p.WriteFrame(frame(i, 100, time.Now())))
	}
	p.End()
	// A stream that lives entirely between two scrapes.
	publish(t, h, "live/b", 5, 100).End()
	after := value(t, scrape(t, m), "quasipaa_ingress_bytes_total")
	require.Equal(t, before+10*100+5*100, after, "every byte counted, none twice")
}
