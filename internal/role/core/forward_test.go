package core

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/config"
	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/media"
	"github.com/quasipaa/quasipaa/internal/relay"
)

const (
	fwdSecret   = "cluster-secret-0123456789"
	fwdReadKey  = "read-key-0123456789"
	fwdAdminKey = "admin-key-0123456789"
)

var fwdKeys = []config.APIKey{{Name: "dash", Key: fwdReadKey, Scope: config.ScopeRead}, {Name: "ops", Key: fwdAdminKey, Scope: config.ScopeAdmin}}

// fwdNode is one node of a test cluster: a hub and its API on loopback,
// behind the API keys with the cluster trusted.
type fwdNode struct {
	id  string
	hub *hub.Hub
	api *API
	srv *httptest.Server
	log *syncBuffer
}

// fwdCluster is a few nodes sharing a memory registry.
type fwdCluster struct {
	t      *testing.T
	doc    *openapi3.T
	reg    *cluster.Memory
	nodes  map[string]*fwdNode
	client *http.Client
	pubs   []*hub.Publisher
}

func newFwdCluster(t *testing.T) *fwdCluster {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) }) // runs last
	c := &fwdCluster{t: t, doc: loadSpec(t), reg: cluster.NewMemory(), nodes: map[string]*fwdNode{},
		client: &http.Client{Timeout: 10 * time.Second}}
	t.Cleanup(func() { _ = c.reg.Close() })
	t.Cleanup(c.client.CloseIdleConnections)
	return c
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// add starts node id with roles and heartbeats it.
func (c *fwdCluster) add(id string, roles ...string) *fwdNode {
	t := c.t
	t.Helper()
	n := &fwdNode{id: id, hub: hub.New(hub.Options{Logger: quietLog()}), log: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(n.log, nil))
	n.api = NewAPI(n.hub, log, WithNode(id, "v-test"),
		WithCluster(c.reg, SelfInfo{ID: id, Roles: roles}, DispatchOptions{}),
		WithForwarding(fwdSecret, 500*time.Millisecond))
	mux := http.NewServeMux()
	n.api.Register(mux)
	n.srv = httptest.NewServer(RequireKeys(fwdKeys, log, mux, TrustCluster(fwdSecret)))
	t.Cleanup(func() {
		n.api.fwd.client.CloseIdleConnections()
		n.srv.Close()
		n.hub.Close()
	})
	require.NoError(t, c.reg.Heartbeat(context.Background(), cluster.Node{ID: id, Roles: roles, HTTP: n.srv.URL,
		Weight: 1, Started: time.Now()}, time.Minute))
	c.nodes[id] = n
	return n
}

// publish starts path on node id (with a route lease when routed).
func (c *fwdCluster) publish(id, path string, routed bool) {
	t := c.t
	t.Helper()
	p, err := c.nodes[id].hub.Publish(path, hub.ClientInfo{Protocol: "rtmp", RemoteAddr: "127.0.0.1:5000"})
	require.NoError(t, err)
	require.NoError(t, p.SetTracks([]*media.Track{videoTrack, audioTrack}))
	require.NoError(t, p.WriteFrame(&media.Frame{Track: 0, Key: true, Payload: make([]byte, 100), Ingest: time.Now()}))
	c.pubs = append(c.pubs, p)
	if routed {
		_, err = c.reg.Acquire(context.Background(), cluster.KindRoute, path, id, time.Minute)
		require.NoError(t, err)
	}
}

// viewer subscribes to path on node id.
func (c *fwdCluster) viewer(id, path, protocol string) *hub.Reader {
	r, err := c.nodes[id].hub.Subscribe(path, hub.ClientInfo{Protocol: protocol, RemoteAddr: "127.0.0.1:6000"})
	require.NoError(c.t, err)
	c.t.Cleanup(r.Close)
	return r
}

// do sends a request with key to node id and validates it and the answer
// against the OpenAPI document.
func (c *fwdCluster) do(id, method, target, key string, invalid ...bool) reply {
	t := c.t
	t.Helper()
	req, err := http.NewRequest(method, c.nodes[id].srv.URL+target, nil)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return c.send(req, invalid...)
}

