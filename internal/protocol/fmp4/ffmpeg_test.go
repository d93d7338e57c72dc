package fmp4

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests have FFmpeg, an independent implementation, read and decode
// what the Writer produces from real encoder output.

func needFFmpeg(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

// run runs a command and requires exit status 0 and nothing on stderr.
func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "%s %v: %s", name, args, stderr.String())
	require.Empty(t, stderr.String(), "%s %v", name, args)
	return stdout.Bytes()
}

type probeStream struct {
	CodecName    string `json:"codec_name"`
	Width        int    `json:"width,omitempty"`
	Height       int    `json:"height,omitempty"`
	SampleRate   string `json:"sample_rate,omitempty"`
	Channels     int    `json:"channels,omitempty"`
	NbReadFrames string `json:"nb_read_frames,omitempty"`
	StartTime    string `json:"start_time,omitempty"`
	Duration     string `json:"duration,omitempty"`
}

type probeResult struct {
	Streams []probeStream `json:"streams"`
	Format  struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

// probe runs ffprobe on a file, counting the decoded frames of every stream.
func probe(t *testing.T, path string) probeResult {
	t.Helper()
	var p probeResult
	require.NoError(t, json.Unmarshal(run(t, "ffprobe", "-v", "error", "-of", "json", "-count_frames",
		"-show_entries", "stream=codec_name,width,height,sample_rate,channels,nb_read_frames,start_time,duration:format=duration",
		path), &p))
	return p
}

func seconds(t *testing.T, s string) time.Duration {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err, "%q", s)
	return time.Duration(v * float64(time.Second))
}

// checkPlays writes src fragmented, then requires that ffprobe sees the
// expected streams with every frame; that each stream starts where the
// source's track is first presented and ends (its duration, as FFmpeg
// reads it from tfdt and the sample durations of the last fragment) where
// the source's track ends, both within a frame; and that ffmpeg decodes the
// whole file without one warning.
func checkPlays(t *testing.T, src *source, every time.Duration, want []probeStream, frame time.Duration) {
	t.Helper()
	file, frags := writeFragmented(t, src, every)
	out := filepath.Join(t.TempDir(), "out.mp4")
	require.NoError(t, os.WriteFile(out, file, 0o600))

	p := probe(t, out)
	require.Len(t, p.Streams, len(want))
	counts := make([]int, len(src.tracks))
	for _, f := range src.frames {
		counts[f.Track]++
	}
	origin := src.frames[0].DTS
	var length time.Duration
	for i, st := range p.Streams {
		want[i].NbReadFrames = strconv.Itoa(counts[i])
		start, end := seconds(t, st.StartTime), seconds(t, st.Duration)
		assert.InDelta(t, src.starts()[i].Seconds(), start.Seconds(), frame.Seconds(), "track %d start", i)
		assert.InDelta(t, (src.ends[i] - origin).Seconds(), end.Seconds(), frame.Seconds(), "track %d end", i)
		length = max(length, end)
		p.Streams[i].StartTime, p.Streams[i].Duration = "", ""
	}
	assert.Equal(t, want, p.Streams)
	run(t, "ffmpeg", "-v", "warning", "-nostdin", "-i", out, "-f", "null", "-")
	t.Logf("%v: %d fragments, %d bytes; length %v (source %v), ffprobe format duration %ss",
		src, frags, len(file), length, slices.Max(src.ends)-origin, p.Format.Duration)
}

