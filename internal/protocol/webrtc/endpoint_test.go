package webrtc

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	pwebrtc "github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeSession ends when closed, or on its own through end.
type fakeSession struct {
	req    *Request
	once   sync.Once
	closed bool
}

func (s *fakeSession) PeerConnection() *pwebrtc.PeerConnection { return nil }

func (s *fakeSession) Close() { s.end() }

func (s *fakeSession) end() {
	s.once.Do(func() {
		s.closed = true
		s.req.Ended()
	})
}

func TestEndpoint(t *testing.T) {
	checkLeaks(t)
	var (
		mu       sync.Mutex
		sessions []*fakeSession
	)
	limit := NewLimiter(2)
	ep := NewEndpoint(EndpointOptions{Name: "whep", Sessions: limit, CORSOrigin: "https://app.example", Logger: quietLogger(),
		ICEServers: func(*http.Request) []ICEServer { return []ICEServer{{URLs: []string{"stun:example.net"}}} }},
		func(_ context.Context, req *Request) (Session, string, error) {
			if req.Path == "live/refused" {
				return nil, "", Errorf(http.StatusConflict, "nope", "refused")
			}
			s := &fakeSession{req: req}
			if req.Path == "live/dies" {
				s.end() // ends before it is registered
			}
			mu.Lock()
			sessions = append(sessions, s)
			mu.Unlock()
			return s, "v=0\r\nanswer", nil
		})
	srv := httptest.NewServer(ep)
	defer srv.Close()
	do := func(method, path, ctype, body string, hdr ...string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	resp := do(http.MethodPost, "/live/cam1/whep", "application/sdp; charset=utf-8", browserOffer)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, "v=0\r\nanswer", string(body))
	loc := resp.Header.Get("Location")
	assert.Regexp(t, `^/live/cam1/whep/[0-9a-f]{32}$`, loc)
	assert.Equal(t, "https://app.example", resp.Header.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, resp.Header.Get("Access-Control-Expose-Headers"), "Location")
	assert.Equal(t, []string{`<stun:example.net>; rel="ice-server"`}, resp.Header.Values("Link"))
	etag := resp.Header.Get("ETag")
	assert.Equal(t, 1, ep.Len())
	assert.True(t, ep.Match(loc))

	// Trickle without candidates; ETag checks.
	frag := "a=end-of-candidates\r\n"
	assert.Equal(t, http.StatusNoContent, do(http.MethodPatch, loc, "application/trickle-ice-sdpfrag", frag, "If-Match", etag).StatusCode)
	assert.Equal(t, http.StatusPreconditionFailed, do(http.MethodPatch, loc, "application/trickle-ice-sdpfrag", frag, "If-Match", `"x"`).StatusCode)
	assert.Equal(t, http.StatusUnsupportedMediaType, do(http.MethodPatch, loc, "application/sdp", frag).StatusCode)
	assert.Equal(t, http.StatusNotImplemented, do(http.MethodPatch, loc, "application/trickle-ice-sdpfrag", "a=ice-ufrag:other\r\na=ice-pwd:x\r\n").StatusCode)
	// The session id of another stream is not found.
	assert.Equal(t, http.StatusNotFound, do(http.MethodDelete, strings.Replace(loc, "cam1", "cam2", 1), "", "").StatusCode)

	// CORS preflight and OPTIONS.
	resp = do(http.MethodOptions, "/live/cam1/whep", "", "", "Access-Control-Request-Method", "POST")
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "PATCH")
	assert.Equal(t, "application/sdp", resp.Header.Get("Accept-Post"))
	assert.Equal(t, http.StatusMethodNotAllowed, do(http.MethodGet, "/live/cam1/whep", "", "").StatusCode)

	// A refused session frees its slot; a session ended before registration
	// is not listed; the limit holds.
	assert.Equal(t, http.StatusConflict, do(http.MethodPost, "/live/refused/whep", "application/sdp", browserOffer).StatusCode)
	assert.Equal(t, http.StatusCreated, do(http.MethodPost, "/live/dies/whep", "application/sdp", browserOffer).StatusCode)
	assert.Equal(t, 1, ep.Len())
	assert.Equal(t, 1, limit.InUse())
	assert.Equal(t, http.StatusCreated, do(http.MethodPost, "/live/cam3/whep", "application/sdp", browserOffer).StatusCode)
	assert.Equal(t, http.StatusServiceUnavailable, do(http.MethodPost, "/live/cam4/whep", "application/sdp", browserOffer).StatusCode)

	// DELETE, then Close ends the rest and refuses new sessions.
	assert.Equal(t, http.StatusOK, do(http.MethodDelete, loc, "", "").StatusCode)
	assert.Equal(t, http.StatusNotFound, do(http.MethodDelete, loc, "", "").StatusCode)
	assert.Equal(t, 1, ep.Len())
	ep.Close()
	assert.Equal(t, 0, ep.Len())
	assert.Equal(t, 0, limit.InUse())
	assert.Equal(t, http.StatusServiceUnavailable, do(http.MethodPost, "/live/cam1/whep", "application/sdp", browserOffer).StatusCode)
	mu.Lock()
	for _, s := range sessions {
		assert.True(t, s.closed)
	}
	mu.Unlock()
}
