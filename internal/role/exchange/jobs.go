package exchange

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/quasipaa/quasipaa/internal/cluster"
)

// Pinner keeps a stream in the local hub: on a node that does not publish
// path, Pin opens an upstream over the relay and keeps it open (retrying in
// the background) until release is called. relay.Upstreams implements it.
type Pinner interface {
	// Pin keeps path in the local hub until release is called.
	Pin(path string) (release func())
}

// JobsOptions configure Jobs. Registry, NodeID, Wants and Start are required.
type JobsOptions struct {
	// Registry holds the route and job leases.
	Registry cluster.Registry
	// NodeID is this node's ID, the owner of the leases it claims.
	NodeID string
	// TTL is the lifetime of a job lease and of a heartbeat (cluster.ttl,
	// default 10 s): a dead owner's jobs are taken over once it has been
	// silent for ⅔ of it (cluster.Dead), and at most this long after.
	TTL time.Duration
	// Pinner brings a stream whose job this node runs into the local hub
	// (nil: streams are local, the single-node case). It is not asked for
	// a stream this node publishes itself (its route lease is ours).
	Pinner Pinner
	// Wants returns the job kinds (cluster.KindHLS, cluster.KindRecord, or
	// any other lease kind) that the live stream path needs; nil or empty:
	// none. It is called for every live stream at every poll: keep it cheap.
	Wants func(path string) (kinds []string)
	// Start runs job kind of path on this node and returns how to stop it.
	// It must not block; stop may block (a recording files its last
	// segment) and is called once, from a goroutine of Jobs.
	Start func(kind, path string) (stop func())
	// Logger receives the logs (default slog.Default()).
	Logger *slog.Logger
	// Poll is how often the routes and leases are listed (default TTL/5,
	// at most 1 s). Held leases are renewed every TTL/3 by the same loop.
	Poll time.Duration
	// RouteGrace is how long a stream's route may be missing before its
	// jobs stop: the hub's publisher grace, during which a publisher may
	// reconnect (default 0: stop at the first poll without the route).
	RouteGrace time.Duration
}

// Errors reported by NewJobs' Run.
var (
	// ErrJobsConfig means JobsOptions lacks a required field.
	ErrJobsConfig = errors.New("exchange jobs: bad options")
)

// Jobs claims the per-stream jobs of the cluster's live streams under
// leases, runs the ones it holds and hands them over when it dies: a job
// whose owner is presumed dead (cluster.Dead: no heartbeat for ⅔ of the
// TTL) is taken over by another exchange node (Registry.Takeover) without
// waiting for its lease to expire, and one whose owner stops renewing is
// claimed once the lease expires.
//
// Spreading: a node claims a free job only while it holds fewer jobs than
// its fair share, ceil(jobs wanted in the cluster / live exchange nodes),
// counted from the registry at each poll. A job of a stream for which it
// already runs another job is always claimed, and one whose stream's other
// job runs on another live node is left to that node (one relay upstream
// serves both). A job of a dead owner counts as free. A job still free after a TTL is claimed by any node, whatever
// its share (a node over its share is better than no node). Races for one
// lease are settled by Acquire.
type Jobs struct {
	opts JobsOptions
	log  *slog.Logger

	mu   sync.Mutex
	held map[jobKey]*job

	// pins has an entry for each path of a job held (claim adds it with the
	// job, drop removes it with the path's last job): the relay pin the
	// path's jobs share. Run's goroutine only.
	pins map[string]*pin
	// freeSince is when a job another node should claim was first seen
	// free; Run's goroutine only.
	freeSince map[jobKey]time.Time

	stops sync.WaitGroup // stop goroutines
}

type jobKey struct{ kind, path string }

// job is one claimed job.
type job struct {
	lease     cluster.Lease
	stop      func()
	renewed   time.Time // last successful renewal (or claim)
	missing   time.Time // first poll the route was missing; zero while it is there
	renewDue  time.Time
	startedAt time.Time
}

// pin counts the jobs of one path that need its upstream.
type pin struct {
	release func()
	n       int
}

