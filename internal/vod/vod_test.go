package vod

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
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

	"github.com/quasipaa/quasipaa/internal/record"
	"github.com/quasipaa/quasipaa/internal/storage"
)

const rfc = time.RFC3339Nano

// server starts the handler over the fixture's store.
func (f *fixture) server(t *testing.T, opts Options) (*httptest.Server, *Handler) {
	t.Helper()
	return f.serverAt(t, opts, time.Now)
}

// serverAt is server with the handler's clock set to now.
func (f *fixture) serverAt(t *testing.T, opts Options, now func() time.Time) (*httptest.Server, *Handler) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := New(f.store, opts)
	h.now = now
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, h
}

// fetch does a request and returns the response with its body read.
func fetch(t *testing.T, method, u string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

// rangeQuery is ?from=…&to=… for [from, to).
func rangeQuery(from, to time.Time) string {
	return "from=" + url.QueryEscape(from.Format(rfc)) + "&to=" + url.QueryEscape(to.Format(rfc))
}

// playlistLines returns the non-empty lines of a playlist.
func playlistLines(body []byte) []string {
	var out []string
	for l := range strings.SplitSeq(string(body), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func count(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

func countExact(lines []string, line string) int {
	n := 0
	for _, l := range lines {
		if l == line {
			n++
		}
	}
	return n
}

func TestVODPlaylist(t *testing.T) {
	f := newFixture(t)
	srv, _ := f.server(t, Options{})
	from, to := run1Start.Add(-time.Minute), f.runEnd(1).Add(time.Minute)
	resp, body := fetch(t, "GET", srv.URL+"/vod/live/cam1/index.m3u8?"+rangeQuery(from, to)+"&token=s3cr%26t")
	require.Equal(t, 200, resp.StatusCode, string(body))
	assert.Equal(t, "application/vnd.apple.mpegurl", resp.Header.Get("Content-Type"))
	lines := playlistLines(body)

	all := append(append([]record.Segment(nil), f.segs[0]...), f.segs[1]...)
	maxDur := time.Duration(0)
	for _, s := range all {
		maxDur = max(maxDur, s.Duration)
	}
	want := []string{
		"#EXTM3U",
		"#EXT-X-VERSION:7",
		fmt.Sprintf("#EXT-X-TARGETDURATION:%d", int((maxDur+time.Second-1)/time.Second)),
		"#EXT-X-PLAYLIST-TYPE:VOD",
		"#EXT-X-INDEPENDENT-SEGMENTS",
	}
	q := "?token=s3cr%26t"
	for i, s := range all {
		if i == len(f.segs[0]) {
			want = append(want, "#EXT-X-DISCONTINUITY")
		}
		if i == 0 || i == len(f.segs[0]) {
			want = append(want, `#EXT-X-MAP:URI="init/`+s.Name()+q+`"`)
		}
		want = append(want,
			"#EXT-X-PROGRAM-DATE-TIME:"+s.Start.Format("2006-01-02T15:04:05.000Z"),
			fmt.Sprintf("#EXTINF:%.3f,", s.Duration.Seconds()),
			"seg/"+s.Name()+q)
	}
	want = append(want, "#EXT-X-ENDLIST")
	assert.Equal(t, want, lines)
	assert.NotContains(t, string(body), "from=", "from/to are not carried onto URIs")

	// Whole segments overlapping the range: from inside segment 1 to inside segment 2.
	s1, s2 := f.segs[0][1], f.segs[0][2]
	_, body = fetch(t, "GET", srv.URL+"/vod/live/cam1/index.m3u8?"+rangeQuery(s1.Start.Add(500*time.Millisecond), s2.Start.Add(time.Millisecond)))
	lines = playlistLines(body)
	assert.Equal(t, 2, count(lines, "#EXTINF:"), string(body))
	assert.Contains(t, lines, "seg/"+s1.Name())
	assert.Contains(t, lines, "seg/"+s2.Name())
	assert.Contains(t, lines, `#EXT-X-MAP:URI="init/`+s1.Name()+`"`, "the init of a run is served from its first segment in the playlist")

	// A gap inside one run (a lost segment) is a discontinuity too, without a new map.
	require.NoError(t, f.store.Delete(context.Background(), f.segs[0][3].Key()))
	_, body = fetch(t, "GET", srv.URL+"/vod/live/cam1/index.m3u8?"+rangeQuery(run1Start, f.runEnd(0)))
	lines = playlistLines(body)
	assert.Equal(t, 1, countExact(lines, "#EXT-X-DISCONTINUITY"), string(body))
	assert.Equal(t, 1, count(lines, "#EXT-X-MAP:"), string(body))
	assert.Equal(t, len(f.segs[0])-1, count(lines, "#EXTINF:"))

	// HEAD: headers only.
	resp, body = fetch(t, "HEAD", srv.URL+"/vod/live/cam1/index.m3u8?"+rangeQuery(from, to))
	assert.Equal(t, 200, resp.StatusCode)
	assert.Empty(t, body)
	assert.NotEmpty(t, resp.Header.Get("Content-Length"))
}

// probe is the part of ffprobe's JSON the tests read.
type probe struct {
	Format struct {
		Duration  string `json:"duration"`
		StartTime string `json:"start_time"`
	} `json:"format"`
	Streams []struct {
		CodecType string `json:"codec_type"`
		StartTime string `json:"start_time"`
	} `json:"streams"`
}

func ffprobe(t *testing.T, input string) probe {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", input).Output()
	require.NoError(t, err, "ffprobe %s", input)
	var p probe
	require.NoError(t, json.Unmarshal(out, &p))
	return p
}

// decode runs ffmpeg over input and returns what it printed at level error.
func decode(t *testing.T, input string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-v", "error", "-i", input, "-f", "null", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	return stderr.String()
}

// decodeAll runs ffmpeg over input, tolerating decoding errors.
func decodeAll(t *testing.T, input string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-v", "error", "-i", input, "-f", "null", "-").CombinedOutput()
	require.NoError(t, err, string(out))
}

func seconds(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err, "%q", s)
	return v
}

func TestFFmpegPlaysPlaylist(t *testing.T) {
	needFFmpeg(t)
	f := newFixture(t)
	srv, _ := f.server(t, Options{})
	for run := range 2 {
		u := srv.URL + "/vod/live/cam1/index.m3u8?" + rangeQuery(f.segs[run][0].Start, f.runEnd(run)) + "&token=abc"
		assert.Empty(t, decode(t, u), "run %d", run)
		p := ffprobe(t, u)
		assert.InDelta(t, f.runDuration(run).Seconds(), seconds(t, p.Format.Duration), 0.5)
		assert.Len(t, p.Streams, 2)
	}
	// Both runs: the two runs have different resolutions, and ffmpeg's HLS
	// demuxer does not apply the second EXT-X-MAP's codec parameters (its own
	// fMP4 HLS output fails the same way), so only check it reads to the end.
	u := srv.URL + "/vod/live/cam1/index.m3u8?" + rangeQuery(run1Start, f.runEnd(1))
	decodeAll(t, u)
	p := ffprobe(t, u)
	want := (f.runDuration(0) + f.runDuration(1)).Seconds()
	assert.InDelta(t, want, seconds(t, p.Format.Duration), 0.5)
}

func TestSegmentAndInit(t *testing.T) {
	f := newFixture(t)
	srv, _ := f.server(t, Options{})
	s := f.segs[0][2]
	file := f.files[s.Key()]
	base := srv.URL + "/vod/live/cam1/"

	resp, body := fetch(t, "GET", base+"init/"+s.Name())
	require.Equal(t, 200, resp.StatusCode, string(body))
	assert.Equal(t, file[:s.InitLen], body)
	assert.Equal(t, "video/mp4", resp.Header.Get("Content-Type"))
	assert.Equal(t, "public, max-age=31536000, immutable", resp.Header.Get("Cache-Control"))

	resp, body = fetch(t, "GET", base+"seg/"+s.Name()+"?token=x")
	require.Equal(t, 200, resp.StatusCode, string(body))
	assert.Equal(t, file[s.InitLen:], body)
	assert.Equal(t, "video/iso.segment", resp.Header.Get("Content-Type"))
	assert.Equal(t, "public, max-age=31536000, immutable", resp.Header.Get("Cache-Control"))
	etag := resp.Header.Get("ETag")
	assert.NotEmpty(t, etag)

	resp, body = fetch(t, "GET", base+"seg/"+s.Name(), "Range", "bytes=100-199")
	assert.Equal(t, 206, resp.StatusCode)
	assert.Equal(t, file[s.InitLen+100:s.InitLen+200], body)
	resp, body = fetch(t, "GET", base+"seg/"+s.Name(), "Range", "bytes=-10")
	assert.Equal(t, 206, resp.StatusCode)
	assert.Equal(t, file[len(file)-10:], body)
	resp, body = fetch(t, "GET", base+"init/"+s.Name(), "Range", "bytes=10-")
	assert.Equal(t, 206, resp.StatusCode)
	assert.Equal(t, file[10:s.InitLen], body)

	resp, body = fetch(t, "HEAD", base+"seg/"+s.Name())
	assert.Equal(t, 200, resp.StatusCode)
	assert.Empty(t, body)
	assert.Equal(t, strconv.Itoa(len(file)-int(s.InitLen)), resp.Header.Get("Content-Length"))

	resp, _ = fetch(t, "GET", base+"seg/"+s.Name(), "If-None-Match", etag)
	assert.Equal(t, 304, resp.StatusCode)
}

// readTimes lists the tfdt of every traf of every moof of a whole file.
func readTimes(t *testing.T, file []byte) [][]trackTime {
	t.Helper()
	top, err := children(file, 0, len(file))
	require.NoError(t, err)
	var out [][]trackTime
	for _, b := range top {
		if b.typ == "moof" {
			tt, err := moofTimes(file[b.start:b.end])
			require.NoError(t, err)
			out = append(out, tt)
		}
	}
	return out
}

func TestDownload(t *testing.T) {
	needFFmpeg(t)
	f := newFixture(t)
	srv, _ := f.server(t, Options{})
	dir := t.TempDir()

	cases := []struct {
		name      string
		from, to  time.Time
		run       int
		first, n  int // segments of the run in the file
		truncated bool
	}{
		{"whole run 1", run1Start, f.runEnd(0), 0, 0, len(f.segs[0]), false},
		{"middle of run 1", f.segs[0][2].Start.Add(time.Second), f.segs[0][4].Start.Add(time.Second), 0, 2, 3, false},
		{"both runs", run1Start.Add(-time.Hour), f.runEnd(1).Add(time.Hour), 0, 0, len(f.segs[0]), true},
		{"run 2 (ffmpeg's styp and sidx)", f.segs[1][1].Start, f.runEnd(1), 1, 1, len(f.segs[1]) - 1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := srv.URL + "/vod/live/cam1.mp4?" + rangeQuery(c.from, c.to)
			resp, body := fetch(t, "GET", u)
			require.Equal(t, 200, resp.StatusCode, string(body))
			assert.Equal(t, "video/mp4", resp.Header.Get("Content-Type"))
			assert.Equal(t, `attachment; filename="cam1_`+c.from.Format("20060102T150405Z")+`.mp4"`, resp.Header.Get("Content-Disposition"))
			segs := f.segs[c.run][c.first : c.first+c.n]
			size := segs[0].InitLen
			for _, s := range segs {
				size += s.Size - s.InitLen
			}
			assert.Equal(t, size, int64(len(body)))
			if c.truncated {
				assert.Equal(t, "run", resp.Header.Get("X-Quasipaa-Truncated"))
				assert.Equal(t, f.segs[1][0].Start.Format("2006-01-02T15:04:05.000Z"), resp.Header.Get("X-Quasipaa-Next"))
			} else {
				assert.Empty(t, resp.Header.Get("X-Quasipaa-Truncated"))
			}

			// The timeline starts at 0 and the fragments follow each other.
			times := readTimes(t, body)
			require.Len(t, times, c.n)
			minT := ^uint64(0)
			for _, tt := range times[0] {
				minT = min(minT, tt.time)
			}
			assert.Zero(t, minT)
			for i := 1; i < len(times); i++ {
				assert.Greater(t, times[i][0].time, times[i-1][0].time)
			}
			assert.NotContains(t, string(body[segs[0].InitLen:]), "sidx")
			assert.NotContains(t, string(body[segs[0].InitLen:]), "styp")

			file := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".mp4")
			require.NoError(t, os.WriteFile(file, body, 0o644))
			assert.Empty(t, decode(t, file))
			p := ffprobe(t, file)
			want := segs[len(segs)-1].End().Sub(segs[0].Start).Seconds()
			assert.InDelta(t, want, seconds(t, p.Format.Duration), 2.1, "±1 segment")
			assert.InDelta(t, 0, seconds(t, p.Format.StartTime), 0.1)
			require.Len(t, p.Streams, 2)
			for _, st := range p.Streams {
				assert.InDelta(t, 0, seconds(t, st.StartTime), 0.1, st.CodecType)
			}

			// Decoding it from the server (ffmpeg reads with Range requests) works too.
			assert.Empty(t, decode(t, u))
		})
	}
}

func TestDownloadRanges(t *testing.T) {
	f := newFixture(t)
	srv, _ := f.server(t, Options{})
	for run := range 2 {
		u := srv.URL + "/vod/live/cam1.mp4?" + rangeQuery(f.segs[run][0].Start, f.runEnd(run))
		resp, full := fetch(t, "GET", u)
		require.Equal(t, 200, resp.StatusCode, string(full))
		etag := resp.Header.Get("ETag")
		require.NotEmpty(t, etag)
		size := int64(len(full))
		initLen := f.segs[run][0].InitLen
		frag1 := initLen + f.segs[run][0].Size - initLen // where the second fragment starts
		frag2 := frag1 + f.segs[run][1].Size - initLen
		ranges := [][2]int64{
			{0, 0}, {0, 99}, {initLen - 10, initLen + 10}, {initLen, initLen + 4000},
			{frag1 - 1, frag1}, {frag1 - 5000, frag1 + 70000}, {frag1 + 100, frag2 + 100},
			{initLen + scanHead - 3, initLen + scanHead + 3}, {frag2 - 1, size - 1}, {size - 1, size - 1},
			{1234, size - 1},
		}
		for _, rg := range ranges {
			spec := fmt.Sprintf("bytes=%d-%d", rg[0], rg[1])
			resp, body := fetch(t, "GET", u, "Range", spec)
			require.Equal(t, 206, resp.StatusCode, spec)
			assert.Equal(t, fmt.Sprintf("bytes %d-%d/%d", rg[0], rg[1], size), resp.Header.Get("Content-Range"))
			assert.True(t, bytes.Equal(full[rg[0]:rg[1]+1], body), "run %d %s", run, spec)
		}
		resp, body := fetch(t, "GET", u, "Range", "bytes=-777")
		assert.Equal(t, 206, resp.StatusCode)
		assert.True(t, bytes.Equal(full[size-777:], body))
		resp, body = fetch(t, "GET", u, "Range", fmt.Sprintf("bytes=%d-", frag1-3))
		assert.Equal(t, 206, resp.StatusCode)
		assert.True(t, bytes.Equal(full[frag1-3:], body))
		resp, _ = fetch(t, "GET", u, "Range", fmt.Sprintf("bytes=%d-", size))
		assert.Equal(t, http.StatusRequestedRangeNotSatisfiable, resp.StatusCode)
		resp, body = fetch(t, "HEAD", u)
		assert.Equal(t, 200, resp.StatusCode)
		assert.Empty(t, body)
		assert.Equal(t, strconv.FormatInt(size, 10), resp.Header.Get("Content-Length"))
		assert.Equal(t, "bytes", resp.Header.Get("Accept-Ranges"))
		// Several ranges at once (multipart/byteranges), across fragments.
		resp, body = fetch(t, "GET", u, "Range", fmt.Sprintf("bytes=0-9,%d-%d,%d-%d", frag1-5, frag1+5, frag2, frag2+20))
		require.Equal(t, 206, resp.StatusCode)
		_, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		require.NoError(t, err)
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for _, want := range [][2]int64{{0, 9}, {frag1 - 5, frag1 + 5}, {frag2, frag2 + 20}} {
			pt, err := mr.NextPart()
			require.NoError(t, err)
			got, err := io.ReadAll(pt)
			require.NoError(t, err)
			assert.Equal(t, full[want[0]:want[1]+1], got)
		}
		resp, body = fetch(t, "GET", u, "Range", "bytes=50-60", "If-Range", etag)
		assert.Equal(t, 206, resp.StatusCode)
		assert.Equal(t, full[50:61], body)
	}
}

// mp4Reader over a store reads exactly the bytes a full read gives, after
// any sequence of seeks.
func TestMP4ReaderSeeks(t *testing.T) {
	f := newFixture(t)
	srv, _ := f.server(t, Options{})
	u := srv.URL + "/vod/live/cam1.mp4?" + rangeQuery(run1Start, f.runEnd(0))
	_, full := fetch(t, "GET", u)
	h := New(f.store, Options{Logger: slog.New(slog.DiscardHandler)})
	req := httptest.NewRequest("GET", u, nil)
	rd, err := h.newMP4Reader(req, f.segs[0])
	require.NoError(t, err)
	defer rd.Close()
	size, err := rd.Seek(0, io.SeekEnd)
	require.NoError(t, err)
	require.Equal(t, int64(len(full)), size)
	for _, pos := range []int64{size - 10, 0, 5000, size / 2, 1, size / 3, size - 1} {
		_, err := rd.Seek(pos, io.SeekStart)
		require.NoError(t, err)
		n := min(int64(90000), size-pos)
		buf := make([]byte, n)
		_, err = io.ReadFull(rd, buf)
		require.NoError(t, err)
		require.True(t, bytes.Equal(full[pos:pos+n], buf), "at %d", pos)
	}
}

func TestDVRPlaylist(t *testing.T) {
	f := newFixture(t)
	// State the handler reads while the test changes it.
	var (
		mu     sync.Mutex
		live   = true
		window = time.Minute
		now    = f.runEnd(1).Add(time.Second)
	)
	set := func(fn func()) { mu.Lock(); defer mu.Unlock(); fn() }
	srv, _ := f.serverAt(t, Options{
		DVRWindow: func(p string) time.Duration { mu.Lock(); defer mu.Unlock(); return window },
		Live:      func(string) bool { mu.Lock(); defer mu.Unlock(); return live },
	}, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	u := srv.URL + "/vod/live/cam1/index.m3u8?token=abc"

	type listed struct {
		msn, dseq uint64
		names     []string // segment names, in order
		dseqOf    map[string]uint64
		msnOf     map[string]uint64
		lines     []string
	}
	get := func() listed {
		t.Helper()
		resp, body := fetch(t, "GET", u)
		require.Equal(t, 200, resp.StatusCode, string(body))
		assert.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
		l := listed{lines: playlistLines(body), dseqOf: map[string]uint64{}, msnOf: map[string]uint64{}}
		assert.Zero(t, count(l.lines, "#EXT-X-PLAYLIST-TYPE"))
		for _, line := range l.lines {
			if v, ok := strings.CutPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"); ok {
				l.msn, _ = strconv.ParseUint(v, 10, 64)
			}
			if v, ok := strings.CutPrefix(line, "#EXT-X-DISCONTINUITY-SEQUENCE:"); ok {
				l.dseq, _ = strconv.ParseUint(v, 10, 64)
			}
		}
		dseq := l.dseq
		for _, line := range l.lines {
			if line == "#EXT-X-DISCONTINUITY" {
				dseq++
			}
			if name, ok := strings.CutPrefix(line, "seg/"); ok {
				name = strings.TrimSuffix(name, "?token=abc")
				l.msnOf[name] = l.msn + uint64(len(l.names))
				l.dseqOf[name] = dseq
				l.names = append(l.names, name)
			}
		}
		return l
	}

	// Window of a minute before the end of run 2: all of run 1 and run 2.
	a := get()
	assert.Len(t, a.names, len(f.segs[0])+len(f.segs[1]))
	assert.Zero(t, count(a.lines, "#EXT-X-ENDLIST"), "live: no ENDLIST")
	assert.Equal(t, 1, countExact(a.lines, "#EXT-X-DISCONTINUITY"))
	assert.Contains(t, a.lines, `#EXT-X-MAP:URI="init/`+f.segs[0][0].Name()+`?token=abc"`)

	// The window slides: the first segments leave it, every remaining
	// segment keeps its numbers.
	for _, slide := range []time.Duration{3 * time.Second, 5 * time.Second, 20 * time.Second} {
		set(func() { now = now.Add(slide) })
		b := get()
		require.NotEmpty(t, b.names)
		assert.Less(t, len(b.names), len(a.names)+1)
		for _, n := range b.names {
			if m, ok := a.msnOf[n]; ok {
				assert.Equal(t, m, b.msnOf[n], "media sequence of %s", n)
				assert.Equal(t, a.dseqOf[n], b.dseqOf[n], "discontinuity sequence of %s", n)
			}
		}
		assert.GreaterOrEqual(t, b.msn, a.msn)
		a = b
	}
	// Once the window holds only run 2, the discontinuity was dropped and
	// counted in EXT-X-DISCONTINUITY-SEQUENCE.
	set(func() { now = f.segs[1][1].Start.Add(time.Minute) })
	c := get()
	assert.Zero(t, countExact(c.lines, "#EXT-X-DISCONTINUITY"))
	assert.Equal(t, a.dseqOf[c.names[0]], c.dseq)

	// Not live any more: ENDLIST.
	set(func() { live = false })
	d := get()
	assert.Equal(t, 1, count(d.lines, "#EXT-X-ENDLIST"))

	// A fresh handler (a restart) numbers from the first segment's Unix time.
	restartAt := f.segs[1][1].Start.Add(time.Minute)
	srv2, _ := f.serverAt(t, Options{DVRWindow: func(string) time.Duration { return time.Minute }}, func() time.Time { return restartAt })
	_, body := fetch(t, "GET", srv2.URL+"/vod/live/cam1/index.m3u8")
	assert.Contains(t, string(body), fmt.Sprintf("#EXT-X-MEDIA-SEQUENCE:%d\n", f.segs[1][1].Start.Unix()))

	// No DVR for the path, or nothing recorded in the window.
	set(func() { window = 0 })
	resp, body := fetch(t, "GET", u)
	assert.Equal(t, 404, resp.StatusCode)
	assert.Contains(t, string(body), "dvr_disabled")
	set(func() { window, now = time.Minute, now.Add(time.Hour) })
	resp, body = fetch(t, "GET", u)
	assert.Equal(t, 404, resp.StatusCode)
	assert.Contains(t, string(body), "no_recordings")
}

func TestFFmpegPlaysDVR(t *testing.T) {
	needFFmpeg(t)
	f := newFixture(t)
	srv, _ := f.serverAt(t, Options{
		// Up to 5 s before the start of run 2: only run 2 (see TestFFmpegPlaysPlaylist).
		DVRWindow: func(string) time.Duration { return f.runDuration(1) + 5*time.Second },
		Live:      func(string) bool { return false },
	}, func() time.Time { return f.runEnd(1) })
	u := srv.URL + "/vod/live/cam1/index.m3u8"
	assert.Empty(t, decode(t, u))
	p := ffprobe(t, u)
	assert.InDelta(t, f.runDuration(1).Seconds(), seconds(t, p.Format.Duration), 0.5)
}

// errorBody is the API's error shape.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func TestErrors(t *testing.T) {
	f := newFixture(t)
	srv, _ := f.server(t, Options{MaxRange: 2 * time.Hour})
	ok := rangeQuery(run1Start, f.runEnd(0))
	s := f.segs[0][0]
	missing := s
	missing.Start = missing.Start.Add(time.Hour)
	cases := []struct {
		method, path string
		status       int
		code, says   string
	}{
		{"GET", "/vod/live/cam1/index.m3u8?from=" + url.QueryEscape(run1Start.Format(rfc)), 400, "missing_parameter", "parameter to"},
		{"GET", "/vod/live/cam1/index.m3u8?to=" + url.QueryEscape(run1Start.Format(rfc)), 400, "missing_parameter", "parameter from"},
		{"GET", "/vod/live/cam1.mp4?from=" + url.QueryEscape(run1Start.Format(rfc)), 400, "missing_parameter", "parameter to"},
		{"GET", "/vod/live/cam1.mp4", 400, "missing_parameter", "from and to"},
		{"GET", "/vod/live/cam1/index.m3u8?from=yesterday&to=2026-03-01T10:00:00Z", 400, "bad_parameter", "from="},
		{"GET", "/vod/live/cam1.mp4?from=2026-03-01T10:00:00Z&to=2026-13-01T10:00:00Z", 400, "bad_parameter", "to="},
		{"GET", "/vod/live/cam1/index.m3u8?from=2026-03-01T10:00:00Z&to=2026-03-01T09:00:00Z", 400, "bad_range", "before"},
		{"GET", "/vod/live/cam1/index.m3u8?from=2026-03-01T10:00:00Z&to=2026-03-01T10:00:00Z", 400, "bad_range", "after"},
		{"GET", "/vod/live/cam1.mp4?from=2026-03-01T10:00:00Z&to=2026-03-01T12:00:01Z", 400, "range_too_large", "maximum"},
		{"GET", "/vod/live/cam!1/index.m3u8?" + ok, 400, "invalid_path", "invalid"},
		{"GET", "/vod/live//cam1/index.m3u8?" + ok, 400, "invalid_path", "invalid"},
		{"GET", "/vod/live/nobody/index.m3u8?" + ok, 404, "no_recordings", "live/nobody"},
		{"GET", "/vod/live/nobody.mp4?" + ok, 404, "no_recordings", "live/nobody"},
		{"GET", "/vod/live/cam1/index.m3u8?from=2020-01-01T00:00:00Z&to=2020-01-01T01:00:00Z", 404, "no_recordings", "between"},
		{"GET", "/vod/live/cam1/index.m3u8", 404, "dvr_disabled", "DVR"},
		{"GET", "/vod/live/cam1/seg/nope.mp4", 400, "bad_segment_name", "nope.mp4"},
		{"GET", "/vod/live/cam1/init/1_2_3.mp4", 400, "bad_segment_name", "1_2_3.mp4"},
		{"GET", "/vod/live/cam1/seg/01_2_3_0.mp4", 400, "bad_segment_name", "01_2_3_0.mp4"},
		{"GET", "/vod/live/cam1/seg/" + missing.Name(), 404, "segment_not_found", "no such segment"},
		{"GET", "/vod/live/cam2/init/" + s.Name(), 404, "segment_not_found", "no such segment"},
		{"GET", "/vod/live/cam1/other", 404, "not_found", "index.m3u8"},
		{"POST", "/vod/live/cam1/index.m3u8?" + ok, 405, "method_not_allowed", "POST"},
		{"DELETE", "/vod/live/cam1/seg/" + s.Name(), 405, "method_not_allowed", "DELETE"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			resp, body := fetch(t, c.method, srv.URL+c.path)
			assert.Equal(t, c.status, resp.StatusCode, string(body))
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var eb errorBody
			require.NoError(t, json.Unmarshal(body, &eb), string(body))
			assert.Equal(t, c.code, eb.Error.Code)
			assert.Contains(t, eb.Error.Message, c.says)
			if c.status == 405 {
				assert.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
			}
		})
	}
}

