package e2e

// The web console (/console/) in headless Chromium against the real binary,
// with ffmpeg publishing over RTMP: the stream list, WHEP and HLS playback
// with decoded frames, the nodes view, the API key sign-in.

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/auth"
	"github.com/quasipaa/quasipaa/web"
)

// consoleArtefacts is where the console test's screenshots go:
// $E2E_ARTEFACTS/<test>, else test/e2e/artifacts/<test> (git-ignored), kept
// after the test. (A QUASIPAA_* name would be refused by the server, which
// startServer hands the whole environment.)
func consoleArtefacts(t *testing.T) string {
	root := os.Getenv("E2E_ARTEFACTS")
	if root == "" {
		root = "artifacts"
	}
	dir, err := filepath.Abs(filepath.Join(root, regexp.MustCompile(`[^A-Za-z0-9._-]+`).ReplaceAllString(t.Name(), "_")))
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// publishNoBFrames starts ffmpeg publishing 640x360 H.264 without B-frames
// (which WHEP refuses) and a 1 s GOP, plus AAC, generated in real time.
func publishNoBFrames(t *testing.T, url string) *publisher {
	t.Helper()
	return startPublisher(t,
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-bf", "0",
		"-g", "30", "-keyint_min", "30", "-b:v", "800k", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "64k", "-ac", "2",
		"-f", "flv", url)
}

// clientIDs returns the IDs of the clients GET /api/v1/streams/{path}
// lists, or nil when the answer has no client list.
func clientIDs(t *testing.T, base, path string) []string {
	t.Helper()
	var st struct {
		Clients *[]struct {
			ID string `json:"id"`
		} `json:"clients"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/streams/"+path, &st))
	if st.Clients == nil {
		return nil
	}
	ids := []string{}
	for _, c := range *st.Clients {
		ids = append(ids, c.ID)
	}
	return ids
}

// playback is window.qconsole.playback().
type playback struct {
	Protocol string  `json:"protocol"`
	State    string  `json:"state"`
	Error    *string `json:"error"`
	Frames   int     `json:"frames"`
	Dropped  int     `json:"dropped"`
	Time     float64 `json:"time"`
	// AudioBytes is Chromium's webkitAudioDecodedByteCount (0 for WebRTC).
	AudioBytes int `json:"audioBytes"`
	Width      int `json:"width"`
	Height     int `json:"height"`
}

// waitPlaying waits until the console's player of protocol has decoded
// frames, then checks that frames, the play position and (but over WHEP)
// decoded audio keep advancing.
func waitPlaying(t *testing.T, b *browser, protocol string) playback {
	t.Helper()
	start := time.Now()
	cond := `window.qconsole && (() => { const p = qconsole.playback(); return p.protocol === "` + protocol + `" && p.frames > 10 && p.time > 0.3 ? p : null })()`
	var first playback
	raw, err := json.Marshal(b.waitFor(cond, 25*time.Second))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &first))
	t.Logf("%s: first frames after %s: %+v", protocol, time.Since(start).Round(time.Millisecond), first)
	// Wait for the progress asserted below (1.5 s of media when the machine
	// keeps up), for at most 10 s: a loaded machine may stall a moment.
	start = time.Now()
	var later playback
	for deadline := start.Add(10 * time.Second); ; {
		time.Sleep(250 * time.Millisecond)
		b.evalInto(&later, `qconsole.playback()`)
		if later.Frames > first.Frames+15 && later.Time > first.Time+0.7 &&
			(protocol == "whep" || later.AudioBytes > first.AudioBytes) || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("%s: %s later: %+v", protocol, time.Since(start).Round(time.Millisecond), later)
	require.Greater(t, later.Frames, first.Frames+15, "%s: frames keep being decoded", protocol)
	require.Greater(t, later.Time, first.Time+0.7, "%s: the play position advances", protocol)
	require.Equal(t, 640, later.Width)
	require.Equal(t, 360, later.Height)
	if protocol != "whep" {
		require.Greater(t, later.AudioBytes, first.AudioBytes, "%s: audio is decoded", protocol)
	}
	return later
}

// TestConsole: the console lists the stream ffmpeg publishes, plays it over
// WHEP and over HLS (decoded frames in the video element), and shows the
// node; a stream of an app with auth: token plays once its play token is
// pasted; with api.keys set it asks for the key and works once given it.
func TestConsole(t *testing.T) {
	requireTools(t, "ffmpeg", "chromium", "chromedriver")
	s := startServer(t, `QUASIPAA_APPS=[{match: "live/*", record: true, record_segment: 1s}, {match: "secure/*", auth: token}]`,
		"QUASIPAA_AUTH_JWT_SECRET="+authSecret, "QUASIPAA_AUTH_FAIL_LIMIT=0")
	publishNoBFrames(t, s.rtmpURL("live/x"))
	b := startBrowser(t)
	b.artefacts = consoleArtefacts(t)
	base := "http://" + s.HTTPAddr

	opened := time.Now()
	b.open(base + "/console")
	require.Equal(t, base+"/console/", b.eval("location.href"), "/console redirects to /console/")
	b.waitFor(`document.querySelector('tr[data-path="live/x"]')`, 20*time.Second)
	t.Logf("stream listed %s after opening the console", time.Since(opened).Round(time.Millisecond))
	b.waitFor(`document.querySelector('tr[data-path="live/x"]').textContent.includes("h264 640×360")`, 5*time.Second)
	b.screenshot("console-streams")

	// Open the stream: the player starts with WHEP.
	b.eval(`document.querySelector('tr[data-path="live/x"] a').click()`)
	b.waitFor(`qconsole.view === "stream" && qconsole.protocol === "whep"`, 5*time.Second)
	waitPlaying(t, b, "whep")
	b.waitFor(`document.querySelector("table.urls") && document.querySelector("table.urls").textContent.includes("/live/x/index.m3u8")`, 5*time.Second)
	urls := b.eval(`document.querySelector("table.urls").textContent`).(string)
	require.Contains(t, urls, "rtmp://")
	require.Contains(t, urls, base+"/live/x.flv")
	require.Contains(t, urls, base+"/live/x/whep")
	// The viewer counts of the API show the WebRTC viewer.
	b.waitFor(`document.querySelector("main").textContent.includes("whep 1")`, 10*time.Second)
	b.screenshot("console-whep")

	// Kick the WebRTC viewer from the viewers table (when the API lists
	// viewers): its session leaves the stream's client list.
	if clientIDs(t, base, "live/x") == nil {
		t.Log("the API lists no individual viewers on this build: checking the console says so")
		b.waitFor(`document.querySelector("main").textContent.includes("does not list individual viewers")`, 10*time.Second)
	} else {
		const kickButton = `document.querySelector('button[data-client][data-protocol="whep"]')`
		b.waitFor(kickButton, 10*time.Second)
		id := b.eval(kickButton + `.dataset.client`).(string)
		b.eval(kickButton + `.click()`)
		b.waitFor(`document.getElementById("kick-status").textContent.startsWith("Disconnected whep viewer")`, 10*time.Second)
		require.Eventually(t, func() bool { return !slices.Contains(clientIDs(t, base, "live/x"), id) }, 10*time.Second, 200*time.Millisecond,
			"the kicked viewer %s is still listed", id)
	}

	// Switch to the built-in HLS player.
	b.eval(`document.querySelector('button[data-protocol="hls"]').click()`)
	hls := waitPlaying(t, b, "hls")
	require.Nil(t, hls.Error)
	b.screenshot("console-hls")

	// And to HTTP-FLV, remuxed to fMP4 in the browser.
	b.eval(`document.querySelector('button[data-protocol="flv"]').click()`)
	flv := waitPlaying(t, b, "flv")
	require.Nil(t, flv.Error)
	b.screenshot("console-flv")

	// The recordings view lists what was recorded meanwhile and plays it
	// with the HLS player (VOD), and links the MP4 download.
	b.eval(`location.hash = "#/recordings?path=live/x"`)
	b.waitFor(`document.querySelector("main table button")`, 10*time.Second)
	mp4 := b.eval(`document.querySelector("main table a[download]").href`).(string)
	require.Contains(t, mp4, "/vod/live/x.mp4?from=")
	b.eval(`document.querySelector("main table button").click()`)
	vod := waitPlaying(t, b, "hls")
	require.Nil(t, vod.Error)
	b.screenshot("console-recording")
	code, _, hdr := httpGet(t, mp4)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "video/mp4", hdr.Get("Content-Type"))

	// The nodes view shows this node (or says the server has no cluster API).
	b.eval(`location.hash = "#/nodes"`)
	if code, _, _ := httpGet(t, base+"/api/v1/nodes"); code == http.StatusNotFound {
		t.Log("GET /api/v1/nodes answers 404 (no cluster API on this build): checking the console says so")
		b.waitFor(`document.querySelector("main").textContent.includes("no cluster API")`, 10*time.Second)
	} else {
		// This node, with its roles; drain it and undrain it.
		b.waitFor(`document.querySelector("tr[data-node]") && document.querySelector("tr[data-node]").textContent.includes("publish")`, 10*time.Second)
		b.eval(`document.querySelector("tr[data-node] button").click()`)
		b.waitFor(`document.querySelector("tr[data-node] .badge.draining") && document.querySelector("tr[data-node] button").textContent === "Undrain"`, 10*time.Second)
		b.screenshot("console-nodes-draining")
		b.eval(`document.querySelector("tr[data-node] button").click()`)
		b.waitFor(`!document.querySelector("tr[data-node] .badge.draining") && document.querySelector("tr[data-node] button").textContent === "Drain"`, 10*time.Second)
	}
	b.screenshot("console-nodes")

	// The publish view sends the browser's (fake) camera over WHIP.
	b.eval(`location.hash = "#/publish"`)
	b.waitFor(`qconsole.view === "publish" && document.getElementById("publish-path")`, 5*time.Second)
	b.eval(`(() => { document.getElementById("publish-path").value = "live/cam"; document.querySelector("main form").requestSubmit() })()`)
	b.waitFor(`qconsole.playback().protocol === "whip" && qconsole.playback().state === "connected"`, 20*time.Second)
	require.Eventually(t, func() bool {
		st, ok := getStream(s, "live/cam")
		return ok && st.State == "live"
	}, 15*time.Second, 200*time.Millisecond, "the console's WHIP publication never went live")
	b.screenshot("console-publish")

	parent := t
	t.Run("play token", func(t *testing.T) {
		b.t = t
		defer func() { b.t = parent }()
		const path = "secure/x"
		pub, err := auth.Mint([]byte(authSecret), auth.Claims{Path: path, Action: auth.ActionPublish}, time.Hour)
		require.NoError(t, err)
		play, err := auth.Mint([]byte(authSecret), auth.Claims{Path: path, Action: auth.ActionPlay}, time.Hour)
		require.NoError(t, err)
		publishNoBFrames(t, s.rtmpURL(path)+"?token="+pub)
		require.Eventually(t, func() bool {
			st, ok := getStream(s, path)
			return ok && st.State == "live"
		}, 15*time.Second, 200*time.Millisecond, "the publication with a token never went live")
		b.eval(`(() => { sessionStorage.removeItem("quasipaa.playToken"); location.hash = "#/streams/` + path + `" })()`)
		b.waitFor(`qconsole.view === "stream" && document.getElementById("play-token") !== null`, 5*time.Second)
		// Without a token the FLV player is refused, and says why.
		b.eval(`document.querySelector('button[data-protocol="flv"]').click()`)
		b.waitFor(`document.getElementById("player-status").textContent.includes("needs a play token")`, 10*time.Second)
		b.screenshot("console-token-missing")
		// With the token pasted: FLV plays, the URLs carry it.
		b.eval(`(() => { document.getElementById("play-token").value = ` + strconv.Quote(play) + `; document.getElementById("play-token-apply").click() })()`)
		flv := waitPlaying(t, b, "flv")
		require.Nil(t, flv.Error)
		require.Equal(t, play, b.eval(`sessionStorage.getItem("quasipaa.playToken")`))
		b.waitFor(`document.querySelector("table.urls").textContent.includes("/secure/x.flv?token=")`, 5*time.Second)
		// And WebRTC: the player page passes ?token= on to WHEP.
		b.eval(`document.querySelector('button[data-protocol="whep"]').click()`)
		waitPlaying(t, b, "whep")
		b.screenshot("console-token-whep")
	})

	t.Run("api key", func(t *testing.T) {
		b.t = t
		defer func() { b.t = parent }()
		const apiKey = "console-test-key-123456"
		s2 := startServer(t, `QUASIPAA_API_KEYS=[{name: t, key: "`+apiKey+`", scope: admin}]`)
		code, _, _ := httpGet(t, "http://"+s2.HTTPAddr+"/api/v1/streams")
		require.Equal(t, http.StatusUnauthorized, code, "the API refuses a request without the key")
		// The console's files hold no data: they need no key.
		code, _, _ = httpGet(t, "http://"+s2.HTTPAddr+"/console/app.js")
		require.Equal(t, http.StatusOK, code)

		b.open("http://" + s2.HTTPAddr + "/console/#/streams")
		b.waitFor(`document.getElementById("login").open`, 10*time.Second)
		b.screenshot("console-login")
		// A wrong key is refused, the dialog stays.
		signIn := func(k string) {
			b.eval(`(() => { document.getElementById("login-key").value = ` + strconv.Quote(k) + `; document.getElementById("login-form").requestSubmit() })()`)
		}
		signIn("wrong-key-0123456789")
		b.waitFor(`document.getElementById("login-error").textContent.includes("Wrong key")`, 10*time.Second)
		require.Equal(t, true, b.eval(`document.getElementById("login").open`))
		// The right one opens the console; it is kept for the session.
		signIn(apiKey)
		b.waitFor(`!document.getElementById("login").open && document.querySelector("main").textContent.includes("No live stream")`, 10*time.Second)
		require.Equal(t, apiKey, b.eval(`sessionStorage.getItem("quasipaa.apiKey")`))
		require.Equal(t, false, b.eval(`document.getElementById("signout").hidden`))
		b.screenshot("console-signed-in")
		// Sign out forgets the key and asks again.
		b.eval(`document.getElementById("signout").click()`)
		b.waitFor(`document.getElementById("login").open && sessionStorage.getItem("quasipaa.apiKey") === null`, 10*time.Second)
	})
}

// TestConsoleHLSParsers runs the console's HLS module (web/console/hls.js)
// in Chromium on chosen inputs: playlists of each kind, bad playlists, the
// codec strings of init segments ffmpeg writes, and garbage bytes.
func TestConsoleHLSParsers(t *testing.T) {
	requireTools(t, "ffmpeg", "chromium", "chromedriver")
	dir := t.TempDir()
	// Init segments as a fragmenting muxer writes them (ftyp+moov first).
	inits := map[string][]string{
		"h264.mp4": {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10", "-c:v", "libx264", "-profile:v", "high", "-level:v", "3.1", "-pix_fmt", "yuv420p"},
		"aac.mp4":  {"-f", "lavfi", "-i", "sine=sample_rate=44100", "-c:a", "aac"},
		"opus.mp4": {"-f", "lavfi", "-i", "sine=sample_rate=48000", "-c:a", "libopus"},
		"h265.mp4": {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10", "-c:v", "libx265", "-tag:v", "hvc1", "-x265-params", "log-level=error", "-pix_fmt", "yuv420p"},
		"vp9.mp4":  {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10", "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-pix_fmt", "yuv420p"},
		"av1.mp4":  {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10", "-c:v", "libsvtav1", "-preset", "12", "-svtav1-params", "verbosity=0", "-pix_fmt", "yuv420p"},
	}
	for name, args := range inits {
		args = append([]string{"-hide_banner", "-loglevel", "error"}, args...)
		args = append(args, "-t", "0.5", "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", filepath.Join(dir, name))
		out, err := exec.Command("ffmpeg", args...).CombinedOutput()
		require.NoError(t, err, "%s: %s", name, out)
	}
	// 3 s of H.264 with B-frames (composition offsets) + AAC, as FLV.
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=44100",
		"-t", "3", "-c:v", "libx264", "-bf", "2", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "1",
		"-f", "flv", filepath.Join(dir, "bframes.flv")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	console := web.ConsoleHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/init/") {
			http.ServeFile(w, r, filepath.Join(dir, strings.TrimPrefix(r.URL.Path, "/init/")))
			return
		}
		console.ServeHTTP(w, r)
	}))
	defer srv.Close()

	b := startBrowser(t)
	b.open(srv.URL + "/console/")
	const load = `import("/console/hls.js").then((m) => `

	// A Low-Latency media playlist: gap segments skipped, parts ignored.
	ll := "#EXTM3U\n#EXT-X-VERSION:10\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:5\n#EXT-X-MAP:URI=\"a_init.mp4\"\n" +
		"#EXT-X-GAP\n#EXTINF:2.00000,\ngap.mp4\n#EXTINF:2.00000,\na_seg6.mp4\n#EXT-X-PART:DURATION=0.2,URI=\"a_part0.mp4\",INDEPENDENT=YES\n" +
		"#EXTINF:1.5,\na_seg7.mp4\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"a_part1.mp4\"\n"
	var media struct {
		Segments []struct {
			MSN      int     `json:"msn"`
			URI      string  `json:"uri"`
			Duration float64 `json:"duration"`
			Map      string  `json:"map"`
		} `json:"segments"`
		TargetDuration float64 `json:"targetDuration"`
		Ended          bool    `json:"ended"`
	}
	b.evalInto(&media, load+`m.parsePlaylist(`+strconv.Quote(ll)+`, "http://h/live/x/video.m3u8"))`)
	require.Len(t, media.Segments, 2)
	require.Equal(t, 6, media.Segments[0].MSN)
	require.Equal(t, "http://h/live/x/a_seg6.mp4", media.Segments[0].URI)
	require.Equal(t, "http://h/live/x/a_init.mp4", media.Segments[0].Map)
	require.Equal(t, 7, media.Segments[1].MSN)
	require.InDelta(t, 1.5, media.Segments[1].Duration, 1e-9)
	require.Equal(t, 2.0, media.TargetDuration)
	require.False(t, media.Ended)

	// A recording: two runs, each with its own map, ended.
	vod := "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"init/1.mp4?token=a\"\n#EXTINF:4.000,\nseg/1.mp4?token=a\n" +
		"#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init/2.mp4?token=a\"\n#EXTINF:4.000,\nseg/2.mp4?token=a\n#EXT-X-ENDLIST\n"
	var runs []map[string]any
	b.evalInto(&runs, load+`m.parsePlaylist(`+strconv.Quote(vod)+`, "http://h/vod/live/x/index.m3u8?from=1").segments)`)
	require.Len(t, runs, 2)
	require.Equal(t, "http://h/vod/live/x/init/1.mp4?token=a", runs[0]["map"])
	require.Equal(t, "http://h/vod/live/x/init/2.mp4?token=a", runs[1]["map"])
	require.Equal(t, false, runs[0]["discontinuity"])
	require.Equal(t, true, runs[1]["discontinuity"])
	require.Equal(t, true, b.eval(load+`m.parsePlaylist(`+strconv.Quote(vod)+`, "http://h/").ended)`))

	// A multivariant playlist with a separate audio rendition.
	mv := "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"a, b\",DEFAULT=YES,URI=\"audio2.m3u8\"\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=1000,CODECS=\"avc1.42c01e,mp4a.40.2\",AUDIO=\"audio\"\nvideo1.m3u8\n"
	var top struct {
		Variants []struct {
			URI   string            `json:"uri"`
			Attrs map[string]string `json:"attrs"`
		} `json:"variants"`
		Media []map[string]string `json:"media"`
	}
	b.evalInto(&top, load+`m.parsePlaylist(`+strconv.Quote(mv)+`, "http://h/live/x/index.m3u8"))`)
	require.Len(t, top.Variants, 1)
	require.Equal(t, "http://h/live/x/video1.m3u8", top.Variants[0].URI)
	require.Equal(t, "avc1.42c01e,mp4a.40.2", top.Variants[0].Attrs["CODECS"])
	require.Equal(t, "audio", top.Variants[0].Attrs["AUDIO"])
	require.Len(t, top.Media, 1)
	require.Equal(t, "a, b", top.Media[0]["NAME"])
	require.Equal(t, "http://h/live/x/audio2.m3u8", top.Media[0]["URI"])

	// Bad playlists are clear errors.
	for text, want := range map[string]string{
		"<html>not a playlist</html>":                                      "not an M3U8 playlist",
		"#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\"\n#EXTINF:2,\ns.ts\n": "encrypted HLS is not supported",
		"#EXTM3U\n#EXT-X-MAP:URI=\"i.mp4\",BYTERANGE=\"100@0\"\n":          "BYTERANGE is not supported",
	} {
		err := b.tryEval(nil, load+`m.parsePlaylist(`+strconv.Quote(text)+`, "http://h/"))`)
		require.ErrorContains(t, err, want)
	}

	// Codec strings from real init segments.
	for name, want := range map[string]map[string]any{
		"h264.mp4": {"video": "avc1.64001f", "audio": nil},
		"aac.mp4":  {"video": nil, "audio": "mp4a.40.2"},
		"opus.mp4": {"video": nil, "audio": "opus"},
		"h265.mp4": {"video": "hvc1.1.6.L60.90", "audio": nil},
		"vp9.mp4":  {"video": "vp09.00.20.08", "audio": nil},
		"av1.mp4":  {"video": "av01.0.00M.08", "audio": nil},
	} {
		var got map[string]any
		b.evalInto(&got, load+`fetch("/init/`+name+`").then((r) => r.arrayBuffer()).then((buf) => m.codecsFromInit(buf)))`)
		require.Equal(t, want, got, name)
		// The browser's MSE takes the string (HEVC only where it decodes HEVC).
		kind, codec := "video", want["video"]
		if codec == nil {
			kind, codec = "audio", want["audio"]
		}
		mime := kind + `/mp4; codecs="` + codec.(string) + `"`
		ok := b.eval(`MediaSource.isTypeSupported(` + strconv.Quote(mime) + `)`)
		t.Logf("%s: %s, MediaSource.isTypeSupported: %v", name, mime, ok)
		if name != "h265.mp4" {
			require.Equal(t, true, ok, mime)
		}
	}
	// Garbage and truncated inits never throw and name no codec.
	var found float64
	b.evalInto(&found, load+`fetch("/init/h264.mp4").then((r) => r.arrayBuffer()).then((buf) => {
  let found = 0;
  for (let i = 0; i < 300; i++) {
    const cut = buf.slice(0, Math.floor(Math.random() * buf.byteLength));
    const junk = new Uint8Array(64 + Math.floor(Math.random() * 512)).map(() => Math.random() * 256);
    if (i % 3 === 0) junk.set([0, 0, 0, 16, 109, 111, 111, 118]); // a "moov" header
    for (const b of [cut, junk.buffer]) {
      const c = m.codecsFromInit(b);
      if (c.video && !c.video.startsWith("avc1.")) throw new Error("invented codec " + c.video);
      if (c.video || c.audio) found++;
    }
  }
  return found;
}))`)
	t.Logf("truncated or random inits that still named a codec: %v of 600", found)

	// The FLV demuxer, fed in chunks of random sizes: both sequence
	// headers, every frame, B-frames' composition offsets; the remuxed
	// init segments name the codecs the FLV carries.
	const flvLoad = `Promise.all([import("/console/flv.js"), import("/console/hls.js")]).then(([f, h]) => `
	var demuxed struct {
		Configs    []string `json:"configs"`
		Video      int      `json:"video"`
		Audio      int      `json:"audio"`
		Keys       int      `json:"keys"`
		NegCTS     int      `json:"negCts"`
		PosCTS     int      `json:"posCts"`
		Codecs     []any    `json:"codecs"`
		SegmentLen int      `json:"segmentLen"`
	}
	b.evalInto(&demuxed, flvLoad+`fetch("/init/bframes.flv").then((r) => r.arrayBuffer()).then((buf) => {
  const out = { configs: [], video: 0, audio: 0, keys: 0, negCts: 0, posCts: 0, codecs: [] };
  const configs = {};
  const samples = [];
  const d = new f.FLVDemuxer((kind, c) => { out.configs.push(kind); configs[kind] = c; }, (kind, s) => {
    out[kind]++;
    if (kind === "video") { if (s.key) out.keys++; if (s.cts > 0) out.posCts++; if (s.cts < 0) out.negCts++; samples.push(s); }
  });
  const all = new Uint8Array(buf);
  for (let p = 0; p < all.length;) {
    const n = 1 + Math.floor(Math.random() * 5000);
    d.push(all.subarray(p, p + n));
    p += n;
  }
  for (const kind of ["video", "audio"]) out.codecs.push(h.codecsFromInit(f.initSegment(kind, configs[kind], 1, 320, 240).buffer));
  samples.forEach((s, i) => (s.duration = 40));
  out.segmentLen = f.mediaSegment(1, 1, samples.slice(0, 25)).length;
  return out;
}))`)
	t.Logf("FLV demuxed: %+v", demuxed)
	require.Equal(t, []string{"video", "audio"}, demuxed.Configs)
	require.Equal(t, 75, demuxed.Video, "3 s at 25 fps")
	require.InDelta(t, 3*44100/1024, demuxed.Audio, 3)
	require.Equal(t, 3, demuxed.Keys)
	require.Greater(t, demuxed.PosCTS, 10, "B-frames have composition offsets")
	require.Equal(t, []any{
		map[string]any{"video": "avc1.64000d", "audio": nil},
		map[string]any{"video": nil, "audio": "mp4a.40.2"},
	}, demuxed.Codecs)
	require.Greater(t, demuxed.SegmentLen, 1000)

	// The FLV player plays the file (B-frames reordered by the browser)
	// to its end (from near its end: it keeps to the newest media, as live).
	b.evalInto(nil, flvLoad+`(() => {
  const v = document.createElement("video");
  v.muted = true;
  document.body.append(v);
  window.flvTest = { v, p: new f.FLVPlayer(v, "/init/bframes.flv", null, { width: 320, height: 240 }) };
  window.flvTest.p.start();
})())`)
	b.waitFor(`flvTest.p.state === "ended" && flvTest.v.ended && flvTest.v.getVideoPlaybackQuality().totalVideoFrames >= 10`, 15*time.Second)
	require.Nil(t, b.eval(`flvTest.p.error`))
	require.Equal(t, 320.0, b.eval(`flvTest.v.videoWidth`))
	b.eval(`flvTest.p.stop()`)

	// Bad FLV input is a clear error, never a hang.
	for input, want := range map[string]string{
		`new TextEncoder().encode("<html>no flv here</html>")`:                                              "not an FLV stream",
		`new Uint8Array([70, 76, 86, 1, 5, 0, 0, 0, 9, 0, 0, 0, 0, 9, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0])`: "too big",
		`new Uint8Array([70, 76, 86, 1, 5, 0, 0, 0, 2, 0, 0, 0, 0])`:                                        "invalid FLV header size",
	} {
		err := b.tryEval(nil, flvLoad+`new f.FLVDemuxer(() => {}, () => {}).push(`+input+`))`)
		require.ErrorContains(t, err, want)
	}
	var survived float64
	b.evalInto(&survived, flvLoad+`fetch("/init/bframes.flv").then((r) => r.arrayBuffer()).then((buf) => {
  let errors = 0;
  for (let i = 0; i < 200; i++) {
    const bytes = new Uint8Array(buf.slice(0, 4096));
    for (let j = 0; j < 8; j++) bytes[13 + Math.floor(Math.random() * 4000)] = Math.random() * 256;
    try {
      new f.FLVDemuxer((k, c) => { try { f.initSegment(k, c, 1, 320, 240); } catch (_) { errors++; } }, () => {}).push(bytes);
    } catch (e) {
      if (!(e instanceof Error)) throw e;
      errors++;
    }
  }
  return 200 - errors;
}))`)
	t.Logf("corrupted FLV heads demuxed without an error: %v of 200", survived)
}
