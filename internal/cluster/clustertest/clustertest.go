// Package clustertest is the contract every cluster.Registry passes: the
// memory and the Redis implementation run the same suite.
package clustertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/quasipaa/quasipaa/internal/cluster"
)

// TTL is the short lifetime the suite gives heartbeats and leases that it
// lets expire; long is for those that must not expire during a subtest.
const (
	TTL  = 300 * time.Millisecond
	long = 30 * time.Second
)

// slack is how late past its TTL an entry may still be seen (scheduling on
// a loaded machine); expiries are polled, so a fast registry passes fast.
const slack = 700 * time.Millisecond

// Run runs the contract suite. newRegistry returns a fresh, empty registry
// for each subtest; the suite closes it.
func Run(t *testing.T, newRegistry func(t *testing.T) cluster.Registry) {
	cases := []struct {
		name string
		fn   func(t *testing.T, r cluster.Registry)
	}{
		{"HeartbeatAndNodes", testHeartbeat},
		{"NodeExpires", testNodeExpires},
		{"Leave", testLeave},
		{"Draining", testDraining},
		{"DrainingDeadNode", testDrainingDeadNode},
		{"AcquireAndHeld", testAcquire},
		{"Renew", testRenew},
		{"RenewAfterExpiryRecreates", testRenewRecreates},
		{"RenewLost", testRenewLost},
		{"Release", testRelease},
		{"LeaseListingAndExpiry", testLeases},
		{"ConcurrentAcquire", testConcurrentAcquire},
		{"Takeover", testTakeover},
		{"ConcurrentTakeover", testConcurrentTakeover},
		{"Apps", testApps},
		{"BadInput", testBadInput},
		{"CanceledContext", testCanceled},
		{"Close", testClose},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRegistry(t)
			t.Cleanup(func() { _ = r.Close() })
			c.fn(t, r)
		})
	}
}

// ctx returns a context bounded for one subtest.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// node returns a node for the suite.
func node(id string) cluster.Node {
	return cluster.Node{
		ID:      id,
		Roles:   []string{cluster.RolePublish, cluster.RolePull},
		Region:  "eu",
		Weight:  1,
		HTTP:    "http://127.0.0.1:8080",
		RTMP:    "127.0.0.1:1935",
		Version: "test",
		Started: time.Now().Add(-time.Minute).Round(time.Millisecond),
		Load:    cluster.Load{CPU: 0.5, Cores: 2, Connections: 3, Publishers: 1, Viewers: 2, Streams: 1, IngressBps: 1e6, EgressBps: 2e6},
	}
}

// ids lists the IDs of nodes.
func ids(nodes []cluster.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.ID
	}
	return out
}

// paths lists the paths of leases.
func paths(ls []cluster.Lease) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Path
	}
	return out
}

// eventually polls cond every 20 ms until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last: %s)", what, within, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// near fails unless got is within tol of want.
func near(t *testing.T, what string, got, want time.Time, tol time.Duration) {
	t.Helper()
	if d := got.Sub(want); d < -tol || d > tol {
		t.Errorf("%s = %s, want %s ± %s (off by %s)", what, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano), tol, d)
	}
}

// must fails the test on err.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func testHeartbeat(t *testing.T, r cluster.Registry) {
	c := ctx(t)
	nodes, err := r.Nodes(c)
	must(t, "Nodes on empty registry", err)
	if len(nodes) != 0 {
		t.Fatalf("empty registry lists %v", ids(nodes))
	}
	b, a := node("b"), node("a")
	a.Draining = true // must be ignored: only SetDraining sets it
	before := time.Now()
	must(t, "Heartbeat b", r.Heartbeat(c, b, long))
	must(t, "Heartbeat a", r.Heartbeat(c, a, long))
	nodes, err = r.Nodes(c)
	must(t, "Nodes", err)
	if fmt.Sprint(ids(nodes)) != "[a b]" {
		t.Fatalf("Nodes = %v, want [a b] sorted by ID", ids(nodes))
	}
	got := nodes[1]
	near(t, "Seen", got.Seen, before, 2*time.Second)
	if got.Draining || nodes[0].Draining {
		t.Errorf("draining after heartbeat with Draining set: %+v", nodes)
	}
	want := b
	want.Seen = got.Seen
	if !got.Started.Equal(want.Started) {
		t.Errorf("Started = %s, want %s", got.Started, want.Started)
	}
	got.Started, want.Started = time.Time{}, time.Time{}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("node round trip:\n got %+v\nwant %+v", got, want)
	}
	// A second heartbeat replaces the first one's figures.
	b.Load.Viewers = 42
	must(t, "Heartbeat b again", r.Heartbeat(c, b, long))
	nodes, err = r.Nodes(c)
	must(t, "Nodes", err)
	if len(nodes) != 2 || nodes[1].Load.Viewers != 42 {
		t.Errorf("after second heartbeat: %+v", nodes)
	}
	// Callers own the returned slices.
	nodes[1].Roles[0] = "changed"
	nodes, err = r.Nodes(c)
	must(t, "Nodes", err)
	if nodes[1].Roles[0] != cluster.RolePublish {
		t.Errorf("Roles aliased with a caller's slice: %v", nodes[1].Roles)
	}
}

