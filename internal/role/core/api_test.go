package core

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quasipaa/quasipaa/internal/apps"
	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/config"
	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/media"
	"github.com/quasipaa/quasipaa/internal/record"
	"github.com/quasipaa/quasipaa/internal/storage"
)

// loadSpec loads and validates the embedded OpenAPI document.
func loadSpec(t testing.TB) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(OpenAPI)
	require.NoError(t, err)
	require.NoError(t, doc.Validate(loader.Context))
	return doc
}

// greedyParams are the path parameters that take the rest of the URL,
// slashes included (ServeMux's {name...}).
var greedyParams = map[string]bool{"path": true, "match": true}

// findRoute matches a request to the document's operation. OpenAPI path
// parameters cannot hold slashes, ServeMux's {x...} can: the matching is
// done here rather than with a kin-openapi router.
func findRoute(doc *openapi3.T, method, urlPath string) (*routers.Route, map[string]string, bool) {
	segs := strings.Split(strings.TrimPrefix(urlPath, "/"), "/")
	for tmpl, item := range doc.Paths.Map() {
		op := item.GetOperation(method)
		if method == http.MethodHead {
			op = item.GetOperation(http.MethodGet)
		}
		if op == nil {
			continue
		}
		tsegs := strings.Split(strings.TrimPrefix(tmpl, "/"), "/")
		params := map[string]string{}
		ok := true
		for i, ts := range tsegs {
			if i >= len(segs) {
				ok = false
				break
			}
			if strings.HasPrefix(ts, "{") {
				name := strings.Trim(ts, "{}")
				if greedyParams[name] && i == len(tsegs)-1 {
					params[name] = strings.Join(segs[i:], "/")
					break
				}
				params[name] = segs[i]
				continue
			}
			if ts != segs[i] {
				ok = false
				break
			}
		}
		last := tsegs[len(tsegs)-1]
		if ok && !(strings.HasPrefix(last, "{") && greedyParams[strings.Trim(last, "{}")]) && len(segs) != len(tsegs) {
			ok = false
		}
		if ok {
			return &routers.Route{Spec: doc, Path: tmpl, PathItem: item, Method: method, Operation: op}, params, true
		}
	}
	return nil, nil, false
}

// env is an API over a real hub, apps store, registry and storage.
type env struct {
	t      *testing.T
	doc    *openapi3.T
	hub    *hub.Hub
	reg    *cluster.Memory
	store  *apps.Store
	api    *API
	mux    *http.ServeMux
	srv    *httptest.Server
	client *http.Client
	pubs   map[string]*hub.Publisher
}

func newEnv(t *testing.T, keys []config.APIKey) *env {
	t.Helper()
	ctx := context.Background()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) }) // runs last
	e := &env{t: t, doc: loadSpec(t), hub: hub.New(hub.Options{Logger: quietLog()}), reg: cluster.NewMemory(), pubs: map[string]*hub.Publisher{},
		client: &http.Client{Timeout: 10 * time.Second}}
	t.Cleanup(e.hub.Close)
	t.Cleanup(func() { e.reg.Close() })
	seed := config.DefaultApp()
	seed.Match = "live/*"
	var err error
	e.store, err = apps.NewStore(ctx, e.reg, []config.App{seed}, quietLog())
	require.NoError(t, err)
	fs, err := storage.NewFS(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { fs.Close() })
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for _, off := range []time.Duration{0, 4, 8} {
		s := record.Segment{Path: "live/cam1", Start: start.Add(off * time.Second), Duration: 4 * time.Second, InitLen: 10, Run: start}
		require.NoError(t, fs.Put(ctx, s.Key(), bytes.NewReader(make([]byte, 50)), 50))
	}
	require.NoError(t, e.reg.Heartbeat(ctx, cluster.Node{ID: "n1", Roles: []string{cluster.RolePull, cluster.RolePublish, cluster.RoleCore},
		HTTP: "http://127.0.0.1:8080", RTMP: "127.0.0.1:1935", Weight: 1, Started: time.Now()}, time.Minute))
	_, err = e.reg.Acquire(ctx, cluster.KindRoute, "live/cam1", "n1", time.Minute)
	require.NoError(t, err)
	_, err = e.reg.Acquire(ctx, cluster.KindHLS, "live/cam1", "n1", time.Minute)
	require.NoError(t, err)
	e.api = NewAPI(e.hub, quietLog(), WithApps(e.store), WithRecordings(record.NewIndex(fs)), WithNode("n1", "v-test"),
		WithCluster(e.reg, SelfInfo{ID: "n1", Roles: []string{cluster.RoleCore, cluster.RolePull, cluster.RolePublish}}, DispatchOptions{}))
	e.mux = http.NewServeMux()
	e.api.Register(e.mux)
	e.srv = httptest.NewServer(RequireKeys(keys, quietLog(), e.mux))
	t.Cleanup(func() {
		e.client.CloseIdleConnections()
		e.srv.Close()
	})
	return e
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

