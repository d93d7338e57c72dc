package core

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	legacyrouter "github.com/getkin/kin-openapi/routers/legacy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/dispatch"
	"github.com/quasipaa/quasipaa/internal/hub"
)

// testClock is a settable clock shared by the registry and the API.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *testClock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// clusterEnv is a core API over a memory registry, served on loopback.
type clusterEnv struct {
	t      *testing.T
	reg    *cluster.Memory
	clock  *testClock
	srv    *httptest.Server
	client *http.Client
}

const testTTL = 9 * time.Second

var testPolicy = dispatch.Policy{Kind: dispatch.PolicyLeastLoaded, CPUWeight: 50, ConnectionsWeight: 25, BandwidthWeight: 25, Fresh: 6 * time.Second}

func newClusterEnv(t *testing.T, self SelfInfo) *clusterEnv {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	clk := &testClock{t: time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC)}
	reg := cluster.NewMemory(cluster.WithClock(clk.now))
	h := hub.New(hub.Options{})
	api := NewAPI(h, slog.New(slog.NewTextHandler(io.Discard, nil)),
		WithCluster(reg, self, DispatchOptions{Policy: testPolicy, Now: clk.now}))
	mux := http.NewServeMux()
	api.Register(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Next", "1")
		w.WriteHeader(http.StatusTeapot)
	})
	srv := httptest.NewServer(api.Redirect(mux))
	client := &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		srv.Close()
		h.Close()
		_ = reg.Close()
		goleak.VerifyNone(t, opt)
	})
	return &clusterEnv{t: t, reg: reg, clock: clk, srv: srv, client: client}
}

// beat heartbeats a node with the given roles, connections and region.
func (e *clusterEnv) beat(id string, roles []string, conns int, region string) {
	e.t.Helper()
	n := cluster.Node{ID: id, Roles: roles, Region: region, Weight: 1, HTTP: "http://" + id + ".test:8080", RTMP: id + ".test:1935",
		Load: cluster.Load{Cores: 4, Connections: conns}}
	require.NoError(e.t, e.reg.Heartbeat(context.Background(), n, testTTL))
}

// do sends a request and returns the status, the headers and the body.
func (e *clusterEnv) do(method, target string, hdr ...string) (int, http.Header, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+target, nil)
	require.NoError(e.t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.client.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return resp.StatusCode, resp.Header, string(b)
}

// errCode decodes the API error shape and returns its code and message.
func errCode(t *testing.T, body string) (string, string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &e), body)
	return e.Error.Code, e.Error.Message
}

// dispatchTo calls the dispatch endpoint and returns the chosen node, or
// the error code.
func (e *clusterEnv) dispatchTo(query string) (DispatchJSON, string) {
	e.t.Helper()
	code, _, body := e.do("GET", "/api/v1/dispatch?"+query)
	if code != http.StatusOK {
		c, _ := errCode(e.t, body)
		return DispatchJSON{}, c
	}
	var d DispatchJSON
	require.NoError(e.t, json.Unmarshal([]byte(body), &d))
	return d, ""
}

var (
	pullRole    = []string{cluster.RolePull}
	publishRole = []string{cluster.RolePublish}
	coreOnly    = SelfInfo{ID: "core-1", Roles: []string{cluster.RoleCore}}
)

func TestNodesEndpoints(t *testing.T) {
	e := newClusterEnv(t, coreOnly)
	code, _, body := e.do("GET", "/api/v1/nodes")
	require.Equal(t, 200, code, body)
	assert.JSONEq(t, `{"nodes":[]}`, body)

	e.beat("pull-b", pullRole, 10, "eu")
	e.beat("pull-a", pullRole, 20, "")
	code, _, body = e.do("GET", "/api/v1/nodes")
	require.Equal(t, 200, code, body)
	var list NodesJSON
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	require.Len(t, list.Nodes, 2)
	assert.Equal(t, "pull-a", list.Nodes[0].ID)
	assert.Equal(t, "pull-b", list.Nodes[1].ID)
	assert.Equal(t, "eu", list.Nodes[1].Region)
	assert.Equal(t, 10, list.Nodes[1].Load.Connections)

	code, _, body = e.do("GET", "/api/v1/nodes/pull-b")
	require.Equal(t, 200, code, body)
	var n cluster.Node
	require.NoError(t, json.Unmarshal([]byte(body), &n))
	assert.Equal(t, "pull-b", n.ID)
	assert.Equal(t, e.clock.now(), n.Seen.UTC())

	code, _, body = e.do("GET", "/api/v1/nodes/nope")
	require.Equal(t, 404, code)
	c, msg := errCode(t, body)
	assert.Equal(t, "node_not_found", c)
	assert.Contains(t, msg, "nope")

	// Expired heartbeats drop the node.
	e.clock.advance(testTTL + time.Second)
	code, _, _ = e.do("GET", "/api/v1/nodes/pull-b")
	assert.Equal(t, 404, code)
}

