package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/storage"
	"github.com/quasipaa/quasipaa/internal/storage/storagetest"
)

// recordEnv records every live/* stream in 2 s segments.
const recordEnv = `QUASIPAA_APPS=[{match: "live/*", record: true, record_segment: 2s}]`

type recordingsJSON struct {
	Path  string `json:"path"`
	Spans []struct {
		Start    time.Time `json:"start"`
		End      time.Time `json:"end"`
		Duration float64   `json:"duration"`
		Size     int64     `json:"size"`
		Segments int       `json:"segments"`
	} `json:"spans"`
	Gaps []struct {
		Duration float64 `json:"duration"`
	} `json:"gaps"`
}

func listRecordings(t *testing.T, s *server, path string) recordingsJSON {
	t.Helper()
	code, body, _ := httpGet(t, "http://"+s.HTTPAddr+"/api/v1/recordings?path="+url.QueryEscape(path))
	require.Equal(t, http.StatusOK, code, body)
	var out recordingsJSON
	require.NoError(t, json.Unmarshal([]byte(body), &out), body)
	return out
}

// checkRecordedSpan asserts one gap-free span of about want and that the
// VOD playlist and the MP4 download of it decode cleanly with that duration.
func checkRecordedSpan(t *testing.T, s *server, path string, want time.Duration) {
	t.Helper()
	rec := listRecordings(t, s, path)
	require.Len(t, rec.Spans, 1, "one span without gaps: %+v", rec)
	span := rec.Spans[0]
	got := time.Duration(span.Duration * float64(time.Second))
	require.InDelta(t, want.Seconds(), got.Seconds(), 2.5, "span duration (±1 segment + the keyframe wait): %+v", span)
	require.Positive(t, span.Size)

	q := url.Values{}
	q.Set("from", span.Start.Format(time.RFC3339Nano))
	q.Set("to", span.End.Format(time.RFC3339Nano))
	base := "http://" + s.HTTPAddr + "/vod/" + path
	for _, u := range []string{base + "/index.m3u8?" + q.Encode(), base + ".mp4?" + q.Encode()} {
		requireH264AAC720p(t, ffprobe(t, u))
		errs, decoded := decode(t, u, int(want.Seconds())+10)
		require.Empty(t, strings.TrimSpace(errs), "decoding %s", u)
		require.InDelta(t, got.Seconds(), decoded.Seconds(), 2.1, "decoded duration of %s", u)
	}
}

func TestRecordLocalThirtySeconds(t *testing.T) {
	requireTools(t, "ffmpeg", "ffprobe")
	t.Parallel()
	s := startServer(t, recordEnv)
	pub := publishTestStream(t, s.rtmpURL("live/rec30"), 30)
	waitStream(t, s, "live/rec30")
	select {
	case <-pub.exited:
	case <-time.After(45 * time.Second):
		t.Fatal("publisher did not finish")
	}
	// The last segment is filed when the stream ends (after the grace period).
	require.Eventually(t, func() bool {
		_, live := getStream(s, "live/rec30")
		return !live
	}, 15*time.Second, 200*time.Millisecond)
	checkRecordedSpan(t, s, "live/rec30", 30*time.Second)
	checkMP4Ranges(t, s, "live/rec30")
}

// checkMP4Ranges fetches the MP4 download whole and in ranges: every range
// is exactly that slice of the whole.
func checkMP4Ranges(t *testing.T, s *server, path string) {
	t.Helper()
	rec := listRecordings(t, s, path)
	require.NotEmpty(t, rec.Spans)
	q := url.Values{}
	q.Set("from", rec.Spans[0].Start.Format(time.RFC3339Nano))
	q.Set("to", rec.Spans[0].End.Format(time.RFC3339Nano))
	u := "http://" + s.HTTPAddr + "/vod/" + path + ".mp4?" + q.Encode()
	code, whole, h := httpGet(t, u)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, fmt.Sprint(len(whole)), h.Get("Content-Length"))
	n := len(whole)
	for _, r := range [][2]int{{0, 99}, {100, 200_000}, {n / 3, n/3 + 3_000_000}, {n - 500, n - 1}} {
		r[1] = min(r[1], n-1)
		req, err := http.NewRequest(http.MethodGet, u, nil)
		require.NoError(t, err)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", r[0], r[1]))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusPartialContent, resp.StatusCode)
		require.Equal(t, whole[r[0]:r[1]+1], string(b), "range %v", r)
	}
}

