package exchange

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/cluster"
)

// errPartitioned is what a cut-off node gets from the registry.
var errPartitioned = errors.New("test: node cut off from the registry")

// partitionable is a node's view of a shared registry that can be cut off,
// to simulate a node that died: it neither renews nor releases anything.
type partitionable struct {
	cluster.Registry
	cut atomic.Bool
}

func (p *partitionable) Leases(ctx context.Context, kind string) ([]cluster.Lease, error) {
	if p.cut.Load() {
		return nil, errPartitioned
	}
	return p.Registry.Leases(ctx, kind)
}

func (p *partitionable) Nodes(ctx context.Context) ([]cluster.Node, error) {
	if p.cut.Load() {
		return nil, errPartitioned
	}
	return p.Registry.Nodes(ctx)
}

func (p *partitionable) Acquire(ctx context.Context, kind, path, owner string, ttl time.Duration) (cluster.Lease, error) {
	if p.cut.Load() {
		return cluster.Lease{}, errPartitioned
	}
	return p.Registry.Acquire(ctx, kind, path, owner, ttl)
}

func (p *partitionable) Renew(ctx context.Context, kind, path, owner string, ttl time.Duration) (cluster.Lease, error) {
	if p.cut.Load() {
		return cluster.Lease{}, errPartitioned
	}
	return p.Registry.Renew(ctx, kind, path, owner, ttl)
}

func (p *partitionable) Release(ctx context.Context, kind, path, owner string) error {
	if p.cut.Load() {
		return errPartitioned
	}
	return p.Registry.Release(ctx, kind, path, owner)
}

// jobLog counts what Jobs did on every node: starts, stops and pins.
type jobLog struct {
	mu      sync.Mutex
	running map[string]string // kind/path → node running it
	starts  map[string]int    // node kind/path → starts
	stops   map[string]int    // node kind/path → stops
	pins    map[string]int    // node path → pins held now
	errs    []string
}

func newJobLog() *jobLog {
	return &jobLog{running: map[string]string{}, starts: map[string]int{}, stops: map[string]int{}, pins: map[string]int{}}
}

func (l *jobLog) start(node string) func(kind, path string) func() {
	return func(kind, path string) func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		key := kind + "/" + path
		if other, ok := l.running[key]; ok {
			l.errs = append(l.errs, fmt.Sprintf("%s started %s while %s runs it", node, key, other))
		}
		l.running[key] = node
		l.starts[node+" "+key]++
		var once atomic.Bool
		return func() {
			if once.Swap(true) {
				l.mu.Lock()
				l.errs = append(l.errs, node+" stopped "+key+" twice")
				l.mu.Unlock()
				return
			}
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.running[key] == node {
				delete(l.running, key)
			}
			l.stops[node+" "+key]++
		}
	}
}

type pinner struct {
	l    *jobLog
	node string
}

func (p pinner) Pin(path string) func() {
	p.l.mu.Lock()
	p.l.pins[p.node+" "+path]++
	p.l.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.l.mu.Lock()
			p.l.pins[p.node+" "+path]--
			p.l.mu.Unlock()
		})
	}
}

func (l *jobLog) get(m map[string]int, key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return m[key]
}

func (l *jobLog) runner(key string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.running[key]
}

func (l *jobLog) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	assert.Empty(t, l.errs)
}

const testTTL = 600 * time.Millisecond

// node runs one exchange node's Jobs on its own view of reg, and its
// heartbeats (Leave when stopped) while it is not cut off. They come every
// TTL/6 rather than every TTL/3 like cluster.Heartbeater's: with the short
// test TTL, a heartbeat late by a sixth of it on a loaded machine would
// otherwise make a live node look dead (silent for ⅔ TTL).
type jobsNode struct {
	id     string
	reg    *partitionable
	jobs   *Jobs
	cancel context.CancelFunc
	done   chan error
	beats  chan struct{} // closed when the heartbeat loop ended
}

func startJobsNode(t *testing.T, reg cluster.Registry, id string, l *jobLog, wants []string, opts ...func(*JobsOptions)) *jobsNode {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n := &jobsNode{id: id, reg: &partitionable{Registry: reg}, cancel: cancel, done: make(chan error, 1), beats: make(chan struct{})}
	self := cluster.Node{ID: id, Roles: []string{cluster.RoleExchange}}
	require.NoError(t, reg.Heartbeat(ctx, self, testTTL))
	go func() {
		defer close(n.beats)
		tick := time.NewTicker(testTTL / 6)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				if !n.reg.cut.Load() {
					_ = reg.Leave(context.Background(), id)
				}
				return
			case <-tick.C:
				if !n.reg.cut.Load() {
					_ = reg.Heartbeat(ctx, self, testTTL)
				}
			}
		}
	}()
	o := JobsOptions{
		Registry: n.reg,
		NodeID:   id,
		TTL:      testTTL,
		Pinner:   pinner{l: l, node: id},
		Wants:    func(string) []string { return wants },
		Start:    l.start(id),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, f := range opts {
		f(&o)
	}
	n.jobs = NewJobs(o)
	go func() { n.done <- n.jobs.Run(ctx) }()
	t.Cleanup(n.stop)
	return n
}