func TestDrain(t *testing.T) {
	e := newClusterEnv(t, coreOnly)
	e.beat("pull-a", pullRole, 0, "")
	e.beat("pull-b", pullRole, 500, "")

	d, errc := e.dispatchTo("path=live/cam1&action=play&protocol=flv")
	require.Empty(t, errc)
	assert.Equal(t, "pull-a", d.Node)

	code, _, body := e.do("PUT", "/api/v1/nodes/pull-a/drain")
	require.Equal(t, 200, code, body)
	var n cluster.Node
	require.NoError(t, json.Unmarshal([]byte(body), &n))
	assert.Equal(t, "pull-a", n.ID)
	assert.True(t, n.Draining)

	for range 5 {
		d, errc = e.dispatchTo("path=live/cam1&action=play&protocol=flv")
		require.Empty(t, errc)
		assert.Equal(t, "pull-b", d.Node, "a draining node gets no client")
	}
	// The flag survives heartbeats.
	e.beat("pull-a", pullRole, 0, "")
	d, _ = e.dispatchTo("path=live/cam1&action=play&protocol=flv")
	assert.Equal(t, "pull-b", d.Node)

	// Draining every pull node leaves nothing to dispatch to.
	code, _, _ = e.do("PUT", "/api/v1/nodes/pull-b/drain")
	require.Equal(t, 200, code)
	_, errc = e.dispatchTo("path=live/cam1&action=play&protocol=flv")
	assert.Equal(t, "no_node", errc)

	code, _, body = e.do("DELETE", "/api/v1/nodes/pull-a/drain")
	require.Equal(t, 200, code, body)
	require.NoError(t, json.Unmarshal([]byte(body), &n))
	assert.False(t, n.Draining)
	d, errc = e.dispatchTo("path=live/cam1&action=play&protocol=flv")
	require.Empty(t, errc)
	assert.Equal(t, "pull-a", d.Node, "undrained node is back")

	for _, m := range []string{"PUT", "DELETE"} {
		code, _, body = e.do(m, "/api/v1/nodes/ghost/drain")
		assert.Equal(t, 404, code, m)
		c, _ := errCode(t, body)
		assert.Equal(t, "node_not_found", c)
	}
	code, _, _ = e.do("PUT", "/api/v1/nodes/"+strings.Repeat("x", 300)+"/drain")
	assert.Equal(t, 404, code)
	code, _, _ = e.do("POST", "/api/v1/nodes/pull-a/drain")
	assert.Equal(t, http.StatusMethodNotAllowed, code)
}

func TestDispatchURLs(t *testing.T) {
	e := newClusterEnv(t, coreOnly)
	e.beat("pull-a", pullRole, 0, "")
	e.beat("pub-a", publishRole, 0, "")
	cases := []struct{ query, node, url string }{
		{"path=live/cam1&action=play&protocol=flv", "pull-a", "http://pull-a.test:8080/live/cam1.flv"},
		{"path=live/cam1&action=play&protocol=ws-flv", "pull-a", "ws://pull-a.test:8080/live/cam1.flv"},
		{"path=live/cam1&action=play&protocol=hls&token=abc", "pull-a", "http://pull-a.test:8080/live/cam1/index.m3u8?token=abc"},
		{"token=a%2Bb&path=live/cam1&action=play&protocol=whep&x=1", "pull-a", "http://pull-a.test:8080/live/cam1/whep?token=a%2Bb&x=1"},
		{"path=live/cam1&action=play&protocol=rtmp", "pull-a", "rtmp://pull-a.test:1935/live/cam1"},
		{"path=live/cam1&action=publish&protocol=rtmp&key=s3cret", "pub-a", "rtmp://pub-a.test:1935/live/cam1?key=s3cret"},
		{"path=live/cam1&action=publish&protocol=whip", "pub-a", "http://pub-a.test:8080/live/cam1/whip"},
	}
	for _, c := range cases {
		code, hdr, body := e.do("GET", "/api/v1/dispatch?"+c.query)
		require.Equal(t, 200, code, "%s: %s", c.query, body)
		assert.Equal(t, "application/json", hdr.Get("Content-Type"))
		var d DispatchJSON
		require.NoError(t, json.Unmarshal([]byte(body), &d))
		assert.Equal(t, c.node, d.Node, c.query)
		assert.Equal(t, c.url, d.URL, c.query)
		assert.NotEmpty(t, d.Action)
		assert.NotEmpty(t, d.Protocol)
	}
}

