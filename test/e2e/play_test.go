package e2e

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// TestPublishRTMPPlayEveryProtocol is the first proof: ffmpeg
// publishes 720p30 H.264 + AAC; ffprobe and ffmpeg play it over RTMP,
// HTTP-FLV and WS-FLV and decode it without errors.
func TestPublishRTMPPlayEveryProtocol(t *testing.T) {
	requireTools(t, "ffmpeg", "ffprobe")
	s := startServer(t)
	publishTestStream(t, s.rtmpURL("live/cam1?secret=x"), 0)
	st := waitStream(t, s, "live/cam1")
	require.Equal(t, "h264", st.Tracks[0].Codec)
	require.Equal(t, 1280, st.Tracks[0].Width)
	require.Equal(t, 720, st.Tracks[0].Height)
	require.Equal(t, "aac", st.Tracks[1].Codec)
	require.Equal(t, 48000, st.Tracks[1].SampleRate)

	t.Run("rtmp", func(t *testing.T) {
		requireH264AAC720p(t, ffprobe(t, s.rtmpURL("live/cam1")))
		errs, dur := decode(t, s.rtmpURL("live/cam1"), 5)
		require.Empty(t, errs)
		require.InDelta(t, 5, dur.Seconds(), 0.5)
	})
	t.Run("http-flv", func(t *testing.T) {
		requireH264AAC720p(t, ffprobe(t, s.flvURL("live/cam1")))
		errs, dur := decode(t, s.flvURL("live/cam1"), 5)
		require.Empty(t, errs)
		require.InDelta(t, 5, dur.Seconds(), 0.5)
	})
	t.Run("ws-flv", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "ws.flv")
		recordWS(t, s.wsURL("live/cam1"), file, 5*time.Second)
		requireH264AAC720p(t, ffprobe(t, file))
		errs, dur := decode(t, file, 30)
		require.Empty(t, errs)
		// The GOP cache adds up to one GOP (2 s) before the live edge.
		require.InDelta(t, 6, dur.Seconds(), 1.5)
	})

	t.Run("http headers", func(t *testing.T) {
		resp, err := http.Get(s.flvURL("live/cam1"))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "video/x-flv", resp.Header.Get("Content-Type"))
		require.Equal(t, []string{"chunked"}, resp.TransferEncoding)
		require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))

		resp, err = http.Head(s.flvURL("live/cam1"))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)

		resp, err = http.Get("http://" + s.HTTPAddr + "/api/v1/streams")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	})

	st, _ = getStream(s, "live/cam1")
	require.Greater(t, st.IngressBitrate, int64(500_000), "ingress bit rate reported")
	require.Greater(t, st.UptimeSeconds, 5.0)
}

// recordWS reads WS-FLV messages with an independent client into a file.
func recordWS(t *testing.T, url, file string, d time.Duration) {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url, nil)
	require.NoError(t, err)
	defer c.Close()
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	var buf bytes.Buffer
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		typ, msg, err := c.ReadMessage()
		require.NoError(t, err)
		require.Equal(t, websocket.BinaryMessage, typ)
		buf.Write(msg)
	}
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	require.NoError(t, os.WriteFile(file, buf.Bytes(), 0o644))
}

func TestPlayMissingStream(t *testing.T) {
	requireTools(t, "ffprobe")
	s := startServer(t)
	resp, err := http.Get(s.flvURL("live/nothing"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	out, err := exec.Command("ffprobe", "-v", "error", "-rw_timeout", "5000000", s.rtmpURL("live/nothing")).CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "stream not found: live/nothing", "ffprobe shows the server's refusal")
}

// countFrames plays url with ffmpeg (no decoding) for seconds and returns the
// number of video frames it received.
func countFrames(ctx context.Context, url string, seconds int) (int, error) {
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostats", "-v", "error", "-progress", "pipe:1",
		"-i", url, "-t", strconv.Itoa(seconds), "-map", "0:v", "-c", "copy", "-f", "null", "-")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return 0, err
	}
	frames := 0
	for _, line := range strings.Split(stdout.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "frame="); ok {
			frames, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return frames, nil
}

// TestFiftyPlayersAndAStalledReader: 50 concurrent ffmpeg players (RTMP and
// HTTP-FLV) all receive the stream while one reader that never reads sits on
// the same stream; its stall costs nobody a frame.
func TestFiftyPlayersAndAStalledReader(t *testing.T) {
	requireTools(t, "ffmpeg")
	s := startServer(t, "QUASIPAA_HUB_WRITE_TIMEOUT=3s")
	publishTestStream(t, s.rtmpURL("live/fan"), 0)
	waitStream(t, s, "live/fan")

	// A viewer that requests the stream and then never reads.
	stalled, err := net.Dial("tcp", s.HTTPAddr)
	require.NoError(t, err)
	defer stalled.Close()
	require.NoError(t, stalled.(*net.TCPConn).SetReadBuffer(4096))
	_, err = stalled.Write([]byte("GET /live/fan.flv HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)

	const players, seconds = 50, 8
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	counts := make([]int, players)
	errs := make([]error, players)
	for i := 0; i < players; i++ {
		url := s.rtmpURL("live/fan")
		if i%2 == 1 {
			url = s.flvURL("live/fan")
		}
		wg.Add(1)
		go func(i int, url string) {
			defer wg.Done()
			counts[i], errs[i] = countFrames(ctx, url, seconds)
		}(i, url)
	}
	wg.Wait()
	// 8 s of 30 fps, from the GOP cache start: at least the live part.
	for i := 0; i < players; i++ {
		require.NoError(t, errs[i], "player %d", i)
		require.GreaterOrEqual(t, counts[i], seconds*30-2, "player %d got %d frames", i, counts[i])
	}
	// The stalled viewer itself is cut off once its socket stays full for
	// hub.write_timeout, or once it has skipped too often.
	require.Eventually(t, func() bool {
		return strings.Contains(s.logs.String(), `"msg":"viewer disconnected"`)
	}, 60*time.Second, 200*time.Millisecond, "the stalled viewer was never disconnected")
	st, _ := getStream(s, "live/fan")
	require.Equal(t, 0, st.ViewersTotal, "every player left")
}

// TestPublisherReconnectWithinGrace: the publisher drops and comes back
// within the grace period; a player stays connected and keeps receiving.
func TestPublisherReconnectWithinGrace(t *testing.T) {
	requireTools(t, "ffmpeg")
	s := startServer(t, "QUASIPAA_HUB_PUBLISHER_GRACE=5s")
	first := publishTestStream(t, s.rtmpURL("live/re"), 0)
	waitStream(t, s, "live/re")

	type result struct {
		frames int
		err    error
	}
	done := make(chan result, 2)
	for _, url := range []string{s.flvURL("live/re"), s.rtmpURL("live/re")} {
		go func(url string) {
			n, err := countFrames(context.Background(), url, 10)
			done <- result{n, err}
		}(url)
	}
	time.Sleep(3 * time.Second)
	first.kill()
	time.Sleep(time.Second)
	publishTestStream(t, s.rtmpURL("live/re"), 0)
	for i := 0; i < 2; i++ {
		select {
		case r := <-done:
			require.NoError(t, r.err)
			// 10 s of media minus the ~1-2 s gap without a publisher.
			require.Greater(t, r.frames, 200, "the player resumed after the reconnect")
		case <-time.After(40 * time.Second):
			t.Fatal("player did not finish")
		}
	}
}