// NewJobs returns the job runner; Run runs it.
func NewJobs(opts JobsOptions) *Jobs {
	if opts.TTL <= 0 {
		opts.TTL = 10 * time.Second
	}
	if opts.Poll <= 0 {
		opts.Poll = min(opts.TTL/5, time.Second)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Jobs{
		opts: opts,
		log:  opts.Logger.With("component", "exchange-jobs", "node", opts.NodeID),
		held: map[jobKey]*job{},
		pins: map[string]*pin{},

		freeSince: map[jobKey]time.Time{},
	}
}

// Held returns the leases of the jobs this node runs, sorted by kind then path.
func (j *Jobs) Held() []cluster.Lease {
	j.mu.Lock()
	out := make([]cluster.Lease, 0, len(j.held))
	for _, jb := range j.held {
		out = append(out, jb.lease)
	}
	j.mu.Unlock()
	sort.Slice(out, func(a, b int) bool {
		if out[a].Kind != out[b].Kind {
			return out[a].Kind < out[b].Kind
		}
		return out[a].Path < out[b].Path
	})
	return out
}

// Run claims, runs and renews jobs until ctx is done, then stops every job
// it runs, releases their leases (so that another node takes them over at
// once) and returns when the jobs have stopped.
func (j *Jobs) Run(ctx context.Context) error {
	o := j.opts
	if o.Registry == nil || o.NodeID == "" || o.Wants == nil || o.Start == nil {
		return fmt.Errorf("%w: Registry, NodeID, Wants and Start are required", ErrJobsConfig)
	}
	t := time.NewTicker(o.Poll)
	defer t.Stop()
	defer func() {
		j.stopAll()
		j.stops.Wait()
	}()
	for {
		j.poll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// callTimeout bounds one registry call.
func (j *Jobs) callTimeout() time.Duration { return max(j.opts.TTL/3, 100*time.Millisecond) }

// poll is one round: renew, drop what ended, claim what is free.
func (j *Jobs) poll(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	now := time.Now()
	j.renew(ctx, now)

	cctx, cancel := context.WithTimeout(ctx, j.callTimeout())
	defer cancel()
	routes, err := j.opts.Registry.Leases(cctx, cluster.KindRoute)
	if err != nil {
		j.log.Warn("cannot list routes", "err", err)
		return
	}
	publisher := make(map[string]string, len(routes)) // live path → its publish node
	for _, r := range routes {
		publisher[r.Path] = r.Owner
	}
	j.repin(publisher)
	wanted := map[jobKey]bool{}
	kinds := map[string]bool{}
	for _, r := range routes {
		for _, k := range j.opts.Wants(r.Path) {
			wanted[jobKey{k, r.Path}] = true
			kinds[k] = true
		}
	}
	j.dropEnded(publisher, wanted, now)

	// The live exchange nodes share the jobs. A node silent for two thirds
	// of the TTL is presumed dead (its heartbeat key outlives it by up to
	// a TTL) and its jobs are free, unless this node's own view of the
	// registry is stale (it is not listed, or is silent itself).
	exchanges := 1
	dead := func(string) bool { return false }
	if nodes, err := j.opts.Registry.Nodes(cctx); err == nil {
		n := 0
		for i := range nodes {
			alive := nodes[i].ID == j.opts.NodeID || !cluster.Dead(nodes, nodes[i].ID, j.opts.TTL)
			if nodes[i].HasRole(cluster.RoleExchange) && !nodes[i].Draining && alive {
				n++
			}
		}
		exchanges = max(n, 1)
		dead = func(id string) bool { return cluster.DeadTo(nodes, j.opts.NodeID, id, j.opts.TTL) }
	}

	owners := map[jobKey]string{}
	for kind := range kinds {
		leases, err := j.opts.Registry.Leases(cctx, kind)
		if err != nil {
			j.log.Warn("cannot list jobs", "kind", kind, "err", err)
			return
		}
		for _, l := range leases {
			owners[jobKey{l.Kind, l.Path}] = l.Owner
		}
	}
	fair := (len(wanted) + exchanges - 1) / exchanges

	// Claim in a stable order: by path, then kind.
	free := make([]jobKey, 0, len(wanted))
	for k := range wanted {
		if owner := owners[k]; owner == "" || (owner == j.opts.NodeID && !j.holds(k)) || dead(owner) {
			free = append(free, k)
		}
	}
	sort.Slice(free, func(a, b int) bool {
		if free[a].path != free[b].path {
			return free[a].path < free[b].path
		}
		return free[a].kind < free[b].kind
	})
	pathOwner := map[string]string{} // another live node running a job of the path
	for k, owner := range owners {
		if owner != j.opts.NodeID && wanted[k] && !dead(owner) {
			pathOwner[k.path] = owner
		}
	}
	seen := make(map[jobKey]bool, len(free))
	for _, k := range free {
		if ctx.Err() != nil {
			return
		}
		seen[k] = true
		since, ok := j.freeSince[k]
		if !ok {
			since = now
			j.freeSince[k] = now
		}
		// A job free for a TTL is claimed by whoever sees it: the node
		// that should have taken it did not.
		stale := now.Sub(since) >= j.opts.TTL
		mine := j.pins[k.path] != nil || owners[k] == j.opts.NodeID // pins: the paths of the jobs held
		if !mine && !stale && pathOwner[k.path] != "" {
			continue // the node running the stream's other job claims it (one upstream for both)
		}
		if !mine && !stale && j.count() >= fair {
			continue
		}
		from := ""
		if dead(owners[k]) {
			from = owners[k]
		}
		j.claim(ctx, k, publisher[k.path], from)
	}
	for k := range j.freeSince {
		if !seen[k] {
			delete(j.freeSince, k)
		}
	}
}

func (j *Jobs) holds(k jobKey) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.held[k] != nil
}

func (j *Jobs) count() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.held)
}

