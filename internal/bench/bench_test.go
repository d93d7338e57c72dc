package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quasipaa/quasipaa/internal/protocol/flv"
	"github.com/quasipaa/quasipaa/internal/protocol/rtmp"
	"github.com/quasipaa/quasipaa/internal/protocol/ws"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestVideoKind(t *testing.T) {
	for _, tc := range []struct {
		name string
		body []byte
		want kind
	}{
		{"empty", nil, kindOther},
		{"avc sequence header", []byte{0x17, 0, 0, 0, 0, 1}, kindVideoConfig},
		{"avc keyframe", []byte{0x17, 1, 0, 0, 0, 9}, kindVideoFrame},
		{"avc inter frame", []byte{0x27, 1, 0, 0, 0, 9}, kindVideoFrame},
		{"avc end of sequence", []byte{0x17, 2, 0, 0, 0}, kindOther},
		{"avc truncated", []byte{0x17}, kindOther},
		{"legacy hevc frame", []byte{0x2c, 1, 0, 0, 0}, kindVideoFrame},
		{"legacy hevc sequence header", []byte{0x1c, 0, 0, 0, 0}, kindVideoConfig},
		{"video info frame", []byte{0x57, 0}, kindOther},
		{"vp6 frame", []byte{0x24, 0}, kindVideoFrame},
		{"ex sequence start", []byte{0x90, 'h', 'v', 'c', '1'}, kindVideoConfig},
		{"ex coded frames", []byte{0x91, 'h', 'v', 'c', '1', 0, 0, 0}, kindVideoFrame},
		{"ex coded frames x", []byte{0xa3, 'a', 'v', '0', '1'}, kindVideoFrame},
		{"ex sequence end", []byte{0x92, 'a', 'v', '0', '1'}, kindOther},
		{"ex metadata", []byte{0x94, 'a', 'v', '0', '1'}, kindOther},
		{"ex command frame", []byte{0xd1, 'a', 'v', '0', '1'}, kindOther},
		{"ex modex then coded frames", []byte{0x97, 2, 0, 0, 1, 0x01, 'a', 'v', 'c', '1'}, kindVideoFrame},
		{"ex modex truncated", []byte{0x97, 5, 0}, kindOther},
		{"ex multitrack coded", []byte{0x96, 0x01, 'a', 'v', '0', '1', 0}, kindVideoFrame},
		{"ex multitrack sequence", []byte{0x96, 0x10, 'a', 'v', '0', '1', 0}, kindVideoConfig},
	} {
		assert.Equal(t, tc.want, videoKind(tc.body), tc.name)
	}
}

func TestAudioKind(t *testing.T) {
	for _, tc := range []struct {
		name string
		body []byte
		want kind
	}{
		{"empty", nil, kindOther},
		{"aac config", []byte{0xaf, 0, 0x11, 0x90}, kindAudioConfig},
		{"aac raw", []byte{0xaf, 1, 0x21}, kindAudioFrame},
		{"aac truncated", []byte{0xaf}, kindOther},
		{"mp3", []byte{0x2f, 0xff}, kindAudioFrame},
		{"ex opus sequence start", []byte{0x90, 'O', 'p', 'u', 's'}, kindAudioConfig},
		{"ex opus frame", []byte{0x91, 'O', 'p', 'u', 's', 1}, kindAudioFrame},
		{"ex multichannel config", []byte{0x94, 'O', 'p', 'u', 's'}, kindOther},
		{"ex multitrack frame", []byte{0x95, 0x01, 'O', 'p', 'u', 's'}, kindAudioFrame},
		{"ex modex then frame", []byte{0x97, 0, 0, 0x01, 'O', 'p', 'u', 's'}, kindAudioFrame},
	} {
		assert.Equal(t, tc.want, audioKind(tc.body), tc.name)
	}
}

var (
	testKeyFrame   = []byte{0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65}
	testInterFrame = []byte{0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41}
	testAudioFrame = []byte{0xaf, 1, 0x21, 0x10}
)

// ts30 is the millisecond timestamp of frame i at 30 fps, as muxers round it.
func ts30(i int) uint32 { return uint32(i * 1000 / 30) }