// send sends req and validates the answer (and req unless invalid).
func (c *fwdCluster) send(req *http.Request, invalid ...bool) reply {
	t := c.t
	t.Helper()
	resp, err := c.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	rep := reply{code: resp.StatusCode, header: resp.Header, body: b}
	if resp.StatusCode != http.StatusNoContent {
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"), "%s %s", req.Method, req.URL)
	}
	(&env{t: t, doc: c.doc}).validate(req, "", rep, len(invalid) > 0 && invalid[0])
	return rep
}

// threeNodes is core "a" (publishing live/a), publish node "b" (live/b,
// live/b2) and pull node "c" (a relayed copy of live/b with two viewers).
func threeNodes(t *testing.T) *fwdCluster {
	c := newFwdCluster(t)
	c.add("a", cluster.RoleCore, cluster.RolePublish)
	c.add("b", cluster.RolePublish)
	c.add("c", cluster.RolePull)
	c.publish("a", "live/a", true)
	c.publish("b", "live/b", true)
	c.publish("b", "live/b2", true)
	c.publish("c", "live/b", false) // the relayed copy: no route
	c.viewer("c", "live/b", "flv")
	c.viewer("c", "live/b", "hls")
	c.viewer("b", "live/b", "relay")
	return c
}

func paths(l StreamsJSON) (out []string) {
	for _, s := range l.Streams {
		out = append(out, s.Node+":"+s.Path)
	}
	return out
}

func TestClusterStreamsList(t *testing.T) {
	c := threeNodes(t)
	var l StreamsJSON
	r := c.do("a", "GET", "/api/v1/streams", fwdReadKey)
	require.Equal(t, 200, r.code, string(r.body))
	r.json(t, &l)
	assert.Equal(t, ScopeCluster, l.Scope)
	assert.Equal(t, []string{"a:live/a", "b:live/b", "b:live/b2"}, paths(l), "one entry per route, from its publish node")
	assert.Equal(t, 3, l.Total)
	assert.Empty(t, l.Errors)
	assert.Equal(t, 1, l.Streams[1].ViewersTotal, "live/b as b reports it (its relay reader)")
	assert.Equal(t, "rtmp", l.Streams[1].Publisher.Protocol)

	r = c.do("a", "GET", "/api/v1/streams?scope=cluster&limit=1&offset=1", fwdReadKey)
	require.Equal(t, 200, r.code)
	l = StreamsJSON{}
	r.json(t, &l)
	assert.Equal(t, []string{"b:live/b"}, paths(l))
	assert.Equal(t, 3, l.Total)

	r = c.do("a", "GET", "/api/v1/streams?scope=local", fwdReadKey)
	l = StreamsJSON{}
	r.json(t, &l)
	assert.Equal(t, ScopeLocal, l.Scope)
	assert.Equal(t, []string{"a:live/a"}, paths(l))

	// Nodes without the core role answer for themselves; scope=cluster is
	// refused there.
	r = c.do("c", "GET", "/api/v1/streams", fwdReadKey)
	l = StreamsJSON{}
	r.json(t, &l)
	assert.Equal(t, ScopeLocal, l.Scope)
	assert.Equal(t, []string{"c:live/b"}, paths(l))
	r = c.do("c", "GET", "/api/v1/streams?scope=cluster", fwdReadKey)
	assert.Equal(t, 400, r.code)
	r = c.do("a", "GET", "/api/v1/streams?scope=world", fwdReadKey, true)
	assert.Equal(t, 400, r.code)
	assert.Equal(t, "bad_request", r.errorCode(t))
}