func testNodeExpires(t *testing.T, r cluster.Registry) {
	c := ctx(t)
	must(t, "Heartbeat short", r.Heartbeat(c, node("short"), TTL))
	must(t, "Heartbeat long", r.Heartbeat(c, node("long"), long))
	nodes, err := r.Nodes(c)
	must(t, "Nodes", err)
	if fmt.Sprint(ids(nodes)) != "[long short]" {
		t.Fatalf("Nodes = %v, want [long short]", ids(nodes))
	}
	start := time.Now()
	eventually(t, TTL+slack, "short-lived node gone", func() (bool, string) {
		nodes, err := r.Nodes(c)
		if err != nil {
			return false, err.Error()
		}
		return fmt.Sprint(ids(nodes)) == "[long]", fmt.Sprint(ids(nodes))
	})
	if time.Since(start) < TTL/2 {
		t.Errorf("node gone after %s, before half its TTL %s", time.Since(start), TTL)
	}
	// Heartbeats keep a node alive past its first TTL.
	must(t, "Heartbeat kept", r.Heartbeat(c, node("kept"), TTL))
	for range 4 {
		time.Sleep(TTL / 3)
		must(t, "Heartbeat kept", r.Heartbeat(c, node("kept"), TTL))
	}
	nodes, err = r.Nodes(c)
	must(t, "Nodes", err)
	if fmt.Sprint(ids(nodes)) != "[kept long]" {
		t.Fatalf("Nodes = %v, want [kept long]", ids(nodes))
	}
}

func testLeave(t *testing.T, r cluster.Registry) {
	c := ctx(t)
	must(t, "Heartbeat", r.Heartbeat(c, node("n1"), long))
	must(t, "Heartbeat", r.Heartbeat(c, node("n2"), long))
	must(t, "Leave", r.Leave(c, "n1"))
	nodes, err := r.Nodes(c)
	must(t, "Nodes", err)
	if fmt.Sprint(ids(nodes)) != "[n2]" {
		t.Fatalf("after Leave: %v, want [n2]", ids(nodes))
	}
	must(t, "Leave of an unknown node", r.Leave(c, "nobody"))
}

func testDraining(t *testing.T, r cluster.Registry) {
	c := ctx(t)
	must(t, "Heartbeat", r.Heartbeat(c, node("n1"), long))
	must(t, "Heartbeat", r.Heartbeat(c, node("n2"), long))
	must(t, "SetDraining", r.SetDraining(c, "n1", true))
	check := func(when string, want bool) {
		t.Helper()
		nodes, err := r.Nodes(c)
		must(t, "Nodes", err)
		if len(nodes) != 2 || nodes[0].Draining != want || nodes[1].Draining {
			t.Fatalf("%s: nodes %+v, want n1 draining=%v and n2 not", when, nodes, want)
		}
	}
	check("after SetDraining", true)
	must(t, "Heartbeat", r.Heartbeat(c, node("n1"), long))
	check("after a heartbeat", true)
	must(t, "SetDraining twice", r.SetDraining(c, "n1", true))
	must(t, "SetDraining false", r.SetDraining(c, "n1", false))
	check("after SetDraining false", false)
	must(t, "SetDraining false twice", r.SetDraining(c, "n1", false))
	// A node that left and comes back starts without the flag.
	must(t, "SetDraining", r.SetDraining(c, "n1", true))
	must(t, "Leave", r.Leave(c, "n1"))
	must(t, "Heartbeat", r.Heartbeat(c, node("n1"), long))
	check("after Leave and a new heartbeat", false)
}

