package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMetricsEndpoint scrapes the real binary's /metrics while ffmpeg
// publishes and a viewer without a token is refused.
func TestMetricsEndpoint(t *testing.T) {
	requireTools(t, "ffmpeg")
	s := startServer(t,
		`QUASIPAA_APPS=[{match: "secure/*", auth: token}]`,
		"QUASIPAA_AUTH_JWT_SECRET=metrics-test-secret-0123456789")
	publishTestStream(t, s.rtmpURL("live/m"), 0)
	waitStream(t, s, "live/m")
	resp, err := http.Get(s.flvURL("secure/x"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	scrape := func() string {
		resp, err := http.Get("http://" + s.HTTPAddr + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	require.Eventually(t, func() bool {
		body := scrape()
		return strings.Contains(body, `quasipaa_stream_up{path="live/m",state="live"} 1`) &&
			strings.Contains(body, `quasipaa_auth_refusals_total{action="play",protocol="flv",reason="no_credential"} 1`)
	}, 10*time.Second, 200*time.Millisecond, "metrics:\n%s", tail(scrape(), 3000))
	body := scrape()
	for _, name := range []string{"quasipaa_stream_frames_in_total{path=\"live/m\"}", "quasipaa_node_info{", "go_goroutines", "process_cpu_seconds_total"} {
		require.Contains(t, body, name)
	}
}
