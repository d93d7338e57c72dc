package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/storage"
	"github.com/quasipaa/quasipaa/internal/storage/storagetest"
)

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func segment(i int) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("segment %03d|", i)), 1000+i)
}

// runSpool runs sp until the test ends.
func runSpool(t *testing.T, sp *storage.Spool) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sp.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
		sp.Close()
	})
}

func waitEmpty(t *testing.T, sp *storage.Spool, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		p, err := sp.Pending(context.Background())
		return err == nil && len(p) == 0
	}, within, 20*time.Millisecond)
}

func checkRemote(t *testing.T, s storage.Store, n int) {
	t.Helper()
	all, err := s.List(context.Background(), "live/")
	require.NoError(t, err)
	require.Len(t, all, n)
	for i := range n {
		rc, err := s.Get(context.Background(), fmt.Sprintf("live/cam/%03d.ts", i), 0, -1)
		require.NoError(t, err)
		b, err := io.ReadAll(rc)
		rc.Close()
		require.NoError(t, err)
		assert.Equal(t, segment(i), b, "segment %d", i)
	}
}

// The S3 server goes away for a few seconds mid-recording: segments queue
// up in the spool and all arrive once it is back.
func TestSpoolSurvivesS3Outage(t *testing.T) {
	gw := storagetest.StartVersityGW(t)
	remote := gw.NewStore(t)
	spoolDir := t.TempDir()
	sp, err := storage.NewSpool(spoolDir, remote, storage.SpoolOptions{
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, Logger: quietLog(),
	})
	require.NoError(t, err)
	runSpool(t, sp)
	ctx := context.Background()
	add := func(i int) {
		d := segment(i)
		require.NoError(t, sp.Put(ctx, fmt.Sprintf("live/cam/%03d.ts", i), bytes.NewReader(d), int64(len(d))))
	}

	for i := range 5 {
		add(i)
	}
	waitEmpty(t, sp, 10*time.Second)

	gw.Stop()
	for i := 5; i < 10; i++ {
		add(i)
	}
	time.Sleep(2 * time.Second)
	p, err := sp.Pending(ctx)
	require.NoError(t, err)
	assert.Len(t, p, 5, "nothing can leave the spool while the store is down")
	gw.Start()

	for i := 10; i < 12; i++ {
		add(i)
	}
	waitEmpty(t, sp, 30*time.Second)
	checkRemote(t, remote, 12)
}

// Files left in the spool by a previous run are uploaded at start.
func TestSpoolResumesLeftovers(t *testing.T) {
	spoolDir := t.TempDir()
	remote, err := storage.NewFS(t.TempDir())
	require.NoError(t, err)
	defer remote.Close()

	first, err := storage.NewSpool(spoolDir, remote, storage.SpoolOptions{Logger: quietLog()})
	require.NoError(t, err)
	ctx := context.Background()
	for i := range 3 {
		d := segment(i)
		require.NoError(t, first.Put(ctx, fmt.Sprintf("live/cam/%03d.ts", i), bytes.NewReader(d), int64(len(d))))
	}
	// A completed file handed over by path.
	src := filepath.Join(t.TempDir(), "seg.ts")
	require.NoError(t, os.WriteFile(src, segment(3), 0o644))
	require.NoError(t, first.AddFile(ctx, src, "live/cam/003.ts"))
	_, err = os.Stat(src)
	assert.ErrorIs(t, err, os.ErrNotExist, "AddFile removes the source")
	require.NoError(t, first.Close()) // "crash" before Run uploaded anything

	second, err := storage.NewSpool(spoolDir, remote, storage.SpoolOptions{Logger: quietLog()})
	require.NoError(t, err)
	runSpool(t, second)
	waitEmpty(t, second, 10*time.Second)
	checkRemote(t, remote, 4)
}

// flaky fails the first n Puts.
type flaky struct {
	storage.Store
	fails atomic.Int32
	mu    sync.Mutex
	times []time.Time
}

func (f *flaky) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	f.mu.Lock()
	f.times = append(f.times, time.Now())
	f.mu.Unlock()
	if f.fails.Add(-1) >= 0 {
		return errors.New("injected failure")
	}
	return f.Store.Put(ctx, key, r, size)
}

func TestSpoolRetriesWithCappedBackoff(t *testing.T) {
	inner, err := storage.NewFS(t.TempDir())
	require.NoError(t, err)
	defer inner.Close()
	remote := &flaky{Store: inner}
	remote.fails.Store(6)
	sp, err := storage.NewSpool(t.TempDir(), remote, storage.SpoolOptions{
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Logger: quietLog(),
	})
	require.NoError(t, err)
	d := segment(0)
	require.NoError(t, sp.Put(context.Background(), "live/cam/000.ts", bytes.NewReader(d), int64(len(d))))
	runSpool(t, sp)
	waitEmpty(t, sp, 10*time.Second)
	checkRemote(t, inner, 1)
	remote.mu.Lock()
	defer remote.mu.Unlock()
	require.Len(t, remote.times, 7)
	total := remote.times[6].Sub(remote.times[0])
	// 20+40+80+100+100+100 = 440ms nominal, ±20% jitter.
	assert.Greater(t, total, 300*time.Millisecond)
	assert.Less(t, total, 2*time.Second)
}

func TestBackoff(t *testing.T) {
	for attempt := 1; attempt < 70; attempt++ {
		d := storage.Backoff(100*time.Millisecond, 5*time.Second, attempt)
		assert.LessOrEqual(t, d, 5*time.Second)
		assert.GreaterOrEqual(t, d, 80*time.Millisecond)
	}
	assert.InDelta(t, float64(800*time.Millisecond), float64(storage.Backoff(100*time.Millisecond, time.Minute, 4)), float64(160*time.Millisecond))
}