func TestClusterStreamsNodeDown(t *testing.T) {
	c := threeNodes(t)
	// A node that hangs: its answer is given up after the timeout.
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	ctx := context.Background()
	require.NoError(t, c.reg.Heartbeat(ctx, cluster.Node{ID: "h", Roles: []string{cluster.RolePublish}, HTTP: hang.URL, Weight: 1, Started: time.Now()}, time.Minute))
	_, err := c.reg.Acquire(ctx, cluster.KindRoute, "live/h", "h", time.Minute)
	require.NoError(t, err)
	// A route whose node is gone from the registry.
	_, err = c.reg.Acquire(ctx, cluster.KindRoute, "live/g", "ghost", time.Minute)
	require.NoError(t, err)
	// b is down.
	c.nodes["b"].srv.Close()

	start := time.Now()
	r := c.do("a", "GET", "/api/v1/streams", fwdReadKey)
	took := time.Since(start)
	require.Equal(t, 200, r.code, string(r.body))
	var l StreamsJSON
	r.json(t, &l)
	assert.Equal(t, []string{"a:live/a"}, paths(l))
	var errs []string
	for _, e := range l.Errors {
		errs = append(errs, e.Node+":"+e.Code)
	}
	assert.Equal(t, []string{"b:node_unreachable", "ghost:node_not_found", "h:node_unreachable"}, errs)
	assert.Less(t, took, 2*time.Second, "the nodes are asked in parallel, each within the 500 ms timeout")
	t.Logf("cluster list with a dead and a hung node: %s", took.Round(time.Millisecond))

	r = c.do("a", "GET", "/api/v1/streams/live/b", fwdReadKey)
	assert.Equal(t, 502, r.code, string(r.body))
	assert.Equal(t, "node_unreachable", r.errorCode(t))
	r = c.do("a", "DELETE", "/api/v1/streams/live/h", fwdAdminKey)
	assert.Equal(t, 502, r.code, string(r.body))
	r = c.do("a", "GET", "/api/v1/streams/live/g", fwdReadKey)
	assert.Equal(t, 404, r.code)
	assert.Equal(t, "node_not_found", r.errorCode(t))
}

func TestForwardedDetail(t *testing.T) {
	c := threeNodes(t)
	var s StreamJSON
	r := c.do("a", "GET", "/api/v1/streams/live/b", fwdReadKey)
	require.Equal(t, 200, r.code, string(r.body))
	r.json(t, &s)
	assert.Equal(t, "b", s.Node)
	require.NotNil(t, s.Clients)
	assert.Len(t, *s.Clients, 1, "the publish node's readers: the relay")

	s = StreamJSON{}
	r = c.do("a", "GET", "/api/v1/streams/live/b?node=c", fwdReadKey)
	require.Equal(t, 200, r.code, string(r.body))
	r.json(t, &s)
	assert.Equal(t, "c", s.Node)
	assert.Equal(t, map[string]int{"flv": 1, "hls": 1}, s.Viewers)

	// HEAD is forwarded as GET.
	r = c.do("a", "HEAD", "/api/v1/streams/live/b", fwdReadKey)
	assert.Equal(t, 200, r.code)
	assert.Empty(t, r.body)

	// Local streams and node=self answer from the hub.
	r = c.do("a", "GET", "/api/v1/streams/live/a?node=a", fwdReadKey)
	require.Equal(t, 200, r.code)
	s = StreamJSON{}
	r.json(t, &s)
	assert.Equal(t, "a", s.Node)

	for _, cs := range []struct{ target, code string }{
		{"/api/v1/streams/live/none", "stream_not_found"},
		{"/api/v1/streams/live/none?node=b", "stream_not_found"},
		{"/api/v1/streams/live/b?node=ghost", "node_not_found"},
	} {
		r = c.do("a", "GET", cs.target, fwdReadKey)
		assert.Equal(t, 404, r.code, cs.target)
		assert.Equal(t, cs.code, r.errorCode(t), cs.target)
	}
	// node= is only for core nodes.
	r = c.do("c", "GET", "/api/v1/streams/live/b?node=b", fwdReadKey)
	assert.Equal(t, 400, r.code)

	// Latency of a forwarded detail (loopback, keep-alive).
	const n = 200
	start := time.Now()
	for range n {
		r = c.do("a", "GET", "/api/v1/streams/live/b", fwdReadKey)
		require.Equal(t, 200, r.code)
	}
	fwd := time.Since(start) / n
	start = time.Now()
	for range n {
		r = c.do("b", "GET", "/api/v1/streams/live/b", fwdReadKey)
		require.Equal(t, 200, r.code)
	}
	direct := time.Since(start) / n
	t.Logf("stream detail: forwarded %s, direct %s (mean of %d, OpenAPI validation included)", fwd, direct, n)
}

