package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/cluster/clustertest"
	"github.com/quasipaa/quasipaa/internal/cluster/redistest"
)

// prefixes makes each registry of a test see an empty key space.
var prefixes atomic.Int64

// newRedis connects a registry with a fresh prefix to srv.
func newRedis(t testing.TB, srv *redistest.Server) *cluster.Redis {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := cluster.NewRedis(ctx, srv.URL(), cluster.WithPrefix(fmt.Sprintf("test%d:", prefixes.Add(1))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func TestRedisContract(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	clustertest.Run(t, func(t *testing.T) cluster.Registry { return newRedis(t, srv) })
}

func TestNewRedisErrors(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cluster.NewRedis(ctx, "http://127.0.0.1:1/"); err == nil {
		t.Error("NewRedis accepted an http:// URL")
	}
	// Nothing listens on a port just released.
	srv := redistest.Start(t)
	url := srv.URL()
	srv.Stop()
	start := time.Now()
	if _, err := cluster.NewRedis(ctx, url); err == nil {
		t.Error("NewRedis succeeded without a server")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("NewRedis without a server took %s", d)
	}
}

// TestRedisRestartRenew: a lease whose owner keeps renewing is back within
// one renewal after Redis restarts empty, and so is a heartbeating node.
func TestRedisRestartRenew(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	r := newRedis(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := r.Acquire(ctx, cluster.KindRoute, "live/a", "n1", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := r.Heartbeat(ctx, cluster.Node{ID: "n1"}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	if _, err := r.Lease(ctx, cluster.KindRoute, "live/a"); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("lease after restart: %v, want ErrNotFound (empty Redis)", err)
	}
	// The first command after the restart may meet a dead pooled connection;
	// go-redis retries it on a new one, so a single Renew must succeed.
	l, err := r.Renew(ctx, cluster.KindRoute, "live/a", "n1", 5*time.Second)
	if err != nil {
		t.Fatalf("first Renew after restart: %v", err)
	}
	if l.Owner != "n1" {
		t.Fatalf("Renew = %+v", l)
	}
	got, err := r.Leases(ctx, cluster.KindRoute)
	if err != nil || len(got) != 1 || got[0].Owner != "n1" {
		t.Fatalf("Leases after renew: %+v, %v", got, err)
	}
	if err := r.Heartbeat(ctx, cluster.Node{ID: "n1"}, 5*time.Second); err != nil {
		t.Fatalf("heartbeat after restart: %v", err)
	}
	if nodes, err := r.Nodes(ctx); err != nil || len(nodes) != 1 {
		t.Fatalf("Nodes after restart: %+v, %v", nodes, err)
	}
	// A competitor cannot take it now.
	r2 := newRedisSamePrefix(t, srv, r)
	if _, err := r2.Acquire(ctx, cluster.KindRoute, "live/a", "n2", time.Second); !errors.Is(err, cluster.ErrLeaseHeld) {
		t.Fatalf("competitor Acquire after re-creation: %v, want ErrLeaseHeld", err)
	}
}

// newRedisSamePrefix connects a second client to the key space of r.
func newRedisSamePrefix(t *testing.T, srv *redistest.Server, r *cluster.Redis) *cluster.Redis {
	t.Helper()
	r2, err := cluster.NewRedis(context.Background(), srv.URL(), cluster.WithPrefix(r.Prefix()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r2.Close() })
	return r2
}

// TestRedisDown: with Redis stopped every call fails within its context's
// deadline, and the same registry works again once Redis is back.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	r := newRedis(t, srv)
	ctx := context.Background()
	if err := r.Heartbeat(ctx, cluster.Node{ID: "n1"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	const deadline = 500 * time.Millisecond
	calls := map[string]func(ctx context.Context) error{
		"Heartbeat": func(ctx context.Context) error { return r.Heartbeat(ctx, cluster.Node{ID: "n1"}, time.Minute) },
		"Nodes":     func(ctx context.Context) error { _, err := r.Nodes(ctx); return err },
		"Acquire": func(ctx context.Context) error {
			_, err := r.Acquire(ctx, cluster.KindRoute, "p", "n1", time.Minute)
			return err
		},
		"Renew": func(ctx context.Context) error {
			_, err := r.Renew(ctx, cluster.KindRoute, "p", "n1", time.Minute)
			return err
		},
		"Release":     func(ctx context.Context) error { return r.Release(ctx, cluster.KindRoute, "p", "n1") },
		"Leases":      func(ctx context.Context) error { _, err := r.Leases(ctx, cluster.KindRoute); return err },
		"SetDraining": func(ctx context.Context) error { return r.SetDraining(ctx, "n1", true) },
		"SetApps":     func(ctx context.Context) error { _, err := r.SetApps(ctx, []byte("{}"), 0); return err },
		"Leave":       func(ctx context.Context) error { return r.Leave(ctx, "n1") },
	}
	for name, call := range calls {
		c, cancel := context.WithTimeout(ctx, deadline)
		start := time.Now()
		err := call(c)
		took := time.Since(start)
		cancel()
		if err == nil {
			t.Errorf("%s with Redis down: no error", name)
		} else if errors.Is(err, cluster.ErrLeaseHeld) || errors.Is(err, cluster.ErrNotFound) || errors.Is(err, cluster.ErrClosed) {
			t.Errorf("%s with Redis down: %v, want a connection error", name, err)
		}
		if took > deadline+300*time.Millisecond {
			t.Errorf("%s with Redis down took %s, past its %s deadline", name, took, deadline)
		}
	}
	srv.Restart()
	// go-redis stops dialling after a run of failures and probes once a
	// second until a dial succeeds: calls work again within about a second.
	back := time.Now()
	var err error
	for time.Since(back) < 5*time.Second {
		c, cancel := context.WithTimeout(ctx, time.Second)
		err = r.Heartbeat(c, cluster.Node{ID: "n1"}, time.Minute)
		cancel()
		if err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Heartbeat 5s after Redis is back: %v", err)
	}
	t.Logf("registry usable again %s after Redis restarted", time.Since(back).Round(time.Millisecond))
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := r.Acquire(c, cluster.KindRoute, "p", "n1", time.Minute); err != nil {
		t.Fatalf("Acquire after Redis is back: %v", err)
	}
}

func BenchmarkRedisAcquireRenew(b *testing.B) {
	srv := redistest.Start(b)
	r := newRedis(b, srv)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		path := fmt.Sprintf("live/s%d", i%1024)
		if i < 1024 {
			if _, err := r.Acquire(ctx, cluster.KindRoute, path, "n1", time.Minute); err != nil {
				b.Fatal(err)
			}
		} else if _, err := r.Renew(ctx, cluster.KindRoute, path, "n1", time.Minute); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// TestRedisIndexesPruned: the listing indexes hold live entries only, so
// they do not grow with every stream that ever existed.
func TestRedisIndexesPruned(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	r := newRedis(t, srv)
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = raw.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 50 {
		if _, err := r.Acquire(ctx, cluster.KindRoute, fmt.Sprintf("live/%d", i), "n1", 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if err := r.Heartbeat(ctx, cluster.Node{ID: fmt.Sprint("n", i)}, 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Acquire(ctx, cluster.KindRoute, "live/kept", "n1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Acquire(ctx, cluster.KindRoute, "live/released", "n1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := r.Release(ctx, cluster.KindRoute, "live/released", "n1"); err != nil {
		t.Fatal(err)
	}
	card := func(key string) int64 {
		n, err := raw.ZCard(ctx, r.Prefix()+key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := card("leases:route"); n != 51 {
		t.Fatalf("lease index holds %d members, want 51", n)
	}
	time.Sleep(300 * time.Millisecond)
	ls, err := r.Leases(ctx, cluster.KindRoute)
	if err != nil || len(ls) != 1 {
		t.Fatalf("Leases = %+v, %v", ls, err)
	}
	nodes, err := r.Nodes(ctx)
	if err != nil || len(nodes) != 0 {
		t.Fatalf("Nodes = %+v, %v", nodes, err)
	}
	if n := card("leases:route"); n != 1 {
		t.Errorf("lease index holds %d members after listing, want 1", n)
	}
	if n := card("nodes"); n != 0 {
		t.Errorf("node index holds %d members after listing, want 0", n)
	}
	// Every key but the index of the live lease has expired or been deleted.
	keys, err := raw.Keys(ctx, r.Prefix()+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	want := []string{r.Prefix() + "lease:route:live/kept", r.Prefix() + "leases:route"}
	if fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Errorf("keys left: %v, want %v", keys, want)
	}
}

// TestRedisSeenIsServerTime: a node's Seen is the Redis server's clock at
// its heartbeat (stored as seen_ms), so that cluster.Dead compares the
// heartbeats of all nodes on one clock; a node value without seen_ms (an
// older version's) keeps the Seen its writer set.
func TestRedisSeenIsServerTime(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	r := newRedis(t, srv)
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = raw.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Heartbeat(ctx, cluster.Node{ID: "n1", Roles: []string{cluster.RolePublish}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	server, err := raw.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	var stored struct {
		ID     string `json:"id"`
		SeenMS int64  `json:"seen_ms"`
	}
	b, err := raw.Get(ctx, r.Prefix()+"node:n1").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &stored); err != nil {
		t.Fatalf("stored node %s: %v", b, err)
	}
	if stored.ID != "n1" || stored.SeenMS == 0 {
		t.Fatalf("stored node %s: no seen_ms", b)
	}
	if d := server.Sub(time.UnixMilli(stored.SeenMS)); d < 0 || d > time.Second {
		t.Errorf("seen_ms is %s before the server's TIME", d)
	}
	old := `{"id":"n0","roles":["pull"],"weight":1,"http":"","started":"2020-01-01T00:00:00Z","seen":"2020-01-01T00:00:01Z","draining":false,"load":{}}`
	if err := raw.Set(ctx, r.Prefix()+"node:n0", old, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := raw.ZAdd(ctx, r.Prefix()+"nodes", redis.Z{Score: float64(server.Add(time.Minute).UnixMilli()), Member: "n0"}).Err(); err != nil {
		t.Fatal(err)
	}
	nodes, err := r.Nodes(ctx)
	if err != nil || len(nodes) != 2 {
		t.Fatalf("Nodes = %+v, %v", nodes, err)
	}
	if want := time.Date(2020, 1, 1, 0, 0, 1, 0, time.UTC); !nodes[0].Seen.Equal(want) || !nodes[0].HasRole(cluster.RolePull) {
		t.Errorf("node without seen_ms: %+v, want Seen %s", nodes[0], want)
	}
	if !nodes[1].Seen.Equal(time.UnixMilli(stored.SeenMS)) || nodes[1].ID != "n1" || !nodes[1].HasRole(cluster.RolePublish) {
		t.Errorf("Nodes()[1] = %+v, want n1 seen at %d ms", nodes[1], stored.SeenMS)
	}
}