func (n *jobsNode) stop() {
	n.cancel()
	<-n.done
	<-n.beats
	n.done <- nil // stop may be called again
}

// registered heartbeats ids as exchange nodes, so that the first of
// several nodes started does not see itself alone and claim every job.
func registered(t *testing.T, reg cluster.Registry, ids ...string) {
	t.Helper()
	for _, id := range ids {
		require.NoError(t, reg.Heartbeat(context.Background(), cluster.Node{ID: id, Roles: []string{cluster.RoleExchange}}, testTTL))
	}
}

func routeUp(t *testing.T, reg cluster.Registry, path string) {
	t.Helper()
	routeUpOn(t, reg, path, "publish-1")
}

func routeUpOn(t *testing.T, reg cluster.Registry, path, node string) {
	t.Helper()
	_, err := reg.Acquire(context.Background(), cluster.KindRoute, path, node, time.Hour)
	require.NoError(t, err)
}

func leaseOwner(reg cluster.Registry, kind, path string) string {
	l, err := reg.Lease(context.Background(), kind, path)
	if err != nil {
		return ""
	}
	return l.Owner
}

func TestJobsClaimOnceTakeoverRelease(t *testing.T) {
	reg := cluster.NewMemory()
	defer reg.Close()
	l := newJobLog()
	routeUp(t, reg, "live/a")
	a := startJobsNode(t, reg, "ex-a", l, []string{cluster.KindHLS, cluster.KindRecord})
	b := startJobsNode(t, reg, "ex-b", l, []string{cluster.KindHLS, cluster.KindRecord})
	nodes := map[string]*jobsNode{"ex-a": a, "ex-b": b}

	// Both jobs of the stream are claimed once, by one node (affinity).
	require.Eventually(t, func() bool {
		return l.runner("hls/live/a") != "" && l.runner("record/live/a") != ""
	}, 3*time.Second, 10*time.Millisecond)
	owner := l.runner("hls/live/a")
	assert.Equal(t, owner, l.runner("record/live/a"), "one node runs both jobs of a stream")
	time.Sleep(3 * testTTL) // several renewals: nothing moves
	other := "ex-b"
	if owner == "ex-b" {
		other = "ex-a"
	}
	for _, key := range []string{"hls/live/a", "record/live/a"} {
		assert.Equal(t, 1, l.get(l.starts, owner+" "+key), key)
		assert.Equal(t, 0, l.get(l.starts, other+" "+key), key)
	}
	assert.Equal(t, 1, l.get(l.pins, owner+" live/a"), "one pin for the path's two jobs")
	assert.Equal(t, owner, leaseOwner(reg, cluster.KindHLS, "live/a"))
	assert.Len(t, nodes[owner].jobs.Held(), 2)
	assert.Empty(t, nodes[other].jobs.Held())

	// The owner dies: cut off from the registry, then stopped; it neither
	// heartbeats, renews nor releases. The other node takes over once the
	// owner has been silent for ⅔ of the TTL.
	killed := time.Now()
	nodes[owner].reg.cut.Store(true)
	nodes[owner].stop()
	assert.Equal(t, 1, l.get(l.stops, owner+" hls/live/a"))
	assert.Equal(t, 0, l.get(l.pins, owner+" live/a"))
	require.Eventually(t, func() bool {
		return l.runner("hls/live/a") == other && l.runner("record/live/a") == other
	}, 3*time.Second, 10*time.Millisecond)
	took := time.Since(killed)
	// The last heartbeat came at most TTL/3 (and a little scheduling
	// delay) before the kill.
	assert.GreaterOrEqual(t, took, testTTL/3-50*time.Millisecond, "not before the owner was silent for ⅔ TTL")
	assert.Less(t, took, testTTL+time.Second, "within TTL + a few polls")
	assert.Equal(t, other, leaseOwner(reg, cluster.KindRecord, "live/a"))

	// The stream ends: the jobs stop and their leases go at once.
	require.NoError(t, reg.Release(context.Background(), cluster.KindRoute, "live/a", "publish-1"))
	require.Eventually(t, func() bool {
		return l.runner("hls/live/a") == "" && l.runner("record/live/a") == "" &&
			leaseOwner(reg, cluster.KindHLS, "live/a") == "" && leaseOwner(reg, cluster.KindRecord, "live/a") == ""
	}, testTTL/2, 10*time.Millisecond, "released before the TTL")
	assert.Equal(t, 1, l.get(l.starts, other+" hls/live/a"))
	assert.Equal(t, 1, l.get(l.stops, other+" hls/live/a"))
	assert.Equal(t, 1, l.get(l.stops, other+" record/live/a"))
	require.Eventually(t, func() bool { return l.get(l.pins, other+" live/a") == 0 }, time.Second, 10*time.Millisecond)
	assert.Empty(t, nodes[other].jobs.Held())
	l.check(t)
}