func TestDispatchErrors(t *testing.T) {
	e := newClusterEnv(t, coreOnly)
	e.beat("pull-a", pullRole, 0, "")
	bad := []struct{ query, word string }{
		{"action=play&protocol=flv", "path"},
		{"path=live/cam1&protocol=flv", "action"},
		{"path=live/cam1&action=play", "protocol"},
		{"path=live/../x&action=play&protocol=flv", "path"},
		{"path=live/a%20b&action=play&protocol=flv", "path"},
		{"path=live/a/b&action=play&protocol=flv", "app/stream"},
		{"path=live/cam1&action=watch&protocol=flv", "action"},
		{"path=live/cam1&action=play&protocol=dash", "protocol"},
		{"path=live/cam1&action=play&protocol=whip", "whip cannot play"},
		{"path=live/cam1&action=publish&protocol=hls", "hls cannot publish"},
	}
	for _, c := range bad {
		code, _, body := e.do("GET", "/api/v1/dispatch?"+c.query)
		require.Equal(t, 400, code, c.query)
		ec, msg := errCode(t, body)
		assert.Equal(t, "bad_request", ec, c.query)
		assert.Contains(t, msg, c.word, c.query)
	}
	// No publish node at all, and srt that no node serves.
	for _, q := range []string{"path=live/cam1&action=publish&protocol=rtmp", "path=live/cam1&action=play&protocol=srt"} {
		code, _, body := e.do("GET", "/api/v1/dispatch?"+q)
		require.Equal(t, 503, code, q)
		ec, msg := errCode(t, body)
		assert.Equal(t, "no_node", ec)
		assert.NotContains(t, msg, "dispatch:")
	}
	_, _, body := e.do("GET", "/api/v1/dispatch?path=live/cam1&action=play&protocol=srt")
	_, msg := errCode(t, body)
	assert.Contains(t, msg, "no node serves srt")
}

func TestDispatchStaleNode(t *testing.T) {
	e := newClusterEnv(t, coreOnly)
	e.beat("pull-a", pullRole, 0, "")
	e.clock.advance(4 * time.Second)
	e.beat("pull-b", pullRole, 900, "")
	d, _ := e.dispatchTo("path=live/cam1&action=play&protocol=hls")
	assert.Equal(t, "pull-a", d.Node)
	// pull-a stops heartbeating: 7 s later it is still listed (TTL 9 s) but
	// no longer fresh (6 s), so dispatch avoids it.
	e.clock.advance(3 * time.Second)
	e.beat("pull-b", pullRole, 900, "")
	code, _, _ := e.do("GET", "/api/v1/nodes/pull-a")
	require.Equal(t, 200, code, "still in the registry")
	d, errc := e.dispatchTo("path=live/cam1&action=play&protocol=hls")
	require.Empty(t, errc)
	assert.Equal(t, "pull-b", d.Node)
}

func TestDispatchPublishRoute(t *testing.T) {
	e := newClusterEnv(t, coreOnly)
	ctx := context.Background()
	e.beat("pub-a", publishRole, 0, "")
	e.beat("pub-b", publishRole, 800, "")
	_, err := e.reg.Acquire(ctx, cluster.KindRoute, "live/cam1", "pub-b", testTTL)
	require.NoError(t, err)

	d, errc := e.dispatchTo("path=live/cam1&action=publish&protocol=rtmp")
	require.Empty(t, errc)
	assert.Equal(t, "pub-b", d.Node, "the route owner takes the publisher, however loaded")
	d, _ = e.dispatchTo("path=live/cam2&action=publish&protocol=rtmp")
	assert.Equal(t, "pub-a", d.Node, "other paths go to the least loaded")
	d, _ = e.dispatchTo("path=live/cam1&action=play&protocol=flv")
	assert.Empty(t, d.Node, "play never goes to a publish node")

	// The owner drains: the route is ignored.
	code, _, _ := e.do("PUT", "/api/v1/nodes/pub-b/drain")
	require.Equal(t, 200, code)
	d, _ = e.dispatchTo("path=live/cam1&action=publish&protocol=rtmp")
	assert.Equal(t, "pub-a", d.Node)
	code, _, _ = e.do("DELETE", "/api/v1/nodes/pub-b/drain")
	require.Equal(t, 200, code)

	// The owner dies: its heartbeat goes stale while the lease lives on.
	e.clock.advance(7 * time.Second)
	e.beat("pub-a", publishRole, 0, "")
	_, err = e.reg.Lease(ctx, cluster.KindRoute, "live/cam1")
	require.NoError(t, err, "the route still exists")
	d, errc = e.dispatchTo("path=live/cam1&action=publish&protocol=whip")
	require.Empty(t, errc)
	assert.Equal(t, "pub-a", d.Node, "a dead owner's route is ignored")
}

