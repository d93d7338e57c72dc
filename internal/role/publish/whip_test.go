package publish

import (
	"bytes"
	"context"
	"github.com/quasipaa/quasipaa/internal/protocol/flv/flvtest"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	pwebrtc "github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quasipaa/quasipaa/internal/codec/h264"
	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/media"
	"github.com/quasipaa/quasipaa/internal/protocol/webrtc"
)

// checkLeaks verifies, after every cleanup of the test ran, that the test
// left no goroutine behind.
func checkLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testServer is a hub, an engine and a WHIP endpoint on httptest.
type testServer struct {
	hub  *hub.Hub
	eng  *webrtc.Engine
	whip *WHIP
	http *httptest.Server
}

func newTestServer(t *testing.T, opts WHIPOptions, hubOpts ...hub.Options) *testServer {
	t.Helper()
	ho := hub.Options{Logger: quiet()}
	if len(hubOpts) > 0 {
		ho = hubOpts[0]
	}
	h := hub.New(ho)
	eng, err := webrtc.NewEngine(webrtc.EngineOptions{
		UDPListen: "127.0.0.1:0", TCPListen: "127.0.0.1:0",
		HandshakeTimeout: 5 * time.Second, DisconnectedTimeout: time.Second, FailedTimeout: time.Second,
		Logger: quiet(),
	})
	require.NoError(t, err)
	w := NewWHIP(h, eng, opts, quiet())
	srv := httptest.NewServer(w)
	ts := &testServer{hub: h, eng: eng, whip: w, http: srv}
	t.Cleanup(func() {
		srv.Close()
		w.Close()
		h.Close()
		_ = eng.Close()
	})
	return ts
}

// source is the media a test client publishes.
type source struct {
	video  *media.Track
	frames []*media.Frame // H.264, decoding order
	opus   [][]byte       // 20 ms packets
}

func loadSource(t *testing.T) source {
	t.Helper()
	var s source
	s.video, s.frames = flvtest.ReadVideo(t, "h264aac.flv")
	require.Equal(t, media.CodecH264, s.video.Codec)
	ogg, err := os.ReadFile(flvtest.Path("opus.ogg"))
	require.NoError(t, err)
	s.opus = oggPackets(t, ogg)[2:] // after OpusHead and OpusTags
	require.NotEmpty(t, s.opus)
	return s
}

// oggPackets splits an Ogg stream into its packets.
func oggPackets(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var (
		out [][]byte
		cur []byte
	)
	for len(b) > 0 {
		require.True(t, len(b) >= 27 && string(b[:4]) == "OggS", "Ogg page")
		n := int(b[26])
		segs := b[27 : 27+n]
		data := b[27+n:]
		for _, l := range segs {
			cur = append(cur, data[:l]...)
			data = data[l:]
			if l < 255 {
				out = append(out, cur)
				cur = nil
			}
		}
		b = data
	}
	return out
}

// annexB returns a frame in Annex B, with SPS and PPS before a keyframe, as
// WebRTC encoders send them.
func annexB(t *testing.T, tr *media.Track, f *media.Frame) []byte {
	t.Helper()
	var out []byte
	if f.Key && !h264.HasParameterSets(f.Payload) {
		rec, err := h264.ParseConfigRecord(tr.Config)
		require.NoError(t, err)
		for _, n := range append(append([][]byte{}, rec.SPS...), rec.PPS...) {
			out = append(append(out, 0, 0, 0, 1), n...)
		}
	}
	out, err := h264.AVCCToAnnexB(out, f.Payload)
	require.NoError(t, err)
	return out
}

// expectedPayload is what ingest should make of a frame sent by annexB and
// pion's packetizer: its NAL units, without delimiters and filler, with the
// parameter sets on a keyframe.
func expectedPayload(t *testing.T, tr *media.Track, f *media.Frame) []byte {
	t.Helper()
	var out []byte
	require.NoError(t, h264.ForEachAnnexBNALU(annexB(t, tr, f), func(n []byte) bool {
		switch h264.TypeOf(n) {
		case h264.NALUTypeAUD, h264.NALUTypeFillerData:
		default:
			out, _ = h264.AppendNALU(out, n)
		}
		return true
	}))
	return out
}

// client is a WHIP publisher: a plain pion peer on loopback.
type client struct {
	t        *testing.T
	pc       *pwebrtc.PeerConnection
	video    *pwebrtc.TrackLocalStaticRTP
	audio    *pwebrtc.TrackLocalStaticRTP
	location string
	etag     string
	links    []string
	answer   string
	conn     net.PacketConn
}

