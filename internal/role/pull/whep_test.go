package pull

import (
	"context"
	"fmt"
	"github.com/quasipaa/quasipaa/internal/protocol/flv/flvtest"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
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
func checkLeaks(t testing.TB) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type whepServer struct {
	hub  *hub.Hub
	eng  *webrtc.Engine
	whep *WHEP
	url  string
}

func newWHEPServer(t testing.TB, opts WHEPOptions) *whepServer {
	t.Helper()
	h := hub.New(hub.Options{Logger: quiet()})
	eng, err := webrtc.NewEngine(webrtc.EngineOptions{
		UDPListen: "127.0.0.1:0", HandshakeTimeout: 5 * time.Second,
		DisconnectedTimeout: time.Second, FailedTimeout: time.Second, Logger: quiet(),
	})
	require.NoError(t, err)
	w := NewWHEP(h, eng, opts, quiet())
	srv := httptest.NewServer(w)
	t.Cleanup(func() {
		srv.Close()
		w.Close()
		h.Close()
		_ = eng.Close()
	})
	return &whepServer{hub: h, eng: eng, whep: w, url: srv.URL}
}

// readMedia returns the H.264 and AAC tracks and frames of the FLV test vector.
func readMedia(t testing.TB) (video, aac *media.Track, frames []*media.Frame) {
	t.Helper()
	tracks, frames := flvtest.Read(t, "h264aac.flv")
	for _, f := range frames {
		// The test file's x264 video has B-frames, which WHEP refuses
		// (see TestWHEPRefusesBFrames): play it as if decoding order
		// were presentation order, as a WebRTC-friendly encoder makes it.
		f.PTS = f.DTS
	}
	// Frames renumbered: track 0 is the video, 1 the AAC.
	remap := map[int]int{}
	for i, tr := range tracks {
		switch tr.Codec {
		case media.CodecH264:
			video, remap[i] = tr, 0
		case media.CodecAAC:
			aac, remap[i] = tr, 1
		}
	}
	require.NotNil(t, video)
	require.NotNil(t, aac)
	for _, f := range frames {
		f.Track = remap[f.Track]
	}
	return video, aac, frames
}

// opusPackets returns the Opus packets of the Ogg test vector.
func opusPackets(t testing.TB) [][]byte {
	t.Helper()
	b, err := os.ReadFile(flvtest.Path("opus.ogg"))
	require.NoError(t, err)
	var out [][]byte
	var cur []byte
	for len(b) >= 27 {
		n := int(b[26])
		segs, data := b[27:27+n], b[27+n:]
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
	return out[2:]
}

// expectedH264 is what a viewer should rebuild from a frame: its NAL units
// without delimiters and filler, preceded on a keyframe by the parameter sets.
func expectedH264(t testing.TB, tr *media.Track, f *media.Frame) []byte {
	var out []byte
	if f.Key && !h264.HasParameterSets(f.Payload) {
		rec, err := h264.ParseConfigRecord(tr.Config)
		require.NoError(t, err)
		for _, n := range append(append([][]byte{}, rec.SPS...), rec.PPS...) {
			out, _ = h264.AppendNALU(out, n)
		}
	}
	require.NoError(t, h264.ForEachNALU(f.Payload, func(n []byte) bool {
		switch h264.TypeOf(n) {
		case h264.NALUTypeAUD, h264.NALUTypeFillerData:
		default:
			out, _ = h264.AppendNALU(out, n)
		}
		return true
	}))
	return out
}

// viewer is a WHEP client: a plain pion peer with NACKs, recording every
// RTP packet it receives.
type viewer struct {
	t        testing.TB
	pc       *pwebrtc.PeerConnection
	conn     net.PacketConn
	location string

	discard bool // read and drop (benchmarks)

	mu      sync.Mutex
	packets map[string][]*rtp.Packet // by kind
	codecs  map[string]string
	wg      sync.WaitGroup
}

func newViewer(t testing.TB, videoCodecs ...pwebrtc.RTPCodecParameters) *viewer {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	require.NoError(t, conn.SetReadBuffer(4<<20))
	var se pwebrtc.SettingEngine
	lf := &logging.DefaultLoggerFactory{Writer: io.Discard}
	se.LoggerFactory = lf
	se.SetICEUDPMux(pwebrtc.NewICEUDPMux(lf.NewLogger("ice"), conn))
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]pwebrtc.NetworkType{pwebrtc.NetworkTypeUDP4})
	m := &pwebrtc.MediaEngine{}
	if len(videoCodecs) == 0 {
		require.NoError(t, m.RegisterDefaultCodecs())
	} else {
		for _, c := range videoCodecs {
			require.NoError(t, m.RegisterCodec(c, pwebrtc.RTPCodecTypeVideo))
		}
		require.NoError(t, m.RegisterCodec(pwebrtc.RTPCodecParameters{RTPCodecCapability: webrtc.OpusCapability(), PayloadType: 111}, pwebrtc.RTPCodecTypeAudio))
	}
	reg := &interceptor.Registry{}
	require.NoError(t, pwebrtc.RegisterDefaultInterceptors(m, reg))
	api := pwebrtc.NewAPI(pwebrtc.WithSettingEngine(se), pwebrtc.WithMediaEngine(m), pwebrtc.WithInterceptorRegistry(reg))
	pc, err := api.NewPeerConnection(pwebrtc.Configuration{})
	require.NoError(t, err)
	v := &viewer{t: t, pc: pc, conn: conn, packets: map[string][]*rtp.Packet{}, codecs: map[string]string{}}
	t.Cleanup(v.close)
	for _, k := range []pwebrtc.RTPCodecType{pwebrtc.RTPCodecTypeVideo, pwebrtc.RTPCodecTypeAudio} {
		_, err := pc.AddTransceiverFromKind(k, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionRecvonly})
		require.NoError(t, err)
	}
	pc.OnTrack(func(tr *pwebrtc.TrackRemote, _ *pwebrtc.RTPReceiver) {
		v.wg.Add(1)
		defer v.wg.Done()
		kind := tr.Kind().String()
		v.mu.Lock()
		v.codecs[kind] = tr.Codec().MimeType
		v.mu.Unlock()
		buf := make([]byte, 1500)
		for {
			if v.discard {
				if _, _, err := tr.Read(buf); err != nil {
					return
				}
				continue
			}
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			v.mu.Lock()
			v.packets[kind] = append(v.packets[kind], p)
			v.mu.Unlock()
		}
	})
	return v
}

