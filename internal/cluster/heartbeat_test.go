package cluster_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/cluster/redistest"
)

// startHeartbeater runs h; the returned stop cancels it and returns Run's
// result.
func startHeartbeater(t *testing.T, h *cluster.Heartbeater) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Error("Heartbeater.Run did not return after its context ended")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func TestHeartbeater(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, reg cluster.Registry, _ *redistest.Server) {
		ctx := context.Background()
		const ttl = 300 * time.Millisecond
		var beats atomic.Int64
		self := func() cluster.Node {
			return cluster.Node{ID: "n1", Roles: []string{cluster.RolePull}, Load: cluster.Load{Viewers: int(beats.Add(1))}}
		}
		stop := startHeartbeater(t, cluster.NewHeartbeater(reg, self, ttl, nil))
		waitFor(t, ttl/2, "first heartbeat", func() bool {
			nodes, err := reg.Nodes(ctx)
			return err == nil && len(nodes) == 1
		})
		// Alive well past one TTL, with fresh load figures.
		time.Sleep(3 * ttl)
		nodes, err := reg.Nodes(ctx)
		if err != nil || len(nodes) != 1 {
			t.Fatalf("Nodes after 3 TTLs: %+v, %v", nodes, err)
		}
		if v := nodes[0].Load.Viewers; v < 5 {
			t.Errorf("%d heartbeats in 3 TTLs, want about 9", v)
		}
		if since := time.Since(nodes[0].Seen); since > ttl/2 {
			t.Errorf("last seen %s ago, heartbeat every %s", since, ttl/3)
		}
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		// Leave on the way out: gone at once, not after the TTL.
		nodes, err = reg.Nodes(ctx)
		if err != nil || len(nodes) != 0 {
			t.Fatalf("Nodes after Run returned: %+v, %v", nodes, err)
		}
	})
}

func TestHeartbeaterBadConfig(t *testing.T) {
	t.Parallel()
	m := cluster.NewMemory()
	self := func() cluster.Node { return cluster.Node{ID: "n"} }
	if err := cluster.NewHeartbeater(m, self, 0, nil).Run(context.Background()); err == nil {
		t.Error("Run with ttl 0: no error")
	}
	if err := cluster.NewHeartbeater(m, nil, time.Second, nil).Run(context.Background()); err == nil {
		t.Error("Run without self: no error")
	}
}

// TestHeartbeaterFailureLog: a failing registry is logged once, not once
// per heartbeat, and its recovery once.
func TestHeartbeaterFailureLog(t *testing.T) {
	t.Parallel()
	f := &flaky{Registry: cluster.NewMemory()}
	f.down.Store(true)
	rec := &logRecorder{}
	self := func() cluster.Node { return cluster.Node{ID: "n1"} }
	const ttl = 60 * time.Millisecond // a heartbeat every 20 ms
	stop := startHeartbeater(t, cluster.NewHeartbeater(f, self, ttl, slogOf(rec)))
	time.Sleep(500 * time.Millisecond) // about 25 failures
	if n := rec.count("registry heartbeat failing"); n != 1 {
		t.Errorf("failure logged %d times in 500 ms, want 1", n)
	}
	if n := rec.count("still failing"); n != 0 {
		t.Errorf("repeated failure logged %d times within 10 s", n)
	}
	f.down.Store(false)
	waitFor(t, time.Second, "recovery logged", func() bool { return rec.count("registry heartbeat recovered") == 1 })
	nodes, err := f.Nodes(context.Background())
	if err != nil || len(nodes) != 1 {
		t.Fatalf("Nodes after recovery: %+v, %v", nodes, err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := rec.count("recovered"); n != 1 {
		t.Errorf("recovery logged %d times, want 1", n)
	}
}

// TestHeartbeaterRedisRestart: after Redis restarts empty, the node is
// listed again within one heartbeat interval (plus go-redis's reconnect).
func TestHeartbeaterRedisRestart(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	reg := newRedis(t, srv)
	const ttl = 1500 * time.Millisecond
	self := func() cluster.Node { return cluster.Node{ID: "n1"} }
	startHeartbeater(t, cluster.NewHeartbeater(reg, self, ttl, nil))
	ctx := context.Background()
	listed := func() bool {
		nodes, err := reg.Nodes(ctx)
		return err == nil && len(nodes) == 1
	}
	waitFor(t, time.Second, "first heartbeat", listed)
	srv.Restart()
	restarted := time.Now()
	waitFor(t, ttl, "node re-registered after the Redis restart", listed)
	t.Logf("node listed again %s after the restart (heartbeat every %s)", time.Since(restarted).Round(time.Millisecond), ttl/3)
}
