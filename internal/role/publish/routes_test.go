package publish

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/hub"
)

func TestRoutesOnePublisherPerPathAcrossNodes(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := cluster.NewMemory()
	ttl := 600 * time.Millisecond
	hubA, hubB := hub.New(hub.Options{Logger: log}), hub.New(hub.Options{Logger: log})
	a := NewRoutes(reg, "a", ttl, hubA, log)
	b := NewRoutes(reg, "b", ttl, hubB, log)
	ctx, cancel := context.WithCancel(context.Background())
	doneA := make(chan struct{})
	go func() { a.Run(ctx); close(doneA) }()
	defer func() { cancel(); <-doneA }()

	require.NoError(t, a.Claim(ctx, "live/x"))
	pub, err := hubA.Publish("live/x", hub.ClientInfo{Protocol: "rtmp"})
	require.NoError(t, err)

	err = b.Claim(ctx, "live/x")
	require.ErrorIs(t, err, hub.ErrStreamBusy, "node b is refused while a publishes")
	require.Contains(t, err.Error(), "node a")

	// Renewed while the stream lives: still a's after several TTLs.
	time.Sleep(3 * ttl)
	l, err := reg.Lease(ctx, cluster.KindRoute, "live/x")
	require.NoError(t, err)
	require.Equal(t, "a", l.Owner)

	// The stream ends: the route is released, b may take the path.
	pub.Kick()
	require.Eventually(t, func() bool {
		_, err := reg.Lease(ctx, cluster.KindRoute, "live/x")
		return errors.Is(err, cluster.ErrNotFound)
	}, 2*time.Second, 20*time.Millisecond)
	require.NoError(t, b.Claim(ctx, "live/x"))
	require.Equal(t, []string{"live/x"}, b.Held())
}

func TestRoutesGiveWayWhenTheLeaseIsLost(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := cluster.NewMemory()
	ttl := 300 * time.Millisecond
	h := hub.New(hub.Options{Logger: log})
	a := NewRoutes(reg, "a", ttl, h, log)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	require.NoError(t, a.Claim(ctx, "live/y"))
	pub, err := h.Publish("live/y", hub.ClientInfo{Protocol: "rtmp"})
	require.NoError(t, err)
	// a was cut off longer than the TTL and b took the path meanwhile.
	time.Sleep(ttl + 100*time.Millisecond)
	_, err = reg.Acquire(ctx, cluster.KindRoute, "live/y", "b", time.Minute)
	require.NoError(t, err)
	a.reconcile(ctx)
	select {
	case <-pub.Done():
		require.ErrorIs(t, pub.Err(), hub.ErrKicked)
	case <-time.After(2 * time.Second):
		t.Fatal("the local publisher was not ended")
	}
	require.Empty(t, a.Held())
}

// fakeClock is the registry's clock in tests of the takeover timing.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A route whose holder stopped heartbeating is taken over by the next
// claim once the holder has been silent for more than ⅔ of the TTL, long
// before the route lease expires; a holder still heartbeating keeps it.
func TestRoutesTakeOverFromDeadNode(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	reg := cluster.NewMemory(cluster.WithClock(clock.Now))
	defer reg.Close()
	const ttl = 9 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// beat heartbeats ids; a renews its routes too (its Routes.Run).
	beat := func(ids ...string) {
		t.Helper()
		for _, id := range ids {
			require.NoError(t, reg.Heartbeat(ctx, cluster.Node{ID: id, Roles: []string{cluster.RolePublish}}, ttl))
			if id == "a" {
				_, err := reg.Renew(ctx, cluster.KindRoute, "live/x", "a", ttl)
				require.NoError(t, err)
			}
		}
	}
	a := NewRoutes(reg, "a", ttl, hub.New(hub.Options{Logger: log}), log)
	b := NewRoutes(reg, "b", ttl, hub.New(hub.Options{Logger: log}), log)
	c := NewRoutes(reg, "c", ttl, hub.New(hub.Options{Logger: log}), log)

	beat("a", "b", "c")
	require.NoError(t, a.Claim(ctx, "live/x"))

	// a is alive (it heartbeats every TTL/3): b is refused, however long.
	for range 4 {
		clock.Add(ttl / 3)
		beat("a", "b")
		err := b.Claim(ctx, "live/x")
		require.ErrorIs(t, err, hub.ErrStreamBusy)
		require.Contains(t, err.Error(), "node a")
	}
	// The registry view of a node that is not listed itself is not trusted:
	// c stopped heartbeating too, so it is refused even once a is silent.
	clock.Add(2*ttl/3 + time.Millisecond)
	beat("b")
	require.ErrorIs(t, c.Claim(ctx, "live/x"), hub.ErrStreamBusy)

	// a stopped heartbeating when b last did, ⅔ TTL ago: not yet presumed
	// dead at exactly ⅔ TTL.
	beat("a")
	clock.Add(2 * ttl / 3)
	beat("b")
	require.ErrorIs(t, b.Claim(ctx, "live/x"), hub.ErrStreamBusy, "a silent for exactly ⅔ TTL is alive")
	// Just past ⅔ TTL (the lease would still last TTL/3): b takes it over.
	clock.Add(time.Millisecond)
	beat("b")
	l, err := reg.Lease(ctx, cluster.KindRoute, "live/x")
	require.NoError(t, err)
	require.Equal(t, "a", l.Owner)
	require.True(t, l.Expires.After(clock.Now()), "a's lease has not expired")
	require.NoError(t, b.Claim(ctx, "live/x"))
	l, err = reg.Lease(ctx, cluster.KindRoute, "live/x")
	require.NoError(t, err)
	require.Equal(t, "b", l.Owner)
	require.Equal(t, clock.Now().Add(ttl), l.Expires)
	require.Equal(t, []string{"live/x"}, b.Held())
	require.Contains(t, logs.String(), "route taken over from dead node a")

	// A holder absent from the registry (its heartbeat expired or was
	// lost) is dead too.
	_, err = reg.Acquire(ctx, cluster.KindRoute, "live/y", "ghost", ttl)
	require.NoError(t, err)
	beat("b", "c")
	require.NoError(t, c.Claim(ctx, "live/y"))
	l, err = reg.Lease(ctx, cluster.KindRoute, "live/y")
	require.NoError(t, err)
	require.Equal(t, "c", l.Owner)
	// b is alive: c cannot take live/x from it.
	err = c.Claim(ctx, "live/x")
	require.ErrorIs(t, err, hub.ErrStreamBusy)
	require.Contains(t, err.Error(), "node b")
}
