package apps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/config"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func app(match string) config.App {
	a := config.DefaultApp()
	a.Match = match
	return a
}

func matches(list []config.App) []string {
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.Match
	}
	return out
}

func TestStoreSeedAndFor(t *testing.T) {
	ctx := context.Background()
	reg := cluster.NewMemory()
	defer reg.Close()
	rec := app("live/rec*")
	rec.Record = true
	s, err := NewStore(ctx, reg, []config.App{rec, app("live/**")}, quiet())
	require.NoError(t, err)

	a, ok := s.For("live/rec1")
	require.True(t, ok)
	assert.True(t, a.Record)
	a, ok = s.For("live/cam1")
	require.True(t, ok)
	assert.Equal(t, "live/**", a.Match)
	_, ok = s.For("other/cam1")
	assert.False(t, ok)

	list, v := s.List()
	assert.Equal(t, []string{"live/rec*", "live/**"}, matches(list))
	assert.Positive(t, v)

	// A second node with another seed joins the stored list, not its own.
	s2, err := NewStore(ctx, reg, []config.App{app("vod/*")}, quiet())
	require.NoError(t, err)
	list2, v2 := s2.List()
	assert.Equal(t, matches(list), matches(list2))
	assert.Equal(t, v, v2)

	// An invalid seed is refused, naming the field.
	_, err = NewStore(ctx, cluster.NewMemory(), []config.App{{Match: "x/*"}}, quiet())
	require.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "record_segment")
	_, err = NewStore(ctx, cluster.NewMemory(), []config.App{app("a/*"), app("a/*")}, quiet())
	require.ErrorIs(t, err, ErrDuplicate)
}

func TestStoreCRUD(t *testing.T) {
	ctx := context.Background()
	reg := cluster.NewMemory()
	defer reg.Close()
	s, err := NewStore(ctx, reg, nil, quiet())
	require.NoError(t, err)
	_, ok := s.For("live/cam1")
	require.False(t, ok)

	at, err := s.Create(ctx, app("live/*"), -1)
	require.NoError(t, err)
	assert.Equal(t, 0, at)
	at, err = s.Create(ctx, app("**"), -1)
	require.NoError(t, err)
	assert.Equal(t, 1, at)
	at, err = s.Create(ctx, app("live/vip"), 0)
	require.NoError(t, err)
	assert.Equal(t, 0, at)
	at, err = s.Create(ctx, app("x/*"), 99)
	require.NoError(t, err)
	assert.Equal(t, 3, at)
	list, _ := s.List()
	assert.Equal(t, []string{"live/vip", "live/*", "**", "x/*"}, matches(list))

	_, err = s.Create(ctx, app("live/*"), -1)
	require.ErrorIs(t, err, ErrDuplicate)
	_, err = s.Create(ctx, app(""), -1)
	require.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "match")
	_, err = s.Create(ctx, app("live/[x"), -1)
	require.ErrorIs(t, err, ErrInvalid)
	_, err = s.Create(ctx, app(strings.Repeat("a", config.MaxPatternLen+1)), -1)
	require.ErrorIs(t, err, ErrInvalid)
	_, err = s.Create(ctx, app("live/a\x00"), -1)
	require.ErrorIs(t, err, ErrInvalid)
	bad := app("y/*")
	bad.MaxViewers = -1
	_, err = s.Create(ctx, bad, -1)
	require.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "max_viewers")

	got, i, ok := s.Get("live/*")
	require.True(t, ok)
	assert.Equal(t, 1, i)
	assert.Equal(t, "live/*", got.Match)
	_, _, ok = s.Get("nope")
	assert.False(t, ok)

	// Update in place, with a rename, and a move.
	upd := app("live/*")
	upd.Record = true
	at, err = s.Update(ctx, "live/*", upd, -1)
	require.NoError(t, err)
	assert.Equal(t, 1, at)
	a, _ := s.For("live/cam1")
	assert.True(t, a.Record)
	at, err = s.Update(ctx, "x/*", app("z/*"), 0)
	require.NoError(t, err)
	assert.Equal(t, 0, at)
	list, _ = s.List()
	assert.Equal(t, []string{"z/*", "live/vip", "live/*", "**"}, matches(list))
	_, err = s.Update(ctx, "z/*", app("**"), -1)
	require.ErrorIs(t, err, ErrDuplicate)
	_, err = s.Update(ctx, "nope", app("nope"), -1)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = s.Update(ctx, "z/*", app(""), -1)
	require.ErrorIs(t, err, ErrInvalid)

	require.NoError(t, s.Delete(ctx, "live/vip"))
	require.ErrorIs(t, s.Delete(ctx, "live/vip"), ErrNotFound)
	list, _ = s.List()
	assert.Equal(t, []string{"z/*", "live/*", "**"}, matches(list))

	// Failed changes left nothing behind.
	doc, _, err := reg.Apps(ctx)
	require.NoError(t, err)
	stored, err := decodeDoc(doc)
	require.NoError(t, err)
	assert.Equal(t, list, stored)
}

func TestStoreMaxApps(t *testing.T) {
	ctx := context.Background()
	seed := make([]config.App, config.MaxApps)
	for i := range seed {
		seed[i] = app(fmt.Sprintf("app%d/*", i))
	}
	s, err := NewStore(ctx, cluster.NewMemory(), seed, quiet())
	require.NoError(t, err)
	_, err = s.Create(ctx, app("one/more"), -1)
	require.ErrorIs(t, err, ErrTooMany)
	_, err = NewStore(ctx, cluster.NewMemory(), append(seed, app("one/more")), quiet())
	require.ErrorIs(t, err, ErrTooMany)
}

