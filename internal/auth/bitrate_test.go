package auth

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/config"
	"github.com/quasipaa/quasipaa/internal/hub"
)

// fakeHub is a KickHub whose streams the test sets (unit test only).
type fakeHub struct {
	mu      sync.Mutex
	streams []hub.StreamInfo
	kicked  []string
}

func (f *fakeHub) Streams() []hub.StreamInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]hub.StreamInfo(nil), f.streams...)
}

func (f *fakeHub) Kick(path, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kicked = append(f.kicked, path+"#"+id)
	return nil
}

func (f *fakeHub) set(path, id string, bitrate int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.streams {
		if f.streams[i].Path == path {
			f.streams[i].IngressBitrate = bitrate
			f.streams[i].Publisher = &hub.ClientInfo{ID: id, Protocol: "rtmp"}
			return
		}
	}
	f.streams = append(f.streams, hub.StreamInfo{Path: path, IngressBitrate: bitrate, Publisher: &hub.ClientInfo{ID: id, Protocol: "rtmp"}})
}

func TestBitrateGuard(t *testing.T) {
	p := &apps{list: []config.App{app("capped/*", func(a *config.App) { a.MaxBitrate = 1_000_000 })}}
	f := &fakeHub{}
	g := NewBitrateGuard(f, p.policy, nil)
	f.set("capped/a", "1", 2_000_000)
	f.set("capped/b", "2", 900_000)
	f.set("free/c", "3", 50_000_000)
	for i := range 4 {
		require.Empty(t, g.Check(), "check %d", i)
	}
	// One second below the limit resets the count.
	f.set("capped/a", "1", 500_000)
	require.Empty(t, g.Check())
	f.set("capped/a", "1", 2_000_000)
	for range 4 {
		require.Empty(t, g.Check())
	}
	require.Equal(t, []string{"capped/a"}, g.Check())
	require.Equal(t, []string{"capped/a#1"}, f.kicked)

	// A new publisher on the path starts from zero.
	for range 3 {
		g.Check()
	}
	f.set("capped/a", "9", 2_000_000)
	for range 4 {
		require.Empty(t, g.Check())
	}
	require.Equal(t, []string{"capped/a"}, g.Check())
	require.Equal(t, []string{"capped/a#1", "capped/a#9"}, f.kicked)
}

func TestBitrateGuardRun(t *testing.T) {
	p := &apps{list: []config.App{app("capped/*", func(a *config.App) { a.MaxBitrate = 1000 })}}
	f := &fakeHub{}
	f.set("capped/a", "1", 5000)
	g := NewBitrateGuard(f, p.policy, nil)
	g.interval, g.strikes = 5*time.Millisecond, 2
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.Run(ctx) }()
	require.Eventually(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.kicked) > 0
	}, 2*time.Second, 5*time.Millisecond)
	cancel()
	<-done
}

// TestBitrateGuardRealHub kicks a real publisher: the hub's Kick ends it.
func TestBitrateGuardRealHub(t *testing.T) {
	h := hub.New(hub.Options{})
	defer h.Close()
	pub, err := h.Publish("capped/a", hub.ClientInfo{Protocol: "rtmp"})
	require.NoError(t, err)
	defer pub.Close()
	p := &apps{list: []config.App{app("capped/*", func(a *config.App) { a.MaxBitrate = 1 })}}
	g := NewBitrateGuard(kickOver{h}, p.policy, nil)
	g.strikes = 1
	require.Equal(t, []string{"capped/a"}, g.Check())
	select {
	case <-pub.Done():
		require.ErrorIs(t, pub.Err(), hub.ErrKicked)
	case <-time.After(2 * time.Second):
		t.Fatal("the publisher was not kicked")
	}
}

// kickOver reports every stream of a real hub 1 Mbit/s over its limit, as
// the hub's own bit rate needs a second of real traffic to measure.
type kickOver struct{ *hub.Hub }

func (k kickOver) Streams() []hub.StreamInfo {
	list := k.Hub.Streams()
	for i := range list {
		list[i].IngressBitrate = 1_000_000
	}
	return list
}