func TestJobsSpreadAndShutdownRelease(t *testing.T) {
	reg := cluster.NewMemory()
	defer reg.Close()
	l := newJobLog()
	paths := []string{"live/1", "live/2", "live/3", "live/4"}
	for _, p := range paths {
		routeUp(t, reg, p)
	}
	registered(t, reg, "ex-a", "ex-b")
	a := startJobsNode(t, reg, "ex-a", l, []string{cluster.KindHLS})
	b := startJobsNode(t, reg, "ex-b", l, []string{cluster.KindHLS})
	require.Eventually(t, func() bool {
		for _, p := range paths {
			if l.runner("hls/"+p) == "" {
				return false
			}
		}
		return true
	}, 3*time.Second, 10*time.Millisecond)
	time.Sleep(2 * testTTL)
	assert.Len(t, a.jobs.Held(), 2, "fair share of 4 jobs on 2 nodes")
	assert.Len(t, b.jobs.Held(), 2, "fair share of 4 jobs on 2 nodes")

	// A graceful stop releases the leases at once and leaves the registry,
	// so b counts itself as the only exchange node and takes a's jobs
	// within a TTL.
	stopped := time.Now()
	a.stop()
	for _, p := range paths {
		if o := leaseOwner(reg, cluster.KindHLS, p); o != "ex-b" {
			assert.Empty(t, o, "released by a")
		}
	}
	require.Eventually(t, func() bool { return len(b.jobs.Held()) == 4 }, 3*time.Second, 10*time.Millisecond)
	assert.Less(t, time.Since(stopped), testTTL)
	for _, p := range paths {
		assert.Equal(t, "ex-b", leaseOwner(reg, cluster.KindHLS, p))
	}
	l.check(t)
}

func TestJobsOptions(t *testing.T) {
	j := NewJobs(JobsOptions{TTL: 10 * time.Second})
	assert.Equal(t, time.Second, j.opts.Poll)
	j = NewJobs(JobsOptions{TTL: 2 * time.Second})
	assert.Equal(t, 400*time.Millisecond, j.opts.Poll)
	err := j.Run(context.Background())
	assert.ErrorIs(t, err, ErrJobsConfig)
}

// A route that vanishes for less than RouteGrace (the publisher
// reconnecting) keeps the job; one gone for longer stops it. A node that
// publishes the stream itself does not pin it over the relay.
func TestJobsRouteGraceAndLocalPublisher(t *testing.T) {
	reg := cluster.NewMemory()
	defer reg.Close()
	l := newJobLog()
	routeUpOn(t, reg, "live/a", "ex-a") // ex-a publishes live/a itself
	a := startJobsNode(t, reg, "ex-a", l, []string{cluster.KindRecord}, func(o *JobsOptions) { o.RouteGrace = time.Second })
	require.Eventually(t, func() bool { return l.runner("record/live/a") == "ex-a" }, 2*time.Second, 10*time.Millisecond)
	assert.Equal(t, 0, l.get(l.pins, "ex-a live/a"), "the stream is local: no relay pin")

	// The publisher reconnects on another publish node within the grace.
	require.NoError(t, reg.Release(context.Background(), cluster.KindRoute, "live/a", "ex-a"))
	time.Sleep(400 * time.Millisecond)
	routeUpOn(t, reg, "live/a", "publish-2")
	require.Eventually(t, func() bool { return l.get(l.pins, "ex-a live/a") == 1 }, time.Second, 10*time.Millisecond, "pinned once the stream moved away")
	time.Sleep(time.Second)
	assert.Equal(t, 1, l.get(l.starts, "ex-a record/live/a"))
	assert.Equal(t, 0, l.get(l.stops, "ex-a record/live/a"), "kept through the gap")
	assert.Len(t, a.jobs.Held(), 1)

	// Gone for longer than the grace: stopped, unpinned and released.
	gone := time.Now()
	require.NoError(t, reg.Release(context.Background(), cluster.KindRoute, "live/a", "publish-2"))
	require.Eventually(t, func() bool {
		return l.get(l.stops, "ex-a record/live/a") == 1 && leaseOwner(reg, cluster.KindRecord, "live/a") == ""
	}, 3*time.Second, 10*time.Millisecond)
	assert.GreaterOrEqual(t, time.Since(gone), time.Second)
	require.Eventually(t, func() bool { return l.get(l.pins, "ex-a live/a") == 0 }, time.Second, 10*time.Millisecond)
	assert.Empty(t, a.jobs.Held())
	l.check(t)
}

