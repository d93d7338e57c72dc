package relay

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func signed(t *testing.T, method, target, secret, node string) *http.Request {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	Sign(req, secret, node)
	return req
}

func TestVerifyAcceptsWhatSignSigned(t *testing.T) {
	req := signed(t, http.MethodGet, "/_quasipaa/relay/live/cam", "s3cret", "pull-7")
	node, err := Verify(req, "s3cret", time.Minute)
	require.NoError(t, err)
	require.Equal(t, "pull-7", node)
	require.Len(t, req.Header.Get(HeaderSignature), 64)
}

func TestVerifyRefuses(t *testing.T) {
	cases := map[string]func(r *http.Request) (secret string){
		"wrong secret": func(r *http.Request) string { return "other" },
		"empty secret": func(r *http.Request) string {
			r.Header.Set(HeaderSignature, signature("", r.Method, r.URL.Path, r.URL.RawQuery, "n", r.Header.Get(HeaderTime)))
			r.Header.Set(HeaderNode, "n")
			return ""
		},
		"other path":   func(r *http.Request) string { r.URL.Path = "/_quasipaa/relay/live/other"; return "s3cret" },
		"other method": func(r *http.Request) string { r.Method = http.MethodPost; return "s3cret" },
		"other node":   func(r *http.Request) string { r.Header.Set(HeaderNode, "core-1"); return "s3cret" },
		"missing node": func(r *http.Request) string { r.Header.Del(HeaderNode); return "s3cret" },
		"missing time": func(r *http.Request) string { r.Header.Del(HeaderTime); return "s3cret" },
		"missing sig":  func(r *http.Request) string { r.Header.Del(HeaderSignature); return "s3cret" },
		"bad time":     func(r *http.Request) string { r.Header.Set(HeaderTime, "yesterday"); return "s3cret" },
		"not hex":      func(r *http.Request) string { r.Header.Set(HeaderSignature, "zz"); return "s3cret" },
		"upper-case hex": func(r *http.Request) string {
			r.Header.Set(HeaderSignature, "A"+r.Header.Get(HeaderSignature)[1:])
			return "s3cret"
		},
		"too old": func(r *http.Request) string {
			ts := strconv.FormatInt(time.Now().Add(-61*time.Second).Unix(), 10)
			r.Header.Set(HeaderTime, ts)
			r.Header.Set(HeaderSignature, signature("s3cret", r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get(HeaderNode), ts))
			return "s3cret"
		},
		"from the future": func(r *http.Request) string {
			ts := strconv.FormatInt(time.Now().Add(61*time.Second).Unix(), 10)
			r.Header.Set(HeaderTime, ts)
			r.Header.Set(HeaderSignature, signature("s3cret", r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get(HeaderNode), ts))
			return "s3cret"
		},
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			req := signed(t, http.MethodGet, "/_quasipaa/relay/live/cam", "s3cret", "pull-7")
			secret := tamper(req)
			_, err := Verify(req, secret, time.Minute)
			require.ErrorIs(t, err, ErrUnauthorized)
		})
	}
}

func TestVerifyToleratesSkewWithinBound(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	ts := strconv.FormatInt(time.Now().Add(-50*time.Second).Unix(), 10)
	req.Header.Set(HeaderNode, "n")
	req.Header.Set(HeaderTime, ts)
	req.Header.Set(HeaderSignature, signature("k", http.MethodGet, "/x", "", "n", ts))
	_, err := Verify(req, "k", 0) // 0: DefaultMaxSkew
	require.NoError(t, err)
}

func TestRequireSecret(t *testing.T) {
	h := RequireSecret("k", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		node, ok := NodeFromContext(r.Context())
		require.True(t, ok)
		_, _ = w.Write([]byte(node))
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, signed(t, http.MethodGet, "/internal/thing", "k", "exchange-2"))
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, "exchange-2", w.Body.String())

	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/internal/thing", nil))
	require.Equal(t, http.StatusUnauthorized, w.Code)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	var body map[string]map[string]string
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
	require.Equal(t, "unauthorized", body["error"]["code"])
	require.Contains(t, body["error"]["message"], "missing")
	_, ok := NodeFromContext(httptest.NewRequest(http.MethodGet, "/", nil).Context())
	require.False(t, ok)
}

func TestVerifyRefusesAnotherQuery(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/api/v1/streams?scope=local", nil)
	Sign(req, "k", "n")
	_, err := Verify(req, "k", time.Minute)
	require.NoError(t, err)
	req.URL.RawQuery = "scope=cluster"
	_, err = Verify(req, "k", time.Minute)
	require.ErrorIs(t, err, ErrUnauthorized, "a signed request replayed with another query")
}