func testDrainingDeadNode(t *testing.T, r cluster.Registry) {
	c := ctx(t)
	if err := r.SetDraining(c, "ghost", true); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("SetDraining unknown node: %v, want ErrNotFound", err)
	}
	must(t, "Heartbeat", r.Heartbeat(c, node("dying"), TTL))
	must(t, "SetDraining", r.SetDraining(c, "dying", true))
	eventually(t, TTL+slack, "SetDraining on an expired node fails with ErrNotFound", func() (bool, string) {
		err := r.SetDraining(c, "dying", true)
		return errors.Is(err, cluster.ErrNotFound), fmt.Sprint(err)
	})
	// Coming back after expiry starts without the flag.
	must(t, "Heartbeat", r.Heartbeat(c, node("dying"), long))
	nodes, err := r.Nodes(c)
	must(t, "Nodes", err)
	if len(nodes) != 1 || nodes[0].Draining {
		t.Fatalf("node back after expiry: %+v, want not draining", nodes)
	}
}

func testAcquire(t *testing.T, r cluster.Registry) {
	c := ctx(t)
	before := time.Now()
	l, err := r.Acquire(c, cluster.KindRoute, "live/a", "n1", long)
	must(t, "Acquire", err)
	if l.Kind != cluster.KindRoute || l.Path != "live/a" || l.Owner != "n1" {
		t.Fatalf("Acquire = %+v", l)
	}
	near(t, "Since", l.Since, before, time.Second)
	near(t, "Expires", l.Expires, before.Add(long), time.Second)

	held, err := r.Acquire(c, cluster.KindRoute, "live/a", "n2", long)
	if !errors.Is(err, cluster.ErrLeaseHeld) {
		t.Fatalf("Acquire held by another: %v, want ErrLeaseHeld", err)
	}
	if held.Owner != "n1" || held.Path != "live/a" || held.Kind != cluster.KindRoute {
		t.Errorf("ErrLeaseHeld came with %+v, want the holder n1's lease", held)
	}
	near(t, "holder's Expires", held.Expires, l.Expires, time.Second)

	// The same path under another kind is another lease.
	if _, err := r.Acquire(c, cluster.KindRecord, "live/a", "n2", long); err != nil {
		t.Fatalf("Acquire of another kind: %v", err)
	}
	// Acquiring again as the holder renews and keeps Since.
	time.Sleep(20 * time.Millisecond)
	again, err := r.Acquire(c, cluster.KindRoute, "live/a", "n1", 2*long)
	must(t, "Acquire by the holder", err)
	near(t, "Since kept", again.Since, l.Since, 5*time.Millisecond)
	near(t, "Expires extended", again.Expires, time.Now().Add(2*long), time.Second)
	got, err := r.Lease(c, cluster.KindRoute, "live/a")
	must(t, "Lease", err)
	if got.Owner != "n1" {
		t.Errorf("Lease = %+v", got)
	}
	near(t, "Lease Expires", got.Expires, again.Expires, time.Second)
	if _, err := r.Lease(c, cluster.KindRoute, "live/none"); !errors.Is(err, cluster.ErrNotFound) {
		t.Errorf("Lease of nothing: %v, want ErrNotFound", err)
	}
}

func testRenew(t *testing.T, r cluster.Registry) {
	c := ctx(t)
	l, err := r.Acquire(c, cluster.KindHLS, "live/r", "n1", TTL)
	must(t, "Acquire", err)
	// Renewing past the first TTL keeps the lease alive.
	for range 4 {
		time.Sleep(TTL / 3)
		rl, err := r.Renew(c, cluster.KindHLS, "live/r", "n1", TTL)
		must(t, "Renew", err)
		if rl.Owner != "n1" {
			t.Fatalf("Renew = %+v", rl)
		}
		near(t, "Since kept", rl.Since, l.Since, 5*time.Millisecond)
		near(t, "Expires", rl.Expires, time.Now().Add(TTL), 200*time.Millisecond)
	}
	got, err := r.Lease(c, cluster.KindHLS, "live/r")
	must(t, "Lease after renewals", err)
	if got.Owner != "n1" {
		t.Fatalf("Lease = %+v", got)
	}
	// Renew never takes a lease from its holder.
	if _, err := r.Renew(c, cluster.KindHLS, "live/r", "n2", TTL); !errors.Is(err, cluster.ErrLeaseLost) {
		t.Fatalf("Renew by a non-holder: %v, want ErrLeaseLost", err)
	}
}

