package e2e

import (
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
	code, _, _ := httpGet(t, s.flvURL("secure/x"))
	require.Equal(t, http.StatusUnauthorized, code)

	scrape := func() string {
		code, body, _ := httpGet(t, "http://"+s.HTTPAddr+"/metrics")
		require.Equal(t, http.StatusOK, code)
		return body
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