func TestDispatchRegion(t *testing.T) {
	e := newClusterEnv(t, coreOnly)
	e.beat("pull-eu", pullRole, 900, "eu")
	e.beat("pull-us", pullRole, 0, "us")
	d, _ := e.dispatchTo("path=live/cam1&action=play&protocol=flv&region=eu")
	assert.Equal(t, "pull-eu", d.Node, "own region first, even loaded")
	d, _ = e.dispatchTo("path=live/cam1&action=play&protocol=flv&region=ap")
	assert.Equal(t, "pull-us", d.Node, "no node in the region: least loaded elsewhere")
	assert.NotContains(t, d.URL, "region=", "dispatch parameters are not passed on")
	d, _ = e.dispatchTo("path=live/cam1&action=play&protocol=flv")
	assert.Equal(t, "pull-us", d.Node)
}

// TestDispatchBurst checks that clients dispatched between two heartbeats
// count as load: without that every one would go to the node that was least
// loaded at its last heartbeat.
func TestDispatchBurst(t *testing.T) {
	e := newClusterEnv(t, coreOnly)
	e.beat("pull-a", pullRole, 0, "")
	e.beat("pull-b", pullRole, 100, "")
	got := map[string]int{}
	for range 200 {
		d, errc := e.dispatchTo("path=live/cam1&action=play&protocol=flv")
		require.Empty(t, errc)
		got[d.Node]++
	}
	assert.Greater(t, got["pull-b"], 40, "%v", got)
	assert.Greater(t, got["pull-a"], got["pull-b"], "%v", got)
	// A new heartbeat carries the real load and resets the count.
	e.clock.advance(time.Second)
	e.beat("pull-a", pullRole, 0, "")
	e.beat("pull-b", pullRole, 500, "")
	d, _ := e.dispatchTo("path=live/cam1&action=play&protocol=flv")
	assert.Equal(t, "pull-a", d.Node)
}

func TestRoutesAndJobs(t *testing.T) {
	e := newClusterEnv(t, coreOnly)
	ctx := context.Background()
	code, _, body := e.do("GET", "/api/v1/routes")
	require.Equal(t, 200, code)
	assert.JSONEq(t, `{"routes":[]}`, body)
	code, _, body = e.do("GET", "/api/v1/jobs")
	require.Equal(t, 200, code)
	assert.JSONEq(t, `{"jobs":[]}`, body)

	for _, l := range []struct{ kind, path, owner string }{
		{cluster.KindRoute, "live/b", "pub-1"}, {cluster.KindRoute, "live/a", "pub-2"},
		{cluster.KindRecord, "live/b", "ex-1"}, {cluster.KindHLS, "live/b", "ex-2"}, {cluster.KindHLS, "live/a", "ex-1"},
	} {
		_, err := e.reg.Acquire(ctx, l.kind, l.path, l.owner, testTTL)
		require.NoError(t, err)
	}
	code, _, body = e.do("GET", "/api/v1/routes")
	require.Equal(t, 200, code)
	var routes RoutesJSON
	require.NoError(t, json.Unmarshal([]byte(body), &routes))
	require.Len(t, routes.Routes, 2)
	assert.Equal(t, "live/a", routes.Routes[0].Path)
	assert.Equal(t, "pub-2", routes.Routes[0].Owner)
	assert.Equal(t, cluster.KindRoute, routes.Routes[1].Kind)

	code, _, body = e.do("GET", "/api/v1/jobs")
	require.Equal(t, 200, code)
	var jobs JobsJSON
	require.NoError(t, json.Unmarshal([]byte(body), &jobs))
	var got []string
	for _, j := range jobs.Jobs {
		got = append(got, j.Kind+":"+j.Path+":"+j.Owner)
	}
	assert.Equal(t, []string{"hls:live/a:ex-1", "hls:live/b:ex-2", "record:live/b:ex-1"}, got)

	// Expired leases leave the inventory.
	e.clock.advance(testTTL)
	_, _, body = e.do("GET", "/api/v1/jobs")
	assert.JSONEq(t, `{"jobs":[]}`, body)
}