// rawGet sends target as is (no client-side cleaning or escaping) and
// returns the status and body.
func rawGet(t *testing.T, addr, target string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
	_, err = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", target)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestPathTraversal(t *testing.T) {
	f := newFixture(t)
	// Files next to the store that a traversal would reach: a secret, and
	// a whole "recordings" tree with a valid segment of a stream "x".
	outside := filepath.Dir(f.dir)
	secret := []byte("SECRET-OUTSIDE-THE-STORE")
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret.txt"), secret, 0o644))
	s := f.segs[0][0]
	evil := s
	evil.Path = "x/y"
	evilFile := append(append([]byte(nil), f.files[s.Key()][:s.InitLen]...), secret...)
	for _, d := range []string{outside, filepath.Dir(outside)} {
		p := filepath.Join(d, filepath.FromSlash(evil.Key()))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, evilFile, 0o644))
	}
	srv, _ := f.server(t, Options{DVRWindow: func(string) time.Duration { return 24 * 365 * time.Hour }})
	addr := srv.Listener.Addr().String()
	day := s.Start.Format("2006-01-02")
	ok := rangeQuery(run1Start, f.runEnd(0))
	targets := []string{
		"/vod/../secret.txt",
		"/vod/../../secret.txt",
		"/vod/live/../../store/../secret.txt",
		"/vod/live/%2e%2e/x/index.m3u8",
		"/vod/live/%2E%2E/%2e%2e/secret.txt",
		"/vod/%2e%2e/%2e%2e/x/y.mp4?" + ok,
		"/vod/..%2f..%2fx/y/index.m3u8",
		"/vod/live/..%2f..%2f..%2fsecret.txt",
		"/vod/live/cam1/seg/..%2f..%2f..%2f..%2fsecret.txt",
		"/vod/live/cam1/seg/..%2F..%2F..%2F..%2F..%2Fx%2Fy%2F" + day + "%2F" + s.Name(),
		"/vod/..%5c..%5cx/y/index.m3u8",
		"/vod/live%5c..%5c..%5csecret.txt",
		"/vod/x/y%2fseg/" + s.Name(),
		"/vod/live%2fcam1/index.m3u8?" + ok,
		"/vod/./live/cam1/index.m3u8?" + ok,
		"/vod/live/cam1/seg/.",
		"/vod/live/cam1/init/..",
		"/vod/..",
		"/vod/%00/x/index.m3u8",
		"/vod/../recordings/x/y/" + day + "/" + s.Name(),
		"/vod/../../x/y/seg/" + s.Name(),
		"/vod/x/y/../../../x/y/seg/" + s.Name(),
		"/vod/live/cam1/seg/%2e%2e%2f%2e%2e%2fsecret.txt",
	}
	for _, target := range targets {
		status, body := rawGet(t, addr, target)
		assert.Contains(t, []int{400, 404}, status, "%s: %s", target, body)
		assert.NotContains(t, body, "SECRET", target)
	}
	// The stream x/y exists nowhere in the store, so even its valid URLs find nothing.
	status, _ := rawGet(t, addr, "/vod/x/y/seg/"+s.Name())
	assert.Equal(t, 404, status)
	status, _ = rawGet(t, addr, "/vod/x/y/index.m3u8")
	assert.Equal(t, 404, status)
	// And the real stream still plays.
	status, _ = rawGet(t, addr, "/vod/live/cam1/seg/"+s.Name())
	assert.Equal(t, 200, status)
}