func testRenewRecreates(t *testing.T, r cluster.Registry) {
	c := ctx(t)
	_, err := r.Acquire(c, cluster.KindRoute, "live/x", "n1", TTL)
	must(t, "Acquire", err)
	eventually(t, TTL+slack, "lease expired", func() (bool, string) {
		_, err := r.Lease(c, cluster.KindRoute, "live/x")
		return errors.Is(err, cluster.ErrNotFound), fmt.Sprint(err)
	})
	before := time.Now()
	l, err := r.Renew(c, cluster.KindRoute, "live/x", "n1", long)
	must(t, "Renew of an expired lease nobody took", err)
	if l.Owner != "n1" {
		t.Fatalf("Renew = %+v", l)
	}
	near(t, "Since of the re-created lease", l.Since, before, time.Second)
	got, err := r.Lease(c, cluster.KindRoute, "live/x")
	must(t, "Lease", err)
	if got.Owner != "n1" {
		t.Fatalf("Lease = %+v", got)
	}
	// Renew of a lease that never existed creates it too.
	if _, err := r.Renew(c, cluster.KindRoute, "live/new", "n1", long); err != nil {
		t.Fatalf("Renew of a missing lease: %v", err)
	}
}

func testRenewLost(t *testing.T, r cluster.Registry) {
	c := ctx(t)
	_, err := r.Acquire(c, cluster.KindRecord, "live/y", "n1", TTL)
	must(t, "Acquire", err)
	eventually(t, TTL+slack, "n2 takes the expired lease", func() (bool, string) {
		_, err := r.Acquire(c, cluster.KindRecord, "live/y", "n2", long)
		return err == nil, fmt.Sprint(err)
	})
	l, err := r.Renew(c, cluster.KindRecord, "live/y", "n1", long)
	if !errors.Is(err, cluster.ErrLeaseLost) {
		t.Fatalf("Renew after another took it: %v, want ErrLeaseLost", err)
	}
	if l.Owner != "n2" {
		t.Errorf("ErrLeaseLost came with %+v, want n2's lease", l)
	}
	got, err := r.Lease(c, cluster.KindRecord, "live/y")
	must(t, "Lease", err)
	if got.Owner != "n2" {
		t.Fatalf("the loser's Renew changed the lease: %+v", got)
	}
}

func testRelease(t *testing.T, r cluster.Registry) {
	c := ctx(t)
	_, err := r.Acquire(c, cluster.KindRoute, "live/z", "n1", long)
	must(t, "Acquire", err)
	must(t, "Release by a non-owner", r.Release(c, cluster.KindRoute, "live/z", "n2"))
	got, err := r.Lease(c, cluster.KindRoute, "live/z")
	must(t, "Lease after a non-owner's Release", err)
	if got.Owner != "n1" {
		t.Fatalf("Lease = %+v", got)
	}
	ls, err := r.Leases(c, cluster.KindRoute)
	must(t, "Leases", err)
	if fmt.Sprint(paths(ls)) != "[live/z]" {
		t.Fatalf("Leases = %v", paths(ls))
	}
	must(t, "Release", r.Release(c, cluster.KindRoute, "live/z", "n1"))
	if _, err := r.Lease(c, cluster.KindRoute, "live/z"); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("Lease after Release: %v, want ErrNotFound", err)
	}
	ls, err = r.Leases(c, cluster.KindRoute)
	must(t, "Leases", err)
	if len(ls) != 0 {
		t.Fatalf("Leases after Release = %v", paths(ls))
	}
	must(t, "Release again", r.Release(c, cluster.KindRoute, "live/z", "n1"))
	must(t, "Release of nothing", r.Release(c, cluster.KindRoute, "live/never", "n1"))
	// Released, the lease is free for anyone.
	if _, err := r.Acquire(c, cluster.KindRoute, "live/z", "n2", long); err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
}

