package e2e

// Headless Chromium as the real WebRTC peer: the built-in pages (package web)
// play over WHEP and publish over WHIP, first against a loopback pion peer
// made here, then against the quasipaa binary.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/web"
)

// TestWebDriverStaticPage checks the WebDriver client itself on a static
// page: navigation, synchronous and asynchronous scripts, errors, waiting,
// a screenshot.
func TestWebDriverStaticPage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>static page</title>
<style>body{margin:0;background:#1e6bd6;color:#fff;font:32px sans-serif}</style></head>
<body><h1 id="h">Hello, WebDriver</h1>
<script>window.later = 0; setTimeout(() => { window.later = 42; }, 300);</script></body></html>`)
	}))
	defer srv.Close()

	b := startBrowser(t)
	b.open(srv.URL + "/page")

	var title string
	require.NoError(t, b.execSync(&title, "return document.title"))
	require.Equal(t, "static page", title)
	var sum float64
	require.NoError(t, b.execSync(&sum, "return arguments[0] + arguments[1]", 2, 3))
	require.Equal(t, 5.0, sum)
	var asyncText string
	require.NoError(t, b.execAsync(&asyncText, "const done = arguments[0]; setTimeout(() => done(document.getElementById('h').textContent), 10)"))
	require.Equal(t, "Hello, WebDriver", asyncText)

	require.Equal(t, "http:", b.eval("location.protocol"))
	require.Equal(t, map[string]any{"a": 1.0, "b": []any{"x"}}, b.eval("new Promise((r) => setTimeout(() => r({a: 1, b: ['x']}), 10))"))
	require.Nil(t, b.eval("undefined"))
	err := b.tryEval(nil, "Promise.reject(new Error('boom'))")
	require.ErrorContains(t, err, "boom")
	err = b.tryEval(nil, "(() => { throw new TypeError('bad') })()")
	require.ErrorContains(t, err, "TypeError: bad")
	var we *webdriverError
	require.ErrorAs(t, b.execSync(nil, "this is not javascript"), &we)
	require.Equal(t, "javascript error", we.Code)

	require.Equal(t, 42.0, b.waitFor("window.later", 5*time.Second))

	path := b.screenshot("static")
	require.NotEmpty(t, path)
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	require.Greater(t, img.Bounds().Dx(), 400)
	// The page background is the blue of the style sheet.
	r, g, bl, _ := img.At(img.Bounds().Dx()-5, img.Bounds().Dy()-5).RGBA()
	require.InDelta(t, 0x1e, r>>8, 8)
	require.InDelta(t, 0x6b, g>>8, 8)
	require.InDelta(t, 0xd6, bl>>8, 8)
}

// pageStats is what window.quasipaa.stats() resolves to.
type pageStats struct {
	State                 string  `json:"state"`
	ConnectionState       string  `json:"connectionState"`
	FramesDecoded         int     `json:"framesDecoded"`
	FramesDropped         int     `json:"framesDropped"`
	FramesEncoded         int     `json:"framesEncoded"`
	FrameWidth            int     `json:"frameWidth"`
	FrameHeight           int     `json:"frameHeight"`
	FramesPerSecond       float64 `json:"framesPerSecond"`
	TotalSamplesReceived  int     `json:"totalSamplesReceived"`
	AudioSamplesReceived  int     `json:"audioSamplesReceived"`
	VideoCodec            string  `json:"videoCodec"`
	AudioCodec            string  `json:"audioCodec"`
	BytesReceived         int64   `json:"bytesReceived"`
	BytesSent             int64   `json:"bytesSent"`
	PacketsSent           int64   `json:"packetsSent"`
	PacketsLost           int64   `json:"packetsLost"`
	VideoJitterBufferMs   float64 `json:"videoJitterBufferMs"`
	AudioJitterBufferMs   float64 `json:"audioJitterBufferMs"`
	EncoderImplementation string  `json:"encoderImplementation"`
	CandidateType         string  `json:"candidateType"`
	LocalCandidateType    string  `json:"localCandidateType"`
	RemoteCandidateType   string  `json:"remoteCandidateType"`
	RoundTripTimeMs       float64 `json:"roundTripTimeMs"`
}

// hook is window.quasipaa without its functions.
type hook struct {
	Mode    string  `json:"mode"`
	Path    string  `json:"path"`
	State   string  `json:"state"`
	Error   *string `json:"error"`
	Session *string `json:"session"`
}

const hookJS = `window.quasipaa && {mode: quasipaa.mode, path: quasipaa.path, state: quasipaa.state, error: quasipaa.error, session: quasipaa.session}`

func (b *browser) hook() hook {
	b.t.Helper()
	var h hook
	b.evalInto(&h, hookJS)
	return h
}

// waitStats waits until window.quasipaa.stats() satisfies cond (a JavaScript
// expression on s) and returns those stats.
func (b *browser) waitStats(cond string, timeout time.Duration) pageStats {
	b.t.Helper()
	v := b.waitFor(`window.quasipaa && window.quasipaa.stats().then((s) => (`+cond+`) ? s : null)`, timeout)
	raw, err := json.Marshal(v)
	require.NoError(b.t, err)
	var st pageStats
	require.NoError(b.t, json.Unmarshal(raw, &st))
	return st
}

// playing is the condition of a page that plays video and audio.
const playing = `s.framesDecoded > 30 && s.totalSamplesReceived > 0`

// publishing is the condition of a page that sends video and audio.
const publishing = `s.framesEncoded > 30 && s.packetsSent > 100`

// TestBrowserPagesWithLoopbackPeer runs the built-in pages in Chromium
// against a minimal WHEP/WHIP endpoint made with pion in this test (and a
// pion TURN server), all on loopback: playing, playing through TURN only,
// leaving (DELETE), publishing, a stream that is not live.
func TestBrowserPagesWithLoopbackPeer(t *testing.T) {
	requireTools(t, "ffmpeg", "chromium", "chromedriver")
	video, audio := makeLoopbackMedia(t)
	turnURL, turnUser, turnPass := startTURNServer(t)
	peer := newLoopbackPeer(t, video, audio, []string{
		`<stun:` + strings.TrimPrefix(turnURL, "turn:") + `>; rel="ice-server"`,
		`<` + turnURL + `?transport=udp>; rel="ice-server"; username="` + turnUser + `"; credential=` + strconv.Quote(turnPass) + `; credential-type="password"`,
	})
	pages := web.PlayerHandler()
	mux := http.NewServeMux()
	mux.Handle("GET /{app}/{stream}/{$}", pages)
	mux.Handle("GET /{app}/{stream}/publish", pages)
	mux.Handle("/{app}/{stream}/whep", peer)
	mux.Handle("/{app}/{stream}/whip", peer)
	mux.Handle("/session/{id}", peer)
	// The assets' prefix would conflict with /{app}/{stream}/… patterns in
	// a ServeMux: it is routed before it.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, web.AssetPrefix) {
			pages.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	defer srv.Close()

	b := startBrowser(t)

	t.Run("play", func(t *testing.T) {
		b.t = t
		opened := time.Now()
		b.open(srv.URL + "/live/x/")
		first := b.waitStats("s.framesDecoded > 0", 20*time.Second)
		t.Logf("first frame decoded %s after opening the page", time.Since(opened).Round(time.Millisecond))
		st := b.waitStats(playing, 20*time.Second)
		t.Logf("stats: %+v (first: %d frames)", st, first.FramesDecoded)
		require.Equal(t, "video/H264", st.VideoCodec)
		require.Equal(t, "audio/opus", strings.ToLower(st.AudioCodec))
		require.Equal(t, 640, st.FrameWidth)
		require.Equal(t, 360, st.FrameHeight)
		require.NotEqual(t, "relay", st.CandidateType)
		h := b.hook()
		require.Equal(t, "play", h.Mode)
		require.Equal(t, "live/x", h.Path)
		require.Equal(t, "connected", h.State)
		require.Nil(t, h.Error)
		require.NotNil(t, h.Session)
		require.Contains(t, *h.Session, "/session/")
		require.Equal(t, 640.0, b.eval(`document.getElementById("video").videoWidth`))
		require.Equal(t, true, b.eval(`document.getElementById("video").muted`))
		require.Equal(t, "live/x", b.eval(`document.getElementById("title").textContent`))
		b.eval(`document.getElementById("mute").click()`)
		require.Equal(t, false, b.eval(`document.getElementById("video").muted`))
		require.Equal(t, "true", b.eval(`document.getElementById("mute").getAttribute("aria-pressed")`))
		b.waitFor(`document.getElementById("details").textContent.includes("640×360")`, 5*time.Second)
		b.screenshot("loopback-play")
		require.Equal(t, 1, peer.optionsSeen("whep"), "the page read the ICE servers with OPTIONS")
		for _, line := range b.consoleLogs() {
			require.NotContains(t, line, "Content Security Policy")
			require.NotContains(t, line, "SEVERE")
		}
	})

	t.Run("relay", func(t *testing.T) {
		b.t = t
		before := peer.deletedCount()
		// Leaving the page deletes its session.
		b.open(srv.URL + "/live/x/?relay=1")
		require.Eventually(t, func() bool { return peer.deletedCount() > before }, 5*time.Second, 50*time.Millisecond, "DELETE on pagehide")
		st := b.waitStats(playing+` && s.candidateType === "relay"`, 20*time.Second)
		t.Logf("stats: %+v", st)
		require.Equal(t, "relay", st.LocalCandidateType)
		b.screenshot("loopback-relay")
	})

	t.Run("relay, ICE servers only in the answer", func(t *testing.T) {
		b.t = t
		peer.mu.Lock()
		peer.noOptionsLinks = true
		peer.mu.Unlock()
		defer func() {
			peer.mu.Lock()
			peer.noOptionsLinks = false
			peer.mu.Unlock()
		}()
		sessions, deleted := peer.sessionCount(), peer.deletedCount()
		b.open(srv.URL + "/live/x/?relay=1&secret=abc")
		st := b.waitStats(playing+` && s.candidateType === "relay"`, 20*time.Second)
		t.Logf("stats: %+v", st)
		// The old page's session, the throwaway one and the playing one.
		require.Equal(t, sessions+2, peer.sessionCount())
		require.Eventually(t, func() bool { return peer.deletedCount() == deleted+2 }, 5*time.Second, 50*time.Millisecond)
		require.Equal(t, "secret=abc", peer.lastQuery(), "the page passes its query on, without relay=1")
	})

	t.Run("trickle", func(t *testing.T) {
		b.t = t
		// A STUN server that never answers keeps ICE gathering going past
		// the page's 1 s: the rest comes with PATCH (RFC 8840 fragments).
		silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		defer silent.Close()
		peer.mu.Lock()
		peer.optionsExtra = []string{`<stun:` + silent.LocalAddr().String() + `>; rel="ice-server"`}
		peer.mu.Unlock()
		defer func() {
			peer.mu.Lock()
			peer.optionsExtra = nil
			peer.mu.Unlock()
		}()
		patches := peer.patchCount()
		b.open(srv.URL + "/live/x/")
		b.waitStats(playing, 20*time.Second)
		require.Eventually(t, func() bool { return peer.patchCount() > patches }, 20*time.Second, 100*time.Millisecond, "trickle ICE PATCH")
	})

	t.Run("publish", func(t *testing.T) {
		b.t = t
		b.open(srv.URL + "/live/cam/publish")
		st := b.waitStats(publishing, 20*time.Second)
		t.Logf("stats: %+v", st)
		h := b.hook()
		require.Equal(t, "publish", h.Mode)
		require.Equal(t, "live/cam", h.Path)
		require.Equal(t, "connected", h.State)
		require.Equal(t, "audio/opus", strings.ToLower(st.AudioCodec))
		var h264 bool
		require.NoError(t, b.tryEval(&h264, `(RTCRtpSender.getCapabilities("video") || {codecs: []}).codecs.some((c) => c.mimeType === "video/H264")`))
		if h264 {
			require.Equal(t, "video/H264", st.VideoCodec, "H.264 preferred when the browser can send it")
		} else {
			t.Logf("this Chromium cannot send H.264; it sent %s", st.VideoCodec)
		}
		require.Eventually(t, func() bool {
			got := peer.received()
			return got[strings.ToLower(st.VideoCodec)] > 100 && got["audio/opus"] > 50
		}, 10*time.Second, 100*time.Millisecond, "the peer receives what the page sends")
		t.Logf("peer received packets: %v", peer.received())
		b.screenshot("loopback-publish")

		// Stop, then start again: a new session.
		sessions := peer.sessionCount()
		b.eval(`document.getElementById("toggle").click()`)
		b.waitFor(`window.quasipaa.state === "stopped"`, 5*time.Second)
		b.eval(`document.getElementById("toggle").click()`)
		b.waitFor(`window.quasipaa.state === "connected"`, 15*time.Second)
		require.Greater(t, peer.sessionCount(), sessions)
	})

	t.Run("not live", func(t *testing.T) {
		b.t = t
		b.open(srv.URL + "/live/missing/")
		b.waitFor(`window.quasipaa.state === "retrying"`, 10*time.Second)
		h := b.hook()
		require.NotNil(t, h.Error)
		require.Contains(t, *h.Error, "404")
		require.Contains(t, b.eval(`document.getElementById("status").textContent`), "not live")
		b.screenshot("loopback-not-live")
	})
	b.t = t
	t.Logf("trickle ICE PATCH requests: %d", peer.patchCount())
}

// makeLoopbackMedia encodes 3 s of 640x360 H.264 (constrained baseline,
// one access unit per frame at 30 fps) and of 20 ms Opus packets.
func makeLoopbackMedia(t *testing.T) (video, audio [][]byte) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h264File, oggFile := filepath.Join(dir, "v.h264"), filepath.Join(dir, "a.ogg")
	for _, args := range [][]string{
		{"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-t", "3",
			"-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "baseline", "-x264-params", "sliced-threads=0",
			"-g", "30", "-keyint_min", "30", "-pix_fmt", "yuv420p", "-bsf:v", "h264_metadata=aud=insert", "-f", "h264", h264File},
		{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "3",
			"-c:a", "libopus", "-b:a", "64k", "-frame_duration", "20", "-page_duration", "20000", "-f", "ogg", oggFile},
	} {
		out, err := exec.CommandContext(ctx, "ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...).CombinedOutput()
		require.NoError(t, err, "ffmpeg: %s", out)
	}
	raw, err := os.ReadFile(h264File)
	require.NoError(t, err)
	video = splitAccessUnits(raw)
	require.InDelta(t, 90, len(video), 2, "access units")

	f, err := os.Open(oggFile)
	require.NoError(t, err)
	defer f.Close()
	ogg, _, err := oggreader.NewWith(f)
	require.NoError(t, err)
	for {
		page, _, err := ogg.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if len(page) == 0 || bytes.HasPrefix(page, []byte("OpusTags")) {
			continue
		}
		audio = append(audio, page)
	}
	require.InDelta(t, 150, len(audio), 3, "Opus packets")
	return video, audio
}

// splitAccessUnits cuts an Annex B stream before each access unit delimiter.
func splitAccessUnits(b []byte) [][]byte {
	var aus [][]byte
	start := -1
	for i := 0; i+3 < len(b); i++ {
		if b[i] != 0 || b[i+1] != 0 || b[i+2] != 1 {
			continue
		}
		if b[i+3]&0x1f == 9 {
			at := i
			if at > 0 && b[at-1] == 0 {
				at--
			}
			if start >= 0 {
				aus = append(aus, b[start:at])
			}
			start = at
		}
		i += 2
	}
	if start >= 0 {
		aus = append(aus, b[start:])
	}
	return aus
}

// startTURNServer runs a pion TURN server on a loopback UDP port with one
// user and returns its turn: URL and credentials.
func startTURNServer(t *testing.T) (url, user, pass string) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	const realm = "quasipaa.test"
	// Quoting in Link headers is part of the test: the password has a
	// comma, a semicolon and a double quote.
	user, pass = "tester", `s3c,r;e"t`
	key := turn.GenerateAuthKey(user, realm, pass)
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm: realm,
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			if ra.Username == user {
				return user, key, true
			}
			return "", nil, false
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            conn,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{RelayAddress: net.IPv4(127, 0, 0, 1), Address: "127.0.0.1"},
		}},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	return "turn:" + conn.LocalAddr().String(), user, pass
}

