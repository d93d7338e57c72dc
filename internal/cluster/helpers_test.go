package cluster_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/cluster/redistest"
)

// errDown is the failure flaky injects.
var errDown = errors.New("injected: registry unreachable")

// flaky is a Registry whose Heartbeat fails while down is set (unit tests
// of the heartbeater only).
type flaky struct {
	cluster.Registry
	down atomic.Bool
}

func (f *flaky) Heartbeat(ctx context.Context, n cluster.Node, ttl time.Duration) error {
	if f.down.Load() {
		return errDown
	}
	return f.Registry.Heartbeat(ctx, n, ttl)
}

// backend is a registry implementation under test, with a way to make a
// second client of the same state.
type backend struct {
	name string
	// open returns a registry and, for Redis, its server (nil for memory).
	open func(t *testing.T) (cluster.Registry, *redistest.Server)
}

// backends runs fn against the memory and the Redis registry.
func backends(t *testing.T, fn func(t *testing.T, reg cluster.Registry, srv *redistest.Server)) {
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		m := cluster.NewMemory()
		t.Cleanup(func() { _ = m.Close() })
		fn(t, m, nil)
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t)
		fn(t, newRedis(t, srv), srv)
	})
}

// logRecorder is a slog.Handler that keeps the messages it is given.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Level.String()+" "+r.Message)
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// count returns how many messages contain s.
func (l *logRecorder) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if strings.Contains(m, s) {
			n++
		}
	}
	return n
}

// waitFor polls cond every 10 ms for at most within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// slogOf returns a logger writing to rec.
func slogOf(rec *logRecorder) *slog.Logger { return slog.New(rec) }