func TestForwardedKicks(t *testing.T) {
	c := threeNodes(t)
	// A read key cannot kick, even through a forward.
	r := c.do("a", "DELETE", "/api/v1/streams/live/b", fwdReadKey)
	assert.Equal(t, 403, r.code)
	_, ok := c.nodes["b"].hub.Stream("live/b")
	require.True(t, ok)

	// A viewer of the pull node c, by its id.
	v := c.viewer("c", "live/b", "ws-flv")
	r = c.do("a", "DELETE", "/api/v1/clients/"+v.Info().ID+"?path=live/b&node=c", fwdAdminKey)
	require.Equal(t, 204, r.code, string(r.body))
	assert.ErrorIs(t, v.Err(), hub.ErrKicked)
	assert.Contains(t, c.nodes["c"].logText(), "key=node:a", "the receiving node logs the forwarding node")
	assert.Contains(t, c.nodes["a"].logText(), "key=ops", "the core logs the key")
	r = c.do("a", "DELETE", "/api/v1/clients/999999?path=live/b&node=c", fwdAdminKey)
	assert.Equal(t, 404, r.code)
	assert.Equal(t, "client_not_found", r.errorCode(t))
	r = c.do("a", "DELETE", "/api/v1/clients/999999?node=ghost", fwdAdminKey)
	assert.Equal(t, 404, r.code)
	assert.Equal(t, "node_not_found", r.errorCode(t))
	r = c.do("a", "DELETE", "/api/v1/clients/1?path=../x&node=c", fwdAdminKey)
	assert.Equal(t, 400, r.code)

	// The stream, on its publish node.
	r = c.do("a", "DELETE", "/api/v1/streams/live/b", fwdAdminKey)
	require.Equal(t, 204, r.code, string(r.body))
	_, ok = c.nodes["b"].hub.Stream("live/b")
	assert.False(t, ok, "ended on b")
	_, ok = c.nodes["b"].hub.Stream("live/b2")
	assert.True(t, ok)
	// The local one.
	r = c.do("a", "DELETE", "/api/v1/streams/live/a", fwdAdminKey)
	require.Equal(t, 204, r.code)
	_, ok = c.nodes["a"].hub.Stream("live/a")
	assert.False(t, ok)
}

func (n *fwdNode) logText() string { return n.log.String() }