// loopbackPeer is a minimal WHEP and WHIP endpoint (RFC 9725) on pion, bound
// to loopback: WHEP sessions get a looped H.264 + Opus clip, WHIP sessions'
// packets are counted by codec.
type loopbackPeer struct {
	t     *testing.T
	api   *webrtc.API
	links []string
	video [][]byte
	audio [][]byte

	mu       sync.Mutex
	sessions map[string]*webrtc.PeerConnection
	nextID   int
	deleted  int
	patches  int
	options  map[string]int
	query    string // of the last POST
	// noOptionsLinks leaves the Link headers out of OPTIONS answers;
	// optionsExtra adds some.
	noOptionsLinks bool
	optionsExtra   []string
	packets        map[string]int
}

func newLoopbackPeer(t *testing.T, video, audio [][]byte, links []string) *loopbackPeer {
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	m := &webrtc.MediaEngine{}
	require.NoError(t, m.RegisterDefaultCodecs())
	ir := &interceptor.Registry{}
	require.NoError(t, webrtc.RegisterDefaultInterceptors(m, ir))
	p := &loopbackPeer{
		t:        t,
		api:      webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir)),
		links:    links,
		video:    video,
		audio:    audio,
		sessions: map[string]*webrtc.PeerConnection{},
		options:  map[string]int{},
		packets:  map[string]int{},
	}
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, pc := range p.sessions {
			_ = pc.Close()
		}
	})
	return p
}

