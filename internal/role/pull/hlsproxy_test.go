package pull

import (
	"bytes"
	"context"
	"fmt"
	"github.com/quasipaa/quasipaa/internal/protocol/flv/flvtest"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/media"
	"github.com/quasipaa/quasipaa/internal/role/exchange"
)

// hlsOwner is the node packaging live/x: a hub fed with a real FLV file,
// exchange.HLS (gohlslib) and its HTTP server, counting the requests per URL.
type hlsOwner struct {
	hub    *hub.Hub
	hls    *exchange.HLS
	srv    *httptest.Server
	pub    *hub.Publisher
	frames []*media.Frame
	loops  int
	keep   func()
	delay  time.Duration // added before each file that is not a playlist

	mu   sync.Mutex
	hits map[string]int
	hdr  []http.Header // headers of the requests received
}

const loopPeriod = 2100 * time.Millisecond

func testLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// readFLVFile demuxes a test file into its tracks and frames.
func readFLVFile(t testing.TB, name string) ([]*media.Track, []*media.Frame) {
	return flvtest.Read(t, name)
}

// newHLSOwner publishes live/x, starts its muxer eagerly (the HLS job:
// exchange.HLS.Keep) and packages loops of the file.
func newHLSOwner(t testing.TB, loops int) *hlsOwner {
	t.Helper()
	o := newHLSNode(t)
	o.keep = o.hls.Keep("live/x")
	require.Eventually(t, func() bool { return len(o.hls.Active()) == 1 }, 2*time.Second, 5*time.Millisecond, "Keep starts the muxer")
	o.publish(t, loops)
	return o
}

// newHLSNode is a node with live/x in its hub (one loop published) and an
// HLS packager that packages nothing until asked.
func newHLSNode(t testing.TB) *hlsOwner {
	t.Helper()
	h := hub.New(hub.Options{QueueSize: 8192, Logger: testLog()})
	x := exchange.NewHLS(h, exchange.HLSOptions{Variant: exchange.HLSLowLatency}, testLog())
	o := &hlsOwner{hub: h, hls: x, hits: map[string]int{}}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app, name, file, ok := splitHLSPath(r.URL.Path)
		if !ok {
			http.NotFound(w, r)
			return
		}
		o.mu.Lock()
		o.hits[r.URL.RequestURI()]++
		o.hdr = append(o.hdr, r.Header.Clone())
		delay := o.delay
		o.mu.Unlock()
		if delay > 0 && !strings.HasSuffix(file, ".m3u8") {
			time.Sleep(delay)
		}
		x.ServeHLS(w, r, app+"/"+name, file)
	}))
	tracks, frames := readFLVFile(t, "h264aac.flv")
	o.frames = frames
	p, err := h.Publish("live/x", hub.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	o.pub = p
	require.NoError(t, p.SetTracks(tracks))
	o.publish(t, 1)
	return o
}

// publish writes loops more loops of the file, each shifted by loopPeriod.
func (o *hlsOwner) publish(t testing.TB, loops int) {
	t.Helper()
	for l := o.loops; l < o.loops+loops; l++ {
		off := time.Duration(l) * loopPeriod
		for _, f := range o.frames {
			c := *f
			c.DTS += off
			c.PTS += off
			c.Ingest = time.Now()
			require.NoError(t, o.pub.WriteFrame(&c))
		}
	}
	o.loops += loops
}

func (o *hlsOwner) close() {
	if o.keep != nil {
		o.keep()
	}
	o.pub.Close()
	o.hub.Close()
	o.hls.Close()
	o.srv.Close()
}

func (o *hlsOwner) hitsFor(uri string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hits[uri]
}

// proxyNode is a pull node whose HLS comes from the owner.
type proxyNode struct {
	proxy *HLSProxy
	srv   *httptest.Server
}

func newProxyNode(t testing.TB, opts HLSProxyOptions) *proxyNode {
	t.Helper()
	if opts.Local == nil {
		opts.Local = &fakeHLS{}
	}
	if opts.Logger == nil {
		opts.Logger = testLog()
	}
	p := NewHLSProxy(opts)
	s := New(nil, Options{HLS: p}, testLog())
	srv := httptest.NewServer(s.WithHLS(http.NotFoundHandler()))
	return &proxyNode{proxy: p, srv: srv}
}