func TestRecordKill9KeepsCompletedSegments(t *testing.T) {
	requireTools(t, "ffmpeg", "ffprobe")
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, recordEnv, "QUASIPAA_STORAGE_DIR="+dir)
	publishTestStream(t, s.rtmpURL("live/crash"), 0)
	waitStream(t, s, "live/crash")
	time.Sleep(9 * time.Second)
	// While live, the DVR playlist (no from/to) lists what is recorded so
	// far and has no end.
	code, dvr, _ := httpGet(t, "http://"+s.HTTPAddr+"/vod/live/crash/index.m3u8")
	require.Equal(t, http.StatusOK, code, dvr)
	require.Contains(t, dvr, "#EXTINF:")
	require.Contains(t, dvr, "#EXT-X-PROGRAM-DATE-TIME:")
	require.NotContains(t, dvr, "#EXT-X-ENDLIST", "a live DVR playlist goes on")
	requireH264AAC720p(t, ffprobe(t, "http://"+s.HTTPAddr+"/vod/live/crash/index.m3u8"))

	before := segmentFiles(t, dir)
	require.GreaterOrEqual(t, len(before), 3, "segments filed before the crash")
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGKILL))
	<-s.exited

	// Restarted on the same directory: every completed segment is intact and listed.
	s2 := startServer(t, recordEnv, "QUASIPAA_STORAGE_DIR="+dir)
	after := segmentFiles(t, dir)
	for name, size := range before {
		require.Equal(t, size, after[name], "segment %s survived unchanged", name)
	}
	rec := listRecordings(t, s2, "live/crash")
	require.Len(t, rec.Spans, 1, "%+v", rec)
	require.Equal(t, len(after), rec.Spans[0].Segments)
	for name := range after {
		require.False(t, strings.Contains(name, ".tmp"), "no partial file left visible: %s", name)
	}
	span := rec.Spans[0]
	q := url.Values{}
	q.Set("from", span.Start.Format(time.RFC3339Nano))
	q.Set("to", span.End.Format(time.RFC3339Nano))
	u := "http://" + s2.HTTPAddr + "/vod/live/crash/index.m3u8?" + q.Encode()
	errs, decoded := decode(t, u, 30)
	require.Empty(t, strings.TrimSpace(errs))
	require.InDelta(t, span.Duration, decoded.Seconds(), 2.1)
}

// segmentFiles maps every file under dir/recordings to its size.
func segmentFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	root := filepath.Join(dir, "recordings")
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			out[strings.TrimPrefix(p, root)] = fi.Size()
		}
		return nil
	})
	if !os.IsNotExist(err) {
		require.NoError(t, err)
	}
	return out
}

