package transcode

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/media"
)

// These tests stand a shell script in for ffmpeg, to make it crash, hang
// or ignore signals; they need /bin/sh but not ffmpeg.

// fakeFFmpeg writes an executable script and returns its path.
func fakeFFmpeg(t *testing.T, script string) string {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	path := filepath.Join(t.TempDir(), "ffmpeg")
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\n"+script+"\n"), 0o700))
	return path
}

var opusTrack = &media.Track{Codec: media.CodecOpus, SampleRate: 48000, Channels: 2}

// opusFrame is a 20 ms CELT packet (its content does not matter here).
func opusFrame(i int) *media.Frame {
	ts := time.Duration(i) * 20 * time.Millisecond
	return &media.Frame{DTS: ts, PTS: ts, Key: true, Payload: append([]byte{0xFC}, make([]byte, 200)...), Ingest: time.Now()}
}

// TestCrashLoop: an ffmpeg that dies at once is restarted with a capped
// backoff, and what it said on stderr is kept.
func TestCrashLoop(t *testing.T) {
	path := fakeFFmpeg(t, `echo "fake ffmpeg: Unknown encoder $$" >&2; exit 1`)
	tc, err := NewFFmpeg(t.Context(), opusTrack, media.CodecAAC, FFmpegOptions{
		Path: path, Logger: testLogger(t), MinBackoff: 10 * time.Millisecond, MaxBackoff: 80 * time.Millisecond,
	})
	require.NoError(t, err)
	time.Sleep(time.Second)
	st := tc.Stats()
	start := time.Now()
	require.NoError(t, tc.Close())
	assert.Less(t, time.Since(start), 500*time.Millisecond)
	t.Logf("stats %+v", st)
	// 10+20+40 ms, then 80 ms each: about 12 restarts in a second, fewer
	// when starting a shell is slow; never more than the backoff allows.
	assert.GreaterOrEqual(t, st.Restarts, uint64(3))
	assert.LessOrEqual(t, st.Restarts, uint64(20))
	require.NotEmpty(t, st.Stderr)
	assert.LessOrEqual(t, len(st.Stderr), stderrLines)
	assert.True(t, strings.HasPrefix(st.Stderr[len(st.Stderr)-1], "fake ffmpeg: Unknown encoder"))
	_, ok := <-tc.Output()
	assert.False(t, ok, "Output is closed after Close")
	assert.ErrorIs(t, tc.Write(opusFrame(0)), ErrClosed)
	require.NoError(t, tc.Close(), "Close twice")
}

// TestWriteNeverBlocks: with an ffmpeg that reads nothing, Write drops and
// counts instead of waiting, and Close gets rid of the process with SIGTERM.
func TestWriteNeverBlocks(t *testing.T) {
	path := fakeFFmpeg(t, `exec sleep 30`)
	tc, err := NewFFmpeg(t.Context(), opusTrack, media.CodecAAC, FFmpegOptions{
		Path: path, Logger: testLogger(t), QueueSize: 16, DrainTimeout: 100 * time.Millisecond,
	})
	require.NoError(t, err)
	start := time.Now()
	const n = 5000 // 1 MB: more than a pipe buffer and the queue
	for i := range n {
		require.NoError(t, tc.Write(opusFrame(i)))
	}
	assert.Less(t, time.Since(start), 500*time.Millisecond)
	st := tc.Stats()
	t.Logf("stats %+v", st)
	assert.Equal(t, uint64(n), st.FramesIn)
	assert.Greater(t, st.DroppedIn, uint64(n/2))
	start = time.Now()
	require.NoError(t, tc.Close())
	assert.Less(t, time.Since(start), time.Second, "SIGTERM after the drain timeout")
}

// TestKillAfterSIGTERM: an ffmpeg that ignores SIGTERM is killed after
// KillTimeout.
func TestKillAfterSIGTERM(t *testing.T) {
	path := fakeFFmpeg(t, `trap '' TERM; echo ready >&2; while :; do sleep 0.05; done`)
	tc, err := NewFFmpeg(t.Context(), opusTrack, media.CodecAAC, FFmpegOptions{
		Path: path, Logger: testLogger(t), DrainTimeout: 50 * time.Millisecond, KillTimeout: 300 * time.Millisecond,
	})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(tc.Stats().Stderr) > 0 }, 5*time.Second, 5*time.Millisecond, "the trap is set")
	start := time.Now()
	require.NoError(t, tc.Close())
	el := time.Since(start)
	assert.GreaterOrEqual(t, el, 350*time.Millisecond)
	assert.Less(t, el, 2*time.Second)
}

// TestStallRestart: an ffmpeg that takes input but produces nothing is
// killed after StallTimeout and replaced.
func TestStallRestart(t *testing.T) {
	path := fakeFFmpeg(t, `exec cat >/dev/null`)
	tc, err := NewFFmpeg(t.Context(), opusTrack, media.CodecAAC, FFmpegOptions{
		Path: path, Logger: testLogger(t), StallTimeout: 200 * time.Millisecond, MinBackoff: 10 * time.Millisecond,
	})
	require.NoError(t, err)
	defer tc.Close()
	pid := tc.Stats().PID
	for i := 0; i < 100 && tc.Stats().Restarts == 0; i++ {
		require.NoError(t, tc.Write(opusFrame(i)))
		time.Sleep(20 * time.Millisecond)
	}
	st := tc.Stats()
	assert.GreaterOrEqual(t, st.Restarts, uint64(1))
	require.Eventually(t, func() bool { return tc.Stats().PID != 0 }, time.Second, 10*time.Millisecond)
	assert.NotEqual(t, pid, tc.Stats().PID)
}

// TestContextCancel: cancelling the context passed to NewFFmpeg stops the
// transcoder; Close then returns at once.
func TestContextCancel(t *testing.T) {
	path := fakeFFmpeg(t, `exec cat >/dev/null`)
	ctx, cancel := context.WithCancel(t.Context())
	tc, err := NewFFmpeg(ctx, opusTrack, media.CodecAAC, FFmpegOptions{Path: path, Logger: testLogger(t)})
	require.NoError(t, err)
	cancel()
	for range tc.Output() {
	}
	assert.ErrorIs(t, tc.Write(opusFrame(0)), ErrClosed)
	require.NoError(t, tc.Close())
}