func (n *proxyNode) close() {
	n.srv.Close()
	n.proxy.Close()
}

func ownerAt(base string) func(context.Context, string) (string, bool, error) {
	return func(context.Context, string) (string, bool, error) { return base, false, nil }
}

type got struct {
	code int
	body []byte
	hdr  http.Header
}

func httpGet(t testing.TB, url string) got {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return got{resp.StatusCode, b, resp.Header}
}

func mediaURIOf(t testing.TB, index string) string {
	t.Helper()
	lines := strings.Split(index, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "#EXT-X-STREAM-INF") {
			return strings.TrimSpace(lines[i+1])
		}
	}
	t.Fatalf("no variant:\n%s", index)
	return ""
}

// playlistFiles lists the URIs a media playlist references: init,
// segments and parts.
func playlistFiles(pl string) []string {
	var out []string
	for _, l := range strings.Split(pl, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "", l == "gap.mp4": // gap.mp4 stands for missing segments (EXT-X-GAP)
		case strings.HasPrefix(l, "#EXT-X-MAP:") || strings.HasPrefix(l, "#EXT-X-PART:"):
			if i := strings.Index(l, `URI="`); i >= 0 {
				rest := l[i+5:]
				out = append(out, rest[:strings.IndexByte(rest, '"')])
			}
		case !strings.HasPrefix(l, "#"):
			out = append(out, l)
		}
	}
	return out
}

// stablePlaylist returns the owner's media playlist once the muxer has
// packaged every published frame (two reads 300 ms apart agree).
func stablePlaylist(t testing.TB, url string) string {
	t.Helper()
	var pl string
	require.Eventually(t, func() bool {
		a := httpGet(t, url)
		time.Sleep(300 * time.Millisecond)
		b := httpGet(t, url)
		pl = string(b.body)
		return b.code == http.StatusOK && bytes.Equal(a.body, b.body)
	}, 10*time.Second, 10*time.Millisecond)
	return pl
}