func (p *loopbackPeer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id := r.PathValue("id"); id != "" {
		p.serveSession(w, r, id)
		return
	}
	kind := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	switch r.Method {
	case http.MethodOptions:
		p.mu.Lock()
		p.options[kind]++
		withLinks := !p.noOptionsLinks
		extra := p.optionsExtra
		p.mu.Unlock()
		if withLinks {
			for _, l := range append(p.links, extra...) {
				w.Header().Add("Link", l)
			}
		}
		w.Header().Set("Allow", "OPTIONS, POST")
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPost:
		if r.PathValue("stream") == "missing" {
			http.Error(w, "stream not found", http.StatusNotFound)
			return
		}
		if r.Header.Get("Content-Type") != "application/sdp" {
			http.Error(w, "want application/sdp", http.StatusUnsupportedMediaType)
			return
		}
		offer, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p.mu.Lock()
		p.query = r.URL.RawQuery
		p.mu.Unlock()
		id, answer, err := p.newSession(kind, string(offer))
		if err != nil {
			p.t.Logf("loopback peer: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, l := range p.links {
			w.Header().Add("Link", l)
		}
		w.Header().Set("Content-Type", "application/sdp")
		w.Header().Set("Location", "/session/"+id)
		w.Header().Set("ETag", `"`+id+`"`)
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, answer)
	default:
		w.Header().Set("Allow", "OPTIONS, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (p *loopbackPeer) newSession(kind, offer string) (string, string, error) {
	pc, err := p.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", "", err
	}
	ctx, cancel := context.WithCancel(context.Background())
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateClosed || s == webrtc.PeerConnectionStateFailed {
			cancel()
		}
	})
	fail := func(err error) (string, string, error) {
		cancel()
		_ = pc.Close()
		return "", "", err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(err)
	}
	if kind == "whep" {
		vt, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
		}, "video", "quasipaa")
		if err != nil {
			return fail(err)
		}
		at, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		}, "audio", "quasipaa")
		if err != nil {
			return fail(err)
		}
		for _, tr := range []webrtc.TrackLocal{vt, at} {
			sender, err := pc.AddTrack(tr)
			if err != nil {
				return fail(err)
			}
			go func() {
				buf := make([]byte, 1500)
				for {
					if _, _, err := sender.Read(buf); err != nil {
						return
					}
				}
			}()
		}
		go loopSamples(ctx, vt, p.video, time.Second/30)
		go loopSamples(ctx, at, p.audio, 20*time.Millisecond)
	} else {
		pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			mime := strings.ToLower(tr.Codec().MimeType)
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					return
				}
				p.mu.Lock()
				p.packets[mime]++
				p.mu.Unlock()
			}
		})
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(err)
	}
	select {
	case <-gathered:
	case <-time.After(5 * time.Second):
		return fail(errors.New("ICE gathering did not complete"))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextID++
	id := strconv.Itoa(p.nextID)
	p.sessions[id] = pc
	return id, pc.LocalDescription().SDP, nil
}

