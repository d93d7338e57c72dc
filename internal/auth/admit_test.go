package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/config"
	"github.com/quasipaa/quasipaa/internal/hub"
)

// apps is a Policy over a list that tests may change.
type apps struct {
	mu   sync.Mutex
	list []config.App
}

func (a *apps) policy(path string) (config.App, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := config.Config{Apps: a.list}
	return c.AppFor(path)
}

func app(match string, mod func(*config.App)) config.App {
	a := config.DefaultApp()
	a.Match = match
	if mod != nil {
		mod(&a)
	}
	return a
}

type refusal struct{ action, protocol, reason string }

func newTestAdmitter(t *testing.T, list []config.App, hooks *Webhooks, limit int) (*Admitter, *hub.Hub, *[]refusal) {
	p := &apps{list: list}
	var mu sync.Mutex
	var refused []refusal
	a := NewAdmitter(AdmitterOptions{
		Policy: p.policy, Verifier: hsVerifier(t), Webhooks: hooks, Limiter: NewLimiter(limit, time.Minute, 0), Node: "node-a",
		Refused: func(action, protocol, reason string) {
			mu.Lock()
			refused = append(refused, refusal{action, protocol, reason})
			mu.Unlock()
		},
	})
	h := hub.New(hub.Options{Admit: a.Admit, OnLeave: a.OnLeave})
	t.Cleanup(h.Close)
	a.Bind(h)
	return a, h, &refused
}

func mint(t *testing.T, path, action string) string {
	tok, err := Mint([]byte(testSecret), Claims{Path: path, Action: action}, time.Hour)
	require.NoError(t, err)
	return tok
}

func TestAdmitToken(t *testing.T) {
	a, h, refused := newTestAdmitter(t, []config.App{app("secure/*", func(a *config.App) { a.Auth = config.AuthToken })}, nil, 100)
	ctx := context.Background()
	info := hub.ClientInfo{Protocol: "rtmp", RemoteAddr: "127.0.0.1:5000"}

	_, err := h.PublishContext(ctx, "secure/cam", info)
	require.ErrorIs(t, err, ErrTokenMissing)
	info.Query = "a=1&token=" + mint(t, "secure/cam", ActionPlay)
	_, err = h.PublishContext(ctx, "secure/cam", info)
	require.ErrorIs(t, err, ErrTokenScope)
	info.Query = "token=" + mint(t, "secure/cam", ActionPublish)
	pub, err := h.PublishContext(ctx, "secure/cam", info)
	require.NoError(t, err)
	defer pub.Close()

	// The bearer credential wins over the query.
	rinfo := hub.ClientInfo{Protocol: "whep", RemoteAddr: "127.0.0.1:5001", Credential: mint(t, "secure/*", ActionPlay), Query: "token=bad"}
	require.NoError(t, a.Admit(ctx, hub.ActionPlay, "secure/cam", rinfo))
	rinfo.Credential = "bad"
	require.ErrorIs(t, a.Admit(ctx, hub.ActionPlay, "secure/cam", rinfo), ErrTokenInvalid)

	// Apps without auth, and paths no app matches, need nothing.
	require.NoError(t, a.Admit(ctx, hub.ActionPublish, "open/cam", hub.ClientInfo{Protocol: "rtmp"}))
	require.Equal(t, []refusal{{"publish", "rtmp", "token_missing"}, {"publish", "rtmp", "token_scope"}, {"play", "whep", "token_invalid"}}, *refused)
}

func TestAdmitProtocols(t *testing.T) {
	a, _, refused := newTestAdmitter(t, []config.App{app("live/*", func(a *config.App) {
		a.PublishProtocols, a.PlayProtocols = "rtmp", "hls,flv"
	})}, nil, 100)
	ctx := context.Background()
	require.NoError(t, a.Admit(ctx, hub.ActionPublish, "live/x", hub.ClientInfo{Protocol: "rtmp"}))
	require.ErrorIs(t, a.Admit(ctx, hub.ActionPublish, "live/x", hub.ClientInfo{Protocol: "whip"}), ErrProtocolNotAllowed)
	require.NoError(t, a.Admit(ctx, hub.ActionPlay, "live/x", hub.ClientInfo{Protocol: "flv"}))
	require.ErrorIs(t, a.Admit(ctx, hub.ActionPlay, "live/x", hub.ClientInfo{Protocol: "rtmp"}), ErrProtocolNotAllowed)
	_, err := a.AdmitHLS(ctx, "live/x", "index.m3u8", hub.ClientInfo{Protocol: "hls"})
	require.NoError(t, err)
	require.Len(t, *refused, 2)
	require.Equal(t, "protocol_not_allowed", (*refused)[0].reason)
}

