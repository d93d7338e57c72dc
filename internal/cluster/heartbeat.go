package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// minCallTimeout bounds below the time the heartbeater gives one registry call.
const minCallTimeout = 100 * time.Millisecond

// failureLogEvery is how often a component logs a failure that goes on.
const failureLogEvery = 10 * time.Second

// failureLog rate-limits the logging of a failure that repeats: the first
// failure is logged at once, the next ones at most once per every, the
// recovery once. It is used by one goroutine.
type failureLog struct {
	log    *slog.Logger
	every  time.Duration
	since  time.Time // first failure of the run; zero when healthy
	last   time.Time // last failure logged
	count  int       // failures of the run
	quiet  int       // failures not logged since last
	action string
}

// fail records err at now.
func (f *failureLog) fail(now time.Time, err error) {
	f.count++
	if f.since.IsZero() {
		f.since, f.last, f.quiet = now, now, 0
		f.log.Warn(f.action+" failing", "err", err)
		return
	}
	if now.Sub(f.last) < f.every {
		f.quiet++
		return
	}
	f.log.Warn(f.action+" still failing", "err", err, "failures", f.count, "for", now.Sub(f.since).Round(time.Millisecond), "unlogged", f.quiet)
	f.last, f.quiet = now, 0
}

// ok records a success at now.
func (f *failureLog) ok(now time.Time) {
	if f.since.IsZero() {
		return
	}
	f.log.Info(f.action+" recovered", "failures", f.count, "after", now.Sub(f.since).Round(time.Millisecond))
	f.since, f.count, f.quiet = time.Time{}, 0, 0
}

// Heartbeater announces this node in the registry every ttl/3 and removes
// it when it stops.
type Heartbeater struct {
	reg  Registry
	self func() Node
	ttl  time.Duration
	log  *slog.Logger
	fl   failureLog
}

// NewHeartbeater returns a Heartbeater of the node self describes (called
// before each heartbeat, for fresh load figures); each heartbeat lives ttl.
// A nil log logs to slog.Default.
func NewHeartbeater(reg Registry, self func() Node, ttl time.Duration, log *slog.Logger) *Heartbeater {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "heartbeat")
	return &Heartbeater{reg: reg, self: self, ttl: ttl, log: log,
		fl: failureLog{log: log, every: failureLogEvery, action: "registry heartbeat"}}
}

// Run heartbeats at once and every ttl/3 until ctx ends, then calls Leave
// (bounded by ttl/3) and returns nil. Failing heartbeats are retried at the
// next tick and logged at most every 10 s.
func (h *Heartbeater) Run(ctx context.Context) error {
	if h.self == nil || h.reg == nil {
		return errors.New("cluster: heartbeater without registry or node")
	}
	if h.ttl < 3*time.Millisecond {
		return fmt.Errorf("cluster: heartbeat ttl %s: want at least 3ms", h.ttl)
	}
	// A failed heartbeat is retried after a twelfth of the TTL rather than
	// a third: one failure must not leave the node looking dead (⅔ TTL
	// without a heartbeat) to the others.
	timeout := max(h.ttl/6, minCallTimeout)
	every, retry := h.ttl/3, max(h.ttl/12, time.Millisecond)
	timer := time.NewTimer(every)
	defer timer.Stop()
	var id string
loop:
	for {
		n := h.self()
		id = n.ID
		c, cancel := context.WithTimeout(ctx, timeout)
		err := h.reg.Heartbeat(c, n, h.ttl)
		cancel()
		next := every
		switch {
		case ctx.Err() != nil:
			break loop
		case err != nil:
			h.fl.fail(time.Now(), err)
			next = retry
		default:
			h.fl.ok(time.Now())
		}
		timer.Reset(next)
		select {
		case <-ctx.Done():
			break loop
		case <-timer.C:
		}
	}
	if id == "" {
		return nil
	}
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := h.reg.Leave(c, id); err != nil && !errors.Is(err, ErrClosed) {
		h.log.Warn("registry leave failed; the node expires with its last heartbeat", "err", err)
	}
	return nil
}