// logSink is a log destination safe for concurrent writes.
type logSink struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// owners lists kind/path owner of leases.
func owners(ls []cluster.Lease) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Kind + "/" + l.Path + " " + l.Owner
	}
	return out
}

// The jobs of an owner presumed dead (silent for ⅔ of the TTL) are taken
// over at once, although its leases would last for an hour, and the
// survivor's fair share grows to all the jobs.
func TestJobsTakeOverFromDeadOwner(t *testing.T) {
	reg := cluster.NewMemory()
	defer reg.Close()
	l := newJobLog()
	var logs logSink
	withLogs := func(o *JobsOptions) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) }
	paths := []string{"live/1", "live/2"}
	for _, p := range paths {
		routeUp(t, reg, p)
	}
	kinds := []string{cluster.KindHLS, cluster.KindRecord}
	registered(t, reg, "ex-a", "ex-b")
	a := startJobsNode(t, reg, "ex-a", l, kinds, withLogs)
	b := startJobsNode(t, reg, "ex-b", l, kinds, withLogs)
	nodes := map[string]*jobsNode{"ex-a": a, "ex-b": b}
	all := func(node string) bool {
		for _, p := range paths {
			for _, k := range kinds {
				if l.runner(k+"/"+p) != node {
					return false
				}
			}
		}
		return true
	}
	require.Eventually(t, func() bool { return len(a.jobs.Held())+len(b.jobs.Held()) == 4 },
		3*time.Second, 10*time.Millisecond, "every job claimed")
	// Both live: nothing moves over several TTLs (two each, unless one
	// node was slow to start and the other took the jobs left free).
	heldA, heldB := a.jobs.Held(), b.jobs.Held()
	time.Sleep(2 * testTTL)
	require.Equal(t, owners(heldA), owners(a.jobs.Held()))
	require.Equal(t, owners(heldB), owners(b.jobs.Held()))
	assert.NotContains(t, logs.String(), "taken over")

	victim, survivor := "ex-a", "ex-b"
	if len(heldB) > len(heldA) {
		victim, survivor = survivor, victim
	}
	lost := nodes[victim].jobs.Held()
	killed := time.Now()
	nodes[victim].reg.cut.Store(true)
	nodes[victim].stop()
	// Its leases outlive it by far: only the dead-node detection can move
	// the jobs before the end of the test.
	for _, ls := range lost {
		_, err := reg.Renew(context.Background(), ls.Kind, ls.Path, victim, time.Hour)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return all(survivor) }, 3*testTTL, 10*time.Millisecond)
	took := time.Since(killed)
	assert.GreaterOrEqual(t, took, testTTL/3-50*time.Millisecond, "not before the victim was silent for ⅔ TTL")
	assert.Less(t, took, testTTL+time.Second, "⅔ TTL after the last heartbeat, plus a few polls")
	t.Logf("jobs taken over %s after the owner died (TTL %s)", took.Round(time.Millisecond), testTTL)
	for _, ls := range lost {
		got, err := reg.Lease(context.Background(), ls.Kind, ls.Path)
		require.NoError(t, err)
		assert.Equal(t, survivor, got.Owner)
		assert.True(t, got.Since.After(killed), "a new lease")
		assert.Less(t, time.Until(got.Expires), testTTL+time.Millisecond, "with the survivor's TTL")
		assert.Contains(t, logs.String(), "job taken over from dead node "+victim)
	}
	assert.Len(t, nodes[survivor].jobs.Held(), 4)
	assert.Equal(t, 1, l.get(l.pins, survivor+" live/1"))
	assert.Equal(t, 1, l.get(l.pins, survivor+" live/2"))
	l.check(t)
}
