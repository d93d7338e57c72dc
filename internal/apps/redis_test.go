package apps

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/cluster/redistest"
	"github.com/quasipaa/quasipaa/internal/config"
)

// Three cores, each with its own connection to a real redis-server, change
// the apps at once; they all end with the same list, and a core that only
// runs Run sees the changes within a refresh.
func TestStoreOverRedis(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stores []*Store
	for i := 0; i < 3; i++ {
		reg, err := cluster.NewRedis(ctx, srv.URL())
		require.NoError(t, err)
		t.Cleanup(func() { reg.Close() })
		s, err := NewStore(ctx, reg, []config.App{app(fmt.Sprintf("seed%d/*", i))}, quiet())
		require.NoError(t, err)
		stores = append(stores, s)
	}
	// The first seed won; the others joined it.
	for _, s := range stores {
		l, _ := s.List()
		assert.Equal(t, []string{"seed0/*"}, matches(l))
	}
	watcherCtx, stopWatcher := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); stores[2].Run(watcherCtx) }()
	defer func() { stopWatcher(); <-done }()

	var wg sync.WaitGroup
	for i, s := range stores[:2] {
		for j := 0; j < 10; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.Create(ctx, app(fmt.Sprintf("c%d/s%d", i, j)), -1)
				assert.NoError(t, err)
			}()
		}
	}
	wg.Wait()
	require.NoError(t, stores[0].Refresh(ctx))
	want, version := stores[0].List()
	require.Len(t, want, 21)
	require.Eventually(t, func() bool {
		_, v := stores[2].List()
		return v == version
	}, 5*time.Second, 50*time.Millisecond)
	got, _ := stores[2].List()
	assert.Equal(t, matches(want), matches(got))
	_, ok := stores[2].For("c1/s9")
	assert.True(t, ok)
}