// kill makes the client vanish: its socket closes, nothing more is sent.
func (c *client) kill() { _ = c.conn.Close() }

func clientAPI(t *testing.T, conn net.PacketConn) *pwebrtc.API {
	var se pwebrtc.SettingEngine
	lf := &logging.DefaultLoggerFactory{Writer: io.Discard}
	se.LoggerFactory = lf
	se.SetICEUDPMux(pwebrtc.NewICEUDPMux(lf.NewLogger("ice"), conn))
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]pwebrtc.NetworkType{pwebrtc.NetworkTypeUDP4})
	m := &pwebrtc.MediaEngine{}
	require.NoError(t, m.RegisterDefaultCodecs())
	return pwebrtc.NewAPI(pwebrtc.WithSettingEngine(se), pwebrtc.WithMediaEngine(m))
}

func newClient(t *testing.T, video, audio bool) *client {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	pc, err := clientAPI(t, conn).NewPeerConnection(pwebrtc.Configuration{})
	require.NoError(t, err)
	c := &client{t: t, pc: pc, conn: conn}
	t.Cleanup(func() {
		_ = pc.Close()
		_ = conn.Close()
	})
	if video {
		c.video, err = pwebrtc.NewTrackLocalStaticRTP(pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", "pub")
		require.NoError(t, err)
		_, err = pc.AddTransceiverFromTrack(c.video, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionSendonly})
		require.NoError(t, err)
	}
	if audio {
		c.audio, err = pwebrtc.NewTrackLocalStaticRTP(pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "pub")
		require.NoError(t, err)
		_, err = pc.AddTransceiverFromTrack(c.audio, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionSendonly})
		require.NoError(t, err)
	}
	return c
}

func (c *client) offer() string {
	offer, err := c.pc.CreateOffer(nil)
	require.NoError(c.t, err)
	g := pwebrtc.GatheringCompletePromise(c.pc)
	require.NoError(c.t, c.pc.SetLocalDescription(offer))
	<-g
	return c.pc.LocalDescription().SDP
}

func post(t *testing.T, url, contentType, body string) *http.Response {
	t.Helper()
	resp, err := http.Post(url, contentType, strings.NewReader(body))
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readAll(t *testing.T, r io.Reader) string {
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return string(b)
}

// publish posts the client's offer and applies the answer.
func (c *client) publish(base, path string) *http.Response {
	resp := post(c.t, base+"/"+path+"/whip", "application/sdp", c.offer())
	if resp.StatusCode != http.StatusCreated {
		return resp
	}
	c.location, c.etag, c.links = resp.Header.Get("Location"), resp.Header.Get("ETag"), resp.Header.Values("Link")
	c.answer = readAll(c.t, resp.Body)
	require.NoError(c.t, c.pc.SetRemoteDescription(pwebrtc.SessionDescription{Type: pwebrtc.SDPTypeAnswer, SDP: c.answer}))
	return resp
}

func (c *client) waitConnected() {
	deadline := time.Now().Add(10 * time.Second)
	for c.pc.ConnectionState() != pwebrtc.PeerConnectionStateConnected {
		require.True(c.t, time.Now().Before(deadline), "client not connected: %s", c.pc.ConnectionState())
		time.Sleep(10 * time.Millisecond)
	}
}

// send publishes the source: video through pion's H.264 packetizer (STAP-A
// parameter sets, FU-A), audio 20 ms packets, interleaved by time, 4x real time.
func (c *client) send(s source) {
	var (
		pay  codecs.H264Payloader
		vseq uint16 = 1000
		aseq uint16 = 2000
		ai          = 0
	)
	base := s.frames[0].DTS
	start := time.Now()
	for _, f := range s.frames {
		at := f.DTS - base
		for ai < len(s.opus) && time.Duration(ai)*20*time.Millisecond < at {
			c.writeAudio(&aseq, ai, s.opus[ai])
			ai++
		}
		if sleep := at/4 - time.Since(start); sleep > 0 {
			time.Sleep(sleep)
		}
		ts := uint32(3_000_000_000) + webrtc.RTPTimestamp(int64(f.PTS), 90000)
		payloads := pay.Payload(1188, annexB(c.t, s.video, f))
		for i, p := range payloads {
			require.NoError(c.t, c.video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: vseq, Timestamp: ts, Marker: i == len(payloads)-1}, Payload: p}))
			vseq++
		}
	}
	for ; ai < len(s.opus); ai++ {
		c.writeAudio(&aseq, ai, s.opus[ai])
	}
}

