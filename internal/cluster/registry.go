package cluster

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors of every Registry.
var (
	// ErrLeaseHeld means another owner holds the lease.
	ErrLeaseHeld = errors.New("cluster: lease held by another node")
	// ErrLeaseLost means the caller no longer holds the lease it renews or releases.
	ErrLeaseLost = errors.New("cluster: lease lost")
	// ErrNotFound means the node, lease or app asked for does not exist.
	ErrNotFound = errors.New("cluster: not found")
	// ErrConflict means a compare-and-set saw a newer version than the caller's.
	ErrConflict = errors.New("cluster: version conflict")
	// ErrClosed means the registry was closed.
	ErrClosed = errors.New("cluster: registry closed")
)

// Role names a node may run.
const (
	RolePublish  = "publish"
	RoleExchange = "exchange"
	RolePull     = "pull"
	RoleCore     = "core"
)

// Lease kinds.
const (
	// KindRoute is the lease "stream path → publish node that has its publisher".
	KindRoute = "route"
	// KindRecord is the recording job of a stream.
	KindRecord = "record"
	// KindHLS is the HLS packaging job of a stream.
	KindHLS = "hls"
)

// Load is what a node reports about itself in each heartbeat.
type Load struct {
	// CPU is the process's CPU use over the last interval, in cores (1.0 = one core busy).
	CPU float64 `json:"cpu"`
	// Cores is the number of CPUs the process may use.
	Cores int `json:"cores"`
	// Connections counts publishers plus viewers.
	Connections int `json:"connections"`
	// Publishers counts publishing clients.
	Publishers int `json:"publishers"`
	// Viewers counts playing clients (relay readers included).
	Viewers int `json:"viewers"`
	// Streams counts the streams in the node's hub.
	Streams int `json:"streams"`
	// IngressBps is the bit rate received from publishers, bit/s.
	IngressBps int64 `json:"ingress_bps"`
	// EgressBps is the bit rate sent to viewers, bit/s.
	EgressBps int64 `json:"egress_bps"`
}

// Node is one node of the cluster as it last announced itself.
type Node struct {
	// ID is unique in the cluster (cluster.node_id).
	ID string `json:"id"`
	// Roles are the roles the node runs.
	Roles []string `json:"roles"`
	// Region is a free-form location label; "" is none.
	Region string `json:"region,omitempty"`
	// Weight scales the node's share of dispatched clients (1 is normal).
	Weight float64 `json:"weight"`
	// HTTP is the base URL of the node's HTTP listener, e.g. http://10.0.0.21:8080.
	HTTP string `json:"http"`
	// RTMP is the host:port of its RTMP listener; "" when it has none.
	RTMP string `json:"rtmp,omitempty"`
	// Version is the node's software version.
	Version string `json:"version,omitempty"`
	// Started is when the node started.
	Started time.Time `json:"started"`
	// Seen is when the node last heartbeated (set by the registry).
	Seen time.Time `json:"seen"`
	// Draining is set by the operator: the node gets no new clients.
	Draining bool `json:"draining"`
	// Load is the node's load at Seen.
	Load Load `json:"load"`
}

// HasRole reports whether n runs role.
func (n *Node) HasRole(role string) bool {
	for _, r := range n.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// Lease is a claim of one owner on a key (kind + stream path), valid until
// Expires unless renewed.
type Lease struct {
	Kind    string    `json:"kind"`
	Path    string    `json:"path"`
	Owner   string    `json:"owner"`
	Since   time.Time `json:"since"`
	Expires time.Time `json:"expires"`
}

// Registry is the cluster's shared state. Every method is safe for
// concurrent use; ctx bounds the call.
type Registry interface {
	// Heartbeat announces n (ID, roles, addresses, load) for ttl. The
	// draining flag is not taken from n: it is kept by SetDraining.
	Heartbeat(ctx context.Context, n Node, ttl time.Duration) error
	// Leave removes the node at once (graceful shutdown).
	Leave(ctx context.Context, id string) error
	// Nodes lists the nodes whose heartbeat has not expired, sorted by ID,
	// with their draining flag.
	Nodes(ctx context.Context) ([]Node, error)
	// SetDraining sets or clears the draining flag of node id; ErrNotFound
	// when no such node is alive. The flag outlives heartbeats (not restarts
	// of the registry's storage).
	SetDraining(ctx context.Context, id string, draining bool) error

	// Acquire claims the lease kind/path for owner for ttl. Claiming a lease
	// the owner already holds renews it. ErrLeaseHeld (with the holder's
	// lease) when another owner holds it.
	Acquire(ctx context.Context, kind, path, owner string, ttl time.Duration) (Lease, error)
	// Renew extends owner's lease for ttl, re-creating it if it expired or
	// vanished (e.g. Redis restarted) and nobody else took it; ErrLeaseLost
	// when another owner holds it now.
	Renew(ctx context.Context, kind, path, owner string, ttl time.Duration) (Lease, error)
	// Takeover atomically hands the lease kind/path held by from (a node
	// presumed dead, see Dead) to owner to for ttl, with a new Since: a
	// compare-and-set on the owner. When the lease vanished meanwhile it is
	// acquired for to, and when to holds it already it is renewed. It fails
	// with ErrLeaseHeld (and the holder's lease) when another owner than
	// from or to holds it, so of concurrent takeovers one wins.
	Takeover(ctx context.Context, kind, path, from, to string, ttl time.Duration) (Lease, error)
	// Release drops owner's lease; releasing a lease one does not hold is a no-op.
	Release(ctx context.Context, kind, path, owner string) error
	// Lease returns the current lease kind/path; ErrNotFound when none.
	Lease(ctx context.Context, kind, path string) (Lease, error)
	// Leases lists the live leases of kind, sorted by path.
	Leases(ctx context.Context, kind string) ([]Lease, error)

	// Apps returns the stored per-app policy document (an opaque JSON
	// document owned by the caller) and its version; version 0 and a nil
	// document when nothing was ever stored.
	Apps(ctx context.Context) (doc []byte, version int64, err error)
	// SetApps stores doc if the stored version is still ifVersion (0: only
	// if none is stored) and returns the new version; ErrConflict otherwise.
	SetApps(ctx context.Context, doc []byte, ifVersion int64) (int64, error)

	// Close releases the registry's resources; later calls return ErrClosed.
	Close() error
}