// The proxy node serves the owner's playlists and files byte for byte,
// with their headers, and a blocking playlist reload waits through it.
func TestHLSProxyServesOwnerFiles(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	o := newHLSOwner(t, 4)
	defer o.close()
	n := newProxyNode(t, HLSProxyOptions{Owner: ownerAt(o.srv.URL), NodeID: "pull-1",
		Sign: func(r *http.Request) { r.Header.Set("Authorization", "Bearer cluster-secret") }})
	defer n.close()

	idx := httpGet(t, n.srv.URL+"/live/x/index.m3u8")
	require.Equal(t, http.StatusOK, idx.code, string(idx.body))
	require.Equal(t, "application/vnd.apple.mpegurl", idx.hdr.Get("Content-Type"))
	media := mediaURIOf(t, string(idx.body))

	// Once the muxer has packaged every frame, nothing changes any more:
	// the proxy's answers must be the owner's, byte for byte.
	pl := stablePlaylist(t, o.srv.URL+"/live/x/"+media)
	idx = httpGet(t, n.srv.URL+"/live/x/index.m3u8")
	direct := httpGet(t, o.srv.URL+"/live/x/index.m3u8")
	require.Equal(t, string(direct.body), string(idx.body))
	viaProxy := httpGet(t, n.srv.URL+"/live/x/"+media)
	require.Equal(t, http.StatusOK, viaProxy.code)
	require.Equal(t, pl, string(viaProxy.body), "the playlist is byte-identical")
	files := playlistFiles(pl)
	require.GreaterOrEqual(t, len(files), 5, pl)
	segments := 0
	for _, f := range files {
		d := httpGet(t, o.srv.URL+"/live/x/"+f)
		p := httpGet(t, n.srv.URL+"/live/x/"+f)
		require.Equal(t, http.StatusOK, d.code, f)
		require.Equal(t, d.code, p.code, f)
		require.True(t, bytes.Equal(d.body, p.body), "%s: %d bytes direct, %d through the proxy", f, len(d.body), len(p.body))
		for _, h := range []string{"Content-Type", "Cache-Control", "Content-Length"} {
			assert.Equal(t, d.hdr.Get(h), p.hdr.Get(h), "%s %s", f, h)
		}
		if strings.Contains(f, "_seg") {
			segments++
		}
	}
	require.Greater(t, segments, 1)
	// Forwarded requests are marked and signed.
	o.mu.Lock()
	last := o.hdr[len(o.hdr)-1]
	o.mu.Unlock()
	assert.Equal(t, "pull-1", last.Get(HLSProxyHeader))
	assert.Equal(t, "Bearer cluster-secret", last.Get("Authorization"))

	// Blocking reload: ask for the first part of the next segment, which
	// comes only when more frames are published.
	seq, segs := 0, 0
	for _, l := range strings.Split(pl, "\n") {
		switch {
		case strings.HasPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"):
			seq, _ = strconv.Atoi(strings.TrimPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"))
		case strings.HasPrefix(l, "#EXTINF:"):
			segs++
		}
	}
	msn := seq + segs + 1
	res := make(chan got, 1)
	start := time.Now()
	go func() {
		// The viewer's token stays on the pull node; the directives go on.
		res <- httpGet(t, fmt.Sprintf("%s/live/x/%s?token=abc&_HLS_part=0&_HLS_msn=%d", n.srv.URL, media, msn))
	}()
	select {
	case r := <-res:
		t.Fatalf("blocking reload answered before the part existed: %d %s", r.code, r.body)
	case <-time.After(500 * time.Millisecond):
	}
	o.publish(t, 2)
	r := <-res
	require.Equal(t, http.StatusOK, r.code, string(r.body))
	assert.Greater(t, time.Since(start), 500*time.Millisecond)
	assert.Contains(t, string(r.body), fmt.Sprintf("_seg%d.mp4", msn-1), "the reloaded playlist holds the new segment")
	assert.Contains(t, string(r.body), "#EXT-X-PART:")
	assert.Equal(t, 1, o.hitsFor(fmt.Sprintf("/live/x/%s?_HLS_msn=%d&_HLS_part=0", media, msn)), "forwarded as %v", o.hits)
}

// 50 viewers asking for the same segment at once cost one upstream fetch
// (the cache is off: this is the request collapsing), and later viewers
// are served from the cache.
func TestHLSProxyCollapsesRequests(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	o := newHLSOwner(t, 4)
	defer o.close()
	idx := httpGet(t, o.srv.URL+"/live/x/index.m3u8")
	require.Equal(t, http.StatusOK, idx.code)
	media := mediaURIOf(t, string(idx.body))
	pl := stablePlaylist(t, o.srv.URL+"/live/x/"+media)
	var seg string
	for _, f := range playlistFiles(pl) {
		if strings.Contains(f, "_seg") {
			seg = f
			break
		}
	}
	require.NotEmpty(t, seg)
	want := httpGet(t, o.srv.URL+"/live/x/"+seg)
	o.mu.Lock()
	o.delay = 200 * time.Millisecond // every viewer arrives during the fetch
	o.mu.Unlock()

	for _, cacheBytes := range []int64{-1, 0} {
		t.Run(fmt.Sprintf("cache=%d", cacheBytes), func(t *testing.T) {
			n := newProxyNode(t, HLSProxyOptions{Owner: ownerAt(o.srv.URL), CacheBytes: cacheBytes})
			defer n.close()
			before := o.hitsFor("/live/x/" + seg)
			var wg sync.WaitGroup
			var bad atomic.Int32
			for i := range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Each viewer has its own token: still one fetch.
					r := httpGet(t, fmt.Sprintf("%s/live/x/%s?token=viewer%d", n.srv.URL, seg, i))
					if r.code != http.StatusOK || !bytes.Equal(r.body, want.body) {
						bad.Add(1)
					}
				}()
			}
			wg.Wait()
			assert.Zero(t, bad.Load())
			assert.Equal(t, 1, o.hitsFor("/live/x/"+seg)-before, "one upstream request for 50 viewers")
			r := httpGet(t, n.srv.URL+"/live/x/"+seg)
			require.Equal(t, want.body, r.body)
			if cacheBytes >= 0 {
				assert.Equal(t, 1, o.hitsFor("/live/x/"+seg)-before, "a later viewer is served from the cache")
			} else {
				assert.Equal(t, 2, o.hitsFor("/live/x/"+seg)-before, "no cache: a later viewer is a new fetch")
			}
		})
	}
}