// loopSamples writes samples at their real-time pace, from the first again
// after the last, until ctx ends.
func loopSamples(ctx context.Context, track *webrtc.TrackLocalStaticSample, samples [][]byte, d time.Duration) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := track.WriteSample(pionmedia.Sample{Data: samples[i%len(samples)], Duration: d}); err != nil {
			return
		}
	}
}

func (p *loopbackPeer) serveSession(w http.ResponseWriter, r *http.Request, id string) {
	p.mu.Lock()
	pc := p.sessions[id]
	p.mu.Unlock()
	if pc == nil {
		http.Error(w, "no such session", http.StatusNotFound)
		return
	}
	switch r.Method {
	case http.MethodPatch:
		if r.Header.Get("Content-Type") != "application/trickle-ice-sdpfrag" {
			http.Error(w, "want application/trickle-ice-sdpfrag", http.StatusUnsupportedMediaType)
			return
		}
		frag, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		mid := ""
		for _, line := range strings.Split(string(frag), "\n") {
			line = strings.TrimSpace(line)
			if v, ok := strings.CutPrefix(line, "a=mid:"); ok {
				mid = v
			}
			if c, ok := strings.CutPrefix(line, "a="); ok && strings.HasPrefix(c, "candidate:") {
				m := mid
				// mDNS candidates cannot be resolved here; connectivity
				// checks find the peer anyway.
				_ = pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: c, SDPMid: &m})
			}
		}
		p.mu.Lock()
		p.patches++
		p.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		_ = pc.Close()
		p.mu.Lock()
		delete(p.sessions, id)
		p.deleted++
		p.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	default:
		w.Header().Set("Allow", "PATCH, DELETE")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (p *loopbackPeer) optionsSeen(kind string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.options[kind]
}

