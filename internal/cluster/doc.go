// Package cluster holds the shared state of a Quasipaa cluster behind one
// interface, Registry: node heartbeats with their load, leases (stream routes
// and exchange jobs) that vanish when their owner stops renewing them, and
// the per-app policy list. Memory is the single-process implementation;
// Redis is the cluster one. Both pass the same contract tests (clustertest).
// Heartbeater renews a node's heartbeat, CPUSampler measures the CPU figure
// of its Load, Dead tells a node presumed dead from a listing, and HolderHTTP
// finds the node holding a lease.
//
// # Keys in Redis
//
// Every key starts with a prefix, "quasipaa:" unless WithPrefix says
// otherwise ({p} below). Times in index scores are the Redis server's
// clock in milliseconds, so clock skew between nodes does not matter.
//
//	{p}lease:{kind}:{path}  string, PX ttl: JSON {"owner","since"} of one lease
//	{p}leases:{kind}        sorted set: member path, score expiry (ms); the
//	                        index Leases reads instead of KEYS/SCAN
//	{p}node:{id}            string, PX ttl: the JSON Node of a heartbeat,
//	                        plus "seen_ms": the server's clock (Node.Seen)
//	{p}nodes                sorted set: member node id, score expiry (ms)
//	{p}drain:{id}           string "1", no TTL: node id is draining
//	{p}apps                 hash: doc (the apps JSON document), version
//
// Acquire and Renew are one Lua script: a lease key held by another owner
// is left alone; one held by the caller gets PEXPIRE; a missing one is
// created with SET NX PX (Renew re-creates a lease lost to a Redis restart
// or an expiry when nobody else took it). Takeover is a compare-and-set
// script on the owner: the key is overwritten only if the presumed-dead
// owner still holds it (or created if missing). Release deletes the key only if
// the caller owns it. Each claim also drops the expired members of its
// index, and Leases/Nodes do the same before listing, so the indexes stay
// as small as the live sets. A heartbeat on a node key that does not exist
// (a new node, or one back after Leave or expiry) deletes its drain key
// first: the draining flag survives heartbeats, not the node's absence.
// SetApps is a compare-and-set script on the version field.
//
// Redis keeps all of it in memory only (no persistence needed): after a
// restart the owners' next Renew and Heartbeat re-create their keys within
// one renewal interval; the apps document must be stored again by core.
package cluster
