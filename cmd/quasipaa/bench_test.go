package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quasipaa/quasipaa/internal/bench"
	"github.com/quasipaa/quasipaa/internal/config"
)

// requireFFmpeg skips the test without ffmpeg, except in CI where it must be there.
func requireFFmpeg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ffmpeg is required in CI")
		}
		t.Skip("ffmpeg not installed")
	}
}

// checkLeaks fails the test if goroutines it started outlive it; it runs
// after every cleanup registered later (the node's shutdown among them).
func checkLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// lockedBuffer is a bytes.Buffer safe for a logger and a test to share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startTestNode runs a whole node in this process on loopback ports chosen
// by the kernel, and stops it (checking it stops cleanly) at the end of the
// test. edits change the default configuration.
func startTestNode(t *testing.T, edits ...func(*config.Config)) *node {
	t.Helper()
	cfg := config.Default()
	cfg.RTMP.Listen = "127.0.0.1:0"
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.WebRTC.UDPListen = "127.0.0.1:0"
	cfg.WebRTC.TCPListen = "127.0.0.1:0"
	cfg.TURN.Listen = "127.0.0.1:0"
	cfg.Storage.Dir = t.TempDir()
	cfg.Debug.PprofListen = ""
	for _, edit := range edits {
		edit(cfg)
	}
	logs := &lockedBuffer{}
	n, err := newNode(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("node did not stop within 10 s")
		}
		if t.Failed() {
			t.Logf("server warnings:\n%s", logs.String())
		}
	})
	return n
}

func (n *node) rtmpURL(path string) string { return "rtmp://" + n.rtmpLn.Addr().String() + "/" + path }
func (n *node) flvURL(path string) string {
	return "http://" + n.httpLn.Addr().String() + "/" + path + ".flv"
}
func (n *node) hlsURL(path string) string {
	return "http://" + n.httpLn.Addr().String() + "/" + path + "/index.m3u8"
}

// waitLive waits until path has its two tracks and a second of frames.
func waitLive(t *testing.T, n *node, path string) {
	t.Helper()
	require.Eventually(t, func() bool {
		info, ok := n.hub.Stream(path)
		return ok && info.State == "live" && len(info.Tracks) == 2 && info.FramesIn > 60
	}, 20*time.Second, 50*time.Millisecond, "stream %s never went live", path)
}

// runBenchJSON runs the bench command with -json and decodes its summary.
func runBenchJSON(t *testing.T, args ...string) bench.Summary {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := benchMain(context.Background(), append(args, "-json", "-progress", "0"), &stdout, &stderr)
	require.NoError(t, err, "stderr:\n%s", stderr.String())
	t.Logf("%s", stderr.String())
	var s bench.Summary
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &s), stdout.String())
	return s
}

// TestBenchPlaysALiveStream runs ffmpeg publishing 720p30 to an in-process
// node and bench players over RTMP, then HTTP-FLV.
func TestBenchPlaysALiveStream(t *testing.T) {
	requireFFmpeg(t)
	checkLeaks(t)
	n := startTestNode(t)

	ctx, cancel := context.WithCancel(context.Background())
	ff := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "60",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "60", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-f", "flv", n.rtmpURL("live/cam1"))
	var ffOut lockedBuffer
	ff.Stdout, ff.Stderr = &ffOut, &ffOut
	require.NoError(t, ff.Start())
	ffDone := make(chan struct{})
	go func() { _ = ff.Wait(); close(ffDone) }()
	defer func() {
		cancel()
		<-ffDone
	}()
	waitLive(t, n, "live/cam1")

	for _, tc := range []struct {
		name, url string
	}{
		{"rtmp", n.rtmpURL("live/cam1")},
		{"http-flv", n.flvURL("live/cam1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := runBenchJSON(t, "-url", tc.url, "-players", "20", "-duration", "4s", "-ramp", "200ms")
			assert.Equal(t, 20, s.Players)
			assert.Equal(t, 20, s.Connected)
			assert.Zero(t, s.Failed, "%+v", s.Errors)
			assert.Less(t, s.StartupMs.P50, 500.0)
			assert.Positive(t, s.StartupMs.P50)
			assert.Zero(t, s.DropPercent)
			assert.Zero(t, s.DroppedFrames)
			assert.Equal(t, s.ExpectedFrames, s.VideoFrames)
			assert.Positive(t, s.AudioFrames)
			assert.Zero(t, s.Stalls)
			assert.InDelta(t, 30, s.FPS, 0.5)
			// 30 fps over the media time received: every frame is there.
			assert.InEpsilon(t, 30*s.VideoSeconds, float64(s.VideoFrames), 0.10)
			// And that media time kept up with the wall clock: at least the
			// time played, at most that plus the GOP cache (2 s) per player.
			assert.GreaterOrEqual(t, s.VideoSeconds, 0.9*s.PlaySeconds)
			assert.LessOrEqual(t, s.VideoSeconds, s.PlaySeconds+20*2.2)
			assert.InEpsilon(t, 30*(s.PlaySeconds+20*1.0), float64(s.VideoFrames), 0.5)
			// Every player received the stream's bytes (x264 makes several
			// Mbit/s of the test pattern): at least 100 kbit/s each.
			assert.Greater(t, s.Mbps, 20*0.1)
		})
	}
	if t.Failed() {
		t.Logf("ffmpeg:\n%s", ffOut.String())
	}
}

