package cluster

import "time"

// Dead reports whether node id is presumed dead in nodes, a listing from
// Registry.Nodes, for heartbeats of ttl (sent every ttl/3): it is absent, or
// its last heartbeat (Seen) is more than two thirds of ttl older than the
// newest heartbeat of the listing. Comparing heartbeats with each other
// rather than with the local clock keeps the caller's clock out of it: Seen
// is set by the registry (its own clock for Memory, the Redis server's for
// Redis), so skewed node clocks do not matter. As long as one node of the
// listing heartbeats (normally the caller), a node silent for ⅔ ttl is
// presumed dead — about a third of ttl before its leases expire; when none
// does, no listed node is presumed dead and leases expire on their own.
func Dead(nodes []Node, id string, ttl time.Duration) bool {
	var seen, newest time.Time
	found := false
	for i := range nodes {
		if nodes[i].ID == id {
			seen, found = nodes[i].Seen, true
		}
		if nodes[i].Seen.After(newest) {
			newest = nodes[i].Seen
		}
	}
	return !found || newest.Sub(seen) > 2*ttl/3
}

// DeadTo reports whether node self may presume node id dead from nodes, a
// listing from Registry.Nodes, for heartbeats of ttl: id is another node
// (not "" nor self) that is Dead, and self is not Dead itself. A node absent
// or silent in its own listing has a stale view of the registry (e.g. Redis
// restarted and the heartbeats are not all back): it presumes nobody dead,
// and takes nothing over on that view.
func DeadTo(nodes []Node, self, id string, ttl time.Duration) bool {
	return id != "" && id != self && !Dead(nodes, self, ttl) && Dead(nodes, id, ttl)
}
