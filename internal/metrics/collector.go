package metrics

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/hub"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// Descriptions of the metrics built at scrape time.
var (
	descStreamBitrate = desc("quasipaa_stream_ingress_bytes_per_second",
		"Payload rate received from the stream's publisher over the last second or so, bytes/s (bit rate / 8).", "path")
	descStreamFrames = desc("quasipaa_stream_frames_in_total",
		"Frames received from the stream's publishers since the stream started.", "path")
	descStreamBytesIn = desc("quasipaa_stream_bytes_in_total",
		"Payload bytes received from the stream's publishers since the stream started.", "path")
	descStreamBytesOut = desc("quasipaa_stream_bytes_out_total",
		"Bytes sent to the stream's viewers since the stream started.", "path")
	descStreamDropped = desc("quasipaa_stream_dropped_frames_total",
		"Frames skipped by the stream's slow viewers since the stream started.", "path")
	descStreamViewers = desc("quasipaa_stream_viewers",
		"Viewers of the stream (relay and internal readers included), by protocol.", "path", "protocol")
	descStreamUp = desc("quasipaa_stream_up",
		"1 for every stream in the hub; state is live or waiting_publisher (publisher gone, within its grace period).", "path", "state")
	descStreamUptime = desc("quasipaa_stream_uptime_seconds",
		"Seconds since the stream started.", "path")

	descStreams    = desc("quasipaa_streams", "Streams in the node's hub.")
	descPublishers = desc("quasipaa_publishers", "Streams of the node that have a publisher attached.")
	descViewers    = desc("quasipaa_viewers",
		"Viewers of every stream of the node, by protocol (0 for a protocol seen before that has none now).", "protocol")
	descIngress = desc("quasipaa_ingress_bytes_total",
		"Payload bytes received from publishers by the node, as observed at scrapes (see docs/metrics.md).")
	descEgress = desc("quasipaa_egress_bytes_total",
		"Bytes sent to viewers by the node, as observed at scrapes (see docs/metrics.md).")
	descDropped = desc("quasipaa_dropped_frames_total",
		"Frames skipped by slow viewers on the node, as observed at scrapes (see docs/metrics.md).")

	descNodeCPU         = desc("quasipaa_node_cpu_cores", "CPU used by the process over the last heartbeat interval, in cores.")
	descNodeCores       = desc("quasipaa_node_cores", "CPUs the process may use.")
	descNodeConnections = desc("quasipaa_node_connections", "Publishers plus viewers connected to the node.")
	descNodePublishers  = desc("quasipaa_node_publishers", "Publishing clients connected to the node.")
	descNodeViewers     = desc("quasipaa_node_viewers", "Playing clients connected to the node (relay readers included).")
	descNodeIngressBps  = desc("quasipaa_node_ingress_bytes_per_second", "Rate received from publishers, bytes/s (bit rate / 8).")
	descNodeEgressBps   = desc("quasipaa_node_egress_bytes_per_second", "Rate sent to viewers, bytes/s (bit rate / 8).")

	descRelayUpstreams = desc("quasipaa_relay_upstreams", "Relay upstreams of the node, by state.", "state")
	descRelayBytes     = desc("quasipaa_relay_bytes_total", "Bytes received over the relay for the stream since its upstream started.", "path")
	descRelayFrames    = desc("quasipaa_relay_frames_total", "Frames received over the relay for the stream since its upstream started.", "path")

	descJobs = desc("quasipaa_jobs", "Exchange jobs (leases) this node holds, by kind.", "kind")

	descNodeInfo = desc("quasipaa_node_info", "Always 1: the node's ID, roles and version.", "node", "roles", "version")
)

// tracked is what the scrapes saw of one stream: the largest value of each
// counter, so that what is exported never goes down.
type tracked struct {
	created                          time.Time
	gen                              uint64
	frames, bytesIn, bytesOut, drops uint64
}

// collector builds the stream, node, relay and job metrics at scrape time.
type collector struct {
	src     StreamSource
	opts    options
	log     *slog.Logger
	started time.Time

	viewerProtocols boundedLabel
	relayStates     boundedLabel
	jobKinds        boundedLabel

	// mu serialises scrapes: the snapshot and the bookkeeping below.
	mu      sync.Mutex
	gen     uint64
	streams map[string]*tracked
	// Counters of the streams that ended, as last seen.
	endedIn, endedOut, endedDrops uint64
	perProto                      map[string]int
}

