package publish

import (
	"context"
	"errors"
	"io"
	"log/slog"
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