func (c *client) writeAudio(seq *uint16, i int, p []byte) {
	if c.audio == nil {
		return
	}
	require.NoError(c.t, c.audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: *seq, Timestamp: uint32(i * 960)}, Payload: p}))
	*seq++
}

// fakeTranscoder turns each Opus frame into one fake AAC frame.
type fakeTranscoder struct {
	mu    sync.Mutex
	convs []*fakeConversion
}

func (ft *fakeTranscoder) ToAAC(ctx context.Context, opus *media.Track) (AudioConversion, error) {
	c := &fakeConversion{out: make(chan *media.Frame, 1024), track: &media.Track{Codec: media.CodecAAC, Config: []byte{0x11, 0x90}, SampleRate: 48000, Channels: 2}}
	ft.mu.Lock()
	ft.convs = append(ft.convs, c)
	ft.mu.Unlock()
	return c, nil
}

type fakeConversion struct {
	track   *media.Track
	out     chan *media.Frame
	once    sync.Once
	written int
}

func (c *fakeConversion) Track() *media.Track { return c.track }
func (c *fakeConversion) Write(f *media.Frame) error {
	c.written++
	select {
	case c.out <- &media.Frame{DTS: f.DTS, PTS: f.PTS, Key: true, Payload: []byte{0x21, byte(c.written)}, Ingest: f.Ingest}:
	default:
	}
	return nil
}
func (c *fakeConversion) Frames() <-chan *media.Frame { return c.out }
func (c *fakeConversion) Close() error                { c.once.Do(func() { close(c.out) }); return nil }

// collect reads a stream until want video frames came or the time is up.
func collect(t *testing.T, r *hub.Reader, want int) (video, opus, aac []*media.Frame, ts *hub.TrackSet) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var entries []*hub.Entry
	for len(video) < want {
		var err error
		entries, err = r.Next(ctx, entries[:0])
		for _, e := range entries {
			ts = e.Tracks
			switch e.Track().Codec {
			case media.CodecH264:
				video = append(video, e.Frame)
			case media.CodecOpus:
				opus = append(opus, e.Frame)
			case media.CodecAAC:
				aac = append(aac, e.Frame)
			}
		}
		if err != nil {
			t.Fatalf("after %d of %d video frames: %v", len(video), want, err)
		}
	}
	return video, opus, aac, ts
}