func (p *loopbackPeer) lastQuery() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.query
}

func (p *loopbackPeer) deletedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.deleted
}

func (p *loopbackPeer) sessionCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nextID
}

func (p *loopbackPeer) patchCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.patches
}

func (p *loopbackPeer) received() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.packets))
	for k, v := range p.packets {
		out[k] = v
	}
	return out
}

// requireServerWebRTC fails the test when the server has no WHIP/WHEP
// endpoint: OPTIONS on it answers 404 or 405.
func requireServerWebRTC(t *testing.T, s *server, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodOptions, "http://"+s.HTTPAddr+"/"+path, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
		t.Fatalf("the server has no WHIP/WHEP endpoint: OPTIONS /%s answers %d", path, resp.StatusCode)
	}
}

// TestBrowserPlaysRTMPOverWHEP: ffmpeg publishes H.264 + AAC over RTMP;
// Chromium plays it on the built-in page over WHEP, audio as Opus.
func TestBrowserPlaysRTMPOverWHEP(t *testing.T) {
	requireTools(t, "ffmpeg", "chromium", "chromedriver")
	s := startServer(t)
	publishTestStream(t, s.rtmpURL("live/x"), 0)
	waitStream(t, s, "live/x")
	requireServerWebRTC(t, s, "live/x/whep")
	playOverWHEP(t, s, "", "whep-rtmp")
}