// Several cores writing at once through the same registry all succeed and
// end up with the same list.
func TestStoreConcurrentCores(t *testing.T) {
	ctx := context.Background()
	reg := cluster.NewMemory()
	defer reg.Close()
	stores := make([]*Store, 3)
	for i := range stores {
		var err error
		stores[i], err = NewStore(ctx, reg, []config.App{app("seed/*")}, quiet())
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	for i, s := range stores {
		for j := 0; j < 5; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.Create(ctx, app(fmt.Sprintf("n%d/s%d", i, j)), -1)
				assert.NoError(t, err)
			}()
		}
	}
	wg.Wait()
	for _, s := range stores {
		require.NoError(t, s.Refresh(ctx))
	}
	l0, v0 := stores[0].List()
	assert.Len(t, l0, 16)
	for _, s := range stores[1:] {
		l, v := s.List()
		assert.Equal(t, matches(l0), matches(l))
		assert.Equal(t, v0, v)
	}
}

// conflictRegistry answers ErrConflict to every SetApps after the first.
type conflictRegistry struct {
	*cluster.Memory
	mu    sync.Mutex
	calls int
}

func (c *conflictRegistry) SetApps(ctx context.Context, doc []byte, ifVersion int64) (int64, error) {
	c.mu.Lock()
	c.calls++
	n := c.calls
	c.mu.Unlock()
	if n > 1 {
		return 0, cluster.ErrConflict
	}
	return c.Memory.SetApps(ctx, doc, ifVersion)
}

func TestStoreBusy(t *testing.T) {
	ctx := context.Background()
	reg := &conflictRegistry{Memory: cluster.NewMemory()}
	s, err := NewStore(ctx, reg, nil, quiet())
	require.NoError(t, err)
	_, err = s.Create(ctx, app("a/*"), -1)
	require.ErrorIs(t, err, ErrBusy)
	assert.Equal(t, 1+maxAttempts, reg.calls)
	list, _ := s.List()
	assert.Empty(t, list)
}

func TestStoreRegistryErrors(t *testing.T) {
	ctx := context.Background()
	reg := cluster.NewMemory()
	s, err := NewStore(ctx, reg, nil, quiet())
	require.NoError(t, err)
	require.NoError(t, reg.Close())
	_, err = s.Create(ctx, app("a/*"), -1)
	require.ErrorIs(t, err, cluster.ErrClosed)
	require.ErrorIs(t, s.Refresh(ctx), cluster.ErrClosed)
	_, err = NewStore(ctx, reg, nil, quiet())
	require.ErrorIs(t, err, cluster.ErrClosed)

	// A corrupt document is reported, not crashed on.
	reg2 := cluster.NewMemory()
	_, err = reg2.SetApps(ctx, []byte(`{"apps":[{"match":"a/*","record_segment":"soon"}]}`), 0)
	require.NoError(t, err)
	_, err = NewStore(ctx, reg2, nil, quiet())
	require.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "record_segment")
}

func TestStoreRunRefreshes(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	defer goleak.VerifyNone(t, opt)
	ctx := context.Background()
	reg := cluster.NewMemory()
	defer reg.Close()
	a, err := NewStore(ctx, reg, nil, quiet())
	require.NoError(t, err)
	b, err := NewStore(ctx, reg, nil, quiet())
	require.NoError(t, err)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); b.Run(rctx) }()
	_, err = a.Create(ctx, app("live/*"), -1)
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, ok := b.For("live/x"); return ok }, 3*time.Second, 20*time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestDecode(t *testing.T) {
	a, err := DecodeBytes([]byte(`{"match":"live/*","record":true,"retention":"720h","max_viewers":10}`))
	require.NoError(t, err)
	want := config.DefaultApp()
	want.Match, want.Record, want.Retention, want.MaxViewers = "live/*", true, 720*time.Hour, 10
	assert.Equal(t, want, a)

	round, err := DecodeBytes(mustJSON(t, ToJSON(a)))
	require.NoError(t, err)
	assert.Equal(t, a, round)

	for body, want := range map[string]string{
		``:                                 "empty body",
		`{`:                                "truncated",
		`{"match":"a/*"} {}`:               "after the app object",
		`{"match":"a/*"} x`:                "after the app object",
		`[]`:                               "expected a JSON object",
		`"x"`:                              "expected a JSON object",
		`{"match":1}`:                      "match: expected a string",
		`{"match":"a","record":"yes"}`:     "record: expected a boolean",
		`{"match":"a","max_viewers":1.5}`:  "max_viewers: expected an integer",
		`{"match":"a","max_viewers":"1"}`:  "max_viewers: expected an integer",
		`{"match":"a","retention":3600}`:   "retention: expected a string",
		`{"match":"a","retention":"1 hr"}`: "retention",
		`{"match":"a","nope":1}`:           `unknown field "nope"`,
		`{"match":"a",}`:                   "malformed JSON",
	} {
		_, err := DecodeBytes([]byte(body))
		require.Error(t, err, body)
		assert.True(t, errors.Is(err, ErrInvalid), body)
		assert.Contains(t, err.Error(), want, body)
	}
}