func TestRegistryUnavailable(t *testing.T) {
	e := newClusterEnv(t, coreOnly)
	require.NoError(t, e.reg.Close())
	for _, target := range []string{"/api/v1/nodes", "/api/v1/nodes/x", "/api/v1/routes", "/api/v1/jobs", "/api/v1/dispatch?path=live/a&action=play&protocol=flv", "/api/v1/dispatch?path=live/a&action=publish&protocol=rtmp"} {
		code, _, body := e.do("GET", target)
		require.Equal(t, 503, code, target)
		c, _ := errCode(t, body)
		assert.Equal(t, "registry_unavailable", c, target)
	}
	code, _, _ := e.do("PUT", "/api/v1/nodes/x/drain")
	assert.Equal(t, 503, code)
}

func TestRedirect(t *testing.T) {
	e := newClusterEnv(t, SelfInfo{ID: "core-1", Roles: []string{cluster.RoleCore}, Region: "eu"})
	e.beat("pull-us", pullRole, 0, "us")
	e.beat("pull-eu", pullRole, 700, "eu")
	e.beat("pub-a", publishRole, 0, "")
	cases := []struct {
		method, target string
		hdr            []string
		location       string
	}{
		{"GET", "/live/cam1.flv?token=abc&x=%2F", nil, "http://pull-eu.test:8080/live/cam1.flv?token=abc&x=%2F"},
		{"HEAD", "/live/cam1.flv", nil, "http://pull-eu.test:8080/live/cam1.flv"},
		{"GET", "/live/cam1.flv", []string{"Connection", "Upgrade", "Upgrade", "websocket"}, "ws://pull-eu.test:8080/live/cam1.flv"},
		{"GET", "/live/cam1/index.m3u8?t=1", nil, "http://pull-eu.test:8080/live/cam1/index.m3u8?t=1"},
		{"POST", "/live/cam1/whep", nil, "http://pull-eu.test:8080/live/cam1/whep"},
		{"POST", "/live/cam1/whip?token=p", nil, "http://pub-a.test:8080/live/cam1/whip?token=p"},
	}
	for _, c := range cases {
		code, hdr, _ := e.do(c.method, c.target, c.hdr...)
		require.Equal(t, http.StatusTemporaryRedirect, code, c.method+" "+c.target)
		assert.Equal(t, c.location, hdr.Get("Location"), c.method+" "+c.target)
	}
	// Not a client URL, a bad stream name, or the wrong method: passed on.
	for _, c := range []struct{ method, target string }{
		{"GET", "/"}, {"GET", "/live/cam1.mp4"}, {"GET", "/live/cam1/seg1.m4s"}, {"GET", "/live/cam1/whep"},
		{"POST", "/live/cam1.flv"}, {"GET", "/a/b/c.flv"}, {"GET", "/live/.flv"}, {"POST", "/api/x/whep"},
		{"GET", "/live/%20/index.m3u8"},
	} {
		code, hdr, _ := e.do(c.method, c.target)
		assert.Equal(t, http.StatusTeapot, code, c.method+" "+c.target)
		assert.Equal(t, "1", hdr.Get("X-Next"))
	}
	// The API itself is not redirected.
	code, _, _ := e.do("GET", "/api/v1/nodes")
	assert.Equal(t, 200, code)

	// No node to send a viewer to: 503 no_node.
	require.NoError(t, e.reg.Leave(context.Background(), "pull-us"))
	require.NoError(t, e.reg.Leave(context.Background(), "pull-eu"))
	code, _, body := e.do("GET", "/live/cam1.flv")
	require.Equal(t, 503, code)
	c, _ := errCode(t, body)
	assert.Equal(t, "no_node", c)
}