// An owner that is gone answers 502 at once; no owner answers 503 after
// OwnerWait; a stream in the local hub with no owner yet is served locally;
// self is served locally.
func TestHLSProxyErrors(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())

	n := newProxyNode(t, HLSProxyOptions{Owner: ownerAt(dead)})
	start := time.Now()
	r := httpGet(t, n.srv.URL+"/live/x/index.m3u8")
	n.close()
	assert.Equal(t, http.StatusBadGateway, r.code)
	assert.Contains(t, string(r.body), "the node packaging it")
	assert.Less(t, time.Since(start), 2*time.Second)

	var asked atomic.Int32
	none := func(context.Context, string) (string, bool, error) {
		asked.Add(1)
		return "", false, fmt.Errorf("%w: test", ErrNoHLSOwner)
	}
	n = newProxyNode(t, HLSProxyOptions{Owner: none, OwnerWait: 500 * time.Millisecond})
	start = time.Now()
	r = httpGet(t, n.srv.URL+"/live/x/index.m3u8")
	waited := time.Since(start)
	n.close()
	assert.Equal(t, http.StatusServiceUnavailable, r.code)
	assert.Equal(t, "1", r.hdr.Get("Retry-After"))
	assert.Contains(t, string(r.body), "no node packages it")
	assert.InDelta(t, 0.5, waited.Seconds(), 0.3)
	assert.GreaterOrEqual(t, asked.Load(), int32(3), "polled while waiting")

	local := &fakeHLS{}
	n = newProxyNode(t, HLSProxyOptions{Owner: none, Local: local, LocalHas: func(p string) bool { return p == "live/x" }})
	r = httpGet(t, n.srv.URL+"/live/x/index.m3u8")
	n.close()
	assert.Equal(t, http.StatusTeapot, r.code, "served by Local")
	assert.Equal(t, "live/x", local.path)

	local = &fakeHLS{}
	self := func(context.Context, string) (string, bool, error) { return "", true, nil }
	n = newProxyNode(t, HLSProxyOptions{Owner: self, Local: local})
	r = httpGet(t, n.srv.URL+"/live/x/a_seg3.mp4")
	n.close()
	assert.Equal(t, http.StatusTeapot, r.code)
	assert.Equal(t, "a_seg3.mp4", local.file)

	// A request another proxy forwarded is served locally, never forwarded again.
	local = &fakeHLS{}
	n = newProxyNode(t, HLSProxyOptions{Owner: ownerAt(dead), Local: local})
	req, err := http.NewRequest(http.MethodGet, n.srv.URL+"/live/x/index.m3u8", nil)
	require.NoError(t, err)
	req.Header.Set(HLSProxyHeader, "pull-2")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	n.close()
	assert.Equal(t, http.StatusTeapot, resp.StatusCode)

	// A node that does not package HLS cannot serve a forwarded request.
	bare := NewHLSProxy(HLSProxyOptions{Owner: ownerAt(dead), Logger: testLog()})
	rec := httptest.NewRecorder()
	req = httptest.NewRequest(http.MethodGet, "/live/x/index.m3u8", nil)
	req.Header.Set(HLSProxyHeader, "pull-2")
	bare.ServeHLS(rec, req, "live/x", "index.m3u8")
	bare.Close()
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Contains(t, rec.Body.String(), "does not package HLS")

	// An owner that accepts but never answers: 504 after Timeout, no hang.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	n = newProxyNode(t, HLSProxyOptions{Owner: ownerAt(hang.URL), Timeout: 300 * time.Millisecond})
	start = time.Now()
	r = httpGet(t, n.srv.URL+"/live/x/index.m3u8")
	n.close()
	hang.Close()
	assert.Equal(t, http.StatusGatewayTimeout, r.code)
	assert.Less(t, time.Since(start), 2*time.Second)
}

