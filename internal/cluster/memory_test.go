package cluster_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/cluster/clustertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMemoryContract(t *testing.T) {
	t.Parallel()
	clustertest.Run(t, func(t *testing.T) cluster.Registry { return cluster.NewMemory() })
}

// fakeClock is a settable clock for WithClock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestMemoryClock checks expiry against the injected clock, to the
// millisecond, without sleeping.
func TestMemoryClock(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	m := cluster.NewMemory(cluster.WithClock(clk.Now))
	ctx := context.Background()
	if err := m.Heartbeat(ctx, cluster.Node{ID: "n"}, time.Second); err != nil {
		t.Fatal(err)
	}
	l, err := m.Acquire(ctx, cluster.KindRoute, "p", "n", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Since.Equal(clk.Now()) || !l.Expires.Equal(clk.Now().Add(time.Second)) {
		t.Fatalf("lease times %+v", l)
	}
	clk.Advance(999 * time.Millisecond)
	nodes, _ := m.Nodes(ctx)
	if len(nodes) != 1 || !nodes[0].Seen.Equal(clk.Now().Add(-999*time.Millisecond)) {
		t.Fatalf("node at 999ms: %+v", nodes)
	}
	if _, err := m.Lease(ctx, cluster.KindRoute, "p"); err != nil {
		t.Fatalf("lease at 999ms: %v", err)
	}
	clk.Advance(time.Millisecond)
	if nodes, _ := m.Nodes(ctx); len(nodes) != 0 {
		t.Fatalf("node at its expiry: %+v", nodes)
	}
	if _, err := m.Lease(ctx, cluster.KindRoute, "p"); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("lease at its expiry: %v", err)
	}
	if err := m.SetDraining(ctx, "n", true); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("SetDraining at expiry: %v", err)
	}
}

func BenchmarkMemoryAcquire(b *testing.B) {
	m := cluster.NewMemory()
	ctx := context.Background()
	paths := make([]string, 1024)
	for i := range paths {
		paths[i] = "live/s" + string(rune('a'+i%26)) + time.Duration(i).String()
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := m.Acquire(ctx, cluster.KindRoute, paths[i%len(paths)], "n1", time.Minute); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