func TestRecordToS3ThroughAnOutage(t *testing.T) {
	requireTools(t, "ffmpeg", "ffprobe")
	t.Parallel()
	gw := storagetest.StartVersityGW(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := storage.NewS3(ctx, gw.Config) // creates the bucket
	require.NoError(t, err)
	c := gw.Config
	s := startServer(t, recordEnv,
		"QUASIPAA_STORAGE_S3_ENDPOINT="+c.Endpoint, "QUASIPAA_STORAGE_S3_BUCKET="+c.Bucket,
		"QUASIPAA_STORAGE_S3_ACCESS_KEY="+c.AccessKey, "QUASIPAA_STORAGE_S3_SECRET_KEY="+c.SecretKey,
		"QUASIPAA_STORAGE_S3_REGION="+c.Region)
	pub := publishTestStream(t, s.rtmpURL("live/s3"), 30)
	waitStream(t, s, "live/s3")
	time.Sleep(5 * time.Second)
	gw.Stop()
	time.Sleep(20 * time.Second)
	gw.Start()
	<-pub.exited
	// Everything spooled during the outage reaches the store: one span, no gap.
	require.Eventually(t, func() bool {
		_, live := getStream(s, "live/s3")
		rec := listRecordings(t, s, "live/s3")
		return !live && len(rec.Spans) == 1 && rec.Spans[0].Duration > 27
	}, 40*time.Second, time.Second, "recording caught up after the outage:\n%s", tail(s.logs.String(), 3000))
	checkRecordedSpan(t, s, "live/s3", 30*time.Second)
}

func TestRecordingsBadInput(t *testing.T) {
	requireTools(t, "ffmpeg", "ffprobe")
	dir := t.TempDir()
	// A file next to the store that no request may ever reach.
	secret := filepath.Join(filepath.Dir(dir), "secret.mp4")
	require.NoError(t, os.WriteFile(secret, []byte("secret"), 0o600))
	t.Cleanup(func() { os.Remove(secret) })
	s := startServer(t, recordEnv, "QUASIPAA_STORAGE_DIR="+dir)
	api := "http://" + s.HTTPAddr + "/api/v1/recordings"
	vod := "http://" + s.HTTPAddr + "/vod/"
	for _, c := range []struct {
		method, url string
		status      int
		contains    string
	}{
		{"GET", api, 400, "path is required"},
		{"GET", api + "?path=live/x&from=yesterday", 400, "from"},
		{"GET", api + "?path=live/x&to=2026-13-45T00:00:00Z", 400, "to"},
		{"GET", api + "?path=live/x&from=2026-11-23T10:00:00Z&to=2026-11-23T09:00:00Z", 400, "before"},
		{"GET", api + "?path=../secret", 400, "path"},
		{"GET", api + "?path=live/..%2f..%2fsecret", 400, "path"},
		{"GET", api + "?path=live%5c..%5csecret", 400, "path"},
		{"DELETE", api + "?path=live/x", 400, "from and to"},
		{"GET", api + "?path=live/nothing", 200, `"spans":[]`},
		{"GET", vod + "live/nothing/index.m3u8?from=2026-11-23T09:00:00Z&to=2026-11-23T10:00:00Z", 404, ""},
		{"GET", vod + "live/x/index.m3u8?from=2026-11-23T10:00:00Z&to=2026-11-23T09:00:00Z", 400, ""},
		{"GET", vod + "live/x/index.m3u8?from=noon&to=2026-11-23T09:00:00Z", 400, "from"},
		{"GET", vod + "live/x.mp4?from=2026-11-23T09:00:00Z", 400, "to"},
		{"GET", vod + "../secret.mp4", 400, ""},
		{"GET", vod + "%2e%2e/secret.mp4?from=2026-11-23T09:00:00Z&to=2026-11-23T10:00:00Z", 400, ""},
		{"GET", vod + "live/..%2f..%2f..%2fsecret.mp4?from=2026-11-23T09:00:00Z&to=2026-11-23T10:00:00Z", 400, ""},
		{"GET", vod + "live/x/seg/..%2f..%2fsecret.mp4", 400, ""},
		{"GET", vod + "live/x/seg/1_2_3_0.mp4", 404, ""},
		{"GET", vod + "live/x/init/nonsense.mp4", 400, ""},
	} {
		req, err := http.NewRequest(c.method, c.url, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, c.status, resp.StatusCode, "%s %s: %s", c.method, c.url, b)
		require.Contains(t, string(b), c.contains, "%s %s", c.method, c.url)
		require.NotContains(t, string(b), "secret\n")
		require.NotEqual(t, "secret", string(b))
	}
}