func testLeases(t *testing.T, r cluster.Registry) {
	c := ctx(t)
	ls, err := r.Leases(c, cluster.KindRoute)
	must(t, "Leases on empty registry", err)
	if len(ls) != 0 {
		t.Fatalf("empty registry lists %v", paths(ls))
	}
	for _, p := range []string{"live/c", "live/a", "other/b"} {
		_, err := r.Acquire(c, cluster.KindRoute, p, "n-"+p, long)
		must(t, "Acquire "+p, err)
	}
	_, err = r.Acquire(c, cluster.KindRoute, "live/short", "n1", TTL)
	must(t, "Acquire short", err)
	_, err = r.Acquire(c, cluster.KindRecord, "live/rec", "n1", long)
	must(t, "Acquire record", err)
	ls, err = r.Leases(c, cluster.KindRoute)
	must(t, "Leases", err)
	if fmt.Sprint(paths(ls)) != "[live/a live/c live/short other/b]" {
		t.Fatalf("Leases(route) = %v, want [live/a live/c live/short other/b]", paths(ls))
	}
	for _, l := range ls {
		if l.Kind != cluster.KindRoute || (l.Path != "live/short" && l.Owner != "n-"+l.Path) {
			t.Errorf("listed lease %+v", l)
		}
		if !l.Expires.After(time.Now()) {
			t.Errorf("listed lease already expired: %+v", l)
		}
	}
	ls, err = r.Leases(c, cluster.KindRecord)
	must(t, "Leases(record)", err)
	if fmt.Sprint(paths(ls)) != "[live/rec]" {
		t.Fatalf("Leases(record) = %v", paths(ls))
	}
	eventually(t, TTL+slack, "expired lease no longer listed", func() (bool, string) {
		ls, err := r.Leases(c, cluster.KindRoute)
		if err != nil {
			return false, err.Error()
		}
		return fmt.Sprint(paths(ls)) == "[live/a live/c other/b]", fmt.Sprint(paths(ls))
	})
	if _, err := r.Lease(c, cluster.KindRoute, "live/short"); !errors.Is(err, cluster.ErrNotFound) {
		t.Errorf("Lease of an expired lease: %v, want ErrNotFound", err)
	}
}

func testConcurrentAcquire(t *testing.T, r cluster.Registry) {
	c := ctx(t)
	const n = 20
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
		holders = map[string]int{}
		others  []error
	)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("node-%02d", i)
			<-start
			l, err := r.Acquire(c, cluster.KindRoute, "live/race", owner, long)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, owner)
			case errors.Is(err, cluster.ErrLeaseHeld):
				holders[l.Owner]++
			default:
				others = append(others, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(others) > 0 {
		t.Fatalf("unexpected errors: %v", others)
	}
	if len(winners) != 1 {
		t.Fatalf("%d winners (%v), want exactly one", len(winners), winners)
	}
	if len(holders) != 1 || holders[winners[0]] != n-1 {
		t.Fatalf("losers saw holders %v, want %s %d times", holders, winners[0], n-1)
	}
	l, err := r.Lease(c, cluster.KindRoute, "live/race")
	must(t, "Lease", err)
	if l.Owner != winners[0] {
		t.Fatalf("Lease owner %q, winner %q", l.Owner, winners[0])
	}
}