func TestAccountingCountsDropsFromTimestamps(t *testing.T) {
	var a accounting
	now := time.Now()
	received := 0
	for i := range 300 {
		if i >= 100 && i < 105 || i == 200 { // 6 frames lost
			continue
		}
		a.message(flv.TagVideo, ts30(i), testInterFrame, now.Add(time.Duration(i)*33*time.Millisecond))
		a.message(flv.TagAudio, ts30(i), testAudioFrame, now)
		received++
	}
	a.finish(now.Add(300 * 33 * time.Millisecond))
	assert.EqualValues(t, received, a.videoFrames)
	assert.EqualValues(t, received, a.audioFrames)
	assert.EqualValues(t, 6, a.dropped)
	assert.EqualValues(t, 300, a.expected())
	assert.EqualValues(t, 33, a.interval)
	assert.InDelta(t, 30, a.fps(), 0.1)
	assert.Zero(t, a.stalls)
	assert.Zero(t, a.discont)
	assert.EqualValues(t, ts30(299), a.mediaMs)
}

func TestAccountingShortStreamAndDiscontinuity(t *testing.T) {
	var a accounting
	now := time.Now()
	for i := range 10 { // fewer than intervalSamples: settled at finish
		if i == 5 {
			continue
		}
		a.message(flv.TagVideo, ts30(i), testInterFrame, now)
	}
	a.message(flv.TagVideo, 50000, testInterFrame, now) // jump forward: discontinuity
	a.message(flv.TagVideo, 50033, testInterFrame, now)
	a.message(flv.TagVideo, 100, testInterFrame, now) // backwards
	a.finish(now)
	assert.EqualValues(t, 12, a.videoFrames)
	assert.EqualValues(t, 1, a.dropped)
	assert.Equal(t, 2, a.discont)
}

func TestAccountingStalls(t *testing.T) {
	var a accounting
	now := time.Now()
	a.message(flv.TagVideo, 0, testKeyFrame, now)
	a.message(flv.TagVideo, 33, testInterFrame, now.Add(1500*time.Millisecond)) // stall
	a.message(flv.TagVideo, 66, testInterFrame, now.Add(1530*time.Millisecond))
	a.finish(now.Add(4 * time.Second)) // ongoing at the end: another stall
	assert.Equal(t, 2, a.stalls)
	assert.InDelta(t, 1.5+2.47, a.stallTime.Seconds(), 0.01)
	assert.EqualValues(t, 2, a.c.stalls.Load())
}

func TestAccountingIgnoresHeaders(t *testing.T) {
	var a accounting
	now := time.Now()
	a.message(flv.TagScript, 0, []byte{2, 0, 10}, now)
	a.message(flv.TagVideo, 0, []byte{0x17, 0, 0, 0, 0, 1, 2}, now)
	a.message(flv.TagAudio, 0, []byte{0xaf, 0, 0x11, 0x90}, now)
	assert.Zero(t, a.videoFrames)
	assert.Zero(t, a.audioFrames)
	assert.False(t, a.haveVideo)
	assert.EqualValues(t, 3+7+4, a.bytes)
}

func TestAccountingDoesNotAllocate(t *testing.T) {
	var a accounting
	now := time.Now()
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		a.message(flv.TagVideo, ts30(i), testInterFrame, now)
		a.message(flv.TagAudio, ts30(i), testAudioFrame, now)
		i++
	})
	assert.Zero(t, allocs)
}

func TestPercentiles(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	assert.Equal(t, Percentiles{P50: 50, P90: 90, P99: 99, Max: 100}, percentiles(ds))
	assert.Equal(t, Percentiles{P50: 7, P90: 7, P99: 7, Max: 7}, percentiles([]time.Duration{7 * time.Millisecond}))
	assert.Equal(t, Percentiles{}, percentiles(nil))
}

func TestGroupErrorsStripsAddresses(t *testing.T) {
	mk := func(port int) error {
		return fmt.Errorf("read: %w", &net.OpError{Op: "read", Net: "tcp",
			Source: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port},
			Addr:   &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1935},
			Err:    errors.New("connection reset by peer")})
	}
	got := groupErrors([]error{mk(40001), mk(40002), errors.New("other"), mk(40003)})
	assert.Equal(t, []ErrorCount{
		{Error: "read: read: connection reset by peer", Count: 3},
		{Error: "other", Count: 1},
	}, got)
}

func TestConfigValidation(t *testing.T) {
	ok := Config{URLs: []string{"rtmp://h/app/s"}, Players: 1, Duration: time.Second}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no work", func(c *Config) { c.Players = 0 }, "nothing to do"},
		{"bad scheme", func(c *Config) { c.URLs = []string{"srt://h/x"} }, "scheme"},
		{"no url", func(c *Config) { c.URLs = nil }, "URL"},
		{"ramp too long", func(c *Config) { c.Ramp = 2 * time.Second }, "ramp"},
		{"no duration", func(c *Config) { c.Duration = 0 }, "duration"},
		{"publishers without file", func(c *Config) { c.Publishers = 1 }, "file"},
		{"publish over http", func(c *Config) { c.Publishers, c.PublishFile, c.PublishURL = 1, "f.flv", "http://h/a/b.flv" }, "rtmp"},
		{"many publishers one stream", func(c *Config) { c.Publishers, c.PublishFile, c.PublishURL = 2, "f.flv", "rtmp://h/a/b" }, Placeholder},
	} {
		c := ok
		tc.edit(&c)
		_, err := Run(context.Background(), c)
		require.Error(t, err, tc.name)
		assert.Contains(t, err.Error(), tc.want, tc.name)
	}
}

