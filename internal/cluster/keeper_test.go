package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/cluster/redistest"
)

const keeperTTL = 300 * time.Millisecond

// runKeeper runs k until the test ends and checks Run returned.
func runKeeper(t *testing.T, k *cluster.LeaseKeeper) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context ended")
		}
		_ = k.Close()
	})
}

func TestLeaseKeeperHoldRenewDrop(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, reg cluster.Registry, _ *redistest.Server) {
		ctx := context.Background()
		k := cluster.NewLeaseKeeper(reg, "n1", keeperTTL, nil)
		if err := k.Hold(ctx, cluster.KindRoute, "live/a"); err != nil {
			t.Fatal(err)
		}
		if err := k.Hold(ctx, cluster.KindRecord, "live/a"); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Acquire(ctx, cluster.KindRoute, "live/b", "n2", time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := k.Hold(ctx, cluster.KindRoute, "live/b"); !errors.Is(err, cluster.ErrLeaseHeld) {
			t.Fatalf("Hold of another's lease: %v, want ErrLeaseHeld", err)
		}
		if got := k.Held(); len(got) != 2 || got[0].Kind != cluster.KindRecord || got[1].Path != "live/a" {
			t.Fatalf("Held = %+v", got)
		}
		runKeeper(t, k)
		// Kept well past its TTL.
		time.Sleep(4 * keeperTTL)
		for _, kind := range []string{cluster.KindRoute, cluster.KindRecord} {
			l, err := reg.Lease(ctx, kind, "live/a")
			if err != nil || l.Owner != "n1" {
				t.Fatalf("%s lease after 4 TTLs: %+v, %v", kind, l, err)
			}
		}
		if err := k.Drop(cluster.KindRoute, "live/a"); err != nil {
			t.Fatal(err)
		}
		if err := k.Drop(cluster.KindRoute, "live/none"); err != nil {
			t.Fatalf("Drop of a lease not held: %v", err)
		}
		// Dropped, it stays released: renewals do not re-create it.
		time.Sleep(keeperTTL)
		if _, err := reg.Lease(ctx, cluster.KindRoute, "live/a"); !errors.Is(err, cluster.ErrNotFound) {
			t.Fatalf("dropped lease: %v, want ErrNotFound", err)
		}
		if got := k.Held(); len(got) != 1 || got[0].Kind != cluster.KindRecord {
			t.Fatalf("Held after Drop = %+v", got)
		}
		select {
		case l := <-k.Lost():
			t.Fatalf("lost %+v without a competitor", l)
		default:
		}
	})
}

func TestLeaseKeeperLost(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, reg cluster.Registry, _ *redistest.Server) {
		ctx := context.Background()
		var mu sync.Mutex
		var called []cluster.Lease
		k := cluster.NewLeaseKeeper(reg, "n1", keeperTTL, nil, cluster.WithOnLost(func(l cluster.Lease) {
			mu.Lock()
			defer mu.Unlock()
			called = append(called, l)
		}))
		if err := k.Hold(ctx, cluster.KindHLS, "live/x"); err != nil {
			t.Fatal(err)
		}
		if err := k.Hold(ctx, cluster.KindHLS, "live/y"); err != nil {
			t.Fatal(err)
		}
		runKeeper(t, k)
		// Another node takes live/x (as after a network partition longer
		// than the TTL).
		// The keeper's renewal may re-create it between the two calls: retry.
		var err error
		for range 20 {
			if err = reg.Release(ctx, cluster.KindHLS, "live/x", "n1"); err != nil {
				t.Fatal(err)
			}
			if _, err = reg.Acquire(ctx, cluster.KindHLS, "live/x", "n2", time.Minute); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("n2 could not take live/x: %v", err)
		}
		select {
		case l := <-k.Lost():
			if l.Kind != cluster.KindHLS || l.Path != "live/x" || l.Owner != "n1" {
				t.Fatalf("Lost = %+v", l)
			}
		case <-time.After(2 * keeperTTL):
			t.Fatal("loss not reported within 2 TTLs")
		}
		mu.Lock()
		if len(called) != 1 || called[0].Path != "live/x" {
			t.Errorf("OnLost calls %+v", called)
		}
		mu.Unlock()
		if got := k.Held(); len(got) != 1 || got[0].Path != "live/y" {
			t.Fatalf("Held after the loss = %+v", got)
		}
		l, err := reg.Lease(ctx, cluster.KindHLS, "live/x")
		if err != nil || l.Owner != "n2" {
			t.Fatalf("the keeper disturbed the new holder: %+v, %v", l, err)
		}
	})
}