func testTakeover(t *testing.T, r cluster.Registry) {
	c := ctx(t)
	old, err := r.Acquire(c, cluster.KindRoute, "live/t", "dead", long)
	must(t, "Acquire", err)
	time.Sleep(20 * time.Millisecond)
	before := time.Now()
	l, err := r.Takeover(c, cluster.KindRoute, "live/t", "dead", "n2", TTL)
	must(t, "Takeover from the holder", err)
	if l.Kind != cluster.KindRoute || l.Path != "live/t" || l.Owner != "n2" {
		t.Fatalf("Takeover = %+v", l)
	}
	if !l.Since.After(old.Since) {
		t.Errorf("Since %s not renewed (old %s)", l.Since, old.Since)
	}
	near(t, "Since", l.Since, before, time.Second)
	near(t, "Expires", l.Expires, before.Add(TTL), 200*time.Millisecond)
	got, err := r.Lease(c, cluster.KindRoute, "live/t")
	must(t, "Lease", err)
	if got.Owner != "n2" {
		t.Fatalf("Lease after Takeover = %+v", got)
	}
	// The former holder learns it lost the lease.
	if lost, err := r.Renew(c, cluster.KindRoute, "live/t", "dead", long); !errors.Is(err, cluster.ErrLeaseLost) || lost.Owner != "n2" {
		t.Fatalf("Renew by the former holder: %+v, %v; want n2's lease, ErrLeaseLost", lost, err)
	}
	// A takeover from a node that holds it no more fails with the holder.
	held, err := r.Takeover(c, cluster.KindRoute, "live/t", "dead", "n3", long)
	if !errors.Is(err, cluster.ErrLeaseHeld) || held.Owner != "n2" {
		t.Fatalf("Takeover from a former holder: %+v, %v; want n2's lease, ErrLeaseHeld", held, err)
	}
	// By the new holder it renews (a retried takeover) and keeps Since.
	again, err := r.Takeover(c, cluster.KindRoute, "live/t", "dead", "n2", long)
	must(t, "Takeover by the holder", err)
	near(t, "Since kept", again.Since, l.Since, 5*time.Millisecond)
	near(t, "Expires extended", again.Expires, time.Now().Add(long), time.Second)
	got, err = r.Lease(c, cluster.KindRoute, "live/t")
	must(t, "Lease", err)
	if got.Owner != "n2" {
		t.Fatalf("the losing Takeover changed the lease: %+v", got)
	}

	// A lease that vanished is acquired, and listed until it expires.
	l, err = r.Takeover(c, cluster.KindRecord, "live/gone", "dead", "n2", TTL)
	must(t, "Takeover of a missing lease", err)
	if l.Owner != "n2" {
		t.Fatalf("Takeover of a missing lease = %+v", l)
	}
	ls, err := r.Leases(c, cluster.KindRecord)
	must(t, "Leases", err)
	if fmt.Sprint(paths(ls)) != "[live/gone]" || ls[0].Owner != "n2" {
		t.Fatalf("Leases(record) after Takeover = %+v", ls)
	}
	eventually(t, TTL+slack, "taken-over lease expires unless renewed", func() (bool, string) {
		ls, err := r.Leases(c, cluster.KindRecord)
		if err != nil {
			return false, err.Error()
		}
		return len(ls) == 0, fmt.Sprint(paths(ls))
	})
	if _, err := r.Renew(c, cluster.KindRecord, "live/gone", "n2", long); err != nil {
		t.Fatalf("Renew of the taken-over lease: %v", err)
	}
}

func testConcurrentTakeover(t *testing.T, r cluster.Registry) {
	c := ctx(t)
	_, err := r.Acquire(c, cluster.KindRecord, "live/race", "dead", long)
	must(t, "Acquire", err)
	const n = 20
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
		holders = map[string]int{}
		others  []error
	)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("node-%02d", i)
			<-start
			l, err := r.Takeover(c, cluster.KindRecord, "live/race", "dead", owner, long)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && l.Owner == owner:
				winners = append(winners, owner)
			case errors.Is(err, cluster.ErrLeaseHeld):
				holders[l.Owner]++
			default:
				others = append(others, fmt.Errorf("%s: %+v, %v", owner, l, err))
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(others) > 0 {
		t.Fatalf("unexpected results: %v", others)
	}
	if len(winners) != 1 {
		t.Fatalf("%d winners (%v), want exactly one", len(winners), winners)
	}
	if len(holders) != 1 || holders[winners[0]] != n-1 {
		t.Fatalf("losers saw holders %v, want %s %d times", holders, winners[0], n-1)
	}
	l, err := r.Lease(c, cluster.KindRecord, "live/race")
	must(t, "Lease", err)
	if l.Owner != winners[0] {
		t.Fatalf("Lease owner %q, winner %q", l.Owner, winners[0])
	}
}

