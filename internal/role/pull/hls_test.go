package pull

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

type fakeHLS struct{ path, file string }

func (f *fakeHLS) ServeHLS(w http.ResponseWriter, _ *http.Request, path, file string) {
	f.path, f.file = path, file
	w.WriteHeader(http.StatusTeapot)
}

func TestWithHLS(t *testing.T) {
	fake := &fakeHLS{}
	s := New(nil, Options{HLS: fake}, nil)
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := s.WithHLS(next)
	for _, c := range []struct {
		method, url string
		code        int
	}{
		{"GET", "/live/cam/index.m3u8", http.StatusTeapot},
		{"HEAD", "/live/cam/x_seg1.mp4", http.StatusTeapot},
		{"GET", "/live/cam/x_seg1.ts", http.StatusTeapot},
		{"POST", "/live/cam/index.m3u8", http.StatusNoContent},
		{"GET", "/live/cam.flv", http.StatusNoContent},
		{"GET", "/api/v1/streams", http.StatusNoContent},
		{"GET", "/a/b/c/index.m3u8", http.StatusNoContent},
		{"GET", "/live/c%20m/index.m3u8", http.StatusBadRequest},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(c.method, c.url, nil))
		require.Equal(t, c.code, rec.Code, c.method+" "+c.url)
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/live/cam/index.m3u8?_HLS_msn=3", nil))
	require.Equal(t, "live/cam", fake.path)
	require.Equal(t, "index.m3u8", fake.file)

	// Without a packager the wrapper is a no-op.
	require.NotNil(t, New(nil, Options{}, nil).WithHLS(next))
}