func (v *viewer) close() {
	_ = v.pc.Close()
	_ = v.conn.Close()
	v.wg.Wait()
}

func (v *viewer) offer() string {
	offer, err := v.pc.CreateOffer(nil)
	require.NoError(v.t, err)
	g := pwebrtc.GatheringCompletePromise(v.pc)
	require.NoError(v.t, v.pc.SetLocalDescription(offer))
	<-g
	return v.pc.LocalDescription().SDP
}

func post(t testing.TB, url, contentType, body string) *http.Response {
	t.Helper()
	resp, err := http.Post(url, contentType, strings.NewReader(body))
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (v *viewer) play(base, path string) *http.Response {
	resp := post(v.t, base+"/"+path+"/whep", "application/sdp", v.offer())
	if resp.StatusCode != http.StatusCreated {
		return resp
	}
	v.location = resp.Header.Get("Location")
	answer, err := io.ReadAll(resp.Body)
	require.NoError(v.t, err)
	require.NoError(v.t, v.pc.SetRemoteDescription(pwebrtc.SessionDescription{Type: pwebrtc.SDPTypeAnswer, SDP: string(answer)}))
	return resp
}

func (v *viewer) waitConnected() {
	deadline := time.Now().Add(10 * time.Second)
	for v.pc.ConnectionState() != pwebrtc.PeerConnectionStateConnected {
		require.True(v.t, time.Now().Before(deadline), "viewer not connected: %s", v.pc.ConnectionState())
		time.Sleep(10 * time.Millisecond)
	}
}

// received returns a kind's packets in sequence order, without duplicates.
func (v *viewer) received(kind string) []*rtp.Packet {
	v.mu.Lock()
	pkts := append([]*rtp.Packet(nil), v.packets[kind]...)
	v.mu.Unlock()
	if len(pkts) == 0 {
		return nil
	}
	first := pkts[0].SequenceNumber
	ext := func(p *rtp.Packet) int { return int(int16(p.SequenceNumber - first)) }
	sort.SliceStable(pkts, func(i, j int) bool { return ext(pkts[i]) < ext(pkts[j]) })
	out := pkts[:0]
	for _, p := range pkts {
		if len(out) > 0 && out[len(out)-1].SequenceNumber == p.SequenceNumber {
			continue
		}
		out = append(out, p)
	}
	return out
}

type rxFrame struct {
	ts      uint32
	payload []byte
}

// videoFrames reassembles H.264 frames with pion's depacketizer.
func (v *viewer) videoFrames() []rxFrame {
	var (
		out []rxFrame
		cur []byte
		d   = codecs.H264Packet{IsAVC: true}
	)
	pkts := v.received("video")
	for i, p := range pkts {
		if i > 0 && p.SequenceNumber != pkts[i-1].SequenceNumber+1 {
			v.t.Fatalf("video packet %d missing", pkts[i-1].SequenceNumber+1)
		}
		b, err := d.Unmarshal(p.Payload)
		require.NoError(v.t, err)
		cur = append(cur, b...)
		if p.Marker {
			out = append(out, rxFrame{p.Timestamp, cur})
			cur = nil
		}
	}
	return out
}

func (v *viewer) waitFrames(kind string, n int) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		count := 0
		for _, p := range v.received(kind) {
			if kind == "audio" || p.Marker {
				count++
			}
		}
		if count >= n {
			return
		}
		require.True(v.t, time.Now().Before(deadline), "%d of %d %s frames", count, n, kind)
		time.Sleep(20 * time.Millisecond)
	}
}

