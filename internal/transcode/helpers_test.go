package transcode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quasipaa/quasipaa/internal/codec/aac"
	"github.com/quasipaa/quasipaa/internal/codec/opus"
	"github.com/quasipaa/quasipaa/internal/media"
	"github.com/quasipaa/quasipaa/internal/protocol/flv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// needFFmpeg skips the test without ffmpeg, or fails it on CI.
func needFFmpeg(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required on CI: %v", tool, err)
			}
			t.Skipf("%s not installed", tool)
		}
	}
}

// testLogger logs through t at debug level.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// run runs a command and returns its stdout; it fails on a non-zero exit
// status or anything on stderr.
func run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "%s %v: %s", name, args, stderr.String())
	require.Empty(t, stderr.String(), "%s %v", name, args)
	return stdout.Bytes()
}

// beeps is an ffmpeg source of 100 ms 440 Hz beeps at the start of every second.
func beeps(rate int, seconds float64) string {
	return fmt.Sprintf("aevalsrc=0.5*sin(2*PI*440*t)*lt(mod(t\\,1)\\,0.1):s=%d:d=%g", rate, seconds)
}

// clip is a track and its frames.
type clip struct {
	track  *media.Track
	frames []*media.Frame
}

// genAAC has ffmpeg encode beeps to AAC in FLV and reads it back with the
// flv package.
func genAAC(t testing.TB, rate, channels int, seconds float64) clip {
	t.Helper()
	file := filepath.Join(t.TempDir(), "in.flv")
	run(t, "ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", beeps(rate, seconds),
		"-ac", fmt.Sprint(channels), "-c:a", "aac", "-b:a", "128k", "-f", "flv", file)
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	r := flv.NewReader(bytes.NewReader(data), flv.ReaderOptions{})
	_, err = r.ReadHeader()
	require.NoError(t, err)
	var d flv.Demuxer
	var c clip
	for {
		tag, err := r.ReadTag()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if tag.Type != flv.TagAudio {
			continue
		}
		ev, err := d.Audio(tag.Timestamp, tag.Body)
		require.NoError(t, err)
		if ev.TracksChanged {
			c.track = d.Tracks()[0]
		}
		if ev.Frame != nil {
			c.frames = append(c.frames, ev.Frame)
		}
	}
	require.NotNil(t, c.track)
	require.Equal(t, media.CodecAAC, c.track.Codec)
	return c
}

// genOpus has ffmpeg encode beeps to Ogg Opus and reads the packets back
// with the Ogg reader; PTS counts the samples from 0.
func genOpus(t testing.TB, channels int, seconds float64) clip {
	t.Helper()
	file := filepath.Join(t.TempDir(), "in.ogg")
	run(t, "ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", beeps(48000, seconds),
		"-ac", fmt.Sprint(channels), "-c:a", "libopus", "-b:a", "96k", "-f", "ogg", file)
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	r := newOggReader(bytes.NewReader(data))
	var c clip
	var samples int64
	for i := 0; ; i++ {
		p, err := r.ReadPacket()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		switch i {
		case 0:
			c.track, err = opus.TrackFromHead(p.Data)
			require.NoError(t, err)
		case 1:
			require.True(t, bytes.HasPrefix(p.Data, []byte("OpusTags")))
		default:
			n, err := opus.PacketSamples(p.Data)
			require.NoError(t, err)
			ts := samplesToDuration(samples, 48000)
			c.frames = append(c.frames, &media.Frame{DTS: ts, PTS: ts, Key: true, Payload: bytes.Clone(p.Data), Ingest: time.Now()})
			samples += int64(n)
		}
	}
	require.NotEmpty(t, c.frames)
	return c
}

// frameSamples returns the duration of a frame of track tr in samples at
// the track's decoding rate, and that rate.
func frameSamples(t testing.TB, tr *media.Track, f *media.Frame) (int64, int) {
	switch tr.Codec {
	case media.CodecAAC:
		c, err := aac.ParseAudioSpecificConfig(tr.Config)
		require.NoError(t, err)
		return int64(c.FrameLength), c.SampleRate
	case media.CodecOpus:
		n, err := opus.PacketSamples(f.Payload)
		require.NoError(t, err)
		return int64(n), 48000
	}
	t.Fatalf("codec %s", tr.Codec)
	return 0, 0
}

// duration is the time the frames span: the last end less the first start.
func (c clip) duration(t testing.TB) time.Duration {
	last := c.frames[len(c.frames)-1]
	n, rate := frameSamples(t, c.track, last)
	return last.PTS + samplesToDuration(n, rate) - c.frames[0].PTS
}