// claim acquires k, or takes it over from the dead node from when from is
// not empty, and starts the job; routeOwner is the node publishing the stream.
func (j *Jobs) claim(ctx context.Context, k jobKey, routeOwner, from string) {
	ctx, cancel := context.WithTimeout(ctx, j.callTimeout())
	defer cancel()
	var (
		l   cluster.Lease
		err error
	)
	if from != "" {
		l, err = j.opts.Registry.Takeover(ctx, k.kind, k.path, from, j.opts.NodeID, j.opts.TTL)
	} else {
		l, err = j.opts.Registry.Acquire(ctx, k.kind, k.path, j.opts.NodeID, j.opts.TTL)
	}
	if err != nil {
		if !errors.Is(err, cluster.ErrLeaseHeld) {
			j.log.Warn("cannot claim job", "kind", k.kind, "stream", k.path, "err", err)
		}
		return
	}
	now := time.Now()
	j.pinPath(k.path, routeOwner)
	stop := j.opts.Start(k.kind, k.path)
	jb := &job{lease: l, stop: stop, renewed: now, renewDue: now.Add(j.opts.TTL / 3), startedAt: now}
	j.mu.Lock()
	j.held[k] = jb
	j.mu.Unlock()
	if from != "" {
		j.log.Info("job taken over from dead node "+from, "kind", k.kind, "stream", k.path, "from", from)
		return
	}
	j.log.Info("job claimed", "kind", k.kind, "stream", k.path)
}

// pinPath notes one more job of path, pinning its upstream unless this
// node publishes the stream (routeOwner): it is in the local hub already.
func (j *Jobs) pinPath(path, routeOwner string) {
	p := j.pins[path]
	if p == nil {
		p = &pin{}
		if j.opts.Pinner != nil && routeOwner != j.opts.NodeID {
			p.release = j.opts.Pinner.Pin(path)
		}
		j.pins[path] = p
	}
	p.n++
}

// repin pins the upstream of the paths this node published when their
// jobs started and that moved to another publish node since.
func (j *Jobs) repin(publisher map[string]string) {
	if j.opts.Pinner == nil {
		return
	}
	for path, p := range j.pins {
		if owner, ok := publisher[path]; ok && p.release == nil && owner != j.opts.NodeID {
			p.release = j.opts.Pinner.Pin(path)
		}
	}
}

// unpinPath drops one job's need of path's upstream; the last one releases it.
func (j *Jobs) unpinPath(path string) (release func()) {
	p := j.pins[path]
	if p == nil {
		return nil
	}
	p.n--
	if p.n > 0 {
		return nil
	}
	delete(j.pins, path)
	return p.release
}

