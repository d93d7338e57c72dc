package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A Low-Latency playlist as gohlslib writes it (the in-progress segment's
// parts have no date-time of their own).
const llPlaylist = `#EXTM3U
#EXT-X-VERSION:10
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.58500,CAN-SKIP-UNTIL=12.00000
#EXT-X-PART-INF:PART-TARGET=0.23400
#EXT-X-MEDIA-SEQUENCE:1
#EXT-X-MAP:URI="p_video1_init.mp4"
#EXT-X-GAP
#EXTINF:2.00000,
gap.mp4
#EXT-X-PROGRAM-DATE-TIME:2026-11-23T22:05:30.886Z
#EXT-X-PART:DURATION=1.00000,URI="p_video1_part0.mp4",INDEPENDENT=YES
#EXT-X-PART:DURATION=1.00000,URI="p_video1_part1.mp4"
#EXTINF:2.00000,
p_video1_seg2.mp4
#EXT-X-PART:DURATION=0.50000,URI="p_video1_part2.mp4",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.25000,URI="p_video1_part3.mp4"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p_video1_part4.mp4"
`

func TestParseLowLatencyPlaylist(t *testing.T) {
	var pl mediaPlaylist
	require.NoError(t, pl.parse(llPlaylist))
	assert.True(t, pl.lowLatency())
	assert.Equal(t, 2*time.Second, pl.targetDuration)
	assert.Equal(t, 234*time.Millisecond, pl.partTarget)
	assert.Equal(t, 585*time.Millisecond, pl.partHoldBack)
	assert.Equal(t, "p_video1_init.mp4", pl.mapURI)
	require.Len(t, pl.segments, 3)
	gap, seg, cur := pl.segments[0], pl.segments[1], pl.segments[2]
	assert.True(t, gap.gap)
	assert.True(t, gap.pdt.IsZero())
	assert.EqualValues(t, 1, gap.msn)
	assert.EqualValues(t, 2, seg.msn)
	assert.True(t, seg.complete)
	assert.Equal(t, "p_video1_seg2.mp4", seg.uri)
	require.Len(t, seg.parts, 2)
	assert.True(t, seg.parts[0].independent)
	assert.False(t, seg.parts[1].independent)
	pdt := time.Date(2026, 11, 23, 22, 5, 30, 886e6, time.UTC)
	assert.True(t, seg.pdt.Equal(pdt))
	assert.True(t, seg.end(0).Equal(pdt.Add(time.Second)))
	assert.True(t, seg.end(-1).Equal(pdt.Add(2*time.Second)))
	// The parts of the segment being produced: its date-time carried forward.
	assert.EqualValues(t, 3, cur.msn)
	assert.False(t, cur.complete)
	require.Len(t, cur.parts, 2)
	assert.True(t, cur.pdt.Equal(pdt.Add(2*time.Second)))
	assert.True(t, cur.end(1).Equal(pdt.Add(2750*time.Millisecond)))
	assert.EqualValues(t, 3, pl.nextMSN())
	assert.EqualValues(t, 1, pl.firstMSN())
	assert.Nil(t, pl.segment(4))

	// Reparsing reuses the slices and forgets the old content.
	require.NoError(t, pl.parse("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:7\n#EXTINF:4.0,\na.ts\n#EXT-X-ENDLIST\n"))
	assert.False(t, pl.lowLatency())
	assert.True(t, pl.endList)
	require.Len(t, pl.segments, 1)
	assert.Equal(t, hlsSegment{msn: 7, uri: "a.ts", dur: 4 * time.Second, complete: true, parts: pl.segments[0].parts}, pl.segments[0])
	assert.Empty(t, pl.segments[0].parts)
}

func TestParsePlaylistErrors(t *testing.T) {
	for _, body := range []string{
		"",
		"#EXT-X-TARGETDURATION:2\n",
		"#EXTM3U\n#EXTINF:2,\na.ts\n", // no target duration
		"#EXTM3U\n#EXT-X-TARGETDURATION:2\na.ts\n",                             // no EXTINF
		"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART:DURATION=0.2\n",         // no URI
		"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-BYTERANGE:100@0\n",           // byte ranges
		"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PROGRAM-DATE-TIME:yesterday", // bad date
	} {
		var pl mediaPlaylist
		assert.Error(t, pl.parse(body), body)
	}
}

func TestParseMultivariant(t *testing.T) {
	body := `#EXTM3U
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="other",NAME="x",DEFAULT=YES,URI="other.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="en",URI="en.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="fr",DEFAULT=YES,URI="fr.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=2600739,CODECS="avc1.64001f,mp4a.40.2",AUDIO="audio"
video1_stream.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=800000
low.m3u8
`
	rs, multi, err := parseMultivariant(body)
	require.NoError(t, err)
	assert.True(t, multi)
	assert.Equal(t, []hlsRendition{{"video1_stream.m3u8", "video"}, {"fr.m3u8", "audio"}}, rs)

	rs, multi, err = parseMultivariant("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nmain.m3u8\n")
	require.NoError(t, err)
	assert.True(t, multi)
	assert.Equal(t, []hlsRendition{{"main.m3u8", "video"}}, rs)

	_, multi, err = parseMultivariant(llPlaylist)
	require.NoError(t, err)
	assert.False(t, multi)
}

func TestAttr(t *testing.T) {
	l := `DURATION=0.2,URI="a,b.mp4",INDEPENDENT=YES`
	assert.Equal(t, "0.2", attr(l, "DURATION"))
	assert.Equal(t, "a,b.mp4", attr(l, "URI"))
	assert.Equal(t, "YES", attr(l, "INDEPENDENT"))
	assert.Equal(t, "", attr(l, "GAP"))
}

func TestPlayerURL(t *testing.T) {
	for _, tc := range []struct {
		in    string
		force Protocol
		proto Protocol
		out   string
	}{
		{"http://h:8080/live/cam1/index.m3u8", "", HLS, "http://h:8080/live/cam1/index.m3u8"},
		{"https://h/live/cam1/index.m3u8?token=x", "", HLS, "https://h/live/cam1/index.m3u8?token=x"},
		{"http://h:8080/live/cam1.flv", "", HTTPFLV, "http://h:8080/live/cam1.flv"},
		{"http://h:8080/live/cam1", HLS, HLS, "http://h:8080/live/cam1/index.m3u8"},
		{"http://h:8080/live/cam1.flv?k=v", HLS, HLS, "http://h:8080/live/cam1/index.m3u8?k=v"},
		{"http://h:8080/live/cam1/index.m3u8", HLS, HLS, "http://h:8080/live/cam1/index.m3u8"},
		{"rtmp://h/live/cam1", RTMP, RTMP, "rtmp://h/live/cam1"},
	} {
		proto, out, err := playerURL(tc.in, tc.force)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.proto, proto, tc.in)
		assert.Equal(t, tc.out, out, tc.in)
	}
	for _, tc := range []struct {
		in    string
		force Protocol
	}{
		{"rtmp://h/live/cam1", HLS},
		{"http://h/live/cam1.flv", RTMP},
		{"https://h/live/cam1.flv", ""},
		{"ws://h/live/cam1.flv", HTTPFLV},
	} {
		_, _, err := playerURL(tc.in, tc.force)
		assert.Error(t, err, "%s as %q", tc.in, tc.force)
	}
	_, err := ParseProtocol("srt")
	assert.Error(t, err)
	p, err := ParseProtocol("hls")
	require.NoError(t, err)
	assert.Equal(t, HLS, p)
}