// TestBenchPublishers publishes a small file with the bench's own publishers
// (looping, on two streams) and plays both over RTMP and HTTP-FLV.
func TestBenchPublishers(t *testing.T) {
	requireFFmpeg(t)
	checkLeaks(t)
	file := filepath.Join(t.TempDir(), "small.flv")
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-f", "flv", file).CombinedOutput()
	require.NoError(t, err, "%s", out)

	n := startTestNode(t)
	urls := n.rtmpURL("live/pub"+bench.Placeholder) + "," + n.flvURL("live/pub"+bench.Placeholder)
	s := runBenchJSON(t, "-publish", file, "-publishers", "2", "-publish-url", n.rtmpURL("live/pub"+bench.Placeholder),
		"-url", urls, "-players", "8", "-duration", "5s")
	require.NotNil(t, s.Publishers)
	assert.Equal(t, 2, s.Publishers.Publishers)
	assert.Zero(t, s.Publishers.Failed, "%+v", s.Publishers.Errors)
	assert.Greater(t, s.Publishers.Tags, uint64(2*4*30))
	assert.Equal(t, 8, s.Connected)
	assert.Zero(t, s.Failed, "%+v", s.Errors)
	require.Len(t, s.Protocols, 2)
	assert.Equal(t, 4, s.Protocols[bench.RTMP].Connected)
	assert.Equal(t, 4, s.Protocols[bench.HTTPFLV].Connected)
	// The file (2 s) loops twice in 5 s without a gap in the timestamps.
	assert.Zero(t, s.DroppedFrames)
	assert.Zero(t, s.Discontinuities)
	assert.Zero(t, s.Stalls)
	assert.InEpsilon(t, 30*s.VideoSeconds, float64(s.VideoFrames), 0.10)
	assert.Greater(t, s.VideoSeconds, 8*3.0)
}

// makeTestFLV encodes a test pattern with a 1 s GOP, H.264 + AAC, into an
// FLV file for the bench's publishers.
func makeTestFLV(t *testing.T, size string, seconds int) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "test.flv")
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size="+size+":rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", strconv.Itoa(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-f", "flv", file).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return file
}