func TestAdmitRateLimit(t *testing.T) {
	a, _, refused := newTestAdmitter(t, []config.App{app("secure/*", func(a *config.App) { a.Auth = config.AuthToken })}, nil, 3)
	ctx := context.Background()
	bad := hub.ClientInfo{Protocol: "flv", RemoteAddr: "10.0.0.1:1", Query: "token=nope"}
	for range 3 {
		require.ErrorIs(t, a.Admit(ctx, hub.ActionPlay, "secure/cam", bad), ErrTokenInvalid)
	}
	good := hub.ClientInfo{Protocol: "flv", RemoteAddr: "10.0.0.1:2", Query: "token=" + mint(t, "secure/cam", ActionPlay)}
	require.ErrorIs(t, a.Admit(ctx, hub.ActionPlay, "secure/cam", good), ErrRateLimited, "the IP is blocked even with a good token")
	good.RemoteAddr = "10.0.0.2:2"
	require.NoError(t, a.Admit(ctx, hub.ActionPlay, "secure/cam", good), "another IP is not")
	require.Equal(t, "rate_limited", (*refused)[3].reason)
}

func TestAdmitLimits(t *testing.T) {
	a, h, _ := newTestAdmitter(t, []config.App{app("live/*", func(a *config.App) { a.MaxPublishers, a.MaxViewers = 2, 2 })}, nil, 100)
	ctx := context.Background()
	info := hub.ClientInfo{Protocol: "rtmp", RemoteAddr: "127.0.0.1:1"}
	p1, err := h.PublishContext(ctx, "live/a", info)
	require.NoError(t, err)
	defer p1.Close()
	p2, err := h.PublishContext(ctx, "live/b", info)
	require.NoError(t, err)
	_, err = h.PublishContext(ctx, "live/c", info)
	require.ErrorIs(t, err, ErrTooManyPublishers)
	_, err = h.PublishContext(ctx, "other/c", info)
	require.NoError(t, err, "other apps are not counted")
	p2.Close()
	require.Eventually(t, func() bool { _, ok := h.Stream("live/b"); return !ok }, 2*time.Second, 10*time.Millisecond)
	p3, err := h.PublishContext(ctx, "live/c", info)
	require.NoError(t, err, "a slot freed")
	defer p3.Close()

	// Internal readers (recording, HLS packager) are not viewers.
	internal, err := h.Subscribe("live/a", hub.ClientInfo{Protocol: "record"})
	require.NoError(t, err)
	defer internal.Close()
	r1, err := h.SubscribeContext(ctx, "live/a", hub.ClientInfo{Protocol: "flv"})
	require.NoError(t, err)
	defer r1.Close()
	r2, err := h.SubscribeContext(ctx, "live/a", hub.ClientInfo{Protocol: "rtmp"})
	require.NoError(t, err)
	defer r2.Close()
	_, err = h.SubscribeContext(ctx, "live/a", hub.ClientInfo{Protocol: "whep"})
	require.ErrorIs(t, err, ErrTooManyViewers)
	_, err = a.AdmitHLS(ctx, "live/a", "index.m3u8", hub.ClientInfo{Protocol: "hls"})
	require.NoError(t, err, "HLS is not a hub viewer")
	st, code := HTTPStatus(ErrTooManyViewers)
	require.Equal(t, http.StatusServiceUnavailable, st)
	require.Equal(t, "limit_reached", code)
}