func newCollector(src StreamSource, o options) *collector {
	c := &collector{src: src, opts: o, log: o.log, started: time.Now(),
		streams: make(map[string]*tracked), perProto: make(map[string]int)}
	// Always exported, so dashboards see zeros rather than no data.
	c.jobKinds.value(cluster.KindRecord)
	c.jobKinds.value(cluster.KindHLS)
	return c
}

// Describe sends the descriptions of every metric the collector may export.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStreamBitrate, descStreamFrames, descStreamBytesIn, descStreamBytesOut,
		descStreamDropped, descStreamViewers, descStreamUp, descStreamUptime,
		descStreams, descPublishers, descViewers, descIngress, descEgress, descDropped} {
		ch <- d
	}
	if c.opts.load != nil {
		for _, d := range []*prometheus.Desc{descNodeCPU, descNodeCores, descNodeConnections, descNodePublishers,
			descNodeViewers, descNodeIngressBps, descNodeEgressBps} {
			ch <- d
		}
	}
	if c.opts.relays != nil {
		ch <- descRelayUpstreams
		ch <- descRelayBytes
		ch <- descRelayFrames
	}
	if c.opts.jobs != nil {
		ch <- descJobs
	}
	if c.opts.node != nil {
		ch <- descNodeInfo
	}
}

// Collect builds the metrics from one snapshot of the streams and the option functions.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.safely("streams", func() { c.collectStreams(ch) })
	if c.opts.load != nil {
		c.safely("node load", func() { c.collectLoad(ch) })
	}
	if c.opts.relays != nil {
		c.safely("relays", func() { c.collectRelays(ch) })
	}
	if c.opts.jobs != nil {
		c.safely("jobs", func() { c.collectJobs(ch) })
	}
	if n := c.opts.node; n != nil {
		ch <- prometheus.MustNewConstMetric(descNodeInfo, prometheus.GaugeValue, 1,
			validUTF8(n[0]), validUTF8(n[1]), validUTF8(n[2]))
	}
}