// fakeOpus feeds Opus packets to every viewer, 20 ms apart, on the stream's
// timeline from start.
type fakeOpus struct {
	packets [][]byte
	start   time.Duration
	begin   chan struct{} // closed when the stream starts
	mu      sync.Mutex
	live    int
}

func (o *fakeOpus) Acquire(path string) (OpusFeed, error) {
	if path != "live/cam1" {
		return nil, fmt.Errorf("no audio for %s", path)
	}
	o.mu.Lock()
	o.live++
	o.mu.Unlock()
	return &fakeFeed{o: o}, nil
}

type fakeFeed struct {
	o    *fakeOpus
	next int
}

func (f *fakeFeed) Track() *media.Track {
	return &media.Track{Codec: media.CodecOpus, SampleRate: 48000, Channels: 2}
}

func (f *fakeFeed) Next(ctx context.Context) (*media.Frame, error) {
	if f.next == len(f.o.packets) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-f.o.begin:
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(5 * time.Millisecond):
	}
	pts := f.o.start + time.Duration(f.next)*20*time.Millisecond
	fr := &media.Frame{DTS: pts, PTS: pts, Key: true, Payload: f.o.packets[f.next]}
	f.next++
	return fr, nil
}

func (f *fakeFeed) Release() {
	f.o.mu.Lock()
	f.o.live--
	f.o.mu.Unlock()
}

// publishFLV publishes the video frames of the test vector (and its AAC
// when withAAC), paced, as fresh frames.
func publishFLV(t testing.TB, pub *hub.Publisher, video, aac *media.Track, frames []*media.Frame, withAudio *media.Track, audio [][]byte) (sent []*media.Frame) {
	t.Helper()
	tracks := []*media.Track{video}
	if aac != nil {
		tracks = append(tracks, aac)
	}
	if withAudio != nil {
		tracks = append(tracks, withAudio)
	}
	require.NoError(t, pub.SetTracks(tracks))
	ai := 0
	for _, f := range frames {
		c := *f
		c.Ingest = time.Now()
		switch {
		case c.Track == 0:
			sent = append(sent, f)
		case aac == nil:
			continue
		}
		require.NoError(t, pub.WriteFrame(&c))
		if withAudio != nil {
			for ai < len(audio) && time.Duration(ai)*20*time.Millisecond <= f.DTS {
				pts := time.Duration(ai) * 20 * time.Millisecond
				require.NoError(t, pub.WriteFrame(&media.Frame{Track: len(tracks) - 1, DTS: pts, PTS: pts, Key: true, Payload: audio[ai], Ingest: time.Now()}))
				ai++
			}
		}
		time.Sleep(3 * time.Millisecond)
	}
	return sent
}

