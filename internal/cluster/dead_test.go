package cluster_test

import (
	"testing"
	"time"

	"github.com/quasipaa/quasipaa/internal/cluster"
)

func TestDead(t *testing.T) {
	const ttl = 9 * time.Second
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	nodes := []cluster.Node{
		{ID: "fresh", Seen: base},
		{ID: "late", Seen: base.Add(-6 * time.Second)},                    // exactly ⅔ ttl behind: alive
		{ID: "silent", Seen: base.Add(-6*time.Second - time.Millisecond)}, // just over
		{ID: "ahead", Seen: base.Add(-time.Second)},
	}
	cases := map[string]bool{"fresh": false, "late": false, "silent": true, "ahead": false, "absent": true}
	for id, want := range cases {
		if got := cluster.Dead(nodes, id, ttl); got != want {
			t.Errorf("Dead(%q) = %v, want %v", id, got, want)
		}
	}
	// Only heartbeats are compared: a listing where every node is silent
	// (as seen from a skewed local clock) presumes none dead.
	old := []cluster.Node{{ID: "a", Seen: base.Add(-time.Hour)}, {ID: "b", Seen: base.Add(-time.Hour - time.Second)}}
	if cluster.Dead(old, "a", ttl) || cluster.Dead(old, "b", ttl) {
		t.Error("nodes within ⅔ ttl of the newest heartbeat presumed dead")
	}
	if !cluster.Dead(nil, "a", ttl) {
		t.Error("a node absent from an empty listing is not presumed dead")
	}
}

// TestDeadTo presumes a node dead only from a listing where the caller
// itself is alive, and never the caller or an empty id.
func TestDeadTo(t *testing.T) {
	const ttl = 9 * time.Second
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	nodes := []cluster.Node{
		{ID: "me", Seen: base},
		{ID: "alive", Seen: base.Add(-time.Second)},
		{ID: "silent", Seen: base.Add(-7 * time.Second)},
	}
	cases := []struct {
		self, id string
		want     bool
	}{
		{"me", "silent", true},
		{"me", "absent", true},
		{"me", "alive", false},
		{"me", "me", false},
		{"me", "", false},
		{"silent", "me", false},       // a silent node trusts no listing
		{"unlisted", "silent", false}, // nor does one the listing lacks
	}
	for _, c := range cases {
		if got := cluster.DeadTo(nodes, c.self, c.id, ttl); got != c.want {
			t.Errorf("DeadTo(%q, %q) = %v, want %v", c.self, c.id, got, c.want)
		}
	}
}