// TestBrowserWHEPThroughTURN: the same through the server's TURN relay only
// (?relay=1 sets iceTransportPolicy "relay").
func TestBrowserWHEPThroughTURN(t *testing.T) {
	requireTools(t, "ffmpeg", "chromium", "chromedriver")
	s := startServer(t, "QUASIPAA_TURN_LISTEN=127.0.0.1:0", "QUASIPAA_TURN_ALLOW_PRIVATE_PEERS=true")
	publishTestStream(t, s.rtmpURL("live/x"), 0)
	waitStream(t, s, "live/x")
	requireServerWebRTC(t, s, "live/x/whep")
	st := playOverWHEP(t, s, "?relay=1", "whep-turn")
	require.Equal(t, "relay", st.CandidateType, "the selected candidate pair goes through TURN")
}

// playOverWHEP opens the player page and waits until it decodes video and
// audio.
func playOverWHEP(t *testing.T, s *server, query, name string) pageStats {
	b := startBrowser(t)
	opened := time.Now()
	b.open("http://" + s.HTTPAddr + "/live/x/" + query)
	b.waitStats("s.framesDecoded > 0", 20*time.Second)
	t.Logf("first frame decoded %s after opening the page", time.Since(opened).Round(time.Millisecond))
	st := b.waitStats(playing, 20*time.Second)
	t.Logf("stats: %+v", st)
	require.Equal(t, "video/h264", strings.ToLower(st.VideoCodec))
	require.Equal(t, "audio/opus", strings.ToLower(st.AudioCodec))
	require.Equal(t, 1280, st.FrameWidth)
	require.Equal(t, 720, st.FrameHeight)
	// What the browser adds to the server's latency: its jitter buffers and
	// half a round trip. Glass-to-glass latency also has the encoder's and
	// the RTMP leg's, not measured here.
	t.Logf("browser side latency: video jitter buffer %.0f ms, audio %.0f ms, RTT %.1f ms",
		st.VideoJitterBufferMs, st.AudioJitterBufferMs, st.RoundTripTimeMs)
	require.Equal(t, "connected", b.hook().State)
	b.screenshot(name)
	return st
}