func checkVideo(t *testing.T, v *viewer, video *media.Track, sent []*media.Frame) {
	t.Helper()
	v.waitFrames("video", len(sent))
	got := v.videoFrames()
	require.Len(t, got, len(sent))
	for i, f := range got {
		require.Equal(t, expectedH264(t, video, sent[i]), f.payload, "frame %d", i)
		// RTP timestamps are the PTS at 90 kHz, exactly.
		want := uint32(int64(sent[i].PTS-sent[0].PTS) * 90000 / int64(time.Second))
		assert.Equal(t, want, f.ts-got[0].ts, "frame %d timestamp", i)
	}
}

func TestWHEPPlaysH264WithOpusFeed(t *testing.T) {
	checkLeaks(t)
	video, aac, frames := readMedia(t)
	feed := &fakeOpus{packets: opusPackets(t), begin: make(chan struct{})}
	s := newWHEPServer(t, WHEPOptions{Opus: feed, ICEServers: func(*http.Request) []webrtc.ICEServer {
		return []webrtc.ICEServer{{URLs: []string{"turn:127.0.0.1:3478?transport=udp"}, Username: "u", Credential: "p"}}
	}})
	pub, err := s.hub.Publish("live/cam1", hub.ClientInfo{Protocol: "rtmp"})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.SetTracks([]*media.Track{video, aac}))

	v := newViewer(t)
	resp := v.play(s.url, "live/cam1")
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Regexp(t, `^/live/cam1/whep/[0-9a-f]{32}$`, v.location)
	assert.Equal(t, []string{`<turn:127.0.0.1:3478?transport=udp>; rel="ice-server"; username="u"; credential="p"; credential-type="password"`}, resp.Header.Values("Link"))
	v.waitConnected()
	time.Sleep(100 * time.Millisecond) // the session starts reading the hub once connected
	go func() {
		time.Sleep(50 * time.Millisecond) // the audio starts once the video did
		close(feed.begin)
	}()
	sent := publishFLV(t, pub, video, aac, frames, nil, nil)
	checkVideo(t, v, video, sent)

	v.waitFrames("audio", len(feed.packets))
	audio := v.received("audio")
	require.Len(t, audio, len(feed.packets))
	for i, p := range audio {
		require.Equal(t, feed.packets[i], p.Payload, "opus %d", i)
		assert.Equal(t, uint32(960*i), p.Timestamp-audio[0].Timestamp)
	}
	v.mu.Lock()
	assert.Equal(t, "video/H264", v.codecs["video"])
	assert.Equal(t, "audio/opus", v.codecs["audio"])
	v.mu.Unlock()
	info, _ := s.hub.Stream("live/cam1")
	assert.Equal(t, 1, info.Viewers["whep"])

	// The stream ends: the session ends with it.
	pub.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.whep.Sessions() > 0 {
		require.True(t, time.Now().Before(deadline), "the session outlived its stream")
		time.Sleep(20 * time.Millisecond)
	}
	feed.mu.Lock()
	assert.Zero(t, feed.live, "the feed was released")
	feed.mu.Unlock()
}