// renew extends the leases due for renewal and drops the ones lost.
func (j *Jobs) renew(ctx context.Context, now time.Time) {
	j.mu.Lock()
	due := make(map[jobKey]*job)
	for k, jb := range j.held {
		if !now.Before(jb.renewDue) {
			due[k] = jb
		}
	}
	j.mu.Unlock()
	for k, jb := range due {
		cctx, cancel := context.WithTimeout(ctx, j.callTimeout())
		l, err := j.opts.Registry.Renew(cctx, k.kind, k.path, j.opts.NodeID, j.opts.TTL)
		cancel()
		switch {
		case err == nil:
			j.mu.Lock()
			jb.lease, jb.renewed, jb.renewDue = l, now, now.Add(j.opts.TTL/3)
			j.mu.Unlock()
		case errors.Is(err, cluster.ErrLeaseLost):
			j.log.Warn("job lease lost", "kind", k.kind, "stream", k.path)
			j.drop(k, false, "lease lost")
		case ctx.Err() != nil:
			return
		default:
			// The registry is unreachable: keep running while the lease may
			// still be ours, and stop once it must have expired, since
			// another node may run the job by then.
			if now.Sub(jb.renewed) >= j.opts.TTL {
				j.log.Warn("job stopped: lease not renewed within its TTL", "kind", k.kind, "stream", k.path, "err", err)
				j.drop(k, false, "lease expired")
			} else {
				j.log.Warn("cannot renew job lease", "kind", k.kind, "stream", k.path, "err", err)
				j.mu.Lock()
				jb.renewDue = now.Add(j.opts.Poll)
				j.mu.Unlock()
			}
		}
	}
}

// dropEnded stops the jobs whose stream has no route (in publisher) for
// longer than RouteGrace, or that the stream no longer wants.
func (j *Jobs) dropEnded(publisher map[string]string, wanted map[jobKey]bool, now time.Time) {
	j.mu.Lock()
	var ended []jobKey
	var reasons []string
	for k, jb := range j.held {
		_, live := publisher[k.path]
		switch {
		case live && !wanted[k]:
			ended, reasons = append(ended, k), append(reasons, "no longer wanted")
		case live:
			jb.missing = time.Time{}
		case jb.missing.IsZero():
			jb.missing = now
			if j.opts.RouteGrace <= 0 {
				ended, reasons = append(ended, k), append(reasons, "stream ended")
			}
		case now.Sub(jb.missing) >= j.opts.RouteGrace:
			ended, reasons = append(ended, k), append(reasons, "stream ended")
		}
	}
	j.mu.Unlock()
	for i, k := range ended {
		j.drop(k, true, reasons[i])
	}
}

// drop stops job k in the background; release also releases its lease
// once the job stopped.
func (j *Jobs) drop(k jobKey, release bool, reason string) {
	j.mu.Lock()
	jb := j.held[k]
	delete(j.held, k)
	j.mu.Unlock()
	if jb == nil {
		return
	}
	unpin := j.unpinPath(k.path)
	j.log.Info("job stopping", "kind", k.kind, "stream", k.path, "reason", reason, "ran", time.Since(jb.startedAt).Round(time.Millisecond))
	j.stops.Add(1)
	go func() {
		defer j.stops.Done()
		if jb.stop != nil {
			jb.stop()
		}
		if unpin != nil {
			unpin()
		}
		if release {
			// Bounded and detached: Run's context may be done already.
			ctx, cancel := context.WithTimeout(context.Background(), j.callTimeout())
			defer cancel()
			if err := j.opts.Registry.Release(ctx, k.kind, k.path, j.opts.NodeID); err != nil {
				j.log.Warn("cannot release job lease", "kind", k.kind, "stream", k.path, "err", err)
			}
		}
	}()
}

// stopAll stops every job and releases its lease (Run ending).
func (j *Jobs) stopAll() {
	j.mu.Lock()
	keys := make([]jobKey, 0, len(j.held))
	for k := range j.held {
		keys = append(keys, k)
	}
	j.mu.Unlock()
	for _, k := range keys {
		j.drop(k, true, "shutting down")
	}
}
