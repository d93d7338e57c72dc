package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAPIOnItsOwnAddress runs the API, metrics and console on api.listen,
// protected by keys, and checks the playback listener does not serve them.
func TestAPIOnItsOwnAddress(t *testing.T) {
	const key = "api-listen-test-key-0123456789"
	s := startServer(t, "QUASIPAA_API_LISTEN=127.0.0.1:0",
		`QUASIPAA_API_KEYS=[{name: t, key: "`+key+`", scope: read}]`)
	var apiAddr string
	require.Eventually(t, func() bool {
		for _, line := range strings.Split(s.logs.String(), "\n") {
			var rec struct {
				Msg, Protocol, Addr string
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" && rec.Protocol == "api" {
				apiAddr = rec.Addr
				return true
			}
		}
		return false
	}, 5*time.Second, 50*time.Millisecond)

	get := func(url, bearer string) int { return apiDo(t, http.MethodGet, url, bearer, nil) }
	require.Equal(t, http.StatusNotFound, get("http://"+s.HTTPAddr+"/api/v1/streams", key), "no API on http.listen")
	require.Equal(t, http.StatusUnauthorized, get("http://"+apiAddr+"/api/v1/streams", ""))
	require.Equal(t, http.StatusUnauthorized, get("http://"+apiAddr+"/api/v1/streams", "wrong-key-0123456789"))
	require.Equal(t, http.StatusOK, get("http://"+apiAddr+"/api/v1/streams", key))
	require.Equal(t, http.StatusOK, get("http://"+apiAddr+"/api/v1/openapi.json", ""))
	require.Equal(t, http.StatusOK, get("http://"+apiAddr+"/metrics", ""))
	require.Equal(t, http.StatusOK, get("http://"+apiAddr+"/console/", ""))
	require.Equal(t, http.StatusForbidden, apiDo(t, http.MethodDelete, "http://"+apiAddr+"/api/v1/streams/live/x", key, nil),
		"a read key cannot kick")
}