// testStream is a synthetic 30 fps H.264 + AAC stream: sequence headers,
// then one video and one audio frame per 33 ms step; frames listed in lost
// are left out.
type testStream struct {
	frames int
	lost   map[int]bool
}

type testTag struct {
	typ  uint8
	ts   uint32
	body []byte
}

func (s testStream) tags() []testTag {
	tags := []testTag{
		{flv.TagScript, 0, []byte("\x02\x00\x0aonMetaData\x08\x00\x00\x00\x00\x00\x00\x09")},
		{flv.TagVideo, 0, []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff}},
		{flv.TagAudio, 0, []byte{0xaf, 0, 0x11, 0x90}},
	}
	payload := bytes.Repeat([]byte{0xab}, 2000)
	for i := range s.frames {
		if s.lost[i] {
			continue
		}
		body := append([]byte(nil), testInterFrame...)
		if i%30 == 0 {
			body[0] = 0x17
		}
		tags = append(tags, testTag{flv.TagVideo, ts30(i), append(body, payload...)})
		tags = append(tags, testTag{flv.TagAudio, ts30(i), testAudioFrame})
	}
	return tags
}

func (s testStream) flvBytes() []byte {
	b := flv.AppendFileHeader(nil, true, true)
	for _, t := range s.tags() {
		b = flv.AppendTag(b, t.typ, t.ts, t.body)
	}
	return b
}

// fakeServer serves a testStream over HTTP-FLV, WS-FLV and RTMP. Unless
// endEarly is set, connections stay open after the stream until the client
// leaves, like a live stream that goes on.
type fakeServer struct {
	stream   testStream
	endEarly bool
	http     *httptest.Server
	rtmpLn   net.Listener
	wg       sync.WaitGroup
}

func newFakeServer(t *testing.T, s testStream, endEarly bool) *fakeServer {
	f := &fakeServer{stream: s, endEarly: endEarly}
	f.http = httptest.NewServer(http.HandlerFunc(f.serveHTTP))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f.rtmpLn = ln
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				f.serveRTMP(nc)
			}()
		}
	}()
	t.Cleanup(func() {
		f.http.Close()
		ln.Close()
		f.wg.Wait()
	})
	return f
}

func (f *fakeServer) url(proto Protocol) string {
	addr := strings.TrimPrefix(f.http.URL, "http://")
	switch proto {
	case RTMP:
		return "rtmp://" + f.rtmpLn.Addr().String() + "/live/s"
	case WSFLV:
		return "ws://" + addr + "/live/s.flv"
	}
	return "http://" + addr + "/live/s.flv"
}

func (f *fakeServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/live/s.flv" {
		http.NotFound(w, r)
		return
	}
	data := f.stream.flvBytes()
	if !ws.IsUpgrade(r) {
		w.Header().Set("Content-Type", "video/x-flv")
		_, _ = w.Write(data)
		w.(http.Flusher).Flush()
		if !f.endEarly {
			<-r.Context().Done()
		}
		return
	}
	nc, br, err := ws.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer nc.Close()
	// Two messages, the second split in two frames, and a ping between.
	half := len(data) / 2
	var out []byte
	out = append(ws.AppendHeader(out, ws.OpBinary, half), data[:half]...)
	out = append(ws.AppendHeader(out, ws.OpPing, 3), "abc"...)
	rest := data[half:]
	out = append(append(out, 0x02, 126, 0, 100), rest[:100]...) // binary, not final
	out = append(ws.AppendHeader(out, ws.OpContinuation, len(rest)-100), rest[100:]...)
	if _, err := nc.Write(out); err != nil {
		return
	}
	// The pong must come back, masked.
	fr, err := ws.ReadFrame(br, 125)
	if err != nil || fr.Opcode != ws.OpPong || string(fr.Payload) != "abc" {
		return
	}
	if f.endEarly {
		_, _ = nc.Write(ws.AppendClose(nil, 1000, "bye"))
		_, _ = ws.ReadFrame(br, 125)
		return
	}
	_, _ = io.Copy(io.Discard, br)
}