func testApps(t *testing.T, r cluster.Registry) {
	c := ctx(t)
	doc, v, err := r.Apps(c)
	must(t, "Apps on empty registry", err)
	if doc != nil || v != 0 {
		t.Fatalf("Apps on empty registry = %q, %d; want nil, 0", doc, v)
	}
	if _, err := r.SetApps(c, []byte(`[]`), 1); !errors.Is(err, cluster.ErrConflict) {
		t.Fatalf("SetApps ifVersion 1 when none stored: %v, want ErrConflict", err)
	}
	doc1 := []byte(`[{"match":"live/*","record":true}]`)
	v1, err := r.SetApps(c, doc1, 0)
	must(t, "SetApps create", err)
	if v1 < 1 {
		t.Fatalf("first version %d, want >= 1", v1)
	}
	if _, err := r.SetApps(c, []byte(`[]`), 0); !errors.Is(err, cluster.ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}
	doc2 := []byte(`[{"match":"**"}]`)
	v2, err := r.SetApps(c, doc2, v1)
	must(t, "SetApps update", err)
	if v2 <= v1 {
		t.Fatalf("version after update %d, want > %d", v2, v1)
	}
	if _, err := r.SetApps(c, doc1, v1); !errors.Is(err, cluster.ErrConflict) {
		t.Fatalf("update from a stale version: %v, want ErrConflict", err)
	}
	doc, v, err = r.Apps(c)
	must(t, "Apps", err)
	if !bytes.Equal(doc, doc2) || v != v2 {
		t.Fatalf("Apps = %q, %d; want %q, %d", doc, v, doc2, v2)
	}
	// Callers own the returned document.
	doc[0] = 'X'
	doc, _, err = r.Apps(c)
	must(t, "Apps", err)
	if !bytes.Equal(doc, doc2) {
		t.Fatalf("stored document aliased with a caller's slice: %q", doc)
	}
	// Concurrent writers from the same version: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.SetApps(c, fmt.Appendf(nil, `[{"match":"w%d"}]`, i), v2)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
			} else if !errors.Is(err, cluster.ErrConflict) {
				t.Errorf("concurrent SetApps: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d concurrent SetApps from one version won, want 1", wins)
	}
}

func testBadInput(t *testing.T, r cluster.Registry) {
	c := ctx(t)
	bad := map[string]error{
		"Heartbeat without ID":     r.Heartbeat(c, cluster.Node{}, long),
		"Heartbeat with ttl 0":     r.Heartbeat(c, node("n"), 0),
		"Leave without ID":         r.Leave(c, ""),
		"SetDraining without ID":   r.SetDraining(c, "", true),
		"Release without owner":    r.Release(c, cluster.KindRoute, "p", ""),
		"Release without path":     r.Release(c, cluster.KindRoute, "", "n"),
		"Acquire with ttl 0":       second(r.Acquire(c, cluster.KindRoute, "p", "n", 0)),
		"Acquire with negative":    second(r.Acquire(c, cluster.KindRoute, "p", "n", -time.Second)),
		"Acquire without kind":     second(r.Acquire(c, "", "p", "n", long)),
		"Acquire with kind colon":  second(r.Acquire(c, "a:b", "p", "n", long)),
		"Acquire without path":     second(r.Acquire(c, cluster.KindRoute, "", "n", long)),
		"Acquire without owner":    second(r.Acquire(c, cluster.KindRoute, "p", "", long)),
		"Acquire with a huge path": second(r.Acquire(c, cluster.KindRoute, string(make([]byte, 5000)), "n", long)),
		"Renew without owner":      second(r.Renew(c, cluster.KindRoute, "p", "", long)),
		"Takeover without from":    second(r.Takeover(c, cluster.KindRoute, "p", "", "n", long)),
		"Takeover without to":      second(r.Takeover(c, cluster.KindRoute, "p", "n", "", long)),
		"Takeover with ttl 0":      second(r.Takeover(c, cluster.KindRoute, "p", "m", "n", 0)),
		"Takeover without path":    second(r.Takeover(c, cluster.KindRoute, "", "m", "n", long)),
		"Acquire with a bad owner": second(r.Acquire(c, cluster.KindRoute, "p", "n\xff", long)),
		"Heartbeat with a bad ID":  r.Heartbeat(c, node("n\xff"), long),
		"Lease without path":       second(r.Lease(c, cluster.KindRoute, "")),
		"Leases without kind":      second(r.Leases(c, "")),
	}
	for what, err := range bad {
		if err == nil {
			t.Errorf("%s: no error", what)
		}
	}
	// Nothing of the above was stored.
	ls, err := r.Leases(c, cluster.KindRoute)
	must(t, "Leases", err)
	nodes, err2 := r.Nodes(c)
	must(t, "Nodes", err2)
	if len(ls) != 0 || len(nodes) != 0 {
		t.Fatalf("bad input stored something: leases %v, nodes %v", paths(ls), ids(nodes))
	}
	// Any path bytes are fine, colons included.
	odd := "live/a:b c/ü\x00"
	const oddOwner = `owner:1 <&> "ü"`
	_, err = r.Acquire(c, cluster.KindRoute, odd, oddOwner, long)
	must(t, "Acquire of an odd path", err)
	_, err = r.Renew(c, cluster.KindRoute, odd, oddOwner, long)
	must(t, "Renew of an odd path by an odd owner", err)
	l, err := r.Lease(c, cluster.KindRoute, odd)
	must(t, "Lease of an odd path", err)
	if l.Path != odd || l.Owner != oddOwner {
		t.Fatalf("odd path round trip: %+v", l)
	}
	ls, err = r.Leases(c, cluster.KindRoute)
	must(t, "Leases", err)
	if len(ls) != 1 || ls[0].Path != odd {
		t.Fatalf("Leases with an odd path: %+v", ls)
	}
	must(t, "Release by an odd owner", r.Release(c, cluster.KindRoute, odd, oddOwner))
	if _, err := r.Lease(c, cluster.KindRoute, odd); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("odd lease after Release: %v", err)
	}
}

