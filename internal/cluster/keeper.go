package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// lostBuffer is the capacity of LeaseKeeper.Lost.
const lostBuffer = 64

// minCallTimeout bounds below the time a keeper gives one registry call.
const minCallTimeout = 100 * time.Millisecond

// LeaseKeeper holds a set of leases for one owner and renews them every
// ttl/3 from the goroutine of Run. A lease another owner took (ErrLeaseLost),
// or one that could not be renewed before its expiry (registry unreachable),
// is dropped from the set and reported on Lost and to the OnLost function.
// Renewal errors before the expiry are retried at the next tick.
type LeaseKeeper struct {
	reg    Registry
	owner  string
	ttl    time.Duration
	log    *slog.Logger
	onLost func(Lease)
	now    func() time.Time
	lost   chan Lease

	mu      sync.Mutex
	held    map[leaseKey]*heldLease
	closed  bool
	running bool
	done    chan struct{} // closed by Close
	fl      failureLog    // used by Run's goroutine only
}

// leaseKey names a lease of the keeper.
type leaseKey struct{ kind, path string }

// heldLease is one lease of the keeper. Its mutex serialises the registry
// calls on it, so a renewal cannot re-create a lease being dropped.
type heldLease struct {
	mu         sync.Mutex
	lease      Lease
	validUntil time.Time // local time before the last successful claim + ttl
	gone       bool      // dropped, lost or never acquired: out of the map
}

// KeeperOption configures NewLeaseKeeper.
type KeeperOption func(*LeaseKeeper)

// WithOnLost calls f, from the keeper's goroutine, with each lease the
// keeper lost. f must return quickly; it may call Hold and Drop.
func WithOnLost(f func(Lease)) KeeperOption {
	return func(k *LeaseKeeper) { k.onLost = f }
}

// NewLeaseKeeper returns a keeper of owner's leases in reg, each claimed
// for ttl. A nil log logs to slog.Default.
func NewLeaseKeeper(reg Registry, owner string, ttl time.Duration, log *slog.Logger, opts ...KeeperOption) *LeaseKeeper {
	if log == nil {
		log = slog.Default()
	}
	k := &LeaseKeeper{
		reg:   reg,
		owner: owner,
		ttl:   ttl,
		log:   log.With("component", "lease-keeper", "owner", owner),
		now:   time.Now,
		lost:  make(chan Lease, lostBuffer),
		held:  make(map[leaseKey]*heldLease),
		done:  make(chan struct{}),
	}
	for _, o := range opts {
		o(k)
	}
	k.fl = failureLog{log: k.log, every: failureLogEvery, action: "lease renewal"}
	return k
}

// Owner is the owner the keeper claims leases for.
func (k *LeaseKeeper) Owner() string { return k.owner }

// Lost reports the leases the keeper lost. It is buffered; when nobody
// reads it, further losses are still logged and passed to OnLost but not
// queued here.
func (k *LeaseKeeper) Lost() <-chan Lease { return k.lost }

// callTimeout bounds one registry call.
func (k *LeaseKeeper) callTimeout() time.Duration {
	return max(k.ttl/3, minCallTimeout)
}

// entry returns the lease kind/path of the set, creating it if absent.
func (k *LeaseKeeper) entry(key leaseKey) (*heldLease, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil, ErrClosed
	}
	e := k.held[key]
	if e == nil {
		e = &heldLease{}
		k.held[key] = e
	}
	return e, nil
}

// remove takes e out of the set. The caller holds e.mu.
func (k *LeaseKeeper) remove(key leaseKey, e *heldLease) {
	e.gone = true
	k.mu.Lock()
	if k.held[key] == e {
		delete(k.held, key)
	}
	k.mu.Unlock()
}

// Hold acquires kind/path for the keeper's owner and keeps it renewed until
// Drop, Close or its loss. ErrLeaseHeld (and nothing kept) when another
// owner holds it; holding a lease the keeper holds already renews it.
func (k *LeaseKeeper) Hold(ctx context.Context, kind, path string) error {
	key := leaseKey{kind, path}
	for range 10 { // an entry dropped meanwhile is replaced: retry, boundedly
		e, err := k.entry(key)
		if err != nil {
			return err
		}
		e.mu.Lock()
		if e.gone {
			e.mu.Unlock()
			continue
		}
		start := k.now()
		l, err := k.reg.Acquire(ctx, kind, path, k.owner, k.ttl)
		if err != nil {
			if e.lease.Owner == "" { // never held: forget it
				k.remove(key, e)
			}
			e.mu.Unlock()
			return err
		}
		e.lease, e.validUntil = l, start.Add(k.ttl)
		e.mu.Unlock()
		return nil
	}
	return fmt.Errorf("cluster: hold %s %q: dropped concurrently", kind, path)
}

