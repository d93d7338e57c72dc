package transcode

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/media"
)

// checkTimestamps checks that the output frames follow each other without
// gaps or overlaps (no re-anchoring happened).
func checkTimestamps(t *testing.T, c clip) {
	t.Helper()
	for i := 1; i < len(c.frames); i++ {
		prev, f := c.frames[i-1], c.frames[i]
		n, rate := frameSamples(t, c.track, prev)
		want := prev.PTS + samplesToDuration(n, rate)
		require.InDelta(t, want, f.PTS, float64(time.Microsecond), "frame %d", i)
		require.Equal(t, f.PTS, f.DTS)
		require.True(t, f.Key)
		require.Zero(t, f.Track)
		require.False(t, f.Ingest.IsZero())
	}
}

// TestConvert converts ffmpeg-made AAC (read from FLV by the flv package)
// to Opus and ffmpeg-made Opus (read from Ogg) to AAC, and checks the
// output track, that ffmpeg decodes the output without a complaint, and
// that it lasts as long as the input, from the same start.
func TestConvert(t *testing.T) {
	needFFmpeg(t)
	cases := []struct {
		name     string
		in       func(t *testing.T) clip
		to       media.Codec
		channels int
	}{
		{"aac44k-stereo-to-opus", func(t *testing.T) clip { return genAAC(t, 44100, 2, 4) }, media.CodecOpus, 2},
		{"aac48k-mono-to-opus", func(t *testing.T) clip { return genAAC(t, 48000, 1, 4) }, media.CodecOpus, 1},
		{"opus-stereo-to-aac", func(t *testing.T) clip { return genOpus(t, 2, 4) }, media.CodecAAC, 2},
		{"opus-mono-to-aac", func(t *testing.T) clip { return genOpus(t, 1, 4) }, media.CodecAAC, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := c.in(t)
			out, st := convert(t, in, c.to, FFmpegOptions{})
			t.Logf("in: %d frames, %v; out: %d frames, %v; %+v", len(in.frames), in.duration(t), len(out.frames), out.duration(t), st)

			assert.Equal(t, c.to, out.track.Codec)
			assert.Equal(t, 48000, out.track.SampleRate)
			assert.Equal(t, c.channels, out.track.Channels)
			assert.NotEmpty(t, out.track.Config)
			assert.Zero(t, st.DroppedIn)
			assert.Zero(t, st.Restarts)
			assert.Zero(t, st.Reanchors)
			// At most the first frame, which starts before the input.
			assert.LessOrEqual(t, st.DroppedOut, uint64(1))
			checkTimestamps(t, out)

			// Starts and ends with the input (one frame of slack at the start).
			assert.InDelta(t, in.frames[0].PTS, out.frames[0].PTS, float64(25*time.Millisecond))
			assert.InDelta(t, in.duration(t), out.duration(t), float64(50*time.Millisecond))

			// ffmpeg decodes the output without an error, to as many samples.
			ext := map[media.Codec]string{media.CodecAAC: "aac", media.CodecOpus: "ogg"}[c.to]
			file := out.writeFile(t, t.TempDir(), "out."+ext)
			run(t, "ffmpeg", "-nostdin", "-v", "error", "-i", file, "-f", "null", "-")
			ip, op := in.decode(t), out.decode(t)
			inDur := samplesToDuration(int64(len(ip.samples)), ip.rate)
			outDur := samplesToDuration(int64(len(op.samples)), op.rate)
			assert.InDelta(t, inDur, outDur, float64(50*time.Millisecond), "decoded durations")
		})
	}
}

// retime moves a clip on the stream clock: every frame later by offset, the
// frames in [gapFrom, gapTo) removed (a hole in the input), and the frames
// from jumpAt on later by jump (a jump of the publisher's clock).
func retime(c clip, offset, gapFrom, gapTo, jumpAt, jump time.Duration) clip {
	out := clip{track: c.track}
	for _, f := range c.frames {
		if f.PTS >= gapFrom && f.PTS < gapTo {
			continue
		}
		g := *f
		g.PTS += offset
		if f.PTS >= jumpAt {
			g.PTS += jump
		}
		g.DTS = g.PTS
		out.frames = append(out.frames, &g)
	}
	return out
}

