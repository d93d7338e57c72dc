package pull

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/auth"
	"github.com/quasipaa/quasipaa/internal/hub"
)

const llPlaylist = `#EXTM3U
#EXT-X-VERSION:10
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.6
#EXT-X-PART-INF:PART-TARGET=0.2
#EXT-X-MAP:URI="init.mp4"
#EXTINF:2.00000,
seg7.mp4
#EXT-X-PART:DURATION=0.2,URI="part40.mp4",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.2,URI="part41.mp4?x=1"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part42.mp4"
#EXT-X-RENDITION-REPORT:URI="../other/stream.m3u8",LAST-MSN=8
`

func TestAddTokenToPlaylist(t *testing.T) {
	got := string(AddTokenToPlaylist([]byte(llPlaylist), "a.b+c"))
	want := strings.NewReplacer(
		`"init.mp4"`, `"init.mp4?token=a.b%2Bc"`,
		"seg7.mp4\n", "seg7.mp4?token=a.b%2Bc\n",
		`"part40.mp4"`, `"part40.mp4?token=a.b%2Bc"`,
		`"part41.mp4?x=1"`, `"part41.mp4?x=1&token=a.b%2Bc"`,
		`"part42.mp4"`, `"part42.mp4?token=a.b%2Bc"`,
		`"../other/stream.m3u8"`, `"../other/stream.m3u8?token=a.b%2Bc"`,
	).Replace(llPlaylist)
	require.Equal(t, want, got)
	// CRLF line ends and a URI that already has a token are kept.
	require.Equal(t, "#EXTM3U\r\nmain.m3u8?token=old\r\nx.ts?token=t\r\n",
		string(AddTokenToPlaylist([]byte("#EXTM3U\r\nmain.m3u8?token=old\r\nx.ts\r\n"), "t")))
	require.Equal(t, "#EXT-X-MEDIA:TYPE=AUDIO,X-URI=\"a\",URI=\"b?token=t\"", string(AddTokenToPlaylist([]byte("#EXT-X-MEDIA:TYPE=AUDIO,X-URI=\"a\",URI=\"b\""), "t")))
}

type gateFunc func(ctx context.Context, path, file string, info hub.ClientInfo) (string, error)

func (f gateFunc) AdmitHLS(ctx context.Context, path, file string, info hub.ClientInfo) (string, error) {
	return f(ctx, path, file, info)
}

func TestWithHLSGate(t *testing.T) {
	var seen []string
	gate := gateFunc(func(_ context.Context, path, file string, info hub.ClientInfo) (string, error) {
		seen = append(seen, path+"/"+file+"?"+info.Query)
		tok := auth.QueryToken(info.Query)
		switch tok {
		case "good":
			return tok, nil
		case "":
			return "", auth.ErrTokenMissing
		case "limited":
			return "", auth.ErrRateLimited
		}
		return "", auth.ErrTokenScope
	})
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".m3u8") {
			w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
			w.Header().Set("Content-Length", "3")
			_, _ = io.WriteString(w, llPlaylist)
			return
		}
		_, _ = io.WriteString(w, "media")
	})
	srv := httptest.NewServer(WithHLSGate(next, gate))
	defer srv.Close()
	get := func(url string) (int, string) {
		resp, err := http.Get(srv.URL + url)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, body := get("/secure/cam/index.m3u8?token=good")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "seg7.mp4?token=good\n")
	require.Contains(t, body, `URI="part42.mp4?token=good"`)
	status, body = get("/secure/cam/seg7.mp4?token=good")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "media", body)
	for url, want := range map[string]int{
		"/secure/cam/index.m3u8":               http.StatusUnauthorized,
		"/secure/cam/seg7.mp4?token=other":     http.StatusForbidden,
		"/secure/cam/index.m3u8?token=limited": http.StatusTooManyRequests,
	} {
		status, body := get(url)
		require.Equal(t, want, status, url)
		require.Contains(t, body, "cannot play secure/cam: ")
	}
	// Other paths are not asked about.
	n := len(seen)
	status, _ = get("/api/v1/streams")
	require.Equal(t, http.StatusOK, status)
	require.Len(t, seen, n)
	// Without a gate nothing is asked nor rewritten.
	rec := httptest.NewRecorder()
	WithHLSGate(next, nil).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/secure/cam/index.m3u8", nil))
	require.Equal(t, llPlaylist, rec.Body.String())
}