func TestWHEPPlaysStreamOpus(t *testing.T) {
	checkLeaks(t)
	video, _, frames := readMedia(t)
	packets := opusPackets(t)
	s := newWHEPServer(t, WHEPOptions{})
	pub, err := s.hub.Publish("live/cam1", hub.ClientInfo{Protocol: "whip"})
	require.NoError(t, err)
	defer pub.Close()
	opus := &media.Track{Codec: media.CodecOpus, SampleRate: 48000, Channels: 2}
	require.NoError(t, pub.SetTracks([]*media.Track{video, opus}))

	// Two viewers share the packetized frames; one leaves early.
	v1, v2 := newViewer(t), newViewer(t)
	require.Equal(t, http.StatusCreated, v1.play(s.url, "live/cam1").StatusCode)
	require.Equal(t, http.StatusCreated, v2.play(s.url, "live/cam1").StatusCode)
	v1.waitConnected()
	v2.waitConnected()
	req, _ := http.NewRequest(http.MethodDelete, s.url+v2.location, nil)
	dresp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	dresp.Body.Close()
	require.Equal(t, http.StatusOK, dresp.StatusCode)
	assert.Equal(t, 1, s.whep.Sessions())

	time.Sleep(100 * time.Millisecond)
	sent := publishFLV(t, pub, video, nil, frames, opus, packets)
	checkVideo(t, v1, video, sent)
	v1.waitFrames("audio", 10)
	for i, p := range v1.received("audio") {
		require.Equal(t, packets[i], p.Payload, "opus %d", i)
	}
}

func TestWHEPErrors(t *testing.T) {
	checkLeaks(t)
	video, _, _ := readMedia(t)
	s := newWHEPServer(t, WHEPOptions{Sessions: webrtc.NewLimiter(1)})
	url := s.url + "/live/cam1/whep"
	check := func(resp *http.Response, status int, code string) {
		t.Helper()
		assert.Equal(t, status, resp.StatusCode)
		b, _ := io.ReadAll(resp.Body)
		assert.Contains(t, string(b), `"code": "`+code+`"`, string(b))
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	}
	offer := newViewer(t).offer()
	check(post(t, url, "application/sdp", offer), http.StatusNotFound, "stream_not_found")
	check(post(t, url, "application/json", offer), http.StatusUnsupportedMediaType, "unsupported_media_type")
	check(post(t, url, "application/sdp", "nonsense"), http.StatusBadRequest, "bad_sdp")
	check(post(t, url, "application/sdp", strings.Repeat("x", 70000)), http.StatusRequestEntityTooLarge, "too_large")

	pub, err := s.hub.Publish("live/cam1", hub.ClientInfo{Protocol: "rtmp"})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.SetTracks([]*media.Track{video}))

	// A viewer that can only decode VP8.
	vp8 := newViewer(t, pwebrtc.RTPCodecParameters{RTPCodecCapability: pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96})
	resp := post(t, url, "application/sdp", vp8.offer())
	assert.Equal(t, http.StatusNotAcceptable, resp.StatusCode)
	b, _ := io.ReadAll(resp.Body)
	assert.Contains(t, string(b), "video/H264")
	assert.Contains(t, string(b), "VP8")

	// The session limit.
	v := newViewer(t)
	require.Equal(t, http.StatusCreated, v.play(s.url, "live/cam1").StatusCode)
	check(post(t, url, "application/sdp", newViewer(t).offer()), http.StatusServiceUnavailable, "too_many_sessions")

	for _, m := range []string{http.MethodPatch, http.MethodDelete} {
		req, _ := http.NewRequest(m, url+"/0123456789abcdef0123456789abcdef", strings.NewReader("a=end-of-candidates\r\n"))
		req.Header.Set("Content-Type", "application/trickle-ice-sdpfrag")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		check(resp, http.StatusNotFound, "session_not_found")
		resp.Body.Close()
	}
	assert.True(t, IsWHEPPath(v.location))
	assert.False(t, IsWHEPPath("/live/cam1.flv"))
}