// TestForwardLoopAndForgery: a forwarded request is answered locally, and
// only a valid signature stands for a key.
func TestForwardLoopAndForgery(t *testing.T) {
	c := threeNodes(t)
	signed := func(id, method, target, secret string, mutate func(*http.Request)) reply {
		req, err := http.NewRequest(method, c.nodes[id].srv.URL+target, nil)
		require.NoError(t, err)
		relay.Sign(req, secret, "a")
		req.Header.Set(HeaderForwarded, "a")
		if mutate != nil {
			mutate(req)
		}
		return c.send(req)
	}
	// Signed: admin without a key.
	r := signed("b", "GET", "/api/v1/streams/live/b", fwdSecret, nil)
	assert.Equal(t, 200, r.code)
	// Never forwarded again: a forwarded request to the core for a stream
	// of b is answered from a's hub.
	r = signed("a", "GET", "/api/v1/streams/live/b", fwdSecret, nil)
	assert.Equal(t, 404, r.code)
	r = signed("a", "GET", "/api/v1/streams?scope=cluster", fwdSecret, nil)
	var l StreamsJSON
	r.json(t, &l)
	assert.Equal(t, ScopeLocal, l.Scope)
	assert.Equal(t, []string{"a:live/a"}, paths(l))

	// Forged: no signature, a wrong secret, a signature for another
	// method or path, an old one: a key is still needed.
	for name, mut := range map[string]func(*http.Request){
		"unsigned":    func(r *http.Request) { r.Header.Del(relay.HeaderSignature) },
		"other path":  func(r *http.Request) { r.URL.Path = "/api/v1/streams/live/b2" },
		"old":         func(r *http.Request) { r.Header.Set(relay.HeaderTime, "1000000000") },
		"other node":  func(r *http.Request) { r.Header.Set(relay.HeaderNode, "c") },
		"bad hex sig": func(r *http.Request) { r.Header.Set(relay.HeaderSignature, "zz") },
	} {
		r = signed("b", "DELETE", "/api/v1/streams/live/b", fwdSecret, mut)
		assert.Equal(t, 401, r.code, name)
		assert.Equal(t, "unauthorized", r.errorCode(t), name)
	}
	r = signed("b", "DELETE", "/api/v1/streams/live/b", "another-secret-0123456789", nil)
	assert.Equal(t, 401, r.code)
	// A bad signature with a read key is a read key: no kick.
	r = signed("b", "DELETE", "/api/v1/streams/live/b", "another-secret-0123456789",
		func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+fwdReadKey) })
	assert.Equal(t, 403, r.code)
	_, ok := c.nodes["b"].hub.Stream("live/b")
	assert.True(t, ok)

	// Without TrustCluster, a signature is no key.
	mux := http.NewServeMux()
	c.nodes["b"].api.Register(mux)
	c.nodes["b"].srv.Config.Handler = RequireKeys(fwdKeys, quietLog(), mux)
	r = signed("b", "GET", "/api/v1/streams/live/b", fwdSecret, nil)
	assert.Equal(t, 401, r.code)
	// And a core asking such a node says why.
	r = c.do("a", "GET", "/api/v1/streams/live/b", fwdReadKey)
	assert.Equal(t, 502, r.code)
	assert.Contains(t, string(r.body), "cluster signature")
}

// TestForwardingNeedsClusterAndSecret: without a registry, a secret or the
// core role the API answers for its node only.
func TestForwardingNeedsClusterAndSecret(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	defer goleak.VerifyNone(t, opt)
	h := hub.New(hub.Options{Logger: quietLog()})
	defer h.Close()
	reg := cluster.NewMemory()
	defer reg.Close()
	core := SelfInfo{ID: "a", Roles: []string{cluster.RoleCore}}
	for name, api := range map[string]*API{
		"no cluster": NewAPI(h, quietLog(), WithForwarding(fwdSecret, 0)),
		"no secret":  NewAPI(h, quietLog(), WithCluster(reg, core, DispatchOptions{}), WithForwarding("", 0)),
		"not core": NewAPI(h, quietLog(), WithCluster(reg, SelfInfo{ID: "a", Roles: []string{cluster.RolePull}}, DispatchOptions{}),
			WithForwarding(fwdSecret, 0)),
	} {
		req := httptest.NewRequest("GET", "/api/v1/streams", nil)
		assert.False(t, api.forwards(req), name)
		if api.fwd != nil {
			api.fwd.client.CloseIdleConnections()
		}
	}
	api := NewAPI(h, quietLog(), WithCluster(reg, core, DispatchOptions{}), WithForwarding(fwdSecret, 0))
	assert.True(t, api.forwards(httptest.NewRequest("GET", "/api/v1/streams", nil)))
	assert.Equal(t, DefaultForwardTimeout, api.fwd.timeout)
	fwd := httptest.NewRequest("GET", "/api/v1/streams", nil)
	fwd.Header.Set(HeaderForwarded, "b")
	assert.False(t, api.forwards(fwd), "a forwarded request is never forwarded again")
}