// RegistryOwner reads the hls lease and the holder's HTTP address.
func TestRegistryOwner(t *testing.T) {
	reg := cluster.NewMemory()
	defer reg.Close()
	ctx := context.Background()
	owner := RegistryOwner(reg, "pull-1")
	_, _, err := owner(ctx, "live/x")
	assert.ErrorIs(t, err, ErrNoHLSOwner)

	_, err = reg.Acquire(ctx, cluster.KindHLS, "live/x", "ex-1", time.Minute)
	require.NoError(t, err)
	_, _, err = owner(ctx, "live/x")
	assert.ErrorIs(t, err, ErrNoHLSOwner, "holder without a heartbeat")
	require.NoError(t, reg.Heartbeat(ctx, cluster.Node{ID: "ex-1", HTTP: "http://10.0.0.2:8080"}, time.Minute))
	base, self, err := owner(ctx, "live/x")
	require.NoError(t, err)
	assert.Equal(t, "http://10.0.0.2:8080", base)
	assert.False(t, self)

	_, err = reg.Acquire(ctx, cluster.KindHLS, "live/y", "pull-1", time.Minute)
	require.NoError(t, err)
	_, self, err = owner(ctx, "live/y")
	require.NoError(t, err)
	assert.True(t, self)
}

// BenchmarkHLSProxySegment measures one segment request through the proxy
// against one straight to the owner (both over loopback HTTP), with the
// cache off so that every request is forwarded.
func BenchmarkHLSProxySegment(b *testing.B) {
	o := newHLSOwner(b, 4)
	defer o.close()
	idx := httpGet(b, o.srv.URL+"/live/x/index.m3u8")
	media := mediaURIOf(b, string(idx.body))
	pl := stablePlaylist(b, o.srv.URL+"/live/x/"+media)
	var seg string
	for _, f := range playlistFiles(pl) {
		if strings.Contains(f, "_seg") {
			seg = f
			break
		}
	}
	for _, c := range []struct {
		name  string
		cache int64
		proxy bool
	}{{"direct", 0, false}, {"proxy-nocache", -1, true}, {"proxy-cache", 0, true}} {
		b.Run(c.name, func(b *testing.B) {
			url := o.srv.URL + "/live/x/" + seg
			if c.proxy {
				n := newProxyNode(b, HLSProxyOptions{Owner: ownerAt(o.srv.URL), CacheBytes: c.cache})
				defer n.close()
				url = n.srv.URL + "/live/x/" + seg
			}
			size := len(httpGet(b, url).body)
			b.SetBytes(int64(size))
			b.ResetTimer()
			for b.Loop() {
				resp, err := http.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatal(resp.Status)
				}
			}
		})
	}
}