func (f *fakeServer) serveRTMP(nc net.Conn) {
	c := rtmp.NewServerConn(nc)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := c.Accept(ctx)
	if err != nil || req.Action != rtmp.ActionPlay {
		return
	}
	if err := c.AcceptPlay(); err != nil {
		return
	}
	for _, t := range f.stream.tags() {
		if err := c.WriteMessage(rtmp.Message{Type: t.typ, StreamID: rtmp.PlayStreamID, Timestamp: t.ts, Payload: t.body}); err != nil {
			return
		}
	}
	if !f.endEarly {
		_ = c.ServePlayer(context.Background())
	}
}

func TestRunEveryProtocol(t *testing.T) {
	s := testStream{frames: 90, lost: map[int]bool{40: true, 41: true, 42: true}}
	f := newFakeServer(t, s, false)
	var progress bytes.Buffer
	r, err := Run(context.Background(), Config{
		URLs:        []string{f.url(RTMP), f.url(HTTPFLV), f.url(WSFLV)},
		Players:     6,
		Duration:    1500 * time.Millisecond,
		Ramp:        100 * time.Millisecond,
		Progress:    500 * time.Millisecond,
		ProgressOut: &progress,
	})
	require.NoError(t, err)
	require.True(t, r.OK(), "%+v", r.Errors)
	assert.Equal(t, 6, r.Connected)
	assert.EqualValues(t, 6*87, r.VideoFrames)
	assert.EqualValues(t, 6*90, r.ExpectedFrames)
	assert.EqualValues(t, 6*3, r.DroppedFrames)
	assert.InDelta(t, 100*3.0/90, r.DropPercent, 0.01)
	assert.EqualValues(t, 6*87, r.AudioFrames)
	assert.InDelta(t, 30, r.FPS, 0.5)
	require.Len(t, r.Protocols, 3)
	for _, proto := range []Protocol{RTMP, HTTPFLV, WSFLV} {
		ps := r.Protocols[proto]
		require.NotNil(t, ps, proto)
		assert.Equal(t, 2, ps.Connected, proto)
		assert.EqualValues(t, 2*87, ps.VideoFrames, proto)
	}
	for _, pr := range r.PlayerResults {
		assert.NoError(t, pr.Err)
		assert.Positive(t, pr.Startup)
		assert.GreaterOrEqual(t, pr.Startup, pr.Connect)
		assert.Equal(t, 33*time.Millisecond, pr.FrameInterval)
		assert.Equal(t, time.Duration(ts30(89))*time.Millisecond, pr.MediaTime)
	}
	assert.Contains(t, progress.String(), "players 6 playing")

	var text bytes.Buffer
	require.NoError(t, WriteText(&text, &r.Summary))
	for _, want := range []string{"6 connected, 0 failed", "522 frames received, 540 expected, 18 dropped (3.33%)", "\nrtmp:\n", "\nws-flv:\n"} {
		assert.Contains(t, text.String(), want)
	}
}