// second returns the error of a two-value call.
func second[T any](_ T, err error) error { return err }

// third returns the error of a three-value call.
func third[T, U any](_ T, _ U, err error) error { return err }

func testCanceled(t *testing.T, r cluster.Registry) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	errs := map[string]error{
		"Heartbeat": r.Heartbeat(c, node("n"), long),
		"Nodes":     second(r.Nodes(c)),
		"Acquire":   second(r.Acquire(c, cluster.KindRoute, "p", "n", long)),
		"Renew":     second(r.Renew(c, cluster.KindRoute, "p", "n", long)),
		"Takeover":  second(r.Takeover(c, cluster.KindRoute, "p", "m", "n", long)),
		"Lease":     second(r.Lease(c, cluster.KindRoute, "p")),
		"Leases":    second(r.Leases(c, cluster.KindRoute)),
		"Apps":      third(r.Apps(c)),
		"SetApps":   second(r.SetApps(c, []byte(`[]`), 0)),
	}
	for what, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: %v, want context.Canceled", what, err)
		}
	}
	live := ctx(t)
	if _, err := r.Lease(live, cluster.KindRoute, "p"); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("a canceled Acquire stored a lease: %v", err)
	}
}

func testClose(t *testing.T, r cluster.Registry) {
	c := ctx(t)
	must(t, "Heartbeat", r.Heartbeat(c, node("n"), long))
	must(t, "Close", r.Close())
	errs := map[string]error{
		"Heartbeat":   r.Heartbeat(c, node("n"), long),
		"Leave":       r.Leave(c, "n"),
		"Nodes":       second(r.Nodes(c)),
		"SetDraining": r.SetDraining(c, "n", true),
		"Acquire":     second(r.Acquire(c, cluster.KindRoute, "p", "n", long)),
		"Renew":       second(r.Renew(c, cluster.KindRoute, "p", "n", long)),
		"Takeover":    second(r.Takeover(c, cluster.KindRoute, "p", "m", "n", long)),
		"Release":     r.Release(c, cluster.KindRoute, "p", "n"),
		"Lease":       second(r.Lease(c, cluster.KindRoute, "p")),
		"Leases":      second(r.Leases(c, cluster.KindRoute)),
		"Apps":        third(r.Apps(c)),
		"SetApps":     second(r.SetApps(c, []byte(`[]`), 0)),
	}
	for what, err := range errs {
		if !errors.Is(err, cluster.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", what, err)
		}
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
