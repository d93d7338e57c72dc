package flv

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func needFFmpeg(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

type probeStream struct {
	CodecName  string `json:"codec_name"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	SampleRate string `json:"sample_rate"`
	Channels   int    `json:"channels"`
}

type probeResult struct {
	Streams []probeStream `json:"streams"`
	Format  struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

// runClean runs a command and requires exit status 0 and nothing on stderr.
func runClean(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "%s %v: %s", name, args, stderr.String())
	require.Empty(t, stderr.String(), "%s %v", name, args)
	return stdout.Bytes()
}

// TestRemuxPlaysInFFmpeg demuxes ffmpeg's files, muxes a new FLV (header,
// onMetaData, sequence headers, every frame) and has ffprobe and ffmpeg read
// and decode it without a single complaint.
func TestRemuxPlaysInFFmpeg(t *testing.T) {
	needFFmpeg(t)
	cases := []struct {
		file     string
		streams  []probeStream
		duration float64
	}{
		{"h264aac.flv", []probeStream{
			{CodecName: "h264", Width: 1280, Height: 720},
			{CodecName: "aac", SampleRate: "48000", Channels: 2},
		}, 2.05},
		{"mp3.flv", []probeStream{{CodecName: "mp3", SampleRate: "44100", Channels: 1}}, 1.0},
		{"alaw.flv", []probeStream{{CodecName: "pcm_alaw", SampleRate: "8000", Channels: 1}}, 0.5},
		{"mulaw.flv", []probeStream{{CodecName: "pcm_mulaw", SampleRate: "8000", Channels: 1}}, 0.5},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			_, tags := readFLVFile(t, c.file)
			_, file := remux(t, tags)
			out := filepath.Join(t.TempDir(), "out.flv")
			require.NoError(t, os.WriteFile(out, file, 0o600))

			var probe probeResult
			require.NoError(t, json.Unmarshal(runClean(t, "ffprobe", "-v", "error", "-of", "json",
				"-show_entries", "stream=codec_name,width,height,sample_rate,channels:format=duration", out), &probe))
			assert.Equal(t, c.streams, probe.Streams)
			// Without a duration in onMetaData (we write live streams)
			// ffprobe takes the last packet's time: the original's duration
			// less one frame at most.
			dur, err := strconv.ParseFloat(probe.Format.Duration, 64)
			require.NoError(t, err)
			want := ffprobePackets(t, filepath.Join("testdata", c.file))
			var last int64
			for _, p := range want {
				last = max(last, p.pts)
			}
			assert.InDelta(t, float64(last)/1000, dur, 0.001)
			assert.InDelta(t, c.duration, dur, 0.13)

			runClean(t, "ffmpeg", "-nostdin", "-v", "error", "-i", out, "-f", "null", "-")

			// ffprobe sees the same packets in both files
			got := ffprobePackets(t, out)
			assert.Equal(t, want, got)
		})
	}
}
