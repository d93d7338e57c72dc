package e2e

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/stretchr/testify/require"
)

func (s *server) hlsURL(path, file string) string {
	return "http://" + s.HTTPAddr + "/" + path + "/" + file
}

// mediaPlaylistURI returns the URI of the first variant of a multivariant playlist.
func mediaPlaylistURI(t *testing.T, multivariant string) string {
	t.Helper()
	lines := strings.Split(multivariant, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "#EXT-X-STREAM-INF") && i+1 < len(lines) {
			return strings.TrimSpace(lines[i+1])
		}
	}
	t.Fatalf("no variant in:\n%s", multivariant)
	return ""
}

// llState reads a Low-Latency media playlist: the media sequence number of
// the segment being built and how many of its parts are listed.
func llState(t *testing.T, pl string) (msn, parts int, partTarget time.Duration) {
	t.Helper()
	seq, segs := 0, 0
	for _, l := range strings.Split(pl, "\n") {
		switch {
		case strings.HasPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"):
			seq, _ = strconv.Atoi(strings.TrimPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"))
		case strings.HasPrefix(l, "#EXTINF:"):
			segs++
			parts = 0
		case strings.HasPrefix(l, "#EXT-X-PART:"):
			parts++
		case strings.HasPrefix(l, "#EXT-X-PART-INF:PART-TARGET="):
			f, err := strconv.ParseFloat(strings.TrimPrefix(l, "#EXT-X-PART-INF:PART-TARGET="), 64)
			require.NoError(t, err)
			partTarget = time.Duration(f * float64(time.Second))
		}
	}
	return seq + segs, parts, partTarget
}

// TestHLSLowLatency: ffmpeg publishes 720p30 H.264 + AAC over RTMP; the
// stream plays as Low-Latency HLS: ffprobe and ffmpeg read index.m3u8, the
// media playlist carries the LL-HLS tags and a blocking reload waits for the
// next part.
func TestHLSLowLatency(t *testing.T) {
	requireTools(t, "ffmpeg", "ffprobe")
	s := startServer(t)
	publishTestStream(t, s.rtmpURL("live/hls"), 0)
	waitStream(t, s, "live/hls")

	// The first request starts the muxer and waits for its first segment.
	start := time.Now()
	code, index, hdr := httpGet(t, s.hlsURL("live/hls", "index.m3u8"))
	startup := time.Since(start)
	t.Logf("HLS startup (first index.m3u8 on a fresh muxer): %v", startup.Round(time.Millisecond))
	require.Equal(t, http.StatusOK, code, index)
	require.Less(t, startup, 8*time.Second)
	require.Equal(t, "application/vnd.apple.mpegurl", hdr.Get("Content-Type"))
	require.Equal(t, "*", hdr.Get("Access-Control-Allow-Origin"))
	require.Contains(t, index, "#EXT-X-STREAM-INF")
	require.Contains(t, index, "avc1.")
	require.Contains(t, index, "mp4a.40.2")
	require.Contains(t, index, "RESOLUTION=1280x720")

	media := mediaPlaylistURI(t, index)
	code, pl, _ := httpGet(t, s.hlsURL("live/hls", media))
	require.Equal(t, http.StatusOK, code, pl)
	for _, tag := range []string{"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES", "#EXT-X-PART-INF", "#EXT-X-PART:", "#EXT-X-PRELOAD-HINT", "#EXT-X-MAP", "#EXT-X-PROGRAM-DATE-TIME"} {
		require.Contains(t, pl, tag, "media playlist:\n%s", pl)
	}

	t.Run("blocking reload", func(t *testing.T) {
		_, pl, _ := httpGet(t, s.hlsURL("live/hls", media))
		msn, parts, partTarget := llState(t, pl)
		require.Greater(t, partTarget, time.Duration(0))
		// One part ahead of the part being built: the server must hold the
		// request until that part is complete, at least about one part.
		start := time.Now()
		code, next, _ := httpGet(t, s.hlsURL("live/hls", media+"?_HLS_msn="+strconv.Itoa(msn)+"&_HLS_part="+strconv.Itoa(parts+1)))
		waited := time.Since(start)
		t.Logf("blocking reload for msn=%d part=%d (part target %v) returned after %v", msn, parts+1, partTarget, waited.Round(time.Millisecond))
		require.Equal(t, http.StatusOK, code, next)
		require.Greater(t, waited, partTarget/4, "answered at once with the old playlist")
		require.Less(t, waited, 2*partTarget+1500*time.Millisecond)
		msn2, parts2, _ := llState(t, next)
		require.True(t, msn2 > msn || parts2 >= parts+2, "the playlist has the requested part: msn %d→%d parts %d→%d\n%s", msn, msn2, parts, parts2, next)

		// The part being built: returns within about one part duration.
		_, pl, _ = httpGet(t, s.hlsURL("live/hls", media))
		msn, parts, _ = llState(t, pl)
		start = time.Now()
		code, _, _ = httpGet(t, s.hlsURL("live/hls", media+"?_HLS_msn="+strconv.Itoa(msn)+"&_HLS_part="+strconv.Itoa(parts)))
		waited = time.Since(start)
		require.Equal(t, http.StatusOK, code)
		require.Less(t, waited, partTarget+time.Second)
	})

	t.Run("ffprobe", func(t *testing.T) {
		requireH264AAC720p(t, ffprobe(t, s.hlsURL("live/hls", "index.m3u8")))
	})
	t.Run("gohlslib client", func(t *testing.T) { readWithGohlslib(t, s.hlsURL("live/hls", "index.m3u8")) })
	t.Run("decode", func(t *testing.T) {
		errs, dur := decode(t, s.hlsURL("live/hls", "index.m3u8"), 5)
		require.Empty(t, errs)
		require.InDelta(t, 5, dur.Seconds(), 0.5)
	})

	t.Run("errors", func(t *testing.T) {
		code, body, hdr := httpGet(t, s.hlsURL("live/nothing", "index.m3u8"))
		require.Equal(t, http.StatusNotFound, code)
		require.Contains(t, body, "stream not found: live/nothing")
		require.Equal(t, "*", hdr.Get("Access-Control-Allow-Origin"))
		code, _, _ = httpGet(t, s.hlsURL("live/hls", "nope_seg1.mp4"))
		require.Equal(t, http.StatusNotFound, code)
		// The API is not shadowed by the HLS routes.
		code, _, _ = httpGet(t, "http://"+s.HTTPAddr+"/api/v1/streams")
		require.Equal(t, http.StatusOK, code)
	})

	logs := s.logs.String()
	require.Contains(t, logs, `"msg":"hls ready"`)
	require.NotContains(t, logs, "hls muxer rejected a frame")
	require.NotContains(t, logs, "hls encode error")
}

// readWithGohlslib plays url with gohlslib's client (an LL-HLS client we did
// not write) for 4 s: it must receive H.264 and AAC continuously, with the
// absolute time of the media from EXT-X-PROGRAM-DATE-TIME.
func readWithGohlslib(t *testing.T, url string) {
	t.Helper()
	var mu sync.Mutex
	video, audio := 0, 0
	var lags []time.Duration
	c := &gohlslib.Client{URI: url}
	c.OnTracks = func(tracks []*gohlslib.Track) error {
		for _, tr := range tracks {
			switch tr.Codec.(type) {
			case *codecs.H264:
				c.OnDataH26x(tr, func(_, _ int64, au [][]byte) {
					ntp, ok := c.AbsoluteTime(tr)
					mu.Lock()
					defer mu.Unlock()
					if len(au) > 0 {
						video++
					}
					if ok {
						lags = append(lags, time.Since(ntp))
					}
				})
			case *codecs.MPEG4Audio:
				c.OnDataMPEG4Audio(tr, func(_ int64, aus [][]byte) {
					mu.Lock()
					audio += len(aus)
					mu.Unlock()
				})
			}
		}
		return nil
	}
	require.NoError(t, c.Start())
	select {
	case err := <-c.Wait():
		t.Fatalf("gohlslib client stopped: %v", err)
	case <-time.After(4 * time.Second):
	}
	c.Close()
	mu.Lock()
	defer mu.Unlock()
	require.Greater(t, video, 60, "video frames received in 4 s")
	require.Greater(t, audio, 90, "AAC frames received in 4 s (46.9/s)")
	require.NotEmpty(t, lags, "absolute time from EXT-X-PROGRAM-DATE-TIME")
	slices.Sort(lags)
	p50 := lags[len(lags)/2]
	t.Logf("gohlslib client: %d video, %d audio frames in 4 s; media age when received p50 %v, max %v",
		video, audio, p50.Round(time.Millisecond), lags[len(lags)-1].Round(time.Millisecond))
	require.Less(t, p50, 10*time.Second)
	require.Greater(t, p50, time.Duration(0))
}

// TestHLSStartupFresh measures how long a player waits on a stream that has
// just started: the first playlist request must wait for the first segment
// instead of failing.
func TestHLSStartupFresh(t *testing.T) {
	requireTools(t, "ffmpeg", "ffprobe")
	s := startServer(t)
	publishTestStream(t, s.rtmpURL("live/fresh"), 0)
	require.Eventually(t, func() bool {
		_, ok := getStream(s, "live/fresh")
		return ok
	}, 20*time.Second, 20*time.Millisecond)
	start := time.Now()
	requireH264AAC720p(t, ffprobe(t, s.hlsURL("live/fresh", "index.m3u8")))
	t.Logf("ffprobe on a fresh stream over HLS took %v", time.Since(start).Round(time.Millisecond))
}

// TestHLSMPEGTS: the classic MPEG-TS variant, chosen per app with
// apps[].hls_variant, plays in ffmpeg as well.
func TestHLSMPEGTS(t *testing.T) {
	requireTools(t, "ffmpeg", "ffprobe")
	s := startServer(t, `QUASIPAA_APPS=[{match: "live/ts", hls_variant: mpegts}]`)
	publishTestStream(t, s.rtmpURL("live/ts"), 0)
	waitStream(t, s, "live/ts")
	requireH264AAC720p(t, ffprobe(t, s.hlsURL("live/ts", "index.m3u8")))
	code, body, _ := httpGet(t, s.hlsURL("live/ts", "index.m3u8"))
	require.Equal(t, http.StatusOK, code)
	media := mediaPlaylistURI(t, body)
	_, pl, _ := httpGet(t, s.hlsURL("live/ts", media))
	require.Contains(t, pl, ".ts", "segments are MPEG-TS")
	require.NotContains(t, pl, "#EXT-X-PART:", "no partial segments in classic HLS")
	errs, dur := decode(t, s.hlsURL("live/ts", "index.m3u8"), 5)
	require.Empty(t, errs)
	require.InDelta(t, 5, dur.Seconds(), 0.5)
}

// TestHLSClassicFMP4: the fmp4 variant (classic HLS with fMP4 segments, no
// parts) plays in ffmpeg.
func TestHLSClassicFMP4(t *testing.T) {
	requireTools(t, "ffmpeg", "ffprobe")
	s := startServer(t, "QUASIPAA_HLS_VARIANT=fmp4")
	publishTestStream(t, s.rtmpURL("live/fmp4"), 0)
	waitStream(t, s, "live/fmp4")
	requireH264AAC720p(t, ffprobe(t, s.hlsURL("live/fmp4", "index.m3u8")))
	code, body, _ := httpGet(t, s.hlsURL("live/fmp4", "index.m3u8"))
	require.Equal(t, http.StatusOK, code)
	_, pl, _ := httpGet(t, s.hlsURL("live/fmp4", mediaPlaylistURI(t, body)))
	require.Contains(t, pl, "#EXT-X-MAP", "fMP4 segments")
	require.NotContains(t, pl, "#EXT-X-PART:", "no partial segments in classic HLS")
	errs, dur := decode(t, s.hlsURL("live/fmp4", "index.m3u8"), 5)
	require.Empty(t, errs)
	require.InDelta(t, 5, dur.Seconds(), 0.5)
}
