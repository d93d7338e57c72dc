package relay

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/hub"
	wire "github.com/quasipaa/quasipaa/internal/protocol/relay"
)

// get makes a signed relay request to n for path.
func get(t *testing.T, ctx context.Context, n *node, method, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, n.http.URL+PathPrefix+path, nil)
	require.NoError(t, err)
	Sign(req, testSecret, "tester")
	resp, err := n.http.Client().Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func errorCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	var body struct {
		Error struct{ Code, Message string }
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.NotEmpty(t, body.Error.Message)
	return body.Error.Code
}

func TestServerRefusesBadRequests(t *testing.T) {
	a := newNode(t, hub.Options{})
	ctx := context.Background()
	for _, c := range []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodGet, "live/none", http.StatusNotFound, "stream_not_found"},
		{http.MethodGet, "justone", http.StatusBadRequest, "bad_request"},
		{http.MethodGet, "live/../etc", http.StatusBadRequest, "bad_request"},
		{http.MethodGet, "live/a%20b", http.StatusBadRequest, "bad_request"},
		{http.MethodPost, "live/cam", http.StatusMethodNotAllowed, "method_not_allowed"},
	} {
		resp := get(t, ctx, a, c.method, c.path)
		require.Equal(t, c.status, resp.StatusCode, "%s %s", c.method, c.path)
		require.Equal(t, c.code, errorCode(t, resp))
	}
}

func TestServerSendsTracksKeepalivesAndEnd(t *testing.T) {
	a := newNode(t, hub.Options{})
	p := publish(t, a, "live/quiet", synthTracks)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp := get(t, ctx, a, http.MethodGet, "live/quiet")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, ContentType, resp.Header.Get("Content-Type"))
	r := wire.NewReader(resp.Body, 0)
	m, err := r.Next()
	require.NoError(t, err)
	require.Equal(t, wire.TypeTracks, m.Type, "tracks before any frame")
	require.Equal(t, synthTracks, m.Tracks)
	start := time.Now()
	m, err = r.Next()
	require.NoError(t, err)
	require.Equal(t, wire.TypeKeepalive, m.Type)
	el := time.Since(start)
	require.True(t, el > 800*time.Millisecond && el < 3*time.Second, "keepalive after %s, want about 1 s", el)

	require.NoError(t, p.WriteFrame(synthFrame(0, 5, 'x')))
	m, err = r.Next()
	require.NoError(t, err)
	require.Equal(t, wire.TypeFrame, m.Type, "no second TRACKS for the same track set")
	require.Equal(t, []byte{'x', 0, 0}, m.Frame.Payload)

	p.Close()
	m, err = r.Next()
	require.NoError(t, err)
	require.Equal(t, wire.Message{Type: wire.TypeEnd, Reason: wire.ReasonStreamEnded, Size: 5 + len(wire.ReasonStreamEnded)}, m)
	_, err = r.Next()
	require.ErrorIs(t, err, io.EOF)
}

func TestServerEndReasons(t *testing.T) {
	a := newNode(t, hub.Options{})
	p := publish(t, a, "live/r", synthTracks)
	require.NoError(t, p.WriteFrame(synthFrame(0, 5, 'x')))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	read := func(resp *http.Response) wire.Message {
		r := wire.NewReader(resp.Body, 0)
		for {
			m, err := r.Next()
			require.NoError(t, err)
			if m.Type == wire.TypeEnd {
				return m
			}
		}
	}
	// A kicked relay reader: the receiver must reconnect, not end.
	resp := get(t, ctx, a, http.MethodGet, "live/r")
	eventually(t, 2*time.Second, func() bool { return relayReaders(a, "live/r") == 1 }, "relay reader")
	info, _ := a.hub.StreamDetail("live/r")
	require.NoError(t, a.hub.Kick("live/r", info.Readers[0].ID))
	require.Equal(t, reasonKicked, read(resp).Reason)

	// The server closing.
	resp = get(t, ctx, a, http.MethodGet, "live/r")
	eventually(t, 2*time.Second, func() bool { return relayReaders(a, "live/r") == 1 }, "relay reader")
	a.srv.Close()
	require.Equal(t, reasonServerClosed, read(resp).Reason)
	resp = get(t, ctx, a, http.MethodGet, "live/r")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

func TestServerStopsWhenTheClientLeaves(t *testing.T) {
	a := newNode(t, hub.Options{})
	p := publish(t, a, "live/bye", synthTracks)
	require.NoError(t, p.WriteFrame(synthFrame(0, 5, 'x')))
	ctx, cancel := context.WithCancel(context.Background())
	resp := get(t, ctx, a, http.MethodGet, "live/bye")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	eventually(t, 2*time.Second, func() bool { return relayReaders(a, "live/bye") == 1 }, "relay reader")
	cancel()
	eventually(t, 3*time.Second, func() bool { return relayReaders(a, "live/bye") == 0 }, "relay reader removed")
}