func TestRunReportsFailures(t *testing.T) {
	f := newFakeServer(t, testStream{frames: 10}, true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().String()
	ln.Close()
	r, err := Run(context.Background(), Config{
		URLs:     []string{f.url(HTTPFLV), f.url(WSFLV), "rtmp://" + closed + "/live/s", "http://" + strings.TrimPrefix(f.http.URL, "http://") + "/live/missing"},
		Players:  8,
		Duration: time.Second,
	})
	require.NoError(t, err)
	assert.False(t, r.OK())
	assert.Equal(t, 8, r.Failed)
	assert.Equal(t, 4, r.Connected)
	require.Len(t, r.Errors, 3, "%+v", r.Errors)
	assert.Equal(t, ErrorCount{Error: "stream ended before the run did", Count: 4}, r.Errors[0])
	assert.Equal(t, ErrorCount{Error: "connect: HTTP 404 Not Found", Count: 2}, r.Errors[1])
	assert.Equal(t, ErrorCount{Error: "connect: dial: connect: connection refused", Count: 2}, r.Errors[2])
	assert.EqualValues(t, 4*10, r.VideoFrames)
}

func TestRunStopsOnContext(t *testing.T) {
	f := newFakeServer(t, testStream{frames: 10}, false)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	r, err := Run(ctx, Config{URLs: []string{f.url(RTMP)}, Players: 4, Duration: time.Minute, Ramp: 30 * time.Second})
	require.NoError(t, err)
	assert.Less(t, time.Since(began), 5*time.Second)
	assert.Equal(t, 4, r.Players)
	assert.Equal(t, 3, r.NotStarted) // the ramp spreads them over 30 s
	assert.Equal(t, 1, r.Connected)
	assert.True(t, r.OK())
}

// rtmpSink accepts RTMP publishers and records what they send.
type rtmpSink struct {
	ln   net.Listener
	mu   sync.Mutex
	msgs map[string][]rtmp.Message
	wg   sync.WaitGroup
}

func newRTMPSink(t *testing.T) *rtmpSink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &rtmpSink{ln: ln, msgs: map[string][]rtmp.Message{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				c := rtmp.NewServerConn(nc)
				defer c.Close()
				req, err := c.Accept(context.Background())
				if err != nil || req.Action != rtmp.ActionPublish || c.AcceptPublish() != nil {
					return
				}
				for {
					m, err := c.ReadMessage()
					if err != nil {
						return
					}
					s.mu.Lock()
					s.msgs[req.Name] = append(s.msgs[req.Name], *m)
					s.mu.Unlock()
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func TestPublishersLoopTheFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "in.flv")
	require.NoError(t, os.WriteFile(file, testStream{frames: 15}.flvBytes(), 0o644)) // 0.5 s
	sink := newRTMPSink(t)
	r, err := Run(context.Background(), Config{
		PublishFile: file,
		Publishers:  2,
		PublishURL:  "rtmp://" + sink.ln.Addr().String() + "/live/pub" + Placeholder,
		Duration:    1300 * time.Millisecond,
	})
	require.NoError(t, err)
	require.True(t, r.OK(), "%+v", r.Publishers)
	require.NotNil(t, r.Publishers)
	assert.Equal(t, 2, r.Publishers.Publishers)
	require.Len(t, r.PublisherResults, 2)
	for _, pr := range r.PublisherResults {
		assert.GreaterOrEqual(t, pr.Loops, 2, pr.URL)
	}
	require.Eventually(t, func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return len(sink.msgs) == 2
	}, 2*time.Second, 10*time.Millisecond)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for _, name := range []string{"pub1", "pub2"} {
		msgs := sink.msgs[name]
		require.NotEmpty(t, msgs, name)
		assert.Equal(t, rtmp.MsgDataAMF0, msgs[0].Type)
		assert.True(t, bytes.HasPrefix(msgs[0].Payload, setDataFrame), "metadata behind @setDataFrame")
		var a accounting
		headers := 0
		for _, m := range msgs {
			if m.Type == rtmp.MsgVideo && videoKind(m.Payload) == kindVideoConfig {
				headers++
			}
			a.message(m.Type, m.Timestamp, m.Payload, time.Now())
		}
		a.finish(time.Now())
		assert.Equal(t, 1, headers, "sequence header sent once")
		assert.GreaterOrEqual(t, a.videoFrames, uint64(30), "looped at least once")
		assert.Zero(t, a.dropped, "timestamps go on across loops")
		assert.Zero(t, a.discont)
	}
}

func TestLoadFLVErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := loadFLV(filepath.Join(dir, "missing.flv"))
	assert.Error(t, err)
	p := filepath.Join(dir, "audio.flv")
	b := flv.AppendFileHeader(nil, true, false)
	b = flv.AppendTag(b, flv.TagAudio, 0, testAudioFrame)
	require.NoError(t, os.WriteFile(p, b, 0o644))
	_, err = loadFLV(p)
	assert.ErrorContains(t, err, "no video")
}

// BenchmarkAccounting measures the per-frame accounting of a player.
func BenchmarkAccounting(b *testing.B) {
	var a accounting
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a.message(flv.TagVideo, ts30(i), testInterFrame, now)
		i++
	}
}

// BenchmarkFLVPlayerPath measures an HTTP-FLV player's whole per-tag path:
// reading a tag with flv.Reader and accounting it. One op is one tag.
func BenchmarkFLVPlayerPath(b *testing.B) {
	data := testStream{frames: 3000}.flvBytes()
	src := bytes.NewReader(data)
	fr := flv.NewReader(src, flv.ReaderOptions{BufferSize: flvBufferSize})
	if _, err := fr.ReadHeader(); err != nil {
		b.Fatal(err)
	}
	var a accounting
	b.ReportAllocs()
	b.SetBytes(int64(len(data)) / 6003)
	for b.Loop() {
		tag, err := fr.ReadTag()
		if err == io.EOF {
			src.Reset(data)
			fr.Reset(src)
			if _, err := fr.ReadHeader(); err != nil {
				b.Fatal(err)
			}
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		a.message(tag.Type, tag.Timestamp, tag.Body, time.Now())
	}
}