// fakeHLS is a live (LL-)HLS server driven by the clock: part k of the
// stream ends at start + (k+1) × partDur, when it becomes available, and a
// segment is partsPerSeg parts. Its program date-times are exact, so a
// player's latency to live is only what the requests take.
type fakeHLS struct {
	start       time.Time
	partDur     time.Duration
	partsPerSeg int
	window      int // complete segments listed
	lowLatency  bool
	srv         *httptest.Server

	mu   sync.Mutex
	gets map[string]int
}

func newFakeHLS(t *testing.T, lowLatency bool) *fakeHLS {
	f := &fakeHLS{
		start:       time.Now().Add(-2 * time.Second).Truncate(time.Millisecond),
		partDur:     50 * time.Millisecond,
		partsPerSeg: 4,
		window:      6,
		lowLatency:  lowLatency,
		gets:        map[string]int{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeHLS) url() string { return f.srv.URL + "/live/s/index.m3u8" }

// done is the number of parts complete at now.
func (f *fakeHLS) done(now time.Time) int { return int(now.Sub(f.start) / f.partDur) }

func (f *fakeHLS) serve(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/live/s/")
	f.mu.Lock()
	f.gets[name]++
	f.mu.Unlock()
	switch {
	case name == "index.m3u8":
		fmt.Fprint(w, "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"a\",DEFAULT=YES,URI=\"a.m3u8\"\n"+
			"#EXT-X-STREAM-INF:BANDWIDTH=1000,AUDIO=\"a\"\nv.m3u8\n")
	case name == "v.m3u8" || name == "a.m3u8":
		f.servePlaylist(w, r, name[:1])
	case strings.HasSuffix(name, ".mp4"):
		_, _ = w.Write(bytes.Repeat([]byte{1}, 1000))
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeHLS) servePlaylist(w http.ResponseWriter, r *http.Request, prefix string) {
	if msn := r.URL.Query().Get("_HLS_msn"); msn != "" && f.lowLatency {
		m, _ := strconv.Atoi(msn)
		p, _ := strconv.Atoi(r.URL.Query().Get("_HLS_part"))
		k := m*f.partsPerSeg + min(p, f.partsPerSeg) // part index in the stream
		select {
		case <-time.After(time.Until(f.start.Add(time.Duration(k+1) * f.partDur))):
		case <-r.Context().Done():
			return
		}
	}
	done := f.done(time.Now())
	segs := done / f.partsPerSeg
	first := max(0, segs-f.window)
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:10\n#EXT-X-TARGETDURATION:1\n")
	if f.lowLatency {
		fmt.Fprintf(&b, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.15\n#EXT-X-PART-INF:PART-TARGET=0.05\n")
	}
	fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n#EXT-X-MAP:URI=\"%s-init.mp4\"\n", first, prefix)
	part := func(k int) {
		indep := ""
		if k%f.partsPerSeg == 0 {
			indep = ",INDEPENDENT=YES"
		}
		fmt.Fprintf(&b, "#EXT-X-PART:DURATION=0.05,URI=\"%s-p%d.mp4\"%s\n", prefix, k, indep)
	}
	for m := first; m < segs; m++ {
		pdt := f.start.Add(time.Duration(m*f.partsPerSeg) * f.partDur)
		fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", pdt.UTC().Format("2006-01-02T15:04:05.000Z"))
		if f.lowLatency && m >= segs-2 {
			for k := m * f.partsPerSeg; k < (m+1)*f.partsPerSeg; k++ {
				part(k)
			}
		}
		fmt.Fprintf(&b, "#EXTINF:0.2,\n%s-s%d.mp4\n", prefix, m)
	}
	if f.lowLatency {
		for k := segs * f.partsPerSeg; k < done; k++ {
			part(k)
		}
	}
	w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
	_, _ = io.WriteString(w, b.String())
}

func TestRunHLSLowLatency(t *testing.T) {
	f := newFakeHLS(t, true)
	var progress bytes.Buffer
	r, err := Run(context.Background(), Config{
		URLs:        []string{f.url()},
		Players:     4,
		Duration:    1500 * time.Millisecond,
		Ramp:        200 * time.Millisecond,
		Progress:    500 * time.Millisecond,
		ProgressOut: &progress,
	})
	require.NoError(t, err)
	require.True(t, r.OK(), "%+v", r.Errors)
	require.NotNil(t, r.HLS)
	h := r.HLS
	assert.Equal(t, 4, h.Players)
	assert.Equal(t, 4, h.LowLatency)
	assert.Empty(t, h.HTTPErrors)
	assert.Zero(t, h.Missed)
	assert.Zero(t, h.Resyncs)
	assert.EqualValues(t, 4*2, h.Init.Requests) // one per media playlist
	assert.EqualValues(t, 4*(1+2), h.Playlist.Requests)
	assert.Positive(t, h.BlockingReload.Requests)
	assert.Zero(t, h.Segment.Requests)
	assert.Equal(t, h.Media, h.Part.Requests)
	// 1.5 s of 50 ms parts, two media playlists, from the latest
	// independent part: about 30 parts each, plus the backlog.
	assert.Greater(t, h.Media, uint64(4*2*20))
	assert.Positive(t, h.LatencyToLiveMs.P50)
	assert.Less(t, h.EdgeLatencyToLiveMs.P99, 40.0)
	assert.Less(t, h.StartupLatencyToLiveMs.Max, 4*50+40.0) // at most a segment behind
	assert.InDelta(t, 50, h.BlockingReload.LatencyMs.P50, 25)
	assert.Equal(t, h.Playlist.Bytes+h.BlockingReload.Bytes+h.Part.Bytes+h.Init.Bytes, r.Bytes)

	// Every part was fetched once per player and media playlist, no more.
	f.mu.Lock()
	var parts int
	for name, n := range f.gets {
		if strings.Contains(name, "-p") {
			parts += n
			assert.LessOrEqual(t, n, 4, name)
		}
	}
	f.mu.Unlock()
	// Requests cut short by the end of the run reach the server but are
	// not counted: at most one per media playlist.
	assert.GreaterOrEqual(t, parts, int(h.Media))
	assert.LessOrEqual(t, parts, int(h.Media)+4*2)
	for _, pr := range r.PlayerResults {
		assert.Positive(t, pr.Startup)
		assert.GreaterOrEqual(t, pr.Startup, pr.Connect)
	}

	var text bytes.Buffer
	require.NoError(t, WriteText(&text, &r.Summary))
	for _, want := range []string{"4 connected, 0 failed", "low-latency", "blocking", "to live", "http errors none"} {
		assert.Contains(t, text.String(), want)
	}
	assert.NotContains(t, text.String(), "video ")
	assert.Contains(t, progress.String(), "parts and segments")
	assert.NotContains(t, progress.String(), "video frames")
}

func TestRunHLSClassic(t *testing.T) {
	f := newFakeHLS(t, false)
	r, err := Run(context.Background(), Config{URLs: []string{f.url()}, Players: 3, Duration: 2 * time.Second})
	require.NoError(t, err)
	require.True(t, r.OK(), "%+v", r.Errors)
	h := r.HLS
	require.NotNil(t, h)
	assert.Zero(t, h.LowLatency)
	assert.Equal(t, 3, h.Classic)
	assert.Zero(t, h.BlockingReload.Requests)
	assert.Zero(t, h.Part.Requests)
	assert.Equal(t, h.Media, h.Segment.Requests)
	// 2 s of 200 ms segments, from three segments before the end, polled
	// every 500 ms: every segment, without gaps.
	assert.GreaterOrEqual(t, h.Media, uint64(3*2*10))
	assert.Zero(t, h.Missed)
	assert.Empty(t, h.HTTPErrors)
	// A segment is at most one polling interval (and the request) late.
	assert.Less(t, h.EdgeLatencyToLiveMs.Max, 500+40.0)
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, n := range f.gets {
		if strings.Contains(name, "-s") {
			assert.LessOrEqual(t, n, 3, name)
		}
	}
}

func TestRunHLSFailures(t *testing.T) {
	f := newFakeHLS(t, true)
	r, err := Run(context.Background(), Config{
		URLs:     []string{f.srv.URL + "/live/missing/index.m3u8"},
		Players:  2,
		Duration: time.Second,
		Ramp:     0,
	})
	require.NoError(t, err)
	assert.False(t, r.OK())
	assert.Equal(t, 2, r.Failed)
	require.Len(t, r.Errors, 1)
	assert.Equal(t, ErrorCount{Error: "connect: HTTP 404 Not Found", Count: 2}, r.Errors[0])
	require.NotNil(t, r.HLS)
	assert.Equal(t, []HTTPErrorCount{{Status: 404, Error: "HTTP 404 Not Found", Count: 2}}, r.HLS.HTTPErrors)
	assert.Zero(t, r.HLS.LowLatency+r.HLS.Classic)
	var text bytes.Buffer
	require.NoError(t, WriteText(&text, &r.Summary))
	assert.Contains(t, text.String(), "no media playlist loaded")
	assert.Contains(t, text.String(), "2 × HTTP 404 Not Found")
}

// BenchmarkParseLowLatencyPlaylist measures a reload's parse of a typical
// LL-HLS playlist (7 segments, parts of the last two and the current one).
func BenchmarkParseLowLatencyPlaylist(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("#EXTM3U\n#EXT-X-VERSION:10\n#EXT-X-TARGETDURATION:2\n" +
		"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.58500,CAN-SKIP-UNTIL=12.00000\n" +
		"#EXT-X-PART-INF:PART-TARGET=0.23400\n#EXT-X-MEDIA-SEQUENCE:100\n#EXT-X-MAP:URI=\"p_video1_init.mp4\"\n")
	k := 0
	for m := 100; m < 107; m++ {
		if m >= 105 {
			sb.WriteString("#EXT-X-PROGRAM-DATE-TIME:2026-11-23T22:05:30.886Z\n")
			for i := range 9 {
				indep := ""
				if i == 0 {
					indep = ",INDEPENDENT=YES"
				}
				fmt.Fprintf(&sb, "#EXT-X-PART:DURATION=0.23327,URI=\"p_video1_part%d.mp4\"%s\n", k, indep)
				k++
			}
		}
		fmt.Fprintf(&sb, "#EXTINF:2.00000,\np_video1_seg%d.mp4\n", m)
	}
	for range 4 {
		fmt.Fprintf(&sb, "#EXT-X-PART:DURATION=0.23327,URI=\"p_video1_part%d.mp4\"\n", k)
		k++
	}
	fmt.Fprintf(&sb, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p_video1_part%d.mp4\"\n", k)
	body := sb.String()
	var pl mediaPlaylist
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := pl.parse(body); err != nil {
			b.Fatal(err)
		}
	}
}
