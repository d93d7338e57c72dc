package web

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func get(t *testing.T, h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, "http://example.test/", nil)
	// Set the path raw: NewRequest would keep it, but be explicit that no
	// cleaning happens before the handler.
	r.URL.Path = target
	r.RequestURI = target
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestPages(t *testing.T) {
	h := PlayerHandler()
	for _, tc := range []struct{ path, mode string }{
		{"/live/x/", "play"},
		{"/live/cam-1_a.b~c/", "play"},
		{"/live/x/publish", "publish"},
	} {
		w := get(t, h, http.MethodGet, tc.path)
		require.Equal(t, http.StatusOK, w.Code, tc.path)
		require.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))
		require.Equal(t, "no-cache", w.Header().Get("Cache-Control"))
		csp := w.Header().Get("Content-Security-Policy")
		require.Contains(t, csp, "script-src 'self'")
		require.Contains(t, csp, "connect-src 'self'")
		if tc.mode == "publish" {
			require.Contains(t, csp, "frame-ancestors 'self'", "the camera page is not framed by other sites")
			require.Equal(t, "SAMEORIGIN", w.Header().Get("X-Frame-Options"))
		} else {
			require.NotContains(t, csp, "frame-ancestors", "other sites may embed the player")
			require.Empty(t, w.Header().Get("X-Frame-Options"))
		}
		require.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"))
		body := w.Body.String()
		require.Contains(t, body, `data-mode="`+tc.mode+`"`)
		require.NotContains(t, body, "?v=dev", "asset URLs are versioned")
		require.Regexp(t, `src="\.\./\.\./_quasipaa/player/player\.js\?v=[0-9a-f]{12}"`, body)
		require.Regexp(t, `href="\.\./\.\./_quasipaa/player/player\.css\?v=[0-9a-f]{12}"`, body)
		require.NotRegexp(t, `(src|href)="(https?:)?//`, body, "no external resources")

		head := get(t, h, http.MethodHead, tc.path)
		require.Equal(t, http.StatusOK, head.Code)
		require.Empty(t, head.Body.String())

		etag := w.Header().Get("ETag")
		require.NotEmpty(t, etag)
		require.Equal(t, http.StatusNotModified, get(t, h, http.MethodGet, tc.path, "If-None-Match", etag).Code)
	}
}

func TestAssets(t *testing.T) {
	h := PlayerHandler()
	page := get(t, h, http.MethodGet, "/live/x/").Body.String()
	for name, ct := range map[string]string{
		"player.js":  "text/javascript; charset=utf-8",
		"player.css": "text/css; charset=utf-8",
	} {
		w := get(t, h, http.MethodGet, AssetPrefix+name)
		require.Equal(t, http.StatusOK, w.Code, name)
		require.Equal(t, ct, w.Header().Get("Content-Type"), name)
		require.Equal(t, "public, max-age=31536000, immutable", w.Header().Get("Cache-Control"))
		require.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"))
		require.NotEmpty(t, w.Body.String())
		// The page names the asset with a prefix of its ETag, so a changed
		// file gets a new URL.
		etag := strings.Trim(w.Header().Get("ETag"), `"`)
		require.Contains(t, page, name+"?v="+etag[:12])
	}
	js := get(t, h, http.MethodGet, AssetPrefix+"player.js").Body.String()
	require.NotRegexp(t, `https?://`, regexp.MustCompile(`(?m)^\s*//.*$`).ReplaceAllString(js, ""), "no external URLs in code")
}

func TestNotFound(t *testing.T) {
	h := PlayerHandler()
	for _, p := range []string{
		"/", "/live", "/live/", "/live/x", "/live/x/y/", "/live/x/whep", "/live/x/index.html",
		"/live/x/publish/", "/a/b/c/", "/live/x y/", "/live//",
		AssetPrefix, AssetPrefix + "nope.js", AssetPrefix + "index.html", AssetPrefix + "publish.html",
		AssetPrefix + "web.go", AssetPrefix + "player/player.js", "/_quasipaa/player.js",
	} {
		require.Equal(t, http.StatusNotFound, get(t, h, http.MethodGet, p).Code, p)
	}
}

func TestDotSegments(t *testing.T) {
	h := PlayerHandler()
	for _, p := range []string{
		AssetPrefix + "../web.go", AssetPrefix + "./player.js", "/live/../x/", "/../live/x/", "/live/x/../",
	} {
		w := get(t, h, http.MethodGet, p)
		require.Equal(t, http.StatusBadRequest, w.Code, p)
		require.NotContains(t, w.Body.String(), "package web")
	}
}

func TestMethods(t *testing.T) {
	h := PlayerHandler()
	for _, p := range []string{"/live/x/", "/live/x/publish", AssetPrefix + "player.js"} {
		w := get(t, h, http.MethodPost, p)
		require.Equal(t, http.StatusMethodNotAllowed, w.Code, p)
		require.Equal(t, "GET, HEAD", w.Header().Get("Allow"))
	}
}

// TestOverTheWire sends raw request lines, percent-encoded dot segments
// included, to a real server: nothing between the socket and the handler
// cleans the path.
func TestOverTheWire(t *testing.T) {
	srv := httptest.NewServer(PlayerHandler())
	defer srv.Close()
	for target, want := range map[string]int{
		"/live/x/":                          200,
		"/_quasipaa/player/player.js?v=abc": 200,
		"/_quasipaa/player/../web.go":       400,
		"/_quasipaa/player/%2e%2e/web.go":   400,
		"/_quasipaa/player/..%2fweb.go":     400,
		"/live/x/%2e%2e/":                   400,
	} {
		c, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 5*time.Second)
		require.NoError(t, err)
		require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
		_, err = fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", target)
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		c.Close()
		require.Equal(t, want, resp.StatusCode, target)
		require.NotContains(t, string(body), "package web", target)
	}
}
