// Package metrics exports Quasipaa's Prometheus metrics on /metrics.
//
// Stream figures are read from the hub at scrape time, from one snapshot:
// nothing is counted on the media path. Client disconnects, authorisation
// refusals and webhook calls are counted by methods the components call when
// those (rare) events happen. Other components' state (node load, relays,
// exchange jobs) is read at scrape time through functions given as options.
// See docs/metrics.md for every metric.
package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/hub"
)

// StreamSource lists the streams of a node; *hub.Hub is one.
type StreamSource interface {
	Streams() []hub.StreamInfo
}

// RelayState is one relay upstream of a pull or exchange node, as reported by WithRelays.
type RelayState struct {
	// Path is the stream path being relayed.
	Path string
	// Source is the node (or URL) the stream is pulled from; not exported as a label.
	Source string
	// State is the upstream's state, e.g. "connecting", "live", "retrying".
	State string
	// Frames and Bytes count what this upstream received since it started.
	Frames, Bytes uint64
}

// Option configures New.
type Option func(*options)

type options struct {
	log     *slog.Logger
	load    func() cluster.Load
	relays  func() []RelayState
	jobs    func() []cluster.Lease
	node    []string // id, roles, version
	timeout time.Duration
}

// WithLogger sets the logger of scrape errors (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithNodeLoad exports the node's load figures (quasipaa_node_*), read from
// f at every scrape. f must be quick and must not block.
func WithNodeLoad(f func() cluster.Load) Option { return func(o *options) { o.load = f } }

// WithRelays exports the relay upstreams (quasipaa_relay_*), read from f at
// every scrape. f must be quick and must not block.
func WithRelays(f func() []RelayState) Option { return func(o *options) { o.relays = f } }

// WithJobs exports the exchange jobs this node holds (quasipaa_jobs), read
// from f at every scrape: f must return a cached list, not ask the registry.
func WithJobs(f func() []cluster.Lease) Option { return func(o *options) { o.jobs = f } }

// WithNode exports quasipaa_node_info{node,roles,version} 1.
func WithNode(id, roles, version string) Option {
	return func(o *options) { o.node = []string{id, roles, version} }
}

// WithScrapeTimeout bounds how long one scrape may take before the handler
// answers 503 (default 10 s; 0 or less keeps the default).
func WithScrapeTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// Metrics owns a Prometheus registry with Quasipaa's collectors and the
// event counters. Its methods are safe for concurrent use, and do nothing on
// a nil *Metrics (metrics disabled).
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler
	streams *collector

	disconnects *prometheus.CounterVec
	refusals    *prometheus.CounterVec
	webhooks    *prometheus.CounterVec
	// protocols bounds the protocol label of the event counters.
	protocols boundedLabel
}

// New returns the metrics of a node whose streams src lists.
func New(src StreamSource, opts ...Option) *Metrics {
	o := options{log: slog.Default(), timeout: 10 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	if o.timeout <= 0 {
		o.timeout = 10 * time.Second
	}
	m := &Metrics{
		reg:     prometheus.NewRegistry(),
		streams: newCollector(src, o),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quasipaa_client_disconnects_total",
			Help: "Publishers (action=publish) and viewers (action=play) that left, by protocol and reason.",
		}, []string{"action", "protocol", "reason"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quasipaa_auth_refusals_total",
			Help: "Publish and play attempts refused by authorisation or app policy, by protocol and reason.",
		}, []string{"action", "protocol", "reason"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quasipaa_webhooks_total",
			Help: "Webhook calls made, by event and outcome.",
		}, []string{"event", "outcome"}),
	}
	m.reg.MustRegister(
		m.streams, m.disconnects, m.refusals, m.webhooks,
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			collectors.MetricsGC, collectors.MetricsScheduler)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            promLogger{o.log},
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            m.reg,
		MaxRequestsInFlight: 4,
		Timeout:             o.timeout,
	})
	m.handler = promhttp.InstrumentMetricHandler(m.reg, h)
	return m
}

// Handler serves the metrics in the Prometheus text (or protobuf) format,
// gzip-compressed when the scraper accepts it. Gathering errors are logged
// and the metrics that could be gathered are served.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return m.handler
}

// Registry returns the registry, for components that export collectors of their own.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// StreamEnded adds the final counters of a stream that ended to the node's
// totals; pass it hub.Options.OnStreamEnd. Without it, the traffic of an
// ended stream since the last scrape is not counted.
func (m *Metrics) StreamEnded(info hub.StreamInfo) {
	if m == nil {
		return
	}
	m.streams.streamEnded(info)
}

// ClientLeft counts a publisher or viewer that left; pass it the events of
// hub.Options.OnLeave. It does not block and does not call into the hub.
func (m *Metrics) ClientLeft(ev hub.Event) {
	if m == nil {
		return
	}
	m.disconnects.WithLabelValues(oneOf(actions, string(ev.Action)), m.protocols.value(ev.Client.Protocol),
		disconnectReason(ev.Err)).Inc()
}

// AuthRefused counts a refused publish or play attempt. action is
// "publish" or "play"; reason one of the Reason* constants (anything else
// is counted as "other"); protocol the client's protocol ("rtmp", "whep"...).
// Never pass addresses, paths or tokens: labels must stay few.
func (m *Metrics) AuthRefused(action, protocol, reason string) {
	if m == nil {
		return
	}
	m.refusals.WithLabelValues(oneOf(actions, action), m.protocols.value(protocol), oneOf(authReasons, reason)).Inc()
}

// WebhookSent counts a webhook call: event is one of the Webhook*
// constants, outcome one of the Outcome* constants (others count as "other").
func (m *Metrics) WebhookSent(event, outcome string) {
	if m == nil {
		return
	}
	m.webhooks.WithLabelValues(oneOf(webhookEvents, event), oneOf(webhookOutcomes, outcome)).Inc()
}

// promLogger sends promhttp's errors to slog.
type promLogger struct{ log *slog.Logger }

// Println logs a scrape error.
func (l promLogger) Println(v ...any) {
	l.log.Error("metrics: scrape error", "err", fmt.Sprint(v...))
}