// TestSync converts 10 s of beeps, one every second, whose timestamps start
// at 3 s, lose 1 s in the middle and jump 2 s later, and checks that every
// beep starts in the output within 40 ms of when it starts in the input,
// both decoded by ffmpeg and placed on the stream clock by the PTS of their
// frames.
func TestSync(t *testing.T) {
	needFFmpeg(t)
	const tolerance = 40 * time.Millisecond
	cases := []struct {
		name string
		in   func(t *testing.T) clip
		to   media.Codec
	}{
		{"aac-to-opus", func(t *testing.T) clip { return genAAC(t, 44100, 2, 10) }, media.CodecOpus},
		{"opus-to-aac", func(t *testing.T) clip { return genOpus(t, 2, 10) }, media.CodecAAC},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := c.in(t)
			in := retime(src, 3*time.Second, 4500*time.Millisecond, 5500*time.Millisecond, 7500*time.Millisecond, 2*time.Second)
			out, st := convert(t, in, c.to, FFmpegOptions{})
			t.Logf("stats %+v", st)
			assert.Equal(t, uint64(2), st.Reanchors, "the hole and the jump")

			inOnsets := in.decode(t).onsets()
			outOnsets := out.decode(t).onsets()
			t.Logf("input onsets %v", inOnsets)
			t.Logf("output onsets %v", outOnsets)

			// The reference itself: a beep every second from 3 s, the one
			// at 5 s lost in the hole, 2 s later from 7.5 s; the AAC or
			// Opus encoder that made the input delays them a little.
			var want []time.Duration
			for s := range 10 {
				at := 3*time.Second + time.Duration(s)*time.Second
				switch {
				case s == 5:
					continue
				case s >= 8:
					at += 2 * time.Second
				}
				want = append(want, at)
			}
			require.Len(t, inOnsets, len(want))
			for i := range want {
				assert.InDelta(t, want[i], inOnsets[i], float64(tolerance), "input beep %d", i)
			}

			require.Len(t, outOnsets, len(inOnsets))
			var worst time.Duration
			for i := range inOnsets {
				d := outOnsets[i] - inOnsets[i]
				assert.InDelta(t, 0, d, float64(tolerance), "beep %d: input %v, output %v", i, inOnsets[i], outOnsets[i])
				if d.Abs() > worst.Abs() {
					worst = d
				}
			}
			t.Logf("worst output-input onset difference: %v", worst)
		})
	}
}

// TestRestartAfterKill kills ffmpeg in the middle of a stream fed in real
// time and checks that a new ffmpeg takes over and the output goes on, on
// the same clock, without going backwards.
func TestRestartAfterKill(t *testing.T) {
	needFFmpeg(t)
	in := genAAC(t, 48000, 2, 4)
	tc, err := NewFFmpeg(t.Context(), in.track, media.CodecOpus, FFmpegOptions{
		Logger: testLogger(t), MinBackoff: 50 * time.Millisecond, OutputBuffer: 1024,
	})
	require.NoError(t, err)
	firstPID := tc.Stats().PID
	require.NotZero(t, firstPID)

	var killedAt time.Duration
	start := time.Now()
	for i, f := range in.frames {
		// Twice as fast as real time.
		if d := time.Until(start.Add(f.PTS / 2)); d > 0 {
			time.Sleep(d)
		}
		if i == len(in.frames)/3 {
			require.NoError(t, syscall.Kill(firstPID, syscall.SIGKILL))
			killedAt = f.PTS
		}
		require.NoError(t, tc.Write(f))
	}
	time.Sleep(200 * time.Millisecond)
	st := tc.Stats()
	require.NoError(t, tc.Close())
	t.Logf("stats %+v", st)
	assert.Equal(t, uint64(1), st.Restarts)
	assert.NotZero(t, st.PID)
	assert.NotEqual(t, firstPID, st.PID)

	var frames []*media.Frame
	for o := range tc.Output() {
		frames = append(frames, o.Frame)
	}
	require.NotEmpty(t, frames)
	for i := 1; i < len(frames); i++ {
		require.Greater(t, frames[i].PTS, frames[i-1].PTS, "frame %d", i)
	}
	last := frames[len(frames)-1].PTS
	assert.Greater(t, last, killedAt+time.Second, "output resumed after the kill")
	assert.InDelta(t, in.duration(t), last, float64(100*time.Millisecond), "output reaches the end of the input")
	// The frames lost while ffmpeg restarted: at most the backoff and the
	// start-up, far less than a second.
	var lost time.Duration
	for i := 1; i < len(frames); i++ {
		if gap := frames[i].PTS - frames[i-1].PTS; gap > 30*time.Millisecond {
			lost += gap
		}
	}
	t.Logf("lost around the restart: %v", lost)
	assert.Less(t, lost, time.Second)
}