var (
	videoTrack = &media.Track{Codec: media.CodecH264, Width: 1280, Height: 720, Profile: "High", Level: "3.1"}
	audioTrack = &media.Track{Codec: media.CodecAAC, SampleRate: 48000, Channels: 2}
)

// publish starts a stream with 2 s of 25 fps video and returns the publisher.
func (e *env) publish(path string) *hub.Publisher {
	p, err := e.hub.Publish(path, hub.ClientInfo{Protocol: "rtmp", RemoteAddr: "127.0.0.1:5000"})
	require.NoError(e.t, err)
	require.NoError(e.t, p.SetTracks([]*media.Track{videoTrack, audioTrack}))
	for i := 0; i < 50; i++ {
		ts := time.Duration(i) * 40 * time.Millisecond
		require.NoError(e.t, p.WriteFrame(&media.Frame{Track: 0, DTS: ts, PTS: ts, Key: i%25 == 0, Payload: make([]byte, 1000), Ingest: time.Now()}))
	}
	e.pubs[path] = p
	return p
}

func (e *env) viewer(path, protocol string) *hub.Reader {
	r, err := e.hub.Subscribe(path, hub.ClientInfo{Protocol: protocol, RemoteAddr: "127.0.0.1:6000"})
	require.NoError(e.t, err)
	e.t.Cleanup(r.Close)
	return r
}

type reply struct {
	code   int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.body, v), string(r.body))
}

func (r reply) errorCode(t *testing.T) string {
	t.Helper()
	var e ErrorJSON
	require.NoError(t, json.Unmarshal(r.body, &e), string(r.body))
	require.NotEmpty(t, e.Error.Message)
	return e.Error.Code
}

// req options.
type reqOpt struct {
	key string
	// invalid: the request breaks the document on purpose (only the response is checked).
	invalid bool
}

// do sends a request and checks the request (unless invalid) and the
// response against the OpenAPI document.
func (e *env) do(method, target, body string, opts ...reqOpt) reply {
	t := e.t
	t.Helper()
	var o reqOpt
	if len(opts) > 0 {
		o = opts[0]
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+target, rd)
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if o.key != "" {
		req.Header.Set("Authorization", "Bearer "+o.key)
	}
	resp, err := e.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	rep := reply{code: resp.StatusCode, header: resp.Header, body: b}
	if resp.StatusCode != http.StatusNoContent && method != http.MethodHead {
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"), "%s %s", method, target)
		assert.True(t, json.Valid(b), "%s %s: %s", method, target, b)
	}
	e.validate(req, body, rep, o.invalid)
	return rep
}