// The MP4 download never holds more than the current fragment's moof: the
// mdat payloads stream through.
func TestDownloadStreamsMdat(t *testing.T) {
	f := newFixture(t)
	h := New(f.store, Options{Logger: slog.New(slog.DiscardHandler)})
	req := httptest.NewRequest("GET", "/vod/live/cam1.mp4", nil)
	rd, err := h.newMP4Reader(req, f.segs[0])
	require.NoError(t, err)
	defer rd.Close()
	held := 0
	for _, r := range rd.cur.regions {
		held += len(r.b)
	}
	assert.Less(t, held, scanHead+1, "only the moof is held")
	assert.Greater(t, int(rd.parts[0].n), scanHead, "fixture fragments are bigger than the first read")
	_, err = io.Copy(io.Discard, rd)
	require.NoError(t, err)
}

// brokenStore fails every read.
type brokenStore struct{ storage.Store }

var errBroken = errors.New("store down")

func (brokenStore) List(context.Context, string) ([]storage.ObjectInfo, error) {
	return nil, errBroken
}
func (brokenStore) Stat(context.Context, string) (storage.ObjectInfo, error) {
	return storage.ObjectInfo{}, errBroken
}
func (brokenStore) Get(context.Context, string, int64, int64) (io.ReadCloser, error) {
	return nil, errBroken
}