func TestLeaseKeeperClose(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, reg cluster.Registry, _ *redistest.Server) {
		ctx := context.Background()
		k := cluster.NewLeaseKeeper(reg, "n1", keeperTTL, nil)
		for _, p := range []string{"a", "b", "c"} {
			if err := k.Hold(ctx, cluster.KindRoute, p); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan error, 1)
		go func() { done <- k.Run(ctx) }()
		time.Sleep(keeperTTL / 2)
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run after Close: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after Close")
		}
		ls, err := reg.Leases(ctx, cluster.KindRoute)
		if err != nil || len(ls) != 0 {
			t.Fatalf("leases after Close: %+v, %v", ls, err)
		}
		if err := k.Hold(ctx, cluster.KindRoute, "d"); !errors.Is(err, cluster.ErrClosed) {
			t.Fatalf("Hold after Close: %v, want ErrClosed", err)
		}
		if err := k.Run(ctx); !errors.Is(err, cluster.ErrClosed) {
			t.Fatalf("Run after Close: %v, want ErrClosed", err)
		}
		if err := k.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

// TestLeaseKeeperTransient: renewal errors shorter than the TTL are not
// losses; errors past the lease's expiry are.
func TestLeaseKeeperTransient(t *testing.T) {
	t.Parallel()
	f := &flaky{Registry: cluster.NewMemory()}
	rec := &logRecorder{}
	k := cluster.NewLeaseKeeper(f, "n1", keeperTTL, slogOf(rec))
	ctx := context.Background()
	if err := k.Hold(ctx, cluster.KindRoute, "p"); err != nil {
		t.Fatal(err)
	}
	runKeeper(t, k)
	time.Sleep(keeperTTL / 3)
	f.down.Store(true)
	time.Sleep(keeperTTL / 2) // at least one failed renewal, well before expiry
	f.down.Store(false)
	time.Sleep(keeperTTL)
	select {
	case l := <-k.Lost():
		t.Fatalf("transient failure reported as lost: %+v", l)
	default:
	}
	if rec.count("lease renewal failing") == 0 {
		t.Error("failed renewals not logged")
	}
	if rec.count("lease renewal recovered") != 1 {
		t.Errorf("recovery logged %d times, want 1", rec.count("lease renewal recovered"))
	}
	if l, err := f.Lease(ctx, cluster.KindRoute, "p"); err != nil || l.Owner != "n1" {
		t.Fatalf("lease after recovery: %+v, %v", l, err)
	}
	// Down past the expiry: lost.
	f.down.Store(true)
	select {
	case l := <-k.Lost():
		if l.Path != "p" {
			t.Fatalf("Lost = %+v", l)
		}
	case <-time.After(3 * keeperTTL):
		t.Fatal("lease not reported lost after its expiry")
	}
	if len(k.Held()) != 0 {
		t.Fatalf("Held after the loss = %+v", k.Held())
	}
}

// TestLeaseKeeperRedisRestart: when Redis restarts empty, the keeper's
// next renewal re-creates its lease and nothing is reported lost.
func TestLeaseKeeperRedisRestart(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	reg := newRedis(t, srv)
	const ttl = 3 * time.Second
	k := cluster.NewLeaseKeeper(reg, "n1", ttl, nil)
	ctx := context.Background()
	if err := k.Hold(ctx, cluster.KindRoute, "live/a"); err != nil {
		t.Fatal(err)
	}
	runKeeper(t, k)
	srv.Restart()
	restarted := time.Now()
	waitFor(t, ttl, "lease re-created after the restart", func() bool {
		l, err := reg.Lease(ctx, cluster.KindRoute, "live/a")
		return err == nil && l.Owner == "n1"
	})
	t.Logf("lease back %s after the restart (renewal every %s)", time.Since(restarted).Round(time.Millisecond), ttl/3)
	select {
	case l := <-k.Lost():
		t.Fatalf("restart reported as lost: %+v", l)
	default:
	}
}

// TestLeaseKeeperHungRegistry: a registry that does not answer (packets
// dropped) delays one renewal pass by ttl/3 at most, so every lease is
// reported lost soon after its expiry, however many there are.
func TestLeaseKeeperHungRegistry(t *testing.T) {
	t.Parallel()
	f := &flaky{Registry: cluster.NewMemory()}
	k := cluster.NewLeaseKeeper(f, "n1", keeperTTL, slogOf(&logRecorder{}))
	ctx := context.Background()
	const n = 20
	for i := range n {
		if err := k.Hold(ctx, cluster.KindRecord, fmt.Sprint("live/", i)); err != nil {
			t.Fatal(err)
		}
	}
	f.block.Store(true)
	start := time.Now()
	runKeeper(t, k)
	for i := range n {
		select {
		case <-k.Lost():
		case <-time.After(start.Add(keeperTTL + keeperTTL/2 + 300*time.Millisecond).Sub(time.Now())):
			t.Fatalf("%d of %d leases reported lost %s after a hang began (ttl %s)", i, n, time.Since(start), keeperTTL)
		}
	}
	t.Logf("%d leases reported lost %s after the registry hung (ttl %s)", n, time.Since(start).Round(time.Millisecond), keeperTTL)
}