func (e *env) validate(req *http.Request, body string, rep reply, invalid bool) {
	t := e.t
	t.Helper()
	u, _ := url.Parse(req.URL.String())
	route, params, ok := findRoute(e.doc, req.Method, u.Path)
	if !ok {
		// Not in the document: it must be an error of the catch-all.
		assert.Contains(t, []int{404, 405}, rep.code, "%s %s is not in the document", req.Method, u.Path)
		assert.NotEmpty(t, rep.errorCode(t))
		return
	}
	ctx := context.Background()
	vreq := req.Clone(ctx)
	vreq.Body = io.NopCloser(strings.NewReader(body))
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if !invalid {
		require.NoError(t, openapi3filter.ValidateRequest(ctx, in), "request %s %s", req.Method, req.URL)
	}
	if req.Method == http.MethodHead {
		return
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rep.code, Header: rep.header,
		Body: io.NopCloser(bytes.NewReader(rep.body)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	require.NoError(t, openapi3filter.ValidateResponse(ctx, out), "response to %s %s (%d): %s", req.Method, req.URL, rep.code, rep.body)
}

func TestStreamsEndpoints(t *testing.T) {
	e := newEnv(t, nil)
	// Empty first.
	r := e.do("GET", "/api/v1/streams", "")
	require.Equal(t, 200, r.code)
	var list StreamsJSON
	r.json(t, &list)
	assert.Empty(t, list.Streams)
	assert.NotNil(t, list.Streams)

	e.publish("live/cam1")
	e.publish("live/cam2")
	e.viewer("live/cam1", "flv")
	e.viewer("live/cam1", "flv")
	v3 := e.viewer("live/cam1", "rtmp")

	r = e.do("GET", "/api/v1/streams", "")
	require.Equal(t, 200, r.code)
	r.json(t, &list)
	require.Len(t, list.Streams, 2)
	assert.Equal(t, 2, list.Total)
	s := list.Streams[0]
	assert.Equal(t, "live/cam1", s.Path)
	assert.Equal(t, "n1", s.Node)
	assert.Equal(t, "live", s.State)
	assert.Equal(t, map[string]int{"flv": 2, "rtmp": 1}, s.Viewers)
	assert.Equal(t, 3, s.ViewersTotal)
	assert.Nil(t, s.Clients, "the list has no per-viewer arrays")
	require.Len(t, s.Tracks, 2)
	assert.Equal(t, "video", s.Tracks[0].Kind)
	assert.InDelta(t, 25, s.Tracks[0].FPS, 0.5)
	assert.InDelta(t, 25*1000*8, s.Tracks[0].Bitrate, 1000)
	assert.Equal(t, "audio", s.Tracks[1].Kind)
	assert.Equal(t, 48000, s.Tracks[1].SampleRate)
	require.NotNil(t, s.Publisher)
	assert.Equal(t, "rtmp", s.Publisher.Protocol)
	assert.NotEmpty(t, s.Publisher.ID)
	assert.EqualValues(t, 50, s.FramesIn)

	// Pagination.
	r = e.do("GET", "/api/v1/streams?limit=1&offset=1", "")
	require.Equal(t, 200, r.code)
	r.json(t, &list)
	require.Len(t, list.Streams, 1)
	assert.Equal(t, "live/cam2", list.Streams[0].Path)
	assert.Equal(t, 2, list.Total)
	r = e.do("GET", "/api/v1/streams?offset=99", "")
	require.Equal(t, 200, r.code)
	r.json(t, &list)
	assert.Empty(t, list.Streams)
	for _, q := range []string{"limit=-1", "limit=abc", "limit=10001", "offset=-5", "offset=1e3", "limit=99999999999999999999"} {
		r = e.do("GET", "/api/v1/streams?"+q, "", reqOpt{invalid: true})
		assert.Equal(t, 400, r.code, q)
		assert.Equal(t, "bad_request", r.errorCode(t), q)
	}

	// Detail with viewers.
	r = e.do("GET", "/api/v1/streams/live/cam1", "")
	require.Equal(t, 200, r.code)
	var d StreamJSON
	r.json(t, &d)
	require.NotNil(t, d.Clients)
	require.Len(t, *d.Clients, 3)
	assert.Equal(t, "flv", (*d.Clients)[0].Protocol)
	assert.Equal(t, v3.Info().ID, (*d.Clients)[2].ID)
	r = e.do("GET", "/api/v1/streams/live/cam2", "")
	require.Equal(t, 200, r.code)
	assert.Contains(t, string(r.body), `"clients":[]`)
	r = e.do("HEAD", "/api/v1/streams/live/cam1", "")
	assert.Equal(t, 200, r.code)

	r = e.do("GET", "/api/v1/streams/live/nope", "")
	assert.Equal(t, 404, r.code)
	assert.Equal(t, "stream_not_found", r.errorCode(t))

	// Kick a viewer, then errors.
	r = e.do("DELETE", "/api/v1/clients/"+v3.Info().ID+"?path=live/cam1", "")
	require.Equal(t, 204, r.code, string(r.body))
	assert.ErrorIs(t, v3.Err(), hub.ErrKicked)
	r = e.do("DELETE", "/api/v1/clients/999999?path=live/cam1", "")
	assert.Equal(t, 404, r.code)
	assert.Equal(t, "client_not_found", r.errorCode(t))
	r = e.do("DELETE", "/api/v1/clients/1?path=live/none", "")
	assert.Equal(t, 404, r.code)
	assert.Equal(t, "stream_not_found", r.errorCode(t))
	r = e.do("DELETE", "/api/v1/clients/999999", "")
	assert.Equal(t, 404, r.code)
	assert.Equal(t, "client_not_found", r.errorCode(t))
	v2 := e.viewer("live/cam1", "ws-flv")
	r = e.do("DELETE", "/api/v1/clients/"+v2.Info().ID, "")
	require.Equal(t, 204, r.code, "the path is optional")
	assert.ErrorIs(t, v2.Err(), hub.ErrKicked)
	r = e.do("DELETE", "/api/v1/clients/1?path=../etc", "")
	assert.Equal(t, 400, r.code)
	r = e.do("DELETE", "/api/v1/clients/"+strings.Repeat("9", 65)+"?path=live/cam1", "", reqOpt{invalid: true})
	assert.Equal(t, 400, r.code)

	// Kick the publisher by id: ends the stream.
	pubID := e.pubs["live/cam2"].Stream().Info().Publisher.ID
	r = e.do("DELETE", "/api/v1/clients/"+pubID+"?path=live/cam2", "")
	require.Equal(t, 204, r.code)
	assert.ErrorIs(t, e.pubs["live/cam2"].Err(), hub.ErrKicked)
	_, ok := e.hub.Stream("live/cam2")
	assert.False(t, ok)

	// End a stream.
	r = e.do("DELETE", "/api/v1/streams/live/cam1", "")
	require.Equal(t, 204, r.code)
	assert.ErrorIs(t, e.pubs["live/cam1"].Err(), hub.ErrKicked)
	r = e.do("DELETE", "/api/v1/streams/live/cam1", "")
	assert.Equal(t, 404, r.code)
	assert.Equal(t, "stream_not_found", r.errorCode(t))
}

// Hostile stream names: clear 4xx answers, no crash, nothing changed.
func TestStreamsBadNames(t *testing.T) {
	e := newEnv(t, nil)
	e.publish("live/cam1")
	for _, p := range []string{
		"live/cam1%00", "live/%3Cscript%3Ealert(1)%3C%2Fscript%3E", "live/<script>", "live/'%20OR%20'1'='1", `live/"%3B%20DROP%20TABLE%20x`,
		"live/" + strings.Repeat("a", 5000), "live/%2e%2e/%2e%2e/etc", "live/a%2Fb", "%ff%fe",
	} {
		for _, m := range []string{"GET", "DELETE"} {
			r := e.do(m, "/api/v1/streams/"+p, "", reqOpt{invalid: true})
			assert.Contains(t, []int{400, 404}, r.code, "%s %s: %s", m, p, r.body)
			if r.code == 400 {
				assert.Equal(t, "bad_request", r.errorCode(t))
			}
			assert.NotContains(t, string(r.body), "<script>", "%s %s", m, p)
		}
	}
	for _, p := range []string{"live/../../../etc/passwd", "live/./cam1", "live//cam1", "live/%2e%2e/cam1"} {
		for _, m := range []string{"GET", "DELETE"} {
			r := e.do(m, "/api/v1/streams/"+p, "", reqOpt{invalid: true})
			assert.Equal(t, 400, r.code, "%s %s", m, p)
			assert.Equal(t, "bad_request", r.errorCode(t))
		}
	}
	_, ok := e.hub.Stream("live/cam1")
	assert.True(t, ok, "nothing was kicked")
}

func TestAppsEndpoints(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do("GET", "/api/v1/apps", "")
	require.Equal(t, 200, r.code)
	var list AppsJSON
	r.json(t, &list)
	require.Len(t, list.Apps, 1)
	assert.Equal(t, "live/*", list.Apps[0].Match)
	assert.Equal(t, "4s", list.Apps[0].RecordSegment)
	v0 := list.Version

	r = e.do("POST", "/api/v1/apps", `{"match":"**","record":true,"retention":"720h","play_protocols":"hls,whep","max_viewers":100}`)
	require.Equal(t, 201, r.code, string(r.body))
	assert.Equal(t, "/api/v1/apps/**", r.header.Get("Location"))
	var got AppJSON
	r.json(t, &got)
	assert.Equal(t, 1, got.Position)
	assert.Equal(t, "720h0m0s", got.Retention)
	assert.Equal(t, "2h0m0s", got.DVRWindow, "defaults fill what is left out")
	a, ok := e.store.For("other/x")
	require.True(t, ok)
	assert.True(t, a.Record)
	assert.Equal(t, 100, a.MaxViewers)

	r = e.do("POST", "/api/v1/apps?position=0", `{"match":"live/vip"}`)
	require.Equal(t, 201, r.code, string(r.body))
	r.json(t, &got)
	assert.Equal(t, 0, got.Position)

	r = e.do("GET", "/api/v1/apps/live/*", "")
	require.Equal(t, 200, r.code)
	r.json(t, &got)
	assert.Equal(t, 1, got.Position)
	assert.Equal(t, "live/*", got.Match)
	r = e.do("GET", "/api/v1/apps/**", "")
	require.Equal(t, 200, r.code)

	r = e.do("PUT", "/api/v1/apps/live/*?position=2", `{"match":"live/*","auth":"token"}`)
	require.Equal(t, 200, r.code, string(r.body))
	r.json(t, &got)
	assert.Equal(t, 2, got.Position)
	assert.Equal(t, "token", got.Auth)
	r = e.do("PUT", "/api/v1/apps/live/vip", `{"match":"live/vip2"}`)
	require.Equal(t, 200, r.code, string(r.body))
	r = e.do("GET", "/api/v1/apps", "")
	r.json(t, &list)
	var order []string
	for _, x := range list.Apps {
		order = append(order, x.Match)
	}
	assert.Equal(t, []string{"live/vip2", "**", "live/*"}, order)
	assert.Greater(t, list.Version, v0)

	r = e.do("DELETE", "/api/v1/apps/live/vip2", "")
	require.Equal(t, 204, r.code)
	r = e.do("DELETE", "/api/v1/apps/live/vip2", "")
	assert.Equal(t, 404, r.code)
	assert.Equal(t, "app_not_found", r.errorCode(t))
	r = e.do("GET", "/api/v1/apps/live/vip2", "")
	assert.Equal(t, 404, r.code)
	r = e.do("PUT", "/api/v1/apps/nope/*", `{"match":"nope/*"}`)
	assert.Equal(t, 404, r.code)

	// Conflicts.
	r = e.do("POST", "/api/v1/apps", `{"match":"live/*"}`)
	assert.Equal(t, 409, r.code)
	assert.Equal(t, "app_exists", r.errorCode(t))
	r = e.do("PUT", "/api/v1/apps/live/*", `{"match":"**"}`)
	assert.Equal(t, 409, r.code)

	_, before := e.store.List()
	// Bad bodies: 400 naming the field, or 413; nothing changes.
	for body, want := range map[string]string{
		`{"match":"a/*","nope":1}`:                     `unknown field`,
		`{"match":1}`:                                  "match: expected a string",
		`{"match":"a/*","record":"yes"}`:               "record: expected a boolean",
		`{"match":"a/*","max_viewers":-1}`:             "max_viewers",
		`{"match":"a/*","retention":3600}`:             "retention: expected a string",
		`{"match":"a/*","retention":"1 hour"}`:         "retention",
		`{"match":"a/*","record_segment":"1h"}`:        "record_segment",
		`{"match":"a/*","auth":"maybe"}`:               "auth",
		`{"match":"a/*","play_protocols":"gopher"}`:    "play_protocols",
		`{"match":"a/*"} {"match":"b/*"}`:              "after the app object",
		`{"match":"a/*"`:                               "truncated",
		`not json`:                                     "malformed",
		`[]`:                                           "expected a JSON object",
		``:                                             "empty body",
		`{"match":""}`:                                 "match",
		`{"match":"live/[x"}`:                          "match",
		`{"match":"a/*';DROP TABLE apps;--"}`:          "match",
		`{"match":"<script>alert(1)</script>"}`:        "",
		`{"match":"` + strings.Repeat("x", 300) + `"}`: "longer than 256",
	} {
		r = e.do("POST", "/api/v1/apps", body, reqOpt{invalid: true})
		if want == "" {
			// A strange but valid pattern is stored as data and escaped in JSON.
			require.Equal(t, 201, r.code, string(r.body))
			assert.NotContains(t, string(r.body), "<script>")
			require.NoError(t, e.store.Delete(context.Background(), "<script>alert(1)</script>"))
			_, before = e.store.List()
			continue
		}
		assert.Equal(t, 400, r.code, body)
		assert.Equal(t, "bad_request", r.errorCode(t), body)
		assert.Contains(t, string(r.body), want, body)
		r = e.do("PUT", "/api/v1/apps/live/*", body, reqOpt{invalid: true})
		assert.Equal(t, 400, r.code, body)
	}
	for _, q := range []string{"position=-1", "position=x", "position=1001"} {
		r = e.do("POST", "/api/v1/apps?"+q, `{"match":"q/*"}`, reqOpt{invalid: true})
		assert.Equal(t, 400, r.code, q)
	}
	big := `{"match":"a/*","hls_variant":"` + strings.Repeat("x", 70<<10) + `"}`
	r = e.do("POST", "/api/v1/apps", big, reqOpt{invalid: true})
	assert.Equal(t, 413, r.code)
	assert.Equal(t, "payload_too_large", r.errorCode(t))
	r = e.do("PUT", "/api/v1/apps/live/*", big, reqOpt{invalid: true})
	assert.Equal(t, 413, r.code)
	after, _ := e.store.List()
	_, afterV := e.store.List()
	assert.Equal(t, before, afterV, "no failed request changed the list")
	assert.Len(t, after, 2)
}

func TestAppsTooMany(t *testing.T) {
	e := newEnv(t, nil)
	for i := len(mustList(e)); i < config.MaxApps; i++ {
		_, err := e.store.Create(context.Background(), func() config.App {
			a := config.DefaultApp()
			a.Match = fmt.Sprintf("a%d/*", i)
			return a
		}(), -1)
		require.NoError(t, err)
	}
	r := e.do("POST", "/api/v1/apps", `{"match":"one/more"}`)
	assert.Equal(t, 409, r.code)
	assert.Equal(t, "too_many_apps", r.errorCode(t))
	r = e.do("GET", "/api/v1/apps", "")
	require.Equal(t, 200, r.code)
}

func mustList(e *env) []config.App { l, _ := e.store.List(); return l }

func TestAppsRegistryDown(t *testing.T) {
	e := newEnv(t, nil)
	require.NoError(t, e.reg.Close())
	r := e.do("POST", "/api/v1/apps", `{"match":"x/*"}`)
	assert.Equal(t, 503, r.code)
	assert.Equal(t, "registry_unavailable", r.errorCode(t))
	r = e.do("DELETE", "/api/v1/apps/live/*", "")
	assert.Equal(t, 503, r.code)
	r = e.do("GET", "/api/v1/apps", "")
	assert.Equal(t, 200, r.code, "reads use the last snapshot")
	r = e.do("GET", "/api/v1/nodes", "")
	assert.Equal(t, 503, r.code)
}

func TestHealthRecordingsClusterAndFallbacks(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do("GET", "/api/v1/health", "")
	require.Equal(t, 200, r.code)
	var h HealthJSON
	r.json(t, &h)
	assert.Equal(t, "n1", h.Node)
	assert.Equal(t, "v-test", h.Version)
	assert.Equal(t, "ok", h.Status)

	r = e.do("GET", "/api/v1/openapi.json", "")
	require.Equal(t, 200, r.code)
	assert.Equal(t, OpenAPI, r.body)

	r = e.do("GET", "/api/v1/recordings?path=live/cam1", "")
	require.Equal(t, 200, r.code)
	r = e.do("GET", "/api/v1/recordings", "", reqOpt{invalid: true})
	assert.Equal(t, 400, r.code)
	r = e.do("GET", "/api/v1/recordings?path=live/cam1&from=nope", "", reqOpt{invalid: true})
	assert.Equal(t, 400, r.code)
	r = e.do("DELETE", "/api/v1/recordings?path=live/cam1", "")
	assert.Equal(t, 400, r.code)
	r = e.do("DELETE", "/api/v1/recordings?path=live/cam1&from=2026-11-23T10:00:00Z&to=2026-11-23T10:00:08Z", "")
	require.Equal(t, 200, r.code)
	assert.JSONEq(t, `{"deleted":2}`, string(r.body))

	// The cluster endpoints, through the same validation.
	r = e.do("GET", "/api/v1/nodes", "")
	require.Equal(t, 200, r.code)
	r = e.do("GET", "/api/v1/nodes/n1", "")
	require.Equal(t, 200, r.code)
	r = e.do("GET", "/api/v1/nodes/nope", "")
	assert.Equal(t, 404, r.code)
	r = e.do("PUT", "/api/v1/nodes/n1/drain", "")
	require.Equal(t, 200, r.code)
	r = e.do("DELETE", "/api/v1/nodes/n1/drain", "")
	require.Equal(t, 200, r.code)
	r = e.do("PUT", "/api/v1/nodes/nope/drain", "")
	assert.Equal(t, 404, r.code)
	r = e.do("GET", "/api/v1/dispatch?path=live/cam1&action=play&protocol=flv", "")
	require.Equal(t, 200, r.code, string(r.body))
	r = e.do("GET", "/api/v1/dispatch?path=live/cam1&action=play", "", reqOpt{invalid: true})
	assert.Equal(t, 400, r.code)
	r = e.do("GET", "/api/v1/dispatch?path=live/cam1&action=play&protocol=srt", "")
	assert.Equal(t, 503, r.code)
	r = e.do("GET", "/api/v1/routes", "")
	require.Equal(t, 200, r.code)
	r = e.do("GET", "/api/v1/jobs", "")
	require.Equal(t, 200, r.code)

	// 404 and 405, in the error shape.
	r = e.do("GET", "/api/v1/nothing", "")
	assert.Equal(t, 404, r.code)
	assert.Equal(t, "not_found", r.errorCode(t))
	r = e.do("POST", "/api/v1/streams", "{}")
	assert.Equal(t, 405, r.code)
	assert.Equal(t, "method_not_allowed", r.errorCode(t))
	assert.Equal(t, "GET, HEAD", r.header.Get("Allow"))
	r = e.do("PATCH", "/api/v1/apps/live/*", "{}")
	assert.Equal(t, 405, r.code)
	assert.Equal(t, "GET, HEAD, PUT, DELETE", r.header.Get("Allow"))
	r = e.do("POST", "/api/v1/nodes/n1/drain", "")
	assert.Equal(t, 405, r.code)
	for _, target := range []string{"/api/v1/streams", "/api/v1/apps"} {
		r = e.do("DELETE", target, "")
		assert.Equal(t, 405, r.code, target)
		assert.Equal(t, "method_not_allowed", r.errorCode(t))
	}
	r = e.do("PUT", "/api/v1/apps", `{"match":"x/*"}`)
	assert.Equal(t, 405, r.code)
	assert.Equal(t, "GET, HEAD, POST", r.header.Get("Allow"))
}

func TestAPIKeys(t *testing.T) {
	const readKey, adminKey = "read-key-0123456789", "admin-key-0123456789"
	var logs bytes.Buffer
	keys := []config.APIKey{{Name: "dashboard", Key: readKey, Scope: config.ScopeRead}, {Name: "ops", Key: adminKey, Scope: config.ScopeAdmin}}
	e := newEnv(t, nil)
	e.srv.Config.Handler = RequireKeys(keys, slog.New(slog.NewTextHandler(&logs, nil)), e.mux)

	r := e.do("GET", "/api/v1/openapi.json", "")
	assert.Equal(t, 200, r.code, "the document is public")
	for _, h := range []string{"", "Bearer", "Bearer ", "Basic " + readKey, "Bearer wrong-key-0123456789", "Bearer " + readKey + "x"} {
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/streams", nil)
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		resp, err := e.client.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, 401, resp.StatusCode, h)
		assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer", h)
		assert.Contains(t, string(b), `"unauthorized"`, h)
		e.validate(req, "", reply{code: resp.StatusCode, header: resp.Header, body: b}, true)
	}
	r = e.do("GET", "/api/v1/streams", "", reqOpt{key: readKey})
	assert.Equal(t, 200, r.code)
	r = e.do("HEAD", "/api/v1/apps", "", reqOpt{key: readKey})
	assert.Equal(t, 200, r.code)
	r = e.do("POST", "/api/v1/apps", `{"match":"k/*"}`, reqOpt{key: readKey})
	assert.Equal(t, 403, r.code)
	assert.Equal(t, "forbidden", r.errorCode(t))
	r = e.do("DELETE", "/api/v1/streams/live/cam1", "", reqOpt{key: readKey})
	assert.Equal(t, 403, r.code)
	_, _, ok := e.store.Get("k/*")
	assert.False(t, ok)

	r = e.do("POST", "/api/v1/apps", `{"match":"k/*"}`, reqOpt{key: adminKey})
	assert.Equal(t, 201, r.code)
	assert.Contains(t, logs.String(), "key=ops")
	assert.NotContains(t, logs.String(), adminKey, "the secret is never logged")
	r = e.do("GET", "/api/v1/streams", "", reqOpt{key: adminKey})
	assert.Equal(t, 200, r.code)

	// Outside the API nothing is asked.
	resp, err := e.client.Get(e.srv.URL + "/live/cam1.flv")
	require.NoError(t, err)
	resp.Body.Close()
	assert.NotEqual(t, 401, resp.StatusCode)

	// No keys: open.
	e.srv.Config.Handler = RequireKeys(nil, nil, e.mux)
	r = e.do("POST", "/api/v1/apps", `{"match":"open/*"}`)
	assert.Equal(t, 201, r.code)
}

// routePattern turns a ServeMux pattern into the document's form.
func routePattern(p string) (method, path string) {
	method, path, _ = strings.Cut(p, " ")
	return method, strings.ReplaceAll(path, "...}", "}")
}

// Every route of the package is in the document and the reverse: routes are
// read from the source (every "METHOD /api/v1/..." pattern literal) and
// probed in a fully configured mux.
func TestOpenAPICoversRoutes(t *testing.T) {
	e := newEnv(t, nil)
	documented := map[string]bool{}
	for path, item := range e.doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	inSource := map[string]bool{}
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	re := regexp.MustCompile(`"((?:GET|HEAD|POST|PUT|PATCH|DELETE) /api/v1/[^"]*)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			method, path := routePattern(m[1])
			inSource[method+" "+path] = true
		}
	}
	for r := range inSource {
		assert.True(t, documented[r], "route %s is registered but not in openapi.json", r)
	}
	// Every documented operation reaches a real handler of the mux.
	example := strings.NewReplacer("{path}", "live/cam1", "{match}", "live/*", "{id}", "n1")
	for r := range documented {
		method, path, _ := strings.Cut(r, " ")
		req := httptest.NewRequest(method, example.Replace(path), nil)
		_, pattern := e.mux.Handler(req)
		assert.NotEqual(t, "/api/v1/", pattern, "%s is documented but not served", r)
		assert.NotEmpty(t, pattern, r)
		assert.True(t, inSource[strings.Join(func() []string { m, p := routePattern(pattern); return []string{m, p} }(), " ")], "%s served by %q", r, pattern)
		// No undocumented method is served on a documented path.
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			_, p := e.mux.Handler(httptest.NewRequest(m, example.Replace(path), nil))
			if strings.Contains(p, " ") { // method-less patterns are the 404/405 fallbacks
				assert.True(t, documented[m+" "+path], "%s %s is served but not documented", m, path)
			}
		}
	}
	keys := make([]string, 0, len(documented))
	for k := range documented {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("%d documented operations", len(keys))
}

// docs/api.md mentions every path of the document.
func TestDocsMentionEveryPath(t *testing.T) {
	doc := loadSpec(t)
	md, err := os.ReadFile("../../../docs/api.md")
	require.NoError(t, err)
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			assert.True(t, strings.Contains(string(md), method+" "+path), "docs/api.md does not describe %s %s", method, path)
		}
	}
}