// writeFile writes the clip as ADTS (AAC) or Ogg Opus (pre-skip 0, so
// that every decoded sample is kept) and returns the path.
func (c clip) writeFile(t testing.TB, dir, name string) string {
	t.Helper()
	var b []byte
	switch c.track.Codec {
	case media.CodecAAC:
		cfg, err := aac.ParseAudioSpecificConfig(c.track.Config)
		require.NoError(t, err)
		for _, f := range c.frames {
			b, err = aac.AppendADTSFrame(b, cfg, f.Payload)
			require.NoError(t, err)
		}
	case media.CodecOpus:
		head := opus.Head{Channels: c.track.Channels}
		if len(c.track.Config) > 0 {
			h, err := opus.ParseHead(c.track.Config)
			require.NoError(t, err)
			head = h
		}
		head.PreSkip = 0
		hb, err := head.Marshal()
		require.NoError(t, err)
		fr := &opusFramer{head: hb}
		b = fr.start(b)
		for _, f := range c.frames {
			b, _, err = fr.frame(b, f)
			require.NoError(t, err)
		}
	}
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

// pcm is decoded mono audio and the stream time of its samples.
type pcm struct {
	rate    int
	samples []int16
	// starts[k] is the index of the first sample of frame k, pts[k] its PTS.
	starts []int64
	pts    []time.Duration
}

// decode decodes the clip with ffmpeg (from the file writeFile makes) to
// mono PCM at the track's rate and maps every sample to stream time from
// the PTS of the frame it belongs to.
func (c clip) decode(t testing.TB) pcm {
	t.Helper()
	dir := t.TempDir()
	ext := map[media.Codec]string{media.CodecAAC: "aac", media.CodecOpus: "ogg"}[c.track.Codec]
	file := c.writeFile(t, dir, "clip."+ext)
	var p pcm
	var total int64
	for _, f := range c.frames {
		n, rate := frameSamples(t, c.track, f)
		p.rate = rate
		if c.track.Codec == media.CodecAAC && c.track.SampleRate == 2*rate {
			n, p.rate = 2*n, 2*rate // implicit SBR
		}
		p.starts = append(p.starts, total)
		p.pts = append(p.pts, f.PTS)
		total += n
	}
	raw := run(t, "ffmpeg", "-nostdin", "-v", "error", "-i", file, "-ac", "1", "-ar", fmt.Sprint(p.rate), "-f", "s16le", "-")
	p.samples = make([]int16, len(raw)/2)
	for i := range p.samples {
		p.samples[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
	}
	require.InDelta(t, total, len(p.samples), float64(p.rate)/100, "decoded samples")
	return p
}

// at returns the stream time of sample i.
func (p pcm) at(i int64) time.Duration {
	k := sort.Search(len(p.starts), func(k int) bool { return p.starts[k] > i }) - 1
	k = max(k, 0)
	return p.pts[k] + samplesToDuration(i-p.starts[k], p.rate)
}

// onsets returns the stream times where sound starts after at least 300 ms
// of near silence.
func (p pcm) onsets() []time.Duration {
	var peak int
	for _, s := range p.samples {
		peak = max(peak, abs(int(s)))
	}
	threshold := peak / 5
	quiet := int64(p.rate) * 3 / 10
	var out []time.Duration
	last := -quiet - 1
	for i, s := range p.samples {
		if abs(int(s)) < threshold {
			continue
		}
		if int64(i)-last > quiet {
			out = append(out, p.at(int64(i)))
		}
		last = int64(i)
	}
	return out
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// convert feeds every frame of c to a new ffmpeg transcoder at once, closes
// it and returns what came out.
func convert(t testing.TB, c clip, to media.Codec, opts FFmpegOptions) (clip, Stats) {
	t.Helper()
	opts.QueueSize = max(opts.QueueSize, len(c.frames)+16)
	opts.OutputBuffer = max(opts.OutputBuffer, len(c.frames)*2+16)
	opts.DrainTimeout = max(opts.DrainTimeout, 10*time.Second)
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	tc, err := NewFFmpeg(t.Context(), c.track, to, opts)
	require.NoError(t, err)
	for _, f := range c.frames {
		require.NoError(t, tc.Write(f))
	}
	require.NoError(t, tc.Close())
	var out clip
	for o := range tc.Output() {
		if out.track == nil {
			out.track = o.Track
		}
		require.Same(t, out.track, o.Track)
		out.frames = append(out.frames, o.Frame)
	}
	require.NotEmpty(t, out.frames)
	require.Same(t, out.track, tc.Track())
	return out, tc.Stats()
}