// TestForwardBadNodeAnswers: what another node answers is passed on only
// when it is the API's JSON.
func TestForwardBadNodeAnswers(t *testing.T) {
	c := newFwdCluster(t)
	c.add("a", cluster.RoleCore)
	answers := map[string]func(w http.ResponseWriter){
		"html": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<h1>404</h1>")
		},
		"badjson": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"streams":[`)
		},
		"redirect": func(w http.ResponseWriter) {
			w.Header().Set("Location", "http://127.0.0.1:1/")
			w.WriteHeader(http.StatusTemporaryRedirect)
		},
	}
	ctx := context.Background()
	for name, answer := range answers {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { answer(w) }))
		t.Cleanup(srv.Close)
		require.NoError(t, c.reg.Heartbeat(ctx, cluster.Node{ID: name, Roles: []string{cluster.RolePublish}, HTTP: srv.URL, Weight: 1, Started: time.Now()}, time.Minute))
		_, err := c.reg.Acquire(ctx, cluster.KindRoute, "live/"+name, name, time.Minute)
		require.NoError(t, err)
		r := c.do("a", "GET", "/api/v1/streams/live/"+name, fwdReadKey)
		assert.Equal(t, 502, r.code, name)
		assert.Equal(t, "node_unreachable", r.errorCode(t), name)
	}
	// A node whose address is not a URL.
	require.NoError(t, c.reg.Heartbeat(ctx, cluster.Node{ID: "noaddr", Roles: []string{cluster.RolePublish}, HTTP: "127.0.0.1:80", Weight: 1, Started: time.Now()}, time.Minute))
	_, err := c.reg.Acquire(ctx, cluster.KindRoute, "live/noaddr", "noaddr", time.Minute)
	require.NoError(t, err)
	r := c.do("a", "GET", "/api/v1/streams", fwdReadKey)
	require.Equal(t, 200, r.code)
	var l StreamsJSON
	r.json(t, &l)
	var nodes []string
	for _, e := range l.Errors {
		nodes = append(nodes, e.Node)
	}
	slices.Sort(nodes)
	assert.Equal(t, []string{"badjson", "html", "noaddr", "redirect"}, nodes)
	assert.True(t, strings.Contains(string(r.body), "bad node address"), string(r.body))
}

// BenchmarkForwardedDetail measures GET /api/v1/streams/{path} on a core
// for a stream of another node (signed request over loopback).
func BenchmarkForwardedDetail(b *testing.B) {
	h := hub.New(hub.Options{Logger: quietLog()})
	defer h.Close()
	hb := hub.New(hub.Options{Logger: quietLog()})
	defer hb.Close()
	reg := cluster.NewMemory()
	defer reg.Close()
	p, err := hb.Publish("live/b", hub.ClientInfo{Protocol: "rtmp", RemoteAddr: "127.0.0.1:5000"})
	require.NoError(b, err)
	require.NoError(b, p.SetTracks([]*media.Track{videoTrack, audioTrack}))
	apiB := NewAPI(hb, quietLog(), WithNode("b", ""), WithCluster(reg, SelfInfo{ID: "b", Roles: []string{cluster.RolePublish}}, DispatchOptions{}))
	muxB := http.NewServeMux()
	apiB.Register(muxB)
	srvB := httptest.NewServer(RequireKeys(fwdKeys, quietLog(), muxB, TrustCluster(fwdSecret)))
	defer srvB.Close()
	ctx := context.Background()
	require.NoError(b, reg.Heartbeat(ctx, cluster.Node{ID: "b", Roles: []string{cluster.RolePublish}, HTTP: srvB.URL, Weight: 1, Started: time.Now()}, time.Hour))
	_, err = reg.Acquire(ctx, cluster.KindRoute, "live/b", "b", time.Hour)
	require.NoError(b, err)
	api := NewAPI(h, quietLog(), WithCluster(reg, SelfInfo{ID: "a", Roles: []string{cluster.RoleCore}}, DispatchOptions{}), WithForwarding(fwdSecret, 0))
	defer api.fwd.client.CloseIdleConnections()
	mux := http.NewServeMux()
	api.Register(mux)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/streams/live/b", nil))
		if rec.Code != 200 {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
}
