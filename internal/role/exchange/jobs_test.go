package exchange

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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

// node runs one exchange node's Jobs on its own view of reg.
type jobsNode struct {
	id     string
	reg    *partitionable
	jobs   *Jobs
	cancel context.CancelFunc
	done   chan error
}

func startJobsNode(t *testing.T, reg cluster.Registry, id string, l *jobLog, wants []string, opts ...func(*JobsOptions)) *jobsNode {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n := &jobsNode{id: id, reg: &partitionable{Registry: reg}, cancel: cancel, done: make(chan error, 1)}
	require.NoError(t, reg.Heartbeat(ctx, cluster.Node{ID: id, Roles: []string{cluster.RoleExchange}}, time.Minute))
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
	n.done <- nil // stop may be called again
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
	// renews nor releases. The other node takes over once the leases expire.
	killed := time.Now()
	nodes[owner].reg.cut.Store(true)
	nodes[owner].stop()
	assert.Equal(t, 1, l.get(l.stops, owner+" hls/live/a"))
	assert.Equal(t, 0, l.get(l.pins, owner+" live/a"))
	require.Eventually(t, func() bool {
		return l.runner("hls/live/a") == other && l.runner("record/live/a") == other
	}, 3*time.Second, 10*time.Millisecond)
	took := time.Since(killed)
	// The last renewal came at most TTL/3 + a poll before the kill.
	assert.GreaterOrEqual(t, took, testTTL/3, "not before the lease expired")
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

	// A graceful stop releases the leases at once; a's heartbeat (sent once,
	// at its start) is older than two thirds of the TTL, so b counts itself
	// as the only exchange node and takes a's jobs within a TTL.
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
