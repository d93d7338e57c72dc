package auth

import (
	"fmt"
	"sync"
	"time"
)

// ErrRateLimited means the client IP failed too often lately and is refused
// without checking (HTTP 429).
var ErrRateLimited = fmt.Errorf("%w: too many failed attempts, retry later", ErrUnavailable)

// DefaultLimiterEntries bounds the client IPs a Limiter remembers.
const DefaultLimiterEntries = 65536

// Limiter counts refused attempts per client IP over a fixed window opened
// by the first failure: once an IP reached the limit it is refused until
// its window ends. Memory is bounded: expired entries are swept, and when
// the table is full the oldest of a sample of entries is evicted. It is
// safe for concurrent use.
type Limiter struct {
	limit  int
	window time.Duration
	max    int

	mu        sync.Mutex
	entries   map[string]*limitEntry
	lastSweep time.Time
}

type limitEntry struct {
	start time.Time
	fails int
}

// NewLimiter returns a limiter of limit failures per window, remembering at
// most maxEntries IPs (DefaultLimiterEntries when <= 0). A limit <= 0
// disables it: Allow always answers true.
func NewLimiter(limit int, window time.Duration, maxEntries int) *Limiter {
	if maxEntries <= 0 {
		maxEntries = DefaultLimiterEntries
	}
	return &Limiter{limit: limit, window: window, max: maxEntries, entries: make(map[string]*limitEntry)}
}

// Allow reports whether ip may still try at now.
func (l *Limiter) Allow(ip string, now time.Time) bool {
	if l == nil || l.limit <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[ip]
	if e == nil {
		return true
	}
	if now.Sub(e.start) >= l.window {
		delete(l.entries, ip)
		return true
	}
	return e.fails < l.limit
}

// Fail counts one refused attempt of ip at now.
func (l *Limiter) Fail(ip string, now time.Time) {
	if l == nil || l.limit <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[ip]
	if e != nil && now.Sub(e.start) >= l.window {
		e.start, e.fails = now, 0
	}
	if e == nil {
		if len(l.entries) >= l.max {
			l.evict(now)
		}
		e = &limitEntry{start: now}
		l.entries[ip] = e
	}
	e.fails++
}

// Len returns how many IPs the limiter remembers.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// evict makes room for one entry: expired entries go first (swept at most every quarter window), then the oldest
// of up to 32 entries (map order is random, so this is a random sample).
func (l *Limiter) evict(now time.Time) {
	// A full sweep at most a few times per window keeps a flood of new
	// IPs from costing a whole table scan each.
	if now.Sub(l.lastSweep) >= l.window/4 {
		l.lastSweep = now
		for ip, e := range l.entries {
			if now.Sub(e.start) >= l.window {
				delete(l.entries, ip)
			}
		}
	}
	if len(l.entries) < l.max {
		return
	}
	var (
		oldest string
		at     time.Time
		n      int
	)
	for ip, e := range l.entries {
		if n == 0 || e.start.Before(at) {
			oldest, at = ip, e.start
		}
		if n++; n == 32 {
			break
		}
	}
	delete(l.entries, oldest)
}
