package cluster

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Memory is the single-process Registry: maps under one mutex, with expiry
// times checked whenever an entry is read. It is the state of the embedded
// (one node) deployment.
type Memory struct {
	now func() time.Time

	mu       sync.Mutex
	closed   bool
	nodes    map[string]memNode
	draining map[string]bool
	leases   map[string]map[string]Lease // kind → path → lease
	apps     []byte
	version  int64
}

// memNode is a node and when its heartbeat expires.
type memNode struct {
	node    Node
	expires time.Time
}

// MemoryOption configures NewMemory.
type MemoryOption func(*Memory)

// WithClock makes the registry read the time from now (tests).
func WithClock(now func() time.Time) MemoryOption {
	return func(m *Memory) {
		if now != nil {
			m.now = now
		}
	}
}

// NewMemory returns an empty in-process registry.
func NewMemory(opts ...MemoryOption) *Memory {
	m := &Memory{
		now:      time.Now,
		nodes:    make(map[string]memNode),
		draining: make(map[string]bool),
		leases:   make(map[string]map[string]Lease),
	}
	for _, o := range opts {
		o(m)
	}
	return m
}

var _ Registry = (*Memory)(nil)

// lock takes the mutex unless ctx is done or m is closed.
func (m *Memory) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// aliveLocked returns node id if its heartbeat has not expired, dropping it
// (and its draining flag) if it has.
func (m *Memory) aliveLocked(id string, now time.Time) (memNode, bool) {
	e, ok := m.nodes[id]
	if !ok {
		return memNode{}, false
	}
	if !now.Before(e.expires) {
		delete(m.nodes, id)
		delete(m.draining, id)
		return memNode{}, false
	}
	return e, true
}

// Heartbeat implements Registry.
func (m *Memory) Heartbeat(ctx context.Context, n Node, ttl time.Duration) error {
	if err := checkID(n.ID); err != nil {
		return err
	}
	if err := checkTTL(ttl); err != nil {
		return err
	}
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	now := m.now()
	if _, ok := m.aliveLocked(n.ID, now); !ok {
		delete(m.draining, n.ID) // a node that comes back starts afresh
	}
	n = copyNode(n)
	n.Seen = now
	n.Draining = false
	m.nodes[n.ID] = memNode{node: n, expires: now.Add(ttl)}
	return nil
}

// Leave implements Registry.
func (m *Memory) Leave(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	delete(m.nodes, id)
	delete(m.draining, id)
	return nil
}

