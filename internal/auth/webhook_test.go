package auth

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quasipaa/quasipaa/internal/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// call is one request an endpoint received.
type call struct {
	event, signature string
	body             []byte
}

// endpoint is a real HTTP server answering status (or hanging for delay).
type endpoint struct {
	srv    *httptest.Server
	status atomic.Int32
	delay  atomic.Int64
	mu     sync.Mutex
	calls  []call
	got    chan call
}

func newEndpoint(t *testing.T) *endpoint {
	e := &endpoint{got: make(chan call, 100)}
	e.status.Store(http.StatusOK)
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c := call{event: r.Header.Get(HeaderEvent), signature: r.Header.Get(HeaderSignature), body: b}
		e.mu.Lock()
		e.calls = append(e.calls, c)
		e.mu.Unlock()
		e.got <- c
		if d := time.Duration(e.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(int(e.status.Load()))
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func testClient(t *testing.T) *http.Client {
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func newHooks(t *testing.T, url string) *Webhooks {
	return NewWebhooks(config.Webhook{
		OnPublish: url, OnPlay: url, OnUnpublish: url, OnStop: url, OnRecordSegment: url,
		Secret: "hook-secret", Timeout: 300 * time.Millisecond, Retries: 3,
	}, WebhookOptions{Client: testClient(t), Backoff: 20 * time.Millisecond, QueueSize: 4})
}

func TestWebhookAsk(t *testing.T) {
	e := newEndpoint(t)
	w := newHooks(t, e.srv.URL)
	body := HookBody{Action: "publish", Path: "live/cam", App: "live", Stream: "cam", Protocol: "rtmp", ClientIP: "127.0.0.1", Query: "k=v", Node: "n1"}

	require.NoError(t, w.Ask(context.Background(), EventPublish, body))
	c := <-e.got
	require.Equal(t, EventPublish, c.event)
	require.True(t, CheckSignature([]byte("hook-secret"), c.body, c.signature), "signature %q", c.signature)
	require.False(t, CheckSignature([]byte("other"), c.body, c.signature))
	var got map[string]any
	require.NoError(t, json.Unmarshal(c.body, &got))
	for _, k := range []string{"action", "path", "app", "stream", "protocol", "client_ip", "client_id", "query", "node"} {
		require.Contains(t, got, k)
	}
	require.Equal(t, "k=v", got["query"])

	e.status.Store(http.StatusForbidden)
	err := w.Ask(context.Background(), EventPlay, body)
	require.ErrorIs(t, err, ErrWebhookDenied)
	require.ErrorContains(t, err, "403")
	<-e.got

	e.status.Store(http.StatusOK)
	e.delay.Store(int64(2 * time.Second))
	start := time.Now()
	require.ErrorIs(t, w.Ask(context.Background(), EventPlay, body), ErrWebhookUnavailable)
	require.Less(t, time.Since(start), time.Second, "the timeout bounds the question")
	<-e.got
	e.delay.Store(0)
}

func TestWebhookEndpointDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there any more
	w := newHooks(t, url)
	require.ErrorIs(t, w.Ask(context.Background(), EventPublish, HookBody{}), ErrWebhookUnavailable)
	empty := NewWebhooks(config.Webhook{}, WebhookOptions{})
	require.ErrorIs(t, empty.Ask(context.Background(), EventPublish, HookBody{}), ErrWebhookUnavailable)
	empty.Notify(EventStop, HookBody{}) // no endpoint: nothing queued
	require.Zero(t, empty.Dropped())
}

func TestWebhookNotifyRetriesThenSucceeds(t *testing.T) {
	e := newEndpoint(t)
	e.status.Store(http.StatusInternalServerError)
	w := newHooks(t, e.srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	w.Notify(EventUnpublish, HookBody{Action: "publish", Path: "live/cam"})
	<-e.got
	<-e.got
	e.status.Store(http.StatusNoContent) // the third attempt succeeds
	c := <-e.got
	require.Equal(t, EventUnpublish, c.event)
	require.True(t, CheckSignature([]byte("hook-secret"), c.body, c.signature))
	select {
	case extra := <-e.got:
		t.Fatalf("a delivered notification was sent again: %s", extra.body)
	case <-time.After(200 * time.Millisecond):
	}
	require.Zero(t, w.Failed())
}

func TestWebhookNotifyGivesUpAndDrops(t *testing.T) {
	e := newEndpoint(t)
	e.status.Store(http.StatusBadGateway)
	w := newHooks(t, e.srv.URL)
	// Without a worker the queue (4) fills, then notifications are dropped.
	for range 6 {
		w.Notify(EventStop, HookBody{})
	}
	require.EqualValues(t, 2, w.Dropped())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	require.Eventually(t, func() bool { return w.Failed() == 4 }, 10*time.Second, 10*time.Millisecond)
	cancel()
	<-done
	e.mu.Lock()
	require.Len(t, e.calls, 4*4, "each notification tried 1+3 times")
	e.mu.Unlock()
}

func TestWebhookRunStopsDuringBackoff(t *testing.T) {
	e := newEndpoint(t)
	e.status.Store(http.StatusInternalServerError)
	w := NewWebhooks(config.Webhook{OnStop: e.srv.URL, Timeout: time.Second, Retries: 100}, WebhookOptions{Client: testClient(t), Backoff: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	w.Notify(EventStop, HookBody{})
	<-e.got
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not stop")
	}
}