// safely runs f, logging instead of crashing if it (an option function) panics.
func (c *collector) safely(what string, f func()) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("metrics: collecting failed", "what", what, "panic", fmt.Sprint(r))
		}
	}()
	f()
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(d *prometheus.Desc, v uint64, created time.Time, labels ...string) prometheus.Metric {
	if created.IsZero() {
		return prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	return prometheus.MustNewConstMetricWithCreatedTimestamp(d, prometheus.CounterValue, float64(v), created, labels...)
}

func (c *collector) collectStreams(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	infos := c.src.Streams()
	now := time.Now()
	c.gen++
	var in, out, drops uint64
	publishers := 0
	clear(c.perProto)
	for i := range infos {
		s := &infos[i]
		t := c.streams[s.Path]
		if t == nil || !t.created.Equal(s.Created) {
			if t != nil { // the path was unpublished and published again
				c.retire(t)
			}
			t = &tracked{created: s.Created}
			c.streams[s.Path] = t
		}
		t.gen = c.gen
		t.frames = max(t.frames, s.FramesIn)
		t.bytesIn = max(t.bytesIn, s.BytesIn)
		t.bytesOut = max(t.bytesOut, s.BytesOut)
		t.drops = max(t.drops, s.DroppedFrames)
		in += t.bytesIn
		out += t.bytesOut
		drops += t.drops
		if s.Publisher != nil {
			publishers++
		}

		path := validUTF8(s.Path)
		ch <- gauge(descStreamBitrate, float64(s.IngressBitrate)/8, path)
		ch <- counter(descStreamFrames, t.frames, t.created, path)
		ch <- counter(descStreamBytesIn, t.bytesIn, t.created, path)
		ch <- counter(descStreamBytesOut, t.bytesOut, t.created, path)
		ch <- counter(descStreamDropped, t.drops, t.created, path)
		ch <- gauge(descStreamUp, 1, path, validUTF8(s.State))
		ch <- gauge(descStreamUptime, now.Sub(s.Created).Seconds(), path)
		c.streamViewers(ch, path, s.Viewers)
	}
	for path, t := range c.streams {
		if t.gen != c.gen {
			c.retire(t)
			delete(c.streams, path)
		}
	}
	ch <- gauge(descStreams, float64(len(infos)))
	ch <- gauge(descPublishers, float64(publishers))
	for _, p := range c.viewerProtocols.values() {
		ch <- gauge(descViewers, float64(c.perProto[p]), p)
	}
	ch <- counter(descIngress, c.endedIn+in, c.started)
	ch <- counter(descEgress, c.endedOut+out, c.started)
	ch <- counter(descDropped, c.endedDrops+drops, c.started)
}

// streamViewers exports one stream's viewers by protocol and adds them to the node's.
func (c *collector) streamViewers(ch chan<- prometheus.Metric, path string, viewers map[string]int) {
	merged := false
	for p, n := range viewers {
		lp := c.viewerProtocols.value(p)
		if lp != p {
			merged = true
		}
		c.perProto[lp] += n
	}
	if !merged {
		for p, n := range viewers {
			ch <- gauge(descStreamViewers, float64(n), path, p)
		}
		return
	}
	// Some protocols were renamed "other"/"unknown": sum them so no series repeats.
	byLabel := make(map[string]int, len(viewers))
	for p, n := range viewers {
		byLabel[c.viewerProtocols.value(p)] += n
	}
	for p, n := range byLabel {
		ch <- gauge(descStreamViewers, float64(n), path, p)
	}
}

// streamEnded counts the final values of a stream that ended, so the node's
// totals include what it did since the last scrape.
func (c *collector) streamEnded(info hub.StreamInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.streams[info.Path]
	if t == nil || !t.created.Equal(info.Created) {
		// Never scraped (or already replaced by a newer stream of the path).
		c.retire(&tracked{bytesIn: info.BytesIn, bytesOut: info.BytesOut, drops: info.DroppedFrames})
		return
	}
	t.bytesIn = max(t.bytesIn, info.BytesIn)
	t.bytesOut = max(t.bytesOut, info.BytesOut)
	t.drops = max(t.drops, info.DroppedFrames)
	c.retire(t)
	delete(c.streams, info.Path)
}

// retire adds the last values of a stream that ended to the node's totals.
func (c *collector) retire(t *tracked) {
	c.endedIn += t.bytesIn
	c.endedOut += t.bytesOut
	c.endedDrops += t.drops
}

func (c *collector) collectLoad(ch chan<- prometheus.Metric) {
	l := c.opts.load()
	ch <- gauge(descNodeCPU, l.CPU)
	ch <- gauge(descNodeCores, float64(l.Cores))
	ch <- gauge(descNodeConnections, float64(l.Connections))
	ch <- gauge(descNodePublishers, float64(l.Publishers))
	ch <- gauge(descNodeViewers, float64(l.Viewers))
	ch <- gauge(descNodeIngressBps, float64(l.IngressBps)/8)
	ch <- gauge(descNodeEgressBps, float64(l.EgressBps)/8)
}

func (c *collector) collectRelays(ch chan<- prometheus.Metric) {
	relays := c.opts.relays()
	states := make(map[string]int)
	type sums struct{ bytes, frames uint64 }
	byPath := make(map[string]*sums, len(relays))
	for _, r := range relays {
		states[c.relayStates.value(r.State)]++
		path := validUTF8(r.Path)
		s := byPath[path]
		if s == nil {
			s = &sums{}
			byPath[path] = s
		}
		s.bytes += r.Bytes
		s.frames += r.Frames
	}
	for _, st := range c.relayStates.values() {
		ch <- gauge(descRelayUpstreams, float64(states[st]), st)
	}
	for path, s := range byPath {
		ch <- prometheus.MustNewConstMetric(descRelayBytes, prometheus.CounterValue, float64(s.bytes), path)
		ch <- prometheus.MustNewConstMetric(descRelayFrames, prometheus.CounterValue, float64(s.frames), path)
	}
}

func (c *collector) collectJobs(ch chan<- prometheus.Metric) {
	kinds := make(map[string]int)
	for _, l := range c.opts.jobs() {
		kinds[c.jobKinds.value(l.Kind)]++
	}
	for _, k := range c.jobKinds.values() {
		ch <- gauge(descJobs, float64(kinds[k]), k)
	}
}