// TestCommittedVectorsPlay remuxes the committed one-track vectors of every
// video codec, one fragment per frame (so B-frame composition offsets and
// tfdt continuity cross fragment boundaries).
func TestCommittedVectorsPlay(t *testing.T) {
	needFFmpeg(t)
	cases := []struct {
		codec, file string
		want        probeStream
	}{
		{"h264", "h264_720p.mp4", probeStream{CodecName: "h264", Width: 1280, Height: 720}},
		{"h264", "h264_1080p_baseline.mp4", probeStream{CodecName: "h264", Width: 1920, Height: 1080}},
		{"h264", "h264_main_360p.mp4", probeStream{CodecName: "h264", Width: 640, Height: 360}},
		{"h265", "h265_720p.mp4", probeStream{CodecName: "hevc", Width: 1280, Height: 720}},
		{"h265", "h265_main10_426x240.mp4", probeStream{CodecName: "hevc", Width: 426, Height: 240}},
		{"av1", "av1_720p.mp4", probeStream{CodecName: "av1", Width: 1280, Height: 720}},
		{"av1", "av1_svt_720p.mp4", probeStream{CodecName: "av1", Width: 1280, Height: 720}},
		{"av1", "av1_10bit.mp4", probeStream{CodecName: "av1", Width: 320, Height: 180}},
		{"vp9", "vp9_720p.mp4", probeStream{CodecName: "vp9", Width: 1280, Height: 720}},
		{"vp9", "vp9_p1_444.mp4", probeStream{CodecName: "vp9", Width: 320, Height: 180}},
		{"vp9", "vp9_p2_10bit.mp4", probeStream{CodecName: "vp9", Width: 320, Height: 180}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			src := readMP4(t, codecTestdata(c.codec, c.file))
			checkPlays(t, src, cutEveryFrame, []probeStream{c.want}, 34*time.Millisecond)
		})
	}
}

// ffmpegGenerate has ffmpeg encode a test pattern and a tone into a file.
func ffmpegGenerate(t *testing.T, name string, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	full := append([]string{"-v", "error", "-nostdin",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"}, args...)
	run(t, "ffmpeg", append(full, out)...)
	return out
}

// TestGeneratedStreamsPlay has ffmpeg encode seconds-long streams with real
// encoders (B-frames on for H.264 and H.265), reads them back through
// Quasipaa's FLV demuxer or an MP4 reader, and cuts fragments at keyframes.
func TestGeneratedStreamsPlay(t *testing.T) {
	needFFmpeg(t)
	const frame = 34 * time.Millisecond
	t.Run("h264_aac_flv", func(t *testing.T) {
		path := ffmpegGenerate(t, "in.flv", "-t", "4", "-c:v", "libx264", "-preset", "veryfast",
			"-g", "30", "-bf", "2", "-c:a", "aac", "-f", "flv")
		src := readFLV(t, path)
		requireBFrames(t, src)
		checkPlays(t, src, 900*time.Millisecond, []probeStream{
			{CodecName: "h264", Width: 320, Height: 240},
			{CodecName: "aac", SampleRate: "48000", Channels: 1},
		}, frame)
	})
	t.Run("h265_opus", func(t *testing.T) {
		path := ffmpegGenerate(t, "in.mp4", "-t", "3", "-c:v", "libx265", "-preset", "ultrafast",
			"-x265-params", "log-level=error:keyint=30:min-keyint=30:bframes=2",
			"-c:a", "libopus", "-ac", "2", "-f", "mp4")
		src := readMP4(t, path)
		requireBFrames(t, src)
		checkPlays(t, src, 900*time.Millisecond, []probeStream{
			{CodecName: "hevc", Width: 320, Height: 240},
			{CodecName: "opus", SampleRate: "48000", Channels: 2},
		}, frame)
	})
	t.Run("av1_mp3", func(t *testing.T) {
		path := ffmpegGenerate(t, "in.mp4", "-t", "2", "-s", "160x120", "-c:v", "libaom-av1", "-cpu-used", "8",
			"-g", "15", "-c:a", "libmp3lame", "-ar", "44100", "-f", "mp4")
		checkPlays(t, readMP4(t, path), 0, []probeStream{
			{CodecName: "av1", Width: 160, Height: 120},
			{CodecName: "mp3", SampleRate: "44100", Channels: 1},
		}, frame)
	})
	t.Run("vp9_aac", func(t *testing.T) {
		path := ffmpegGenerate(t, "in.mp4", "-t", "2", "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
			"-g", "15", "-c:a", "aac", "-ar", "44100", "-ac", "2", "-f", "mp4")
		checkPlays(t, readMP4(t, path), 0, []probeStream{
			{CodecName: "vp9", Width: 320, Height: 240},
			{CodecName: "aac", SampleRate: "44100", Channels: 2},
		}, frame)
	})
}

// requireBFrames checks that a source has reordered frames (PTS != DTS).
func requireBFrames(t *testing.T, src *source) {
	t.Helper()
	for _, f := range src.frames {
		if src.tracks[f.Track].IsVideo() && f.PTS != f.DTS && !f.Key {
			return
		}
	}
	t.Fatal("the encoder produced no B-frames")
}