// TestBenchHLS plays a 720p30 stream, published by the bench's own
// publisher, with 20 Low-Latency HLS players of an in-process node, then
// with classic (MPEG-TS) HLS players.
func TestBenchHLS(t *testing.T) {
	requireFFmpeg(t)
	checkLeaks(t)
	file := makeTestFLV(t, "1280x720", 4)

	t.Run("low-latency", func(t *testing.T) {
		n := startTestNode(t)
		s := runBenchJSON(t, "-publish", file, "-publish-url", n.rtmpURL("live/cam1"),
			"-url", n.hlsURL("live/cam1"), "-players", "20", "-duration", "6s", "-ramp", "500ms")
		assert.Equal(t, 20, s.Connected)
		assert.Zero(t, s.Failed, "%+v", s.Errors)
		require.NotNil(t, s.Publishers)
		assert.Zero(t, s.Publishers.Failed, "%+v", s.Publishers.Errors)
		h := s.HLS
		require.NotNil(t, h)
		assert.Equal(t, 20, h.Players)
		assert.Equal(t, 20, h.LowLatency)
		assert.Empty(t, h.HTTPErrors)
		// Each player follows the video and the audio playlist.
		assert.EqualValues(t, 20*3, h.Playlist.Requests)
		assert.EqualValues(t, 20*2, h.Init.Requests)
		assert.Positive(t, h.BlockingReload.Requests)
		assert.Positive(t, h.Part.Requests)
		assert.Equal(t, h.Media, h.Part.Requests+h.Segment.Requests)
		// About 200 ms parts during the ~4 s of playing left after the
		// first segment: at least 10 each, twice per player.
		assert.Greater(t, h.Part.Requests, uint64(20*2*10))
		assert.Zero(t, h.Missed)
		assert.Zero(t, h.Resyncs)
		assert.Zero(t, h.WithoutDateTime)
		assert.Greater(t, h.Part.PerS, 0.0)
		assert.Greater(t, h.BytesPerS, 0.0)
		// The media comes a little after the ingest wall clock, never before,
		// and within seconds.
		for _, p := range []bench.Percentiles{h.LatencyToLiveMs, h.EdgeLatencyToLiveMs, h.StartupLatencyToLiveMs} {
			assert.Positive(t, p.P50)
			assert.Less(t, p.P99, 10000.0)
		}
		assert.Less(t, h.EdgeLatencyToLiveMs.P50, 500.0)
		assert.Greater(t, h.BlockingReload.LatencyMs.P50, h.Part.LatencyMs.P50)
		assert.Greater(t, s.Mbps, 20*0.1)
		assert.Positive(t, s.StartupMs.P50)
	})

	t.Run("mpegts", func(t *testing.T) {
		n := startTestNode(t, func(c *config.Config) { c.HLS.Variant = "mpegts" })
		// -protocol hls turns the stream URL into its playlist's.
		base := "http://" + n.httpLn.Addr().String() + "/live/cam2"
		s := runBenchJSON(t, "-publish", file, "-publish-url", n.rtmpURL("live/cam2"),
			"-protocol", "hls", "-url", base, "-players", "5", "-duration", "6s")
		assert.Equal(t, 5, s.Connected)
		assert.Zero(t, s.Failed, "%+v", s.Errors)
		h := s.HLS
		require.NotNil(t, h)
		assert.Zero(t, h.LowLatency)
		assert.Empty(t, h.HTTPErrors)
		assert.Zero(t, h.Part.Requests+h.BlockingReload.Requests+h.Init.Requests)
		assert.Positive(t, h.Segment.Requests)
		assert.Zero(t, h.Missed)
		assert.Positive(t, h.LatencyToLiveMs.P50)
		assert.Less(t, h.LatencyToLiveMs.P99, 10000.0)
	})
}

// TestBenchCommandLine checks the flags and the exit status through the
// real binary: a failed player fails the command.
func TestBenchCommandLine(t *testing.T) {
	r := quasipaa(t, cleanEnv(), "bench", "-h")
	assert.Equal(t, 0, r.code)
	for _, flag := range []string{"-url", "-protocol", "-players", "-duration", "-ramp", "-publish", "-publishers", "-publish-url", "-json", "-progress"} {
		assert.Regexp(t, "\n  "+flag+"[ \n]", r.stderr, flag)
	}

	r = quasipaa(t, cleanEnv(), "bench")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "-url is required")

	r = quasipaa(t, cleanEnv(), "bench", "-url", "srt://127.0.0.1/x")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "scheme")

	r = quasipaa(t, cleanEnv(), "bench", "-url", "rtmp://127.0.0.1/live/x", "-protocol", "hls")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "protocol hls needs a http:// URL")

	r = quasipaa(t, cleanEnv(), "bench", "-url", "http://127.0.0.1/live/x", "-protocol", "srt")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "unknown protocol")

	// Nothing listens on port 1 of loopback: every player fails to connect.
	r = quasipaa(t, cleanEnv(), "bench", "-url", "rtmp://127.0.0.1:1/live/x", "-players", "3", "-duration", "500ms", "-ramp", "0s", "-json")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "3 of 3 players failed")
	assert.Contains(t, r.stderr, "connection refused")
	var s bench.Summary
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &s), r.stdout)
	assert.Equal(t, 3, s.Failed)
	require.Len(t, s.Errors, 1)
	assert.Equal(t, 3, s.Errors[0].Count)
	assert.True(t, strings.HasPrefix(s.Errors[0].Error, "connect: "), s.Errors[0].Error)
}

func (n *node) whepURL(path string) string {
	return "http://" + n.httpLn.Addr().String() + "/" + path + "/whep"
}