// Two exchange nodes and a pull node on one registry: the node that claims
// the stream's hls job packages it (exchange.Jobs starting HLS.Keep), the
// pull node serves it through RegistryOwner, and when that node goes the
// other one claims the job and the pull node follows.
func TestHLSProxyFollowsJobOwner(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	reg := cluster.NewMemory()
	defer reg.Close()
	ctx := context.Background()
	_, err := reg.Acquire(ctx, cluster.KindRoute, "live/x", "publish-1", time.Minute)
	require.NoError(t, err)
	const ttl = time.Second

	type exNode struct {
		o      *hlsOwner
		cancel context.CancelFunc
		done   chan struct{}
	}
	ex := map[string]*exNode{}
	for _, id := range []string{"ex-a", "ex-b"} {
		// The stream is in both hubs, as the relay would bring it.
		o := newHLSNode(t)
		defer o.close()
		require.NoError(t, reg.Heartbeat(ctx, cluster.Node{ID: id, Roles: []string{cluster.RoleExchange}, HTTP: o.srv.URL}, time.Minute))
		jobs := exchange.NewJobs(exchange.JobsOptions{
			Registry: reg, NodeID: id, TTL: ttl, Logger: testLog(),
			Wants: func(string) []string { return []string{cluster.KindHLS} },
			Start: func(kind, path string) func() { return o.hls.Keep(path) },
		})
		jctx, cancel := context.WithCancel(ctx)
		n := &exNode{o: o, cancel: cancel, done: make(chan struct{})}
		go func() { defer close(n.done); _ = jobs.Run(jctx) }()
		defer func() { cancel(); <-n.done }()
		ex[id] = n
	}
	var owner string
	require.Eventually(t, func() bool {
		l, err := reg.Lease(ctx, cluster.KindHLS, "live/x")
		owner = l.Owner
		return err == nil
	}, 3*time.Second, 10*time.Millisecond)
	other := map[string]string{"ex-a": "ex-b", "ex-b": "ex-a"}[owner]
	require.Eventually(t, func() bool { return len(ex[owner].o.hls.Active()) == 1 }, 2*time.Second, 10*time.Millisecond)
	assert.Empty(t, ex[other].o.hls.Active(), "one packager in the cluster")
	for _, n := range ex {
		n.o.publish(t, 3)
	}

	n := newProxyNode(t, HLSProxyOptions{Owner: RegistryOwner(reg, "pull-1"), OwnerCache: 200 * time.Millisecond})
	defer n.close()
	idx := httpGet(t, n.srv.URL+"/live/x/index.m3u8")
	require.Equal(t, http.StatusOK, idx.code, string(idx.body))
	media := mediaURIOf(t, string(idx.body))
	pl := stablePlaylist(t, ex[owner].o.srv.URL+"/live/x/"+media)
	require.Equal(t, pl, string(httpGet(t, n.srv.URL+"/live/x/"+media).body))
	assert.Zero(t, ex[other].o.hitsFor("/live/x/index.m3u8"))

	// The owner leaves (its jobs stop and release their lease, its HTTP
	// server goes): the other node claims the job and the pull node
	// serves its playlist.
	ex[owner].cancel()
	<-ex[owner].done
	ex[owner].o.srv.Close()
	require.Eventually(t, func() bool {
		l, err := reg.Lease(ctx, cluster.KindHLS, "live/x")
		return err == nil && l.Owner == other
	}, 3*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return len(ex[other].o.hls.Active()) == 1 }, 2*time.Second, 10*time.Millisecond)
	ex[other].o.publish(t, 2)
	require.Eventually(t, func() bool {
		r := httpGet(t, n.srv.URL+"/live/x/index.m3u8")
		return r.code == http.StatusOK && ex[other].o.hitsFor("/live/x/index.m3u8") > 0
	}, 5*time.Second, 50*time.Millisecond, "the pull node follows the new owner")
	media = mediaURIOf(t, string(httpGet(t, n.srv.URL+"/live/x/index.m3u8").body))
	pl = stablePlaylist(t, ex[other].o.srv.URL+"/live/x/"+media)
	require.Equal(t, pl, string(httpGet(t, n.srv.URL+"/live/x/"+media).body))
}

func TestHLSProxyForwardQuery(t *testing.T) {
	p := NewHLSProxy(HLSProxyOptions{Logger: testLog()})
	defer p.Close()
	for in, want := range map[string]string{
		"":                                   "",
		"token=abc":                          "",
		"_HLS_part=2&token=x&_HLS_msn=10":    "_HLS_msn=10&_HLS_part=2",
		"_HLS_skip=YES&_HLS_msn=3":           "_HLS_msn=3&_HLS_skip=YES",
		"%zz=1&_HLS_msn=4":                   "_HLS_msn=4",
		"_HLS_msn=1;x":                       "",
		"_hls_msn=1&_HLS_part=0&_HLS_part=1": "_HLS_part=0&_HLS_part=1",
	} {
		assert.Equal(t, want, p.forwardQuery(in), in)
	}
	full := NewHLSProxy(HLSProxyOptions{Logger: testLog(), ForwardFullQuery: true})
	defer full.Close()
	assert.Equal(t, "token=abc&_HLS_msn=1", full.forwardQuery("token=abc&_HLS_msn=1"))
}

// FuzzHLSProxyQuery: whatever a viewer sends, the forwarded query holds
// only LL-HLS directives and is stable (forwarding it again changes nothing).
func FuzzHLSProxyQuery(f *testing.F) {
	p := NewHLSProxy(HLSProxyOptions{Logger: testLog()})
	defer p.Close()
	f.Fuzz(func(t *testing.T, raw string) {
		out := p.forwardQuery(raw)
		q, err := url.ParseQuery(out)
		if err != nil {
			t.Fatalf("%q → %q does not parse: %v", raw, out, err)
		}
		for k := range q {
			if !strings.HasPrefix(k, "_HLS_") {
				t.Fatalf("%q → %q keeps %q", raw, out, k)
			}
		}
		if again := p.forwardQuery(out); again != out {
			t.Fatalf("%q → %q → %q", raw, out, again)
		}
	})
}