func TestWHIPPublishes(t *testing.T) {
	checkLeaks(t)
	src := loadSource(t)
	tr := &fakeTranscoder{}
	ts := newTestServer(t, WHIPOptions{Transcoder: tr, ICEServers: func(*http.Request) []ICEServer {
		return []ICEServer{{URLs: []string{"stun:127.0.0.1:3478"}}}
	}})
	c := newClient(t, true, true)
	resp := c.publish(ts.http.URL, "live/cam1")
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, "application/sdp", resp.Header.Get("Content-Type"))
	assert.Regexp(t, `^/live/cam1/whip/[0-9a-f]{32}$`, c.location)
	assert.NotEmpty(t, c.etag)
	assert.Equal(t, []string{`<stun:127.0.0.1:3478>; rel="ice-server"`}, c.links)
	assert.Contains(t, c.answer, "a=candidate:")
	assert.True(t, IsWHIPPath(c.location))
	assert.Equal(t, 1, ts.whip.Sessions())

	reader, err := ts.hub.Subscribe("live/cam1", hub.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	defer reader.Close()
	c.waitConnected()
	c.send(src)
	video, opus, aac, set := collect(t, reader, len(src.frames))

	// Tracks: H.264 described from the in-band SPS, Opus, and the AAC conversion.
	require.Len(t, set.Tracks, 3)
	v := set.Tracks[0]
	assert.Equal(t, media.CodecH264, v.Codec)
	assert.Equal(t, 1280, v.Width)
	assert.Equal(t, 720, v.Height)
	want, err := h264.ParseConfigRecord(src.video.Config)
	require.NoError(t, err)
	have, err := h264.ParseConfigRecord(v.Config)
	require.NoError(t, err)
	assert.Equal(t, want.SPS, have.SPS)
	assert.Equal(t, want.PPS, have.PPS)
	assert.Equal(t, media.CodecOpus, set.Tracks[1].Codec)
	assert.Equal(t, 2, set.Tracks[1].Channels)
	assert.Equal(t, 48000, set.Tracks[1].SampleRate)
	assert.Equal(t, media.CodecAAC, set.Tracks[2].Codec)

	// Video: every frame, byte for byte, keyframes flagged, PTS as sent,
	// DTS never going back.
	require.Len(t, video, len(src.frames))
	base, gotBase := src.frames[0].PTS, video[0].PTS
	var lastDTS time.Duration
	for i, f := range video {
		s := src.frames[i]
		require.Equal(t, expectedPayload(t, src.video, s), f.Payload, "frame %d", i)
		assert.Equal(t, s.Key, f.Key, "frame %d key", i)
		assert.Equal(t, s.PTS-base, f.PTS-gotBase, "frame %d PTS", i)
		assert.GreaterOrEqual(t, f.DTS, lastDTS)
		lastDTS = f.DTS
	}
	// Audio arrives after the last video frame was read; read the rest. A
	// reader starts at the first video keyframe: audio that the publisher
	// sent while that keyframe was still arriving comes before it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var entries []*hub.Entry
	for (len(opus) == 0 || !bytes.Equal(opus[len(opus)-1].Payload, src.opus[len(src.opus)-1])) && ctx.Err() == nil {
		entries, _ = reader.Next(ctx, entries[:0])
		for _, e := range entries {
			switch e.Track().Codec {
			case media.CodecOpus:
				opus = append(opus, e.Frame)
			case media.CodecAAC:
				aac = append(aac, e.Frame)
			}
		}
	}
	skipped := len(src.opus) - len(opus)
	require.True(t, skipped >= 0 && skipped <= 5, "%d Opus frames of %d", len(opus), len(src.opus))
	for i, f := range opus {
		require.Equal(t, src.opus[skipped+i], f.Payload, "opus %d", skipped+i)
		if i > 0 {
			assert.Equal(t, 20*time.Millisecond, f.PTS-opus[i-1].PTS)
		}
	}
	// A/V aligned by arrival: the first audio frame is near the first video one.
	assert.Less(t, (opus[0].PTS - video[0].PTS).Abs(), 500*time.Millisecond)
	assert.NotEmpty(t, aac, "AAC frames from the conversion")

	// DELETE ends the session and the stream.
	req, _ := http.NewRequest(http.MethodDelete, ts.http.URL+c.location, nil)
	dresp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	dresp.Body.Close()
	assert.Equal(t, http.StatusOK, dresp.StatusCode)
	assert.Equal(t, 0, ts.whip.Sessions())
	_, err = reader.Next(ctx, entries[:0])
	assert.ErrorIs(t, err, hub.ErrStreamClosed)
	// The same DELETE again: the session is gone.
	dresp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	dresp.Body.Close()
	assert.Equal(t, http.StatusNotFound, dresp.StatusCode)
}