// A stream with B-frames is refused with the reason: browsers' WebRTC
// decoders cannot reorder frames.
func TestWHEPRefusesBFrames(t *testing.T) {
	checkLeaks(t)
	video, _, _ := readMedia(t)
	s := newWHEPServer(t, WHEPOptions{})
	pub, err := s.hub.Publish("live/b", hub.ClientInfo{Protocol: "rtmp"})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.SetTracks([]*media.Track{video}))
	// Decoding order I P B: the B-frame is presented before the P-frame.
	ms := time.Millisecond
	for i, f := range []media.Frame{{DTS: 0, PTS: 33 * ms, Key: true}, {DTS: 33 * ms, PTS: 100 * ms}, {DTS: 66 * ms, PTS: 66 * ms}} {
		f.Payload = []byte{0, 0, 0, 1, byte(0x41 + i)}
		require.NoError(t, pub.WriteFrame(&f))
	}
	resp := post(t, s.url+"/live/b/whep", "application/sdp", newViewer(t).offer())
	defer resp.Body.Close()
	assert.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	b, _ := io.ReadAll(resp.Body)
	assert.Contains(t, string(b), `"code": "b_frames"`)
	assert.Contains(t, string(b), "-bf 0")
}

func TestWantsKeyframe(t *testing.T) {
	// A receiver report then a PLI, in one compound packet.
	rr := []byte{0x80, 201, 0, 1, 0, 0, 0, 1}
	pli := []byte{0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2}
	assert.True(t, wantsKeyframe(append(append([]byte{}, rr...), pli...)))
	assert.False(t, wantsKeyframe(rr))
	assert.False(t, wantsKeyframe([]byte{0x80, 201, 0xFF, 0xFF, 0x81, 206, 0, 2}), "a length beyond the packet ends the scan")
}

// fakeBinding is what pion hands a TrackLocal on Bind, writing nowhere.
type fakeBinding struct{ n int }

func (f *fakeBinding) CodecParameters() []pwebrtc.RTPCodecParameters {
	return []pwebrtc.RTPCodecParameters{{RTPCodecCapability: pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "packetization-mode=1;profile-level-id=640032"}, PayloadType: 102}}
}
func (f *fakeBinding) HeaderExtensions() []pwebrtc.RTPHeaderExtensionParameter { return nil }
func (f *fakeBinding) SSRC() pwebrtc.SSRC                                      { return 1 }
func (f *fakeBinding) SSRCRetransmission() pwebrtc.SSRC                        { return 0 }
func (f *fakeBinding) SSRCForwardErrorCorrection() pwebrtc.SSRC                { return 0 }
func (f *fakeBinding) WriteStream() pwebrtc.TrackLocalWriter                   { return f }
func (f *fakeBinding) ID() string                                              { return "fake" }
func (f *fakeBinding) RTCPReader() interceptor.RTCPReader                      { return nil }
func (f *fakeBinding) WriteRTP(h *rtp.Header, p []byte) (int, error) {
	f.n += len(p)
	return len(p), nil
}
func (f *fakeBinding) Write(b []byte) (int, error) { return len(b), nil }

// benchSessions makes n WHEP sessions reading one stream, each sending
// through newSender; it returns the publisher and the sessions.
func benchSessions(b *testing.B, n int, newSender func(i int, c pwebrtc.RTPCodecCapability) *webrtc.TrackSender) (*hub.Publisher, []*whepSession, *media.Track, []*media.Frame) {
	video, _, frames := readMedia(b)
	var vframes []*media.Frame
	for _, f := range frames {
		if f.Track == 0 {
			vframes = append(vframes, f)
		}
	}
	h := hub.New(hub.Options{Logger: quiet()})
	b.Cleanup(h.Close)
	pub, err := h.Publish("live/bench", hub.ClientInfo{Protocol: "bench"})
	require.NoError(b, err)
	require.NoError(b, pub.SetTracks([]*media.Track{video}))
	w := &WHEP{opts: WHEPOptions{MaxStartAge: time.Hour}, log: quiet()}
	c, err := webrtc.Capability(video)
	require.NoError(b, err)
	sessions := make([]*whepSession, n)
	for i := range sessions {
		r, err := h.Subscribe("live/bench", hub.ClientInfo{Protocol: "whep"})
		require.NoError(b, err)
		b.Cleanup(r.Close)
		sessions[i] = &whepSession{w: w, reader: r, log: quiet(), video: newSender(i, c), videoCodec: media.CodecH264, vIdx: -1, aIdx: -1}
	}
	return pub, sessions, video, vframes
}

