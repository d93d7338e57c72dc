package core

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/record"
	"github.com/quasipaa/quasipaa/internal/storage"
)

func TestRecordingsAPI(t *testing.T) {
	fs, err := storage.NewFS(t.TempDir())
	require.NoError(t, err)
	defer fs.Close()
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	// 3 segments, a 6 s gap, 2 segments.
	for i, off := range []time.Duration{0, 4, 8, 18, 22} {
		s := record.Segment{Path: "live/cam1", Start: start.Add(off * time.Second), Duration: 4 * time.Second, InitLen: 10, Run: start}
		if i >= 3 {
			s.Run = start.Add(18 * time.Second)
		}
		body := bytes.Repeat([]byte{0}, 50)
		require.NoError(t, fs.Put(context.Background(), s.Key(), bytes.NewReader(body), 50))
	}
	api := NewAPI(hub.New(hub.Options{}), slog.New(slog.NewTextHandler(io.Discard, nil)), WithRecordings(record.NewIndex(fs)))
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	do := func(method, target string) (int, string) {
		req, err := http.NewRequest(method, srv.URL+target, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := do("GET", "/api/v1/recordings?path=live/cam1")
	require.Equal(t, 200, code, body)
	var got RecordingsJSON
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	require.Len(t, got.Spans, 2)
	assert.Equal(t, 12.0, got.Spans[0].Duration)
	assert.Equal(t, 3, got.Spans[0].Segments)
	assert.EqualValues(t, 150, got.Spans[0].Size)
	require.Len(t, got.Gaps, 1)
	assert.Equal(t, 6.0, got.Gaps[0].Duration)
	assert.Equal(t, 20.0, got.TotalDuration)

	code, body = do("GET", "/api/v1/recordings?path=live/cam1&from=2026-11-23T10:00:05Z&to=2026-11-23T10:00:07Z")
	require.Equal(t, 200, code, body)
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	require.Len(t, got.Spans, 1)
	assert.Equal(t, 1, got.Spans[0].Segments)

	for target, want := range map[string]string{
		"/api/v1/recordings":                                                               "path is required",
		"/api/v1/recordings?path=..%2Fetc":                                                 "path",
		"/api/v1/recordings?path=live/a&from=x":                                            "from=",
		"/api/v1/recordings?path=live/a&to=2026-99-01":                                     "to=",
		"/api/v1/recordings?path=live/a&from=2026-11-23T10:00:00Z&to=2026-11-23T09:00:00Z": "before",
	} {
		code, body := do("GET", target)
		assert.Equal(t, 400, code, target)
		assert.Contains(t, body, want, target)
		assert.Contains(t, body, `"error"`, target)
	}
	code, body = do("DELETE", "/api/v1/recordings?path=live/cam1")
	assert.Equal(t, 400, code, body)

	code, body = do("DELETE", "/api/v1/recordings?path=live/cam1&from=2026-11-23T10:00:00Z&to=2026-11-23T10:00:12Z")
	require.Equal(t, 200, code, body)
	assert.JSONEq(t, `{"deleted":3}`, body)
	code, body = do("GET", "/api/v1/recordings?path=live/cam1")
	require.Equal(t, 200, code)
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	require.Len(t, got.Spans, 1)
	assert.Equal(t, 2, got.Spans[0].Segments)
}