// TestBrowserPublishesOverWHIP: Chromium publishes its fake camera and
// microphone over WHIP from the built-in page; ffprobe reads the stream back
// over HTTP-FLV as H.264 + AAC.
func TestBrowserPublishesOverWHIP(t *testing.T) {
	requireTools(t, "ffprobe", "chromium", "chromedriver")
	s := startServer(t)
	requireServerWebRTC(t, s, "live/cam/whip")
	b := startBrowser(t)
	opened := time.Now()
	b.open("http://" + s.HTTPAddr + "/live/cam/publish")
	st := b.waitStats(publishing, 20*time.Second)
	t.Logf("stats: %+v", st)
	require.Equal(t, "video/h264", strings.ToLower(st.VideoCodec), "the page prefers H.264")
	var live bool
	require.Eventually(t, func() bool {
		got, ok := getStream(s, "live/cam")
		live = ok && got.State == "live"
		return live
	}, 20*time.Second, 100*time.Millisecond, "stream live/cam never went live; server log:\n%s", tail(s.logs.String(), 3000))
	t.Logf("live %s after opening the page", time.Since(opened).Round(time.Millisecond))
	b.screenshot("whip-publish")

	p := ffprobe(t, s.flvURL("live/cam"), "-rw_timeout", "15000000")
	var video, audio string
	for _, stream := range p.Streams {
		switch stream.CodecType {
		case "video":
			video = stream.CodecName
		case "audio":
			audio = stream.CodecName
		}
	}
	require.Equal(t, "h264", video, "streams: %+v", p.Streams)
	require.Equal(t, "aac", audio, "streams: %+v", p.Streams)
}

// TestBrowserRefusesBFrames: browsers' WebRTC decoders cannot reorder
// frames, so a stream with B-frames (x264 defaults, 3 B-frames) would play
// as keyframes only. WHEP refuses it with the reason, which the page shows,
// instead of a broken picture; the same stream plays over HTTP-FLV.
func TestBrowserRefusesBFrames(t *testing.T) {
	requireTools(t, "ffmpeg", "chromium", "chromedriver")
	s := startServer(t)
	startPublisher(t,
		"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-c:v", "libx264", "-preset", "ultrafast", "-bf", "3", "-g", "60", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-f", "flv", s.rtmpURL("live/x"))
	waitStream(t, s, "live/x")
	b := startBrowser(t)
	b.open("http://" + s.HTTPAddr + "/live/x/")
	b.waitFor(`window.quasipaa && window.quasipaa.error && window.quasipaa.error.includes("B-frames")`, 20*time.Second)
	b.screenshot("whep-bframes-refused")
	requireH264AAC720p(t, ffprobe(t, s.flvURL("live/x")))
}