// Drop releases kind/path and stops renewing it; dropping a lease the
// keeper does not hold does nothing.
func (k *LeaseKeeper) Drop(kind, path string) error {
	key := leaseKey{kind, path}
	k.mu.Lock()
	e := k.held[key]
	k.mu.Unlock()
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gone {
		return nil
	}
	k.remove(key, e)
	ctx, cancel := context.WithTimeout(context.Background(), k.callTimeout())
	defer cancel()
	if err := k.reg.Release(ctx, kind, path, k.owner); err != nil {
		return fmt.Errorf("cluster: release %s %q: %w", kind, path, err)
	}
	return nil
}

// Held lists the leases the keeper holds, sorted by kind then path, as of
// their last renewal.
func (k *LeaseKeeper) Held() []Lease {
	k.mu.Lock()
	entries := make([]*heldLease, 0, len(k.held))
	for _, e := range k.held {
		entries = append(entries, e)
	}
	k.mu.Unlock()
	out := make([]Lease, 0, len(entries))
	for _, e := range entries {
		e.mu.Lock()
		if !e.gone && e.lease.Owner != "" {
			out = append(out, e.lease)
		}
		e.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Path < out[j].Path
	})
	return out
}

// Run renews the leases every ttl/3 (and once at once) until ctx ends or
// Close; it returns nil then. One Run at a time.
func (k *LeaseKeeper) Run(ctx context.Context) error {
	if k.ttl < 3*time.Millisecond {
		return fmt.Errorf("cluster: lease keeper ttl %s: want at least 3ms", k.ttl)
	}
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return ErrClosed
	}
	if k.running {
		k.mu.Unlock()
		return errors.New("cluster: lease keeper already running")
	}
	k.running = true
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		k.running = false
		k.mu.Unlock()
	}()
	tick := time.NewTicker(k.ttl / 3)
	defer tick.Stop()
	for {
		k.renewAll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-k.done:
			return nil
		case <-tick.C:
		}
	}
}

// renewAll renews every lease of the set once.
func (k *LeaseKeeper) renewAll(ctx context.Context) {
	k.mu.Lock()
	keys := make([]leaseKey, 0, len(k.held))
	entries := make([]*heldLease, 0, len(k.held))
	for key, e := range k.held {
		keys = append(keys, key)
		entries = append(entries, e)
	}
	k.mu.Unlock()
	// One pass is bounded by ttl/3 however many leases there are, so an
	// unresponsive registry does not delay the expiry checks of the last ones.
	pass, cancel := context.WithTimeout(ctx, k.callTimeout())
	defer cancel()
	failed := 0
	var firstErr error
	for i, e := range entries {
		if ctx.Err() != nil {
			return
		}
		lost, err := k.renew(ctx, pass, keys[i], e)
		if lost != nil {
			k.report(*lost, err)
		} else if err != nil {
			failed++
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	if failed > 0 {
		k.fl.fail(k.now(), fmt.Errorf("%d of %d leases not renewed (retrying until they expire): %w", failed, len(entries), firstErr))
	} else if len(entries) > 0 {
		k.fl.ok(k.now())
	}
}

// renew renews one lease within pass; ctx is Run's. It returns the lease
// if the keeper lost it (with why), or the error of a renewal to retry.
func (k *LeaseKeeper) renew(ctx, pass context.Context, key leaseKey, e *heldLease) (*Lease, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gone || e.lease.Owner == "" {
		return nil, nil
	}
	start := k.now()
	l, err := k.reg.Renew(pass, key.kind, key.path, k.owner, k.ttl)
	switch {
	case err == nil:
		e.lease, e.validUntil = l, start.Add(k.ttl)
		return nil, nil
	case errors.Is(err, ErrLeaseLost):
		k.remove(key, e)
		lost := e.lease
		return &lost, err
	case ctx.Err() != nil:
		return nil, nil // stopping: not a failure
	case !k.now().Before(e.validUntil):
		k.remove(key, e)
		lost := e.lease
		return &lost, fmt.Errorf("not renewed before its expiry: %w", err)
	default:
		return nil, err
	}
}

// report passes a lost lease to the log, OnLost and Lost.
func (k *LeaseKeeper) report(l Lease, why error) {
	k.log.Warn("lease lost", "kind", l.Kind, "path", l.Path, "err", why)
	if k.onLost != nil {
		k.onLost(l)
	}
	select {
	case k.lost <- l:
	default:
		k.log.Warn("lost-lease queue full; not queued", "kind", l.Kind, "path", l.Path)
	}
}

// Close stops Run, releases every lease the keeper holds and returns the
// release errors. Later Holds return ErrClosed.
func (k *LeaseKeeper) Close() error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.closed = true
	close(k.done)
	keys := make([]leaseKey, 0, len(k.held))
	for key := range k.held {
		keys = append(keys, key)
	}
	k.mu.Unlock()
	var errs []error
	for _, key := range keys {
		if err := k.Drop(key.kind, key.path); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
