package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/hub"
)

// Routes holds the route lease "stream path → this node" of every stream
// published here, so that a path has one publisher in the whole cluster and
// pull nodes know where to relay it from. A lease is taken when a publisher
// is admitted, renewed while the stream is in the hub (its grace period
// included) and released when the stream ends; if the node dies, it expires
// after the TTL, or is taken over sooner by the node where the publisher
// comes back, once the dead node has been silent for ⅔ of the TTL.
type Routes struct {
	reg  cluster.Registry
	node string
	ttl  time.Duration
	hub  *hub.Hub
	log  *slog.Logger

	mu   sync.Mutex
	held map[string]bool
}

// NewRoutes returns the route keeper of node over reg.
func NewRoutes(reg cluster.Registry, node string, ttl time.Duration, h *hub.Hub, log *slog.Logger) *Routes {
	return &Routes{reg: reg, node: node, ttl: ttl, hub: h, log: log, held: map[string]bool{}}
}

// Claim takes the route of path for this node. It fails with an error
// wrapping hub.ErrStreamBusy when another node holds it, so protocols refuse
// the publisher as they refuse a busy stream. A route held by a node
// presumed dead (cluster.Dead: silent for ⅔ of the TTL) is taken over at
// once rather than when it expires, so that an encoder republishing to
// this node after its node crashed is not refused for up to a TTL.
func (r *Routes) Claim(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	l, err := r.reg.Acquire(ctx, cluster.KindRoute, path, r.node, r.ttl)
	if errors.Is(err, cluster.ErrLeaseHeld) && r.dead(ctx, l.Owner) {
		from := l.Owner
		l, err = r.reg.Takeover(ctx, cluster.KindRoute, path, from, r.node, r.ttl)
		if err == nil {
			r.log.Info("route taken over from dead node "+from, "stream", path, "from", from)
		}
	}
	switch {
	case errors.Is(err, cluster.ErrLeaseHeld):
		return fmt.Errorf("%w: published on node %s", hub.ErrStreamBusy, l.Owner)
	case err != nil:
		return fmt.Errorf("cluster registry unavailable: %w", err)
	}
	r.mu.Lock()
	r.held[path] = true
	r.mu.Unlock()
	return nil
}

// dead reports whether this node may presume node dead (cluster.DeadTo:
// not when its own view of the registry is stale). It says no when the
// registry cannot be read.
func (r *Routes) dead(ctx context.Context, node string) bool {
	nodes, err := r.reg.Nodes(ctx)
	if err != nil {
		r.log.Warn("cannot list nodes to check a route's holder", "holder", node, "err", err)
		return false
	}
	return cluster.DeadTo(nodes, r.node, node, r.ttl)
}

// Held returns the paths whose route this node holds.
func (r *Routes) Held() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.held))
	for p := range r.held {
		out = append(out, p)
	}
	return out
}

// Run renews the held routes every third of the TTL, releases those whose
// stream ended, and releases them all when ctx ends.
func (r *Routes) Run(ctx context.Context) {
	t := time.NewTicker(r.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			r.releaseAll()
			return
		case <-t.C:
			r.reconcile(ctx)
		}
	}
}

func (r *Routes) reconcile(ctx context.Context) {
	for _, path := range r.Held() {
		if _, live := r.hub.Stream(path); !live {
			r.drop(ctx, path)
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, r.ttl/3)
		_, err := r.reg.Renew(rctx, cluster.KindRoute, path, r.node, r.ttl)
		cancel()
		switch {
		case errors.Is(err, cluster.ErrLeaseLost):
			// Another node took the path (this one was cut off longer than
			// the TTL): two publishers would split the viewers, so this one
			// gives way.
			r.log.Warn("route lost to another node; ending the local stream", "stream", path)
			r.forget(path)
			if info, ok := r.hub.Stream(path); ok && info.Publisher != nil {
				_ = r.hub.Kick(path, info.Publisher.ID)
			}
		case err != nil && ctx.Err() == nil:
			r.log.Warn("route renewal failed; retrying", "stream", path, "err", err)
		}
	}
}

func (r *Routes) drop(ctx context.Context, path string) {
	r.forget(path)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := r.reg.Release(rctx, cluster.KindRoute, path, r.node); err != nil {
		r.log.Warn("route release failed; it expires on its own", "stream", path, "err", err)
	}
}

func (r *Routes) forget(path string) {
	r.mu.Lock()
	delete(r.held, path)
	r.mu.Unlock()
}

func (r *Routes) releaseAll() {
	for _, path := range r.Held() {
		r.drop(context.Background(), path)
	}
}