func TestRedirectPassesWhenServedHere(t *testing.T) {
	e := newClusterEnv(t, SelfInfo{ID: "edge-1", Roles: []string{cluster.RoleCore, cluster.RolePull}})
	e.beat("pull-x", pullRole, 0, "")
	e.beat("pub-x", publishRole, 0, "")
	for _, c := range []struct{ method, target string }{{"GET", "/live/cam1.flv"}, {"GET", "/live/cam1/index.m3u8"}, {"POST", "/live/cam1/whep"}} {
		code, _, _ := e.do(c.method, c.target)
		assert.Equal(t, http.StatusTeapot, code, "a pull node serves "+c.target+" itself")
	}
	code, hdr, _ := e.do("POST", "/live/cam1/whip")
	require.Equal(t, http.StatusTemporaryRedirect, code, "no publish role here")
	assert.Equal(t, "http://pub-x.test:8080/live/cam1/whip", hdr.Get("Location"))
}

func TestNoClusterNoEndpoints(t *testing.T) {
	api := NewAPI(hub.New(hub.Options{}), slog.New(slog.NewTextHandler(io.Discard, nil)))
	mux := http.NewServeMux()
	api.Register(mux)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	rec := httptest.NewRecorder()
	api.Redirect(next).ServeHTTP(rec, httptest.NewRequest("GET", "/live/cam1.flv", nil))
	assert.Equal(t, http.StatusTeapot, rec.Code)
	for _, target := range []string{"/api/v1/nodes", "/api/v1/dispatch"} {
		rec = httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		assert.Equal(t, 404, rec.Code, target)
	}
}

func TestKeepQuery(t *testing.T) {
	for _, c := range [][2]string{
		{"", ""},
		{"path=a/b&token=x", "token=x"},
		{"token=x&path=a/b&&action=play&y", "token=x&y"},
		{"pathx=1&region=eu", "pathx=1"},
	} {
		assert.Equal(t, c[1], keepQuery(c[0], dispatchParams), c[0])
	}
}

// TestClusterOpenAPI validates every cluster endpoint's answers, success and
// error, against the OpenAPI document.
func TestClusterOpenAPI(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPI)
	require.NoError(t, err)
	require.NoError(t, doc.Validate(context.Background()))
	router, err := legacyrouter.NewRouter(doc)
	require.NoError(t, err)

	e := newClusterEnv(t, coreOnly)
	e.beat("pull-a", pullRole, 3, "eu")
	e.beat("pub-a", publishRole, 0, "")
	_, err = e.reg.Acquire(context.Background(), cluster.KindRoute, "live/cam1", "pub-a", testTTL)
	require.NoError(t, err)
	_, err = e.reg.Acquire(context.Background(), cluster.KindHLS, "live/cam1", "pub-a", testTTL)
	require.NoError(t, err)
	for _, c := range []struct {
		method, target string
		status         int
	}{
		{"GET", "/api/v1/nodes", 200},
		{"GET", "/api/v1/nodes/pull-a", 200},
		{"GET", "/api/v1/nodes/ghost", 404},
		{"PUT", "/api/v1/nodes/pull-a/drain", 200},
		{"DELETE", "/api/v1/nodes/pull-a/drain", 200},
		{"PUT", "/api/v1/nodes/ghost/drain", 404},
		{"GET", "/api/v1/dispatch?path=live/cam1&action=play&protocol=hls&region=eu&token=x", 200},
		{"GET", "/api/v1/dispatch?path=live/cam1&action=publish&protocol=rtmp", 200},
		{"GET", "/api/v1/dispatch?path=live/cam1&action=play&protocol=whip", 400},
		{"GET", "/api/v1/dispatch?path=live/cam1&action=play&protocol=srt", 503},
		{"GET", "/api/v1/routes", 200},
		{"GET", "/api/v1/jobs", 200},
	} {
		req, err := http.NewRequest(c.method, e.srv.URL+c.target, nil)
		require.NoError(t, err)
		resp, err := e.client.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, c.status, resp.StatusCode, "%s %s: %s", c.method, c.target, body)

		// Validate against the document as served from "/".
		req.URL.Scheme, req.URL.Host = "", ""
		route, params, err := router.FindRoute(req)
		require.NoError(t, err, c.target)
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		if c.status != 400 {
			require.NoError(t, openapi3filter.ValidateRequest(context.Background(), in), c.target)
		}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
			Options: &openapi3filter.Options{IncludeResponseStatus: true}}
		out.SetBodyBytes(body)
		require.NoError(t, openapi3filter.ValidateResponse(context.Background(), out), "%s %s: %s", c.method, c.target, body)
	}
}
