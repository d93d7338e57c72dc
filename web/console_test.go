package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func consoleGet(t *testing.T, h http.Handler, method, target string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	res := rec.Result()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(body)
}

func TestConsoleHandlerFiles(t *testing.T) {
	h := ConsoleHandler()
	for _, tc := range []struct {
		target, contentType, contains string
	}{
		{"/console/", "text/html; charset=utf-8", `<script type="module" src="/console/app.js">`},
		{"/console/index.html", "text/html; charset=utf-8", "<dialog id=\"login\">"},
		{"/console/app.js", "text/javascript; charset=utf-8", "import { HLSPlayer } from \"./hls.js\""},
		{"/console/hls.js", "text/javascript; charset=utf-8", "export class HLSPlayer"},
		{"/console/api.js", "text/javascript; charset=utf-8", "export async function api"},
		{"/console/flv.js", "text/javascript; charset=utf-8", "export class FLVPlayer"},
		{"/console/mse.js", "text/javascript; charset=utf-8", "export function sourceBufferUpdate"},
		{"/console/console.css", "text/css; charset=utf-8", ".player"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			res, body := consoleGet(t, h, http.MethodGet, tc.target)
			require.Equal(t, http.StatusOK, res.StatusCode)
			require.Equal(t, tc.contentType, res.Header.Get("Content-Type"))
			require.Equal(t, "no-cache", res.Header.Get("Cache-Control"))
			require.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
			require.Equal(t, consoleCSP, res.Header.Get("Content-Security-Policy"))
			require.NotEmpty(t, res.Header.Get("ETag"))
			require.Contains(t, body, tc.contains)
		})
	}
}

func TestConsoleHandlerRoutes(t *testing.T) {
	h := ConsoleHandler()
	_, index := consoleGet(t, h, http.MethodGet, "/console/")

	// Sub-paths of the single-page app get index.html.
	for _, target := range []string{"/console/streams", "/console/streams/live/cam", "/console/nodes/"} {
		res, body := consoleGet(t, h, http.MethodGet, target)
		require.Equal(t, http.StatusOK, res.StatusCode, target)
		require.Equal(t, index, body, target)
		require.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
	}
	// A missing file is a 404, not HTML in place of a script.
	res, _ := consoleGet(t, h, http.MethodGet, "/console/missing.js")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	res, _ = consoleGet(t, h, http.MethodGet, "/console/x/../app.js")
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	// /console redirects to /console/.
	res, _ = consoleGet(t, h, http.MethodGet, "/console")
	require.Equal(t, http.StatusMovedPermanently, res.StatusCode)
	require.Equal(t, "/console/", res.Header.Get("Location"))
	// Anything else is not the console's.
	res, _ = consoleGet(t, h, http.MethodGet, "/consolex/")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	// Read-only.
	res, _ = consoleGet(t, h, http.MethodPost, "/console/")
	require.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)
	require.Equal(t, "GET, HEAD", res.Header.Get("Allow"))
	res, body := consoleGet(t, h, http.MethodHead, "/console/app.js")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Empty(t, body)
	// Conditional GET.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/console/app.js", nil)
	req.Header.Set("If-None-Match", res.Header.Get("ETag"))
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusNotModified, rec.Code)
}

// TestConsoleCSP checks that the policy allows what the console needs and
// nothing more: its own scripts, the API and playback on its own origin,
// MediaSource blobs, framing the built-in pages; no inline script.
func TestConsoleCSP(t *testing.T) {
	dirs := map[string]string{}
	for _, d := range strings.Split(consoleCSP, ";") {
		f := strings.Fields(d)
		require.NotEmpty(t, f)
		dirs[f[0]] = strings.Join(f[1:], " ")
	}
	require.Equal(t, "'none'", dirs["default-src"])
	require.Equal(t, "'self'", dirs["script-src"])
	require.Equal(t, "'self'", dirs["connect-src"])
	require.Equal(t, "'self' blob:", dirs["media-src"])
	require.Equal(t, "'self'", dirs["frame-src"])
	require.Equal(t, "'none'", dirs["frame-ancestors"])
	require.NotContains(t, consoleCSP, "unsafe")

	// No inline script or style in the page, which the policy would block.
	_, index := consoleGet(t, ConsoleHandler(), http.MethodGet, "/console/")
	require.NotRegexp(t, regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]+</script>`), index)
	require.NotContains(t, index, "style=")
	require.NotContains(t, index, "<style")
	require.NotRegexp(t, regexp.MustCompile(`\son[a-z]+=`), index)
}
