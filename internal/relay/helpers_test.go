package relay

import (
	"context"
	"fmt"
	"github.com/quasipaa/quasipaa/internal/protocol/flv/flvtest"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/media"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testSecret = "cluster-secret-for-tests"

var quiet = slog.New(slog.DiscardHandler)

// node is one Quasipaa node of a test: a hub served by a relay Server on
// 127.0.0.1, counting the relay requests it receives.
type node struct {
	hub      *hub.Hub
	srv      *Server
	http     *httptest.Server
	requests atomic.Int64
}

func newNode(t testing.TB, opts hub.Options) *node {
	t.Helper()
	opts.Logger = quiet
	n := &node{hub: hub.New(opts)}
	n.srv = NewServer(n.hub, testSecret, quiet)
	n.http = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.requests.Add(1)
		n.srv.ServeHTTP(w, r)
	}))
	t.Cleanup(n.kill)
	return n
}

// kill stops the node as a crash would: connections cut, hub gone.
func (n *node) kill() {
	n.http.CloseClientConnections()
	n.srv.Close()
	n.http.Close()
	n.hub.Close()
}

// resolver is a Resolve function whose answer tests change.
type resolver struct {
	mu    sync.Mutex
	base  string
	calls int
}

func (r *resolver) set(base string) {
	r.mu.Lock()
	r.base = base
	r.mu.Unlock()
}

func (r *resolver) resolve(ctx context.Context, path string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.base == "" {
		return "", fmt.Errorf("no node publishes %s: %w", path, hub.ErrStreamNotFound)
	}
	return r.base, nil
}

// pullNode is a node that pulls its streams with Upstreams.
type pullNode struct {
	*node
	ups *Upstreams
	res *resolver
}

func newPullNode(t testing.TB, hopts hub.Options, uopts UpstreamOptions, source string) *pullNode {
	t.Helper()
	n := newNode(t, hopts)
	res := &resolver{base: source}
	uopts.Resolve = res.resolve
	uopts.NodeID = "pull-1"
	if uopts.Secret == "" {
		uopts.Secret = testSecret
	}
	uopts.Logger = quiet
	ups := NewUpstreams(n.hub, uopts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ups.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return &pullNode{node: n, ups: ups, res: res}
}

// realMedia demuxes an ffmpeg-made FLV test file into its tracks and frames,
// with distinct, known ingest times.
func realMedia(t testing.TB, name string) ([]*media.Track, []*media.Frame) {
	tracks, frames := flvtest.Read(t, name)
	require.Len(t, tracks, 2)
	for i, f := range frames {
		f.Ingest = time.Unix(1_700_000_000, int64(i)*1000+7)
	}
	return tracks, frames
}

// cloneFrame copies f: the hub rebases the timestamps of what it is given.
func cloneFrame(f *media.Frame) *media.Frame {
	c := *f
	return &c
}

// synthFrame is frame n of a 25 fps stream with a keyframe every gop
// frames, its payload naming n and tag.
func synthFrame(n, gop int, tag byte) *media.Frame {
	ts := time.Duration(n) * 40 * time.Millisecond
	return &media.Frame{Track: 0, DTS: ts, PTS: ts, Key: n%gop == 0, Ingest: time.Now(),
		Payload: []byte{tag, byte(n >> 8), byte(n)}}
}

var synthTracks = []*media.Track{{Codec: media.CodecH264, Width: 640, Height: 360, Config: []byte{1, 0x42, 0, 0x1e}}}

// publish starts a publisher of path on n with tracks.
func publish(t testing.TB, n *node, path string, tracks []*media.Track) *hub.Publisher {
	t.Helper()
	p, err := n.hub.Publish(path, hub.ClientInfo{Protocol: "test", RemoteAddr: "publisher"})
	require.NoError(t, err)
	require.NoError(t, p.SetTracks(tracks))
	return p
}

// readN reads entries from r until it has n frames or the deadline passes.
func readN(t testing.TB, r *hub.Reader, n int, timeout time.Duration) []*hub.Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var got, batch []*hub.Entry
	for len(got) < n {
		var err error
		// Next waits only when given an empty slice.
		batch, err = r.Next(ctx, batch[:0])
		require.NoError(t, err, "after %d of %d frames", len(got), n)
		got = append(got, batch...)
	}
	return got
}

// eventually polls cond for up to timeout.
func eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// relayReaders counts the relay readers of path on n.
func relayReaders(n *node, path string) int {
	info, ok := n.hub.Stream(path)
	if !ok {
		return 0
	}
	return info.Viewers[ProtocolRelay]
}