// Nodes implements Registry.
func (m *Memory) Nodes(ctx context.Context) ([]Node, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	now := m.now()
	out := make([]Node, 0, len(m.nodes))
	for id := range m.nodes {
		e, ok := m.aliveLocked(id, now)
		if !ok {
			continue
		}
		n := copyNode(e.node)
		n.Draining = m.draining[id]
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// SetDraining implements Registry.
func (m *Memory) SetDraining(ctx context.Context, id string, draining bool) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, ok := m.aliveLocked(id, m.now()); !ok {
		return fmt.Errorf("%w: node %q", ErrNotFound, id)
	}
	if draining {
		m.draining[id] = true
	} else {
		delete(m.draining, id)
	}
	return nil
}

// leaseLocked returns the live lease kind/path, dropping it if expired.
func (m *Memory) leaseLocked(kind, path string, now time.Time) (Lease, bool) {
	byPath := m.leases[kind]
	l, ok := byPath[path]
	if !ok {
		return Lease{}, false
	}
	if !now.Before(l.Expires) {
		delete(byPath, path)
		return Lease{}, false
	}
	return l, true
}

// claim is Acquire and Renew: take or extend kind/path for owner, or report
// the other holder with sentinel.
func (m *Memory) claim(ctx context.Context, kind, path, owner string, ttl time.Duration, sentinel error) (Lease, error) {
	if err := checkLease(ctx, kind, path, owner, ttl); err != nil {
		return Lease{}, err
	}
	if err := m.lock(ctx); err != nil {
		return Lease{}, err
	}
	defer m.mu.Unlock()
	now := m.now()
	l, ok := m.leaseLocked(kind, path, now)
	if ok && l.Owner != owner {
		return l, heldError(sentinel, l)
	}
	if !ok {
		l = Lease{Kind: kind, Path: path, Owner: owner, Since: now}
	}
	l.Expires = now.Add(ttl)
	if m.leases[kind] == nil {
		m.leases[kind] = make(map[string]Lease)
	}
	m.leases[kind][path] = l
	return l, nil
}

// Acquire implements Registry.
func (m *Memory) Acquire(ctx context.Context, kind, path, owner string, ttl time.Duration) (Lease, error) {
	return m.claim(ctx, kind, path, owner, ttl, ErrLeaseHeld)
}

// Renew implements Registry.
func (m *Memory) Renew(ctx context.Context, kind, path, owner string, ttl time.Duration) (Lease, error) {
	return m.claim(ctx, kind, path, owner, ttl, ErrLeaseLost)
}

// Takeover implements Registry.
func (m *Memory) Takeover(ctx context.Context, kind, path, from, to string, ttl time.Duration) (Lease, error) {
	if err := checkLease(ctx, kind, path, to, ttl); err != nil {
		return Lease{}, err
	}
	if err := checkOwner(from); err != nil {
		return Lease{}, err
	}
	if err := m.lock(ctx); err != nil {
		return Lease{}, err
	}
	defer m.mu.Unlock()
	now := m.now()
	l, ok := m.leaseLocked(kind, path, now)
	switch {
	case ok && l.Owner != from && l.Owner != to:
		return l, heldError(ErrLeaseHeld, l)
	case !ok || l.Owner != to:
		l = Lease{Kind: kind, Path: path, Owner: to, Since: now}
	}
	l.Expires = now.Add(ttl)
	if m.leases[kind] == nil {
		m.leases[kind] = make(map[string]Lease)
	}
	m.leases[kind][path] = l
	return l, nil
}

// Release implements Registry.
func (m *Memory) Release(ctx context.Context, kind, path, owner string) error {
	if err := checkKey(kind, path); err != nil {
		return err
	}
	if err := checkOwner(owner); err != nil {
		return err
	}
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if l, ok := m.leaseLocked(kind, path, m.now()); ok && l.Owner == owner {
		delete(m.leases[kind], path)
	}
	return nil
}

// Lease implements Registry.
func (m *Memory) Lease(ctx context.Context, kind, path string) (Lease, error) {
	if err := checkKey(kind, path); err != nil {
		return Lease{}, err
	}
	if err := m.lock(ctx); err != nil {
		return Lease{}, err
	}
	defer m.mu.Unlock()
	l, ok := m.leaseLocked(kind, path, m.now())
	if !ok {
		return Lease{}, fmt.Errorf("%w: %s lease %q", ErrNotFound, kind, path)
	}
	return l, nil
}

// Leases implements Registry.
func (m *Memory) Leases(ctx context.Context, kind string) ([]Lease, error) {
	if err := checkKey(kind, "-"); err != nil {
		return nil, err
	}
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	now := m.now()
	out := make([]Lease, 0, len(m.leases[kind]))
	for path := range m.leases[kind] {
		if l, ok := m.leaseLocked(kind, path, now); ok {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// Apps implements Registry.
func (m *Memory) Apps(ctx context.Context) ([]byte, int64, error) {
	if err := m.lock(ctx); err != nil {
		return nil, 0, err
	}
	defer m.mu.Unlock()
	if m.version == 0 {
		return nil, 0, nil
	}
	return bytes.Clone(m.apps), m.version, nil
}

// SetApps implements Registry.
func (m *Memory) SetApps(ctx context.Context, doc []byte, ifVersion int64) (int64, error) {
	if err := m.lock(ctx); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	if ifVersion != m.version {
		return 0, fmt.Errorf("%w: apps are at version %d, not %d", ErrConflict, m.version, ifVersion)
	}
	m.version++
	m.apps = bytes.Clone(doc)
	if m.apps == nil {
		m.apps = []byte{}
	}
	return m.version, nil
}

// Close implements Registry; it drops all state.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.nodes, m.draining, m.leases, m.apps = nil, nil, nil, nil
	return nil
}