// runFanout publishes frames and has every session send them, as their
// writer goroutines do; one op is one frame sent to every viewer.
func runFanout(b *testing.B, pub *hub.Publisher, sessions []*whepSession, frames []*media.Frame) {
	var (
		entries = make([]*hub.Entry, 0, 64)
		period  = frames[len(frames)-1].DTS + 40*time.Millisecond
		bytes   int64
	)
	publish := func(i int) {
		f := *frames[i%len(frames)]
		off := time.Duration(i/len(frames)) * period
		f.DTS += off
		f.PTS += off
		if err := pub.WriteFrame(&f); err != nil {
			b.Fatal(err)
		}
		bytes += int64(len(f.Payload))
	}
	// Start every viewer at the first keyframe.
	publish(0)
	for _, s := range sessions {
		entries, _ = s.reader.TryNext(entries[:0])
		for _, e := range entries {
			require.NoError(b, s.send(e))
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		publish(i)
		for _, s := range sessions {
			var err error
			entries, err = s.reader.TryNext(entries[:0])
			if err != nil {
				b.Fatal(err)
			}
			for _, e := range entries {
				if err := s.send(e); err != nil {
					b.Fatal(err)
				}
			}
			clear(entries)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(sessions)), "ns/frame/viewer")
	b.SetBytes(bytes / int64(b.N+1))
}

// BenchmarkWHEPFanout measures the per-frame send path of N viewers up to
// pion's writer: the packetization, built once per frame and shared, and each
// viewer's RTP headers. allocs/op not growing with N means no per-viewer
// allocation.
func BenchmarkWHEPFanout(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("viewers=%d", n), func(b *testing.B) {
			pub, sessions, _, frames := benchSessions(b, n, func(_ int, c pwebrtc.RTPCodecCapability) *webrtc.TrackSender {
				s := webrtc.NewTrackSender(c, "video", "bench")
				_, err := s.Bind(&fakeBinding{})
				require.NoError(b, err)
				return s
			})
			runFanout(b, pub, sessions, frames)
		})
	}
}

// BenchmarkWHEPFanoutPion is BenchmarkWHEPFanout through real pion peer
// connections (interceptors, SRTP, UDP on loopback) to pion viewers.
func BenchmarkWHEPFanoutPion(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprintf("viewers=%d", n), func(b *testing.B) {
			eng, err := webrtc.NewEngine(webrtc.EngineOptions{UDPListen: "127.0.0.1:0", Logger: quiet()})
			require.NoError(b, err)
			b.Cleanup(func() { _ = eng.Close() })
			pub, sessions, _, frames := benchSessions(b, n, func(i int, c pwebrtc.RTPCodecCapability) *webrtc.TrackSender {
				return connectSender(b, eng, c)
			})
			runFanout(b, pub, sessions, frames)
		})
	}
}

// connectSender connects a server peer sending one track to a pion viewer
// that reads and discards, and returns the server's sender once bound.
func connectSender(b *testing.B, eng *webrtc.Engine, c pwebrtc.RTPCodecCapability) *webrtc.TrackSender {
	v := newViewer(b)
	v.discard = true
	server, err := eng.NewPeerConnection(nil)
	require.NoError(b, err)
	b.Cleanup(func() { _ = server.Close() })
	ts := webrtc.NewTrackSender(c, "video", "bench")
	sender, err := server.AddTrack(ts)
	require.NoError(b, err)
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	}()
	require.NoError(b, server.SetRemoteDescription(pwebrtc.SessionDescription{Type: pwebrtc.SDPTypeOffer, SDP: v.offer()}))
	answer, err := server.CreateAnswer(nil)
	require.NoError(b, err)
	g := pwebrtc.GatheringCompletePromise(server)
	require.NoError(b, server.SetLocalDescription(answer))
	<-g
	require.NoError(b, v.pc.SetRemoteDescription(*server.LocalDescription()))
	v.waitConnected()
	deadline := time.Now().Add(5 * time.Second)
	for server.ConnectionState() != pwebrtc.PeerConnectionStateConnected || !ts.Bound() {
		require.True(b, time.Now().Before(deadline))
		time.Sleep(5 * time.Millisecond)
	}
	return ts
}
