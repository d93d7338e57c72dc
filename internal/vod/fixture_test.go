package vod

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/record"
	"github.com/quasipaa/quasipaa/internal/storage"
)

// testPath is the stream the fixture records.
const testPath = "live/cam1"

// run1Start is the wall-clock start of the fixture's first run; the second
// run starts run2Gap after the first one ends.
var run1Start = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

const run2Gap = 30 * time.Second

// ffmpegRun is one ffmpeg-made fMP4 HLS rendition: an init and segments.
type ffmpegRun struct {
	init []byte
	segs [][]byte // raw .m4s bytes (styp, sidx, moof, mdat)
	durs []time.Duration
}

var (
	fixtureOnce sync.Once
	fixtureDir  string
	fixtureRuns [2]*ffmpegRun
	fixtureErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

// haveFFmpeg reports whether ffmpeg and ffprobe are on PATH.
func haveFFmpeg() bool {
	_, e1 := exec.LookPath("ffmpeg")
	_, e2 := exec.LookPath("ffprobe")
	return e1 == nil && e2 == nil
}

// syntheticRuns stands in for ffmpegRuns without ffmpeg: structurally valid
// inits and fragments (no decodable media), 6 and 3 segments of 2 s with
// 100 kB mdats, for the tests that do not decode.
func syntheticRuns() [2]*ffmpegRun {
	var out [2]*ffmpegRun
	for i, n := range []int{6, 3} {
		r := &ffmpegRun{init: mkinit(byte(i), map[uint32]uint32{1: 90000, 2: 48000})}
		for j := range n {
			r.segs = append(r.segs, mkfragment(uint32(j+1), 100_000+j*1000,
				mktraf(1, 1, uint64(j)*180000), mktraf(2, byte(i), uint64(j)*96000)))
			r.durs = append(r.durs, 2*time.Second)
		}
		out[i] = r
	}
	return out
}

// needFFmpeg skips the test when ffmpeg or ffprobe is not on PATH.
func needFFmpeg(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not on PATH", tool)
		}
	}
}

// ffmpegRuns makes (once per test binary) two renditions with ffmpeg: 12 s
// of 320x240 and 6 s of 256x144, each cut in 2 s fMP4 segments.
func ffmpegRuns(t testing.TB) [2]*ffmpegRun {
	t.Helper()
	needFFmpeg(t)
	runs, err := loadFixtureRuns()
	require.NoError(t, err)
	return runs
}

// loadFixtureRuns runs ffmpeg once per test binary (see ffmpegRuns).
func loadFixtureRuns() ([2]*ffmpegRun, error) {
	fixtureOnce.Do(func() {
		fixtureDir, fixtureErr = os.MkdirTemp("", "vodtest")
		if fixtureErr != nil {
			return
		}
		specs := []struct {
			size string
			freq int
			secs int
		}{{"320x240", 440, 12}, {"256x144", 880, 6}}
		for i, sp := range specs {
			dir := filepath.Join(fixtureDir, strconv.Itoa(i))
			if fixtureErr = os.MkdirAll(dir, 0o755); fixtureErr != nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-v", "error",
				"-f", "lavfi", "-i", "testsrc2=size="+sp.size+":rate=30",
				"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%d", sp.freq),
				"-t", strconv.Itoa(sp.secs), "-c:v", "libx264", "-preset", "veryfast", "-g", "60",
				"-c:a", "aac", "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
				"-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4", "out.m3u8")
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			cancel()
			if err != nil {
				fixtureErr = fmt.Errorf("ffmpeg: %v: %s", err, out)
				return
			}
			if fixtureRuns[i], fixtureErr = loadRun(dir); fixtureErr != nil {
				return
			}
		}
	})
	return fixtureRuns, fixtureErr
}

// loadRun reads an ffmpeg HLS output directory.
func loadRun(dir string) (*ffmpegRun, error) {
	pl, err := os.ReadFile(filepath.Join(dir, "out.m3u8"))
	if err != nil {
		return nil, err
	}
	r := &ffmpegRun{}
	if r.init, err = os.ReadFile(filepath.Join(dir, "init.mp4")); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(pl))
	var dur time.Duration
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "#EXTINF:"); ok {
			f, err := strconv.ParseFloat(strings.TrimSuffix(v, ","), 64)
			if err != nil {
				return nil, err
			}
			dur = time.Duration(math.Round(f*1000)) * time.Millisecond
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, line))
		if err != nil {
			return nil, err
		}
		r.segs = append(r.segs, b)
		r.durs = append(r.durs, dur)
	}
	if len(r.segs) < 3 {
		return nil, fmt.Errorf("ffmpeg made only %d segments", len(r.segs))
	}
	return r, nil
}

// onlyMoofMdat keeps the moof and mdat boxes of an ffmpeg segment, the
// shape of the fragment in a recorded segment.
func onlyMoofMdat(t testing.TB, seg []byte) []byte {
	t.Helper()
	var out []byte
	for off := 0; off < len(seg); {
		size := int(binary.BigEndian.Uint32(seg[off:]))
		require.GreaterOrEqual(t, size, 8)
		if typ := string(seg[off+4 : off+8]); typ == "moof" || typ == "mdat" {
			out = append(out, seg[off:off+size]...)
		}
		off += size
	}
	return out
}

// fixture is a store holding the two ffmpeg runs as recorded segments of
// testPath: run 1 shaped like the recorder's files (ftyp+moov+moof+mdat),
// run 2 as ffmpeg made them (styp and sidx before the moof).
type fixture struct {
	store *storage.FS
	dir   string
	runs  [2]*ffmpegRun
	segs  [2][]record.Segment
	files map[string][]byte // whole file by key
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	runs := syntheticRuns()
	if haveFFmpeg() {
		runs = ffmpegRuns(t)
	}
	dir := filepath.Join(t.TempDir(), "store")
	st, err := storage.NewFS(dir)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	f := &fixture{store: st, dir: dir, runs: runs, files: map[string][]byte{}}
	start := run1Start
	for i, run := range runs {
		if i == 1 {
			start = start.Add(run2Gap)
		}
		runStart := start
		for j, raw := range run.segs {
			frag := raw
			if i == 0 {
				frag = onlyMoofMdat(t, raw)
			}
			file := append(append([]byte(nil), run.init...), frag...)
			s := record.Segment{Path: testPath, Start: start, Duration: run.durs[j], InitLen: int64(len(run.init)), Run: runStart, Size: int64(len(file))}
			require.NoError(t, st.Put(context.Background(), s.Key(), bytes.NewReader(file), int64(len(file))))
			f.segs[i] = append(f.segs[i], s)
			f.files[s.Key()] = file
			start = start.Add(run.durs[j])
		}
	}
	return f
}

// runEnd is the end of run i of the fixture.
func (f *fixture) runEnd(i int) time.Time {
	s := f.segs[i][len(f.segs[i])-1]
	return s.End()
}

// runDuration is the media length of run i.
func (f *fixture) runDuration(i int) time.Duration {
	return f.runEnd(i).Sub(f.segs[i][0].Start)
}