// TestBenchWHEP plays a stream published by the bench's own RTMP publisher
// with 5 WHEP players of an in-process node: every player connects, gets
// the frames the timestamps promise and measures each frame's latency from
// the publisher; every session is deleted at the end.
func TestBenchWHEP(t *testing.T) {
	requireFFmpeg(t)
	checkLeaks(t)
	file := makeTestFLV(t, "640x360", 4)
	n := startTestNode(t)

	s := runBenchJSON(t, "-publish", file, "-publish-url", n.rtmpURL("live/rtc"),
		"-url", n.whepURL("live/rtc"), "-players", "5", "-duration", "5s", "-ramp", "200ms")
	assert.Equal(t, 5, s.Players)
	assert.Equal(t, 5, s.Connected)
	assert.Zero(t, s.Failed, "%+v", s.Errors)
	require.NotNil(t, s.Publishers)
	assert.Zero(t, s.Publishers.Failed, "%+v", s.Publishers.Errors)
	w := s.WebRTC
	require.NotNil(t, w)
	assert.Equal(t, 5, w.Players)
	assert.Equal(t, 5, w.Deleted)
	assert.Empty(t, w.DeleteErrors)
	assert.Positive(t, w.SignalMs.P50)

	// Frames: what the publisher's timestamps promise, none lost on loopback.
	assert.Positive(t, s.VideoFrames)
	assert.InDelta(t, float64(s.ExpectedFrames), float64(s.VideoFrames), 0.01*float64(s.ExpectedFrames)+1)
	assert.Zero(t, s.Discontinuities)
	assert.Zero(t, s.Stalls)
	assert.InDelta(t, 30, s.FPS, 0.5)
	// Each player plays from a keyframe at most a GOP (1 s) after it
	// connects, until the end: at least 3 s of 30 fps.
	assert.Greater(t, s.VideoFrames, uint64(5*3*30))
	assert.InEpsilon(t, 30*s.VideoSeconds, float64(s.VideoFrames), 0.10)
	assert.Positive(t, s.AudioFrames)
	assert.Less(t, w.LossPercent, 1.0)
	assert.Zero(t, w.IncompleteFrames)
	assert.Positive(t, s.StartupMs.P50)
	assert.Less(t, s.StartupMs.Max, 2500.0)

	// Latency: every frame mapped to the publisher's, a little after it
	// was sent, never before.
	assert.Equal(t, 5, w.KeyframesBySize)
	assert.Zero(t, w.KeyframesByTime)
	assert.Zero(t, w.UnmatchedFrames)
	assert.Equal(t, s.VideoFrames, w.LatencyFrames+w.BacklogFrames)
	assert.Greater(t, w.LatencyFrames, uint64(5*3*30))
	for _, p := range []bench.Percentiles{w.LatencyMs, w.FirstFrameLatencyMs} {
		assert.Positive(t, p.P50)
		assert.Less(t, p.Max, 2000.0)
	}
	// Live frames come within milliseconds on loopback; the backlog (the
	// cached keyframe at most 500 ms old, and what followed) at once.
	assert.Less(t, w.LatencyMs.P50, 100.0)
	assert.Less(t, w.BacklogLatencyMs.Max, 600.0)
	assert.Less(t, w.FirstFrameLatencyMs.Max, 600.0)

	// The server has no session left.
	require.Eventually(t, func() bool { return n.whep.Sessions() == 0 }, 5*time.Second, 50*time.Millisecond)
}

// TestBenchWHIPToWHEP publishes the video of a file over WHIP with the
// bench's own publisher and plays it with 5 WHEP players.
func TestBenchWHIPToWHEP(t *testing.T) {
	requireFFmpeg(t)
	checkLeaks(t)
	file := makeTestFLV(t, "640x360", 4)
	n := startTestNode(t)
	whip := "http://" + n.httpLn.Addr().String() + "/live/whip/whip"

	s := runBenchJSON(t, "-publish", file, "-publish-url", whip,
		"-url", n.whepURL("live/whip"), "-players", "5", "-duration", "5s", "-ramp", "200ms")
	assert.Equal(t, 5, s.Connected)
	assert.Zero(t, s.Failed, "%+v", s.Errors)
	require.NotNil(t, s.Publishers)
	assert.Zero(t, s.Publishers.Failed, "%+v", s.Publishers.Errors)
	assert.Positive(t, s.Publishers.Tags)
	w := s.WebRTC
	require.NotNil(t, w)
	assert.Equal(t, 5, w.Deleted)
	assert.Greater(t, s.VideoFrames, uint64(5*3*30))
	assert.InDelta(t, float64(s.ExpectedFrames), float64(s.VideoFrames), 0.01*float64(s.ExpectedFrames)+1)
	assert.Zero(t, s.AudioFrames) // the publisher sends video only
	assert.Less(t, w.LossPercent, 1.0)
	assert.Equal(t, 5, w.KeyframesBySize)
	assert.Zero(t, w.UnmatchedFrames)
	assert.Positive(t, w.LatencyMs.P50)
	assert.Less(t, w.LatencyMs.Max, 2000.0)
	// The WHIP and WHEP sessions ended with the run.
	require.Eventually(t, func() bool { return n.whip.Sessions() == 0 && n.whep.Sessions() == 0 }, 5*time.Second, 50*time.Millisecond)
}