func TestAdmitWebhookAndNotifications(t *testing.T) {
	e := newEndpoint(t)
	hooks := newHooks(t, e.srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); hooks.Run(ctx) }()
	defer func() { cancel(); <-done }()
	a, h, _ := newTestAdmitter(t, []config.App{app("hook/**", func(a *config.App) { a.Auth = config.AuthWebhook })}, hooks, 100)

	pub, err := h.PublishContext(ctx, "hook/x/cam", hub.ClientInfo{Protocol: "rtmp", RemoteAddr: "127.0.0.1:9", Query: "user=bob"})
	require.NoError(t, err)
	c := <-e.got
	require.Equal(t, EventPublish, c.event)
	var b HookBody
	require.NoError(t, json.Unmarshal(c.body, &b))
	require.Equal(t, HookBody{Action: "publish", Path: "hook/x/cam", App: "hook", Stream: "x/cam", Protocol: "rtmp", ClientIP: "127.0.0.1", Query: "user=bob", Node: "node-a"}, b)

	e.status.Store(http.StatusForbidden)
	_, err = h.SubscribeContext(ctx, "hook/x/cam", hub.ClientInfo{Protocol: "flv", RemoteAddr: "127.0.0.1:10"})
	require.ErrorIs(t, err, ErrWebhookDenied)
	require.Equal(t, EventPlay, (<-e.got).event)

	// HLS: a segment before any admitted playlist is refused; after it,
	// the stream's files are served without asking again.
	hls := hub.ClientInfo{Protocol: "hls", RemoteAddr: "127.0.0.1:11"}
	_, err = a.AdmitHLS(ctx, "hook/x/cam", "seg1.mp4", hls)
	require.ErrorIs(t, err, ErrHLSNotAdmitted)
	e.status.Store(http.StatusOK)
	_, err = a.AdmitHLS(ctx, "hook/x/cam", "index.m3u8", hls)
	require.NoError(t, err)
	require.Equal(t, EventPlay, (<-e.got).event)
	_, err = a.AdmitHLS(ctx, "hook/x/cam", "seg1.mp4", hls)
	require.NoError(t, err)
	_, err = a.AdmitHLS(ctx, "hook/x/cam", "index.m3u8", hls)
	require.NoError(t, err)

	r, err := h.SubscribeContext(ctx, "hook/x/cam", hub.ClientInfo{Protocol: "flv", RemoteAddr: "127.0.0.1:12"})
	require.NoError(t, err)
	require.Equal(t, EventPlay, (<-e.got).event)
	r.Close()
	c = <-e.got
	require.Equal(t, EventStop, c.event)
	require.NoError(t, json.Unmarshal(c.body, &b))
	require.Equal(t, "play", b.Action)
	require.NotEmpty(t, b.ClientID)
	require.True(t, CheckSignature([]byte("hook-secret"), c.body, c.signature))
	pub.Close()
	c = <-e.got
	require.Equal(t, EventUnpublish, c.event)
	require.NoError(t, json.Unmarshal(c.body, &b))
	require.Equal(t, "publish", b.Action)
	require.Equal(t, "hook/x/cam", b.Path)
}

func TestAdmitHLSToken(t *testing.T) {
	a, _, _ := newTestAdmitter(t, []config.App{app("secure/*", func(a *config.App) { a.Auth = config.AuthToken })}, nil, 100)
	ctx := context.Background()
	tok := mint(t, "secure/cam", ActionPlay)
	got, err := a.AdmitHLS(ctx, "secure/cam", "index.m3u8", hub.ClientInfo{Protocol: "hls", Query: "token=" + tok})
	require.NoError(t, err)
	require.Equal(t, tok, got)
	_, err = a.AdmitHLS(ctx, "secure/cam", "seg3.mp4", hub.ClientInfo{Protocol: "hls"})
	require.ErrorIs(t, err, ErrTokenMissing)
	_, err = a.AdmitHLS(ctx, "secure/other", "seg3.mp4", hub.ClientInfo{Protocol: "hls", Query: "token=" + tok})
	require.ErrorIs(t, err, ErrTokenScope)
	got, err = a.AdmitHLS(ctx, "open/cam", "index.m3u8", hub.ClientInfo{Protocol: "hls"})
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestAdmitNoWebhookOrKeyRefuses(t *testing.T) {
	p := &apps{list: []config.App{
		app("hook/*", func(a *config.App) { a.Auth = config.AuthWebhook }),
		app("tok/*", func(a *config.App) { a.Auth = config.AuthToken }),
	}}
	a := NewAdmitter(AdmitterOptions{Policy: p.policy})
	require.ErrorIs(t, a.Admit(context.Background(), hub.ActionPublish, "hook/a", hub.ClientInfo{}), ErrWebhookUnavailable)
	require.ErrorIs(t, a.Admit(context.Background(), hub.ActionPublish, "tok/a", hub.ClientInfo{Query: "token=x"}), ErrTokenInvalid)
	a.OnLeave(hub.Event{}) // no webhooks: nothing to do
}

func TestQueryToken(t *testing.T) {
	require.Equal(t, "abc", QueryToken("x=%zz&token=abc"))
	require.Equal(t, "", QueryToken(""))
	require.Equal(t, "a.b.c", TokenOf(hub.ClientInfo{Query: "token=a.b.c"}))
	require.Equal(t, "1.2.3.4", ClientIP("1.2.3.4:99"))
	require.Equal(t, "::1", ClientIP("[::1]:99"))
	require.Equal(t, "internal", ClientIP("internal"))
}

func BenchmarkAdmitToken(b *testing.B) {
	p := &apps{list: []config.App{app("secure/*", func(a *config.App) { a.Auth = config.AuthToken })}}
	a := NewAdmitter(AdmitterOptions{Policy: p.policy, Verifier: hsVerifier(b), Limiter: NewLimiter(10, time.Minute, 0)})
	tok, err := Mint([]byte(testSecret), Claims{Path: "secure/*", Action: ActionPlay}, time.Hour)
	require.NoError(b, err)
	info := hub.ClientInfo{Protocol: "flv", RemoteAddr: "127.0.0.1:1", Query: "token=" + tok}
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Admit(context.Background(), hub.ActionPlay, "secure/cam", info); err != nil {
			b.Fatal(err)
		}
	}
}