func TestWHIPErrors(t *testing.T) {
	checkLeaks(t)
	ts := newTestServer(t, WHIPOptions{Sessions: webrtc.NewLimiter(1)})
	url := ts.http.URL + "/live/cam1/whip"
	offer := newClient(t, true, true).offer()

	check := func(resp *http.Response, status int, code string) {
		t.Helper()
		assert.Equal(t, status, resp.StatusCode)
		body := readAll(t, resp.Body)
		assert.Contains(t, body, `"code": "`+code+`"`, body)
	}
	check(post(t, url, "application/sdp", "v=0\r\nthis is not SDP"), http.StatusBadRequest, "bad_sdp")
	check(post(t, url, "application/sdp", "v=0\r\n"+strings.Repeat("a=x\r\n", 20000)), http.StatusRequestEntityTooLarge, "too_large")
	check(post(t, url, "text/plain", offer), http.StatusUnsupportedMediaType, "unsupported_media_type")
	check(post(t, ts.http.URL+"/live/../whip", "application/sdp", offer), http.StatusNotFound, "not_found")

	// OPTIONS advertises what POST takes.
	req, _ := http.NewRequest(http.MethodOptions, url, nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Equal(t, "application/sdp", resp.Header.Get("Accept-Post"))

	// Unknown sessions.
	missing := url + "/0123456789abcdef0123456789abcdef"
	for _, m := range []string{http.MethodPatch, http.MethodDelete} {
		req, _ := http.NewRequest(m, missing, strings.NewReader("a=end-of-candidates\r\n"))
		req.Header.Set("Content-Type", "application/trickle-ice-sdpfrag")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		check(resp, http.StatusNotFound, "session_not_found")
	}

	// A busy path: an RTMP publisher holds it.
	pub, err := ts.hub.Publish("live/busy", hub.ClientInfo{Protocol: "rtmp"})
	require.NoError(t, err)
	check(post(t, ts.http.URL+"/live/busy/whip", "application/sdp", offer), http.StatusConflict, "stream_busy")
	pub.Close()

	// One session allowed: the second is refused.
	c := newClient(t, true, true)
	require.Equal(t, http.StatusCreated, c.publish(ts.http.URL, "live/one").StatusCode)
	check(post(t, ts.http.URL+"/live/two/whip", "application/sdp", newClient(t, true, true).offer()), http.StatusServiceUnavailable, "too_many_sessions")

	// Trickle: candidates are taken, an ICE restart is not, nor a stale ETag.
	patch := func(body, ifMatch string) *http.Response {
		req, _ := http.NewRequest(http.MethodPatch, ts.http.URL+c.location, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/trickle-ice-sdpfrag")
		if ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	frag := "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
	assert.Equal(t, http.StatusNoContent, patch(frag, c.etag).StatusCode)
	check(patch(frag, `"stale"`), http.StatusPreconditionFailed, "etag_mismatch")
	check(patch("a=ice-ufrag:new\r\na=ice-pwd:newpassword\r\n"+frag, "*"), http.StatusNotImplemented, "ice_restart_unsupported")
}

func TestWHIPRejectsUnknownCodec(t *testing.T) {
	checkLeaks(t)
	ts := newTestServer(t, WHIPOptions{})
	offer := newClient(t, true, false).offer()
	for _, c := range []string{"H264", "VP8", "VP9", "AV1", "H265"} {
		offer = strings.ReplaceAll(offer, " "+c+"/", " X"+c+"/")
	}
	resp := post(t, ts.http.URL+"/live/x/whip", "application/sdp", offer)
	assert.Equal(t, http.StatusNotAcceptable, resp.StatusCode)
	body := readAll(t, resp.Body)
	assert.Contains(t, body, "unsupported_codec")
	assert.Contains(t, body, "XH264")
	_, live := ts.hub.Stream("live/x")
	assert.False(t, live, "nothing published")
}

// TestWHIPSessionsIndependent kills one publisher abruptly (its socket
// closes, no DTLS alert, no DELETE): its session times out while another
// publisher, which announced audio but sends none, keeps publishing.
func TestWHIPSessionsIndependent(t *testing.T) {
	checkLeaks(t)
	src := loadSource(t)
	ts := newTestServer(t, WHIPOptions{TrackWait: 300 * time.Millisecond})
	a := newClient(t, true, false)
	require.Equal(t, http.StatusCreated, a.publish(ts.http.URL, "live/a").StatusCode)
	b := newClient(t, true, true)
	require.Equal(t, http.StatusCreated, b.publish(ts.http.URL, "live/b").StatusCode)
	a.waitConnected()
	b.waitConnected()
	require.Equal(t, 2, ts.whip.Sessions())

	a.kill()
	reader, err := ts.hub.Subscribe("live/b", hub.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	defer reader.Close()
	b.audio = nil // announced, never sent
	b.send(src)
	video, opus, _, set := collect(t, reader, len(src.frames))
	assert.Len(t, video, len(src.frames))
	assert.Empty(t, opus)
	require.Len(t, set.Tracks, 1, "published without the silent audio track")

	deadline := time.Now().Add(10 * time.Second)
	for ts.whip.Sessions() > 1 {
		require.True(t, time.Now().Before(deadline), "the dead publisher's session did not end")
		time.Sleep(50 * time.Millisecond)
	}
	_, live := ts.hub.Stream("live/a")
	assert.False(t, live)
	_, live = ts.hub.Stream("live/b")
	assert.True(t, live)
}

// TestWHIPTakenOver ends a WHIP session when another publisher takes its
// path over (hub.conflict: takeover).
func TestWHIPTakenOver(t *testing.T) {
	checkLeaks(t)
	ts := newTestServer(t, WHIPOptions{}, hub.Options{Logger: quiet(), Conflict: hub.ConflictTakeOver})
	c := newClient(t, true, true)
	require.Equal(t, http.StatusCreated, c.publish(ts.http.URL, "live/cam1").StatusCode)
	c.waitConnected()
	pub, err := ts.hub.Publish("live/cam1", hub.ClientInfo{Protocol: "rtmp"})
	require.NoError(t, err)
	defer pub.Close()
	deadline := time.Now().Add(5 * time.Second)
	for ts.whip.Sessions() > 0 {
		require.True(t, time.Now().Before(deadline), "the replaced session did not end")
		time.Sleep(20 * time.Millisecond)
	}
	info, ok := ts.hub.Stream("live/cam1")
	require.True(t, ok)
	assert.Equal(t, "rtmp", info.Publisher.Protocol)
}