func TestFFmpegNotFound(t *testing.T) {
	track := &media.Track{Codec: media.CodecOpus, SampleRate: 48000, Channels: 2}
	_, err := NewFFmpeg(t.Context(), track, media.CodecAAC, FFmpegOptions{Path: filepath.Join(t.TempDir(), "ffmpeg")})
	require.ErrorIs(t, err, ErrFFmpegNotFound)
	_, err = NewFFmpeg(t.Context(), track, media.CodecAAC, FFmpegOptions{Path: "no-such-ffmpeg-quasipaa"})
	require.ErrorIs(t, err, ErrFFmpegNotFound)
}

func TestUnsupported(t *testing.T) {
	opus := &media.Track{Codec: media.CodecOpus, SampleRate: 48000, Channels: 2}
	for _, c := range []struct {
		in  *media.Track
		out media.Codec
	}{
		{opus, media.CodecOpus},
		{opus, media.CodecMP3},
		{&media.Track{Codec: media.CodecMP3, SampleRate: 44100, Channels: 2}, media.CodecOpus},
		{&media.Track{Codec: media.CodecAAC, Config: []byte{0x12}}, media.CodecOpus},
		{&media.Track{Codec: media.CodecOpus, Config: []byte("OpusHead")}, media.CodecAAC},
		{nil, media.CodecAAC},
	} {
		_, err := NewFFmpeg(t.Context(), c.in, c.out, FFmpegOptions{Path: "true"})
		require.ErrorIs(t, err, ErrUnsupported, "%+v to %s", c.in, c.out)
	}
}

func TestSamplesToDuration(t *testing.T) {
	assert.Equal(t, 20*time.Millisecond, samplesToDuration(960, 48000))
	assert.Equal(t, -6500*time.Microsecond, samplesToDuration(-312, 48000))
	// A year at 48 kHz does not overflow.
	year := int64(365 * 24 * 3600 * 48000)
	assert.Equal(t, 365*24*time.Hour, samplesToDuration(year, 48000))
	assert.Equal(t, fmt.Sprint(samplesToDuration(1024, 44100)), "23.219954ms")
}

// TestBackwardJumps: a small step back of the input's clock drops the
// output that would overlap, keeping the output monotonic; a step back of
// more than Discontinuity is a restart of the clock, which the output
// follows.
func TestBackwardJumps(t *testing.T) {
	needFFmpeg(t)
	src := genOpus(t, 2, 6)
	for _, c := range []struct {
		name     string
		jump     time.Duration
		restarts int
	}{
		{"small", -500 * time.Millisecond, 0},
		{"restart", -3 * time.Second, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := retime(src, 10*time.Second, 0, 0, 3*time.Second, c.jump)
			out, st := convert(t, in, media.CodecAAC, FFmpegOptions{})
			t.Logf("stats %+v", st)
			assert.Equal(t, uint64(1), st.Reanchors)
			backs := 0
			for i := 1; i < len(out.frames); i++ {
				if out.frames[i].PTS <= out.frames[i-1].PTS {
					backs++
				}
			}
			assert.Equal(t, c.restarts, backs, "steps back in the output")
			last := out.frames[len(out.frames)-1]
			assert.InDelta(t, in.frames[len(in.frames)-1].PTS, last.PTS, float64(50*time.Millisecond))
			if c.restarts == 0 {
				// The overlap is lost: 500 ms, plus the first frame.
				lost := float64(st.DroppedOut) * samplesToDuration(1024, 48000).Seconds()
				assert.InDelta(t, 0.5, lost, 0.05)
			}
		})
	}
}