func TestStoreFailures(t *testing.T) {
	f := newFixture(t)
	s := f.segs[0][0]
	ok := rangeQuery(run1Start, f.runEnd(0))

	srv := httptest.NewServer(New(brokenStore{f.store}, Options{Logger: slog.New(slog.DiscardHandler)}))
	defer srv.Close()
	for _, p := range []string{"/vod/live/cam1/index.m3u8?" + ok, "/vod/live/cam1.mp4?" + ok, "/vod/live/cam1/seg/" + s.Name()} {
		resp, body := fetch(t, "GET", srv.URL+p)
		assert.Equal(t, http.StatusBadGateway, resp.StatusCode, p)
		assert.Contains(t, string(body), "storage_unavailable")
		assert.NotContains(t, string(body), "store down", "internal errors are logged, not shown")
	}

	// Damaged segments: a file no longer than its init is left out of
	// playlists and refused; a fragment that is not MP4 fails the download.
	short := record.Segment{Path: "live/bad", Start: run1Start, Duration: 2 * time.Second, InitLen: 100, Run: run1Start}
	require.NoError(t, f.store.Put(context.Background(), short.Key(), bytes.NewReader(make([]byte, 100)), 100))
	junk := short
	junk.Start = run1Start.Add(time.Hour)
	junk.Run = junk.Start
	junk.InitLen = s.InitLen
	file := append(append([]byte(nil), f.files[s.Key()][:s.InitLen]...), bytes.Repeat([]byte("junk"), 100)...)
	require.NoError(t, f.store.Put(context.Background(), junk.Key(), bytes.NewReader(file), int64(len(file))))
	srv2, _ := f.server(t, Options{})
	resp, body := fetch(t, "GET", srv2.URL+"/vod/live/bad/index.m3u8?"+rangeQuery(run1Start, run1Start.Add(time.Minute)))
	assert.Equal(t, 404, resp.StatusCode, string(body))
	resp, body = fetch(t, "GET", srv2.URL+"/vod/live/bad/seg/"+short.Name())
	assert.Equal(t, 500, resp.StatusCode)
	assert.Contains(t, string(body), "corrupt_segment")
	resp, body = fetch(t, "GET", srv2.URL+"/vod/live/bad.mp4?"+rangeQuery(junk.Start, junk.End()))
	assert.Equal(t, 500, resp.StatusCode)
	assert.Contains(t, string(body), "corrupt_segment")

	// A segment deleted after the playlist was made: 404.
	require.NoError(t, f.store.Delete(context.Background(), s.Key()))
	resp, body = fetch(t, "GET", srv2.URL+"/vod/live/cam1/init/"+s.Name())
	assert.Equal(t, 404, resp.StatusCode)
	assert.Contains(t, string(body), "segment_not_found")
}
