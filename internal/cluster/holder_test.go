package cluster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/quasipaa/quasipaa/internal/cluster"
)

// TestHolderHTTP finds the HTTP address of a lease's holder, says who holds
// it when the holder is this node or gone, and passes ErrNotFound through.
func TestHolderHTTP(t *testing.T) {
	ctx := context.Background()
	reg := cluster.NewMemory()
	t.Cleanup(func() { _ = reg.Close() })
	if err := reg.Heartbeat(ctx, cluster.Node{ID: "a", HTTP: "http://10.0.0.1:8080"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cluster.HolderHTTP(ctx, reg, cluster.KindRoute, "live/x", "me"); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("no lease: err %v, want ErrNotFound", err)
	}
	for _, l := range []struct{ path, owner string }{{"live/a", "a"}, {"live/me", "me"}, {"live/gone", "gone"}} {
		if _, err := reg.Acquire(ctx, cluster.KindRoute, l.path, l.owner, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ path, owner, http string }{
		{"live/a", "a", "http://10.0.0.1:8080"},
		{"live/me", "me", ""},
		{"live/gone", "gone", ""},
	} {
		owner, base, err := cluster.HolderHTTP(ctx, reg, cluster.KindRoute, tc.path, "me")
		if err != nil || owner != tc.owner || base != tc.http {
			t.Errorf("%s: got (%q, %q, %v), want (%q, %q, nil)", tc.path, owner, base, err, tc.owner, tc.http)
		}
	}
	if _, _, err := cluster.HolderHTTP(ctx, reg, cluster.KindHLS, "live/a", "me"); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("other kind: err %v, want ErrNotFound", err)
	}
	_ = reg.Close()
	if _, _, err := cluster.HolderHTTP(ctx, reg, cluster.KindRoute, "live/a", "me"); !errors.Is(err, cluster.ErrClosed) {
		t.Fatalf("closed registry: err %v, want ErrClosed", err)
	}
}
