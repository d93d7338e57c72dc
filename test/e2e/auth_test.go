package e2e

// Publish/play authorisation against the real binary: tokens over every
// protocol (ffmpeg and ffprobe for RTMP, FLV and HLS; pion for WHIP and
// WHEP), webhooks asked and told by a real HTTP endpoint, and the failure
// rate limiter.

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/auth"
)

const authSecret = "e2e-auth-secret-0123456789"

// authTokens are one valid token and the bad ones for path and action.
type authTokens struct {
	valid string
	bad   map[string]string // case → token ("" for missing)
}

func signClaims(t *testing.T, secret string, c auth.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	require.NoError(t, err)
	return s
}

func tokensFor(t *testing.T, path, action string) authTokens {
	t.Helper()
	other := auth.ActionPlay
	if action == auth.ActionPlay {
		other = auth.ActionPublish
	}
	valid, err := auth.Mint([]byte(authSecret), auth.Claims{Path: path, Action: action}, time.Hour)
	require.NoError(t, err)
	wrongPath, err := auth.Mint([]byte(authSecret), auth.Claims{Path: "secure/elsewhere", Action: action}, time.Hour)
	require.NoError(t, err)
	wrongAction, err := auth.Mint([]byte(authSecret), auth.Claims{Path: path, Action: other}, time.Hour)
	require.NoError(t, err)
	wrongSig, err := auth.Mint([]byte("not-the-server-secret"), auth.Claims{Path: path, Action: action}, time.Hour)
	require.NoError(t, err)
	now := time.Now()
	expired := signClaims(t, authSecret, auth.Claims{Path: path, Action: action, RegisteredClaims: jwt.RegisteredClaims{
		IssuedAt: jwt.NewNumericDate(now.Add(-2 * time.Hour)), ExpiresAt: jwt.NewNumericDate(now.Add(-time.Hour)),
	}})
	return authTokens{valid: valid, bad: map[string]string{
		"expired": expired, "wrong path": wrongPath, "wrong action": wrongAction, "wrong signature": wrongSig, "missing": "",
	}}
}

// wantStatus is the HTTP refusal of each bad-token case.
var wantStatus = map[string]int{
	"expired": http.StatusUnauthorized, "wrong signature": http.StatusUnauthorized, "missing": http.StatusUnauthorized,
	"wrong path": http.StatusForbidden, "wrong action": http.StatusForbidden,
}

func withToken(url, token string) string {
	if token == "" {
		return url
	}
	return url + "?token=" + token
}

// rtmpPublishFails runs ffmpeg publishing 3 s to url and requires it to be
// refused: a non-zero exit well before the 3 s are sent.
func rtmpPublishFails(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", "3",
		"-c:v", "libx264", "-preset", "ultrafast", "-f", "flv", url).CombinedOutput()
	require.Error(t, err, "ffmpeg publishing to %s should have been refused: %s", url, out)
	require.Less(t, time.Since(start), 3*time.Second, "refused at once")
	return string(out)
}

// authRTC returns a pion API on loopback UDP, for WHIP and WHEP offers.
func authRTC(t *testing.T) *webrtc.API {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	m := &webrtc.MediaEngine{}
	require.NoError(t, m.RegisterDefaultCodecs())
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(m))
}

// rtcOffer makes an offer that sends H.264 (WHIP) or receives video (WHEP).
func rtcOffer(t *testing.T, send bool) string {
	t.Helper()
	pc, err := authRTC(t).NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	if send {
		track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", "pub")
		require.NoError(t, err)
		_, err = pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		require.NoError(t, err)
	} else {
		_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		require.NoError(t, err)
	}
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	g := webrtc.GatheringCompletePromise(pc)
	require.NoError(t, pc.SetLocalDescription(offer))
	select {
	case <-g:
	case <-time.After(5 * time.Second):
		t.Fatal("ICE gathering did not complete")
	}
	return pc.LocalDescription().SDP
}

// postOffer posts an SDP offer with an optional bearer token and returns
// the status and body; a created session is deleted.
func postOffer(t *testing.T, url, token, sdp string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(sdp))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/sdp")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 15 * time.Second}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusCreated && loc != "" {
		if !strings.HasPrefix(loc, "http") {
			loc = strings.SplitN(url, "/", 4)[0] + "//" + strings.SplitN(url, "/", 4)[2] + loc
		}
		del, _ := http.NewRequest(http.MethodDelete, loc, nil)
		if token != "" {
			del.Header.Set("Authorization", "Bearer "+token)
		}
		if r, err := c.Do(del); err == nil {
			r.Body.Close()
		}
	}
	return resp.StatusCode, string(b)
}

func TestAuthTokens(t *testing.T) {
	requireTools(t, "ffmpeg", "ffprobe")
	t.Parallel()
	s := startServer(t,
		`QUASIPAA_APPS=[{match: "secure/*", auth: token}]`,
		"QUASIPAA_AUTH_JWT_SECRET="+authSecret,
		"QUASIPAA_AUTH_FAIL_LIMIT=0", // every attempt comes from 127.0.0.1
	)
	const path = "secure/cam"
	pubTokens := tokensFor(t, path, auth.ActionPublish)
	playTokens := tokensFor(t, path, auth.ActionPlay)

	// RTMP publish: every bad token is refused (in parallel: each ffmpeg
	// ends at once), then the valid one publishes.
	t.Run("rtmp publish refused", func(t *testing.T) {
		var wg sync.WaitGroup
		outs := make(map[string]string)
		var mu sync.Mutex
		for name, tok := range pubTokens.bad {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out := rtmpPublishFails(t, withToken(s.rtmpURL(path), tok))
				mu.Lock()
				outs[name] = out
				mu.Unlock()
			}()
		}
		wg.Wait()
		_, live := getStream(s, path)
		require.False(t, live, "no refused publisher got in")
		logs := s.logs.String()
		for _, reason := range []string{"token_missing", "token_invalid", "token_expired", "token_scope"} {
			require.Contains(t, logs, `"reason":"`+reason+`"`, "each refusal is logged with its reason")
		}
		// ffmpeg shows the server's description: the class comes first.
		for name, out := range outs {
			want := "forbidden"
			if wantStatus[name] == http.StatusUnauthorized {
				want = "unauthorized"
			}
			require.Contains(t, out, want, name)
		}
	})
	pub := publishTestStream(t, withToken(s.rtmpURL(path), pubTokens.valid), 0)
	waitStream(t, s, path)

	t.Run("flv play", func(t *testing.T) {
		for name, tok := range playTokens.bad {
			code, body, hdr := httpGet(t, withToken(s.flvURL(path), tok))
			require.Equal(t, wantStatus[name], code, "%s: %s", name, body)
			require.Contains(t, body, "cannot play "+path)
			if code == http.StatusUnauthorized {
				require.Contains(t, hdr.Get("WWW-Authenticate"), "Bearer")
			}
		}
		requireH264AAC720p(t, ffprobe(t, withToken(s.flvURL(path), playTokens.valid)))
		// The play token does not publish, and ffprobe is refused without a token.
		cmd := exec.Command("ffprobe", "-v", "error", s.flvURL(path))
		out, err := cmd.CombinedOutput()
		require.Error(t, err, "ffprobe without a token: %s", out)
	})

	t.Run("rtmp play", func(t *testing.T) {
		requireH264AAC720p(t, ffprobe(t, withToken(s.rtmpURL(path), playTokens.valid)))
		out, err := exec.Command("ffprobe", "-v", "error", withToken(s.rtmpURL(path), playTokens.bad["wrong action"])).CombinedOutput()
		require.Error(t, err, "%s", out)
		require.Contains(t, string(out), "forbidden")
	})

	t.Run("hls play", func(t *testing.T) {
		for name, tok := range playTokens.bad {
			code, body, _ := httpGet(t, withToken(s.hlsURL(path, "index.m3u8"), tok))
			require.Equal(t, wantStatus[name], code, "%s: %s", name, body)
		}
		// ffprobe follows the media playlist and the segments: the token
		// is carried on each of their URIs.
		requireH264AAC720p(t, ffprobe(t, withToken(s.hlsURL(path, "index.m3u8"), playTokens.valid)))
		code, multivariant, _ := httpGet(t, withToken(s.hlsURL(path, "index.m3u8"), playTokens.valid))
		require.Equal(t, http.StatusOK, code)
		media := mediaPlaylistURI(t, multivariant)
		require.Contains(t, media, "token="+playTokens.valid)
		code, pl, _ := httpGet(t, s.hlsURL(path, media))
		require.Equal(t, http.StatusOK, code, pl)
		var segment string
		for _, line := range strings.Split(pl, "\n") {
			if line != "" && !strings.HasPrefix(line, "#") {
				segment = line
			}
			if strings.HasPrefix(line, "#EXT-X-MAP:") || strings.HasPrefix(line, "#EXT-X-PART:") || strings.HasPrefix(line, "#EXT-X-PRELOAD-HINT:") {
				require.Contains(t, line, "token="+playTokens.valid)
			}
		}
		require.Contains(t, segment, "?token="+playTokens.valid)
		code, _, _ = httpGet(t, s.hlsURL(path, segment))
		require.Equal(t, http.StatusOK, code)
		bare, _, _ := strings.Cut(segment, "?")
		code, _, _ = httpGet(t, s.hlsURL(path, bare))
		require.Equal(t, http.StatusUnauthorized, code, "a segment without the token is refused")
	})

	base := "http://" + s.HTTPAddr + "/"
	t.Run("whep", func(t *testing.T) {
		offer := rtcOffer(t, false)
		for name, tok := range playTokens.bad {
			code, body := postOffer(t, base+path+"/whep", tok, offer)
			require.Equal(t, wantStatus[name], code, "%s: %s", name, body)
		}
		code, body := postOffer(t, base+path+"/whep", playTokens.valid, offer)
		require.Equal(t, http.StatusCreated, code, body)
	})

	t.Run("whip", func(t *testing.T) {
		const whipPath = "secure/whip"
		whipTokens := tokensFor(t, whipPath, auth.ActionPublish)
		offer := rtcOffer(t, true)
		for name, tok := range whipTokens.bad {
			code, body := postOffer(t, base+whipPath+"/whip", tok, offer)
			require.Equal(t, wantStatus[name], code, "%s: %s", name, body)
		}
		code, body := postOffer(t, base+whipPath+"/whip", whipTokens.valid, offer)
		require.Equal(t, http.StatusCreated, code, body)
	})

	t.Run("open app", func(t *testing.T) {
		// Apps without auth are unchanged: a stream outside secure/ needs no token.
		code, body, _ := httpGet(t, s.flvURL("live/none"))
		require.Equal(t, http.StatusNotFound, code, body)
		code, _, _ = httpGet(t, s.hlsURL("live/none", "index.m3u8"))
		require.NotEqual(t, http.StatusUnauthorized, code)
	})
	pub.stop()
}

// hookCall is one call the webhook endpoint received.
type hookCall struct {
	event string
	body  auth.HookBody
	sig   string
	raw   []byte
}

// hookEndpoint answers on_publish/on_play by stream name: "allow…" → 200,
// "deny…" → 403, "slow…" → no answer within the server's timeout,
// "down…" → the connection is closed without an answer.
func hookEndpoint(t *testing.T) (*httptest.Server, chan hookCall) {
	calls := make(chan hookCall, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var b auth.HookBody
		_ = json.Unmarshal(raw, &b)
		calls <- hookCall{event: r.Header.Get(auth.HeaderEvent), body: b, sig: r.Header.Get(auth.HeaderSignature), raw: raw}
		switch {
		case strings.HasPrefix(b.Stream, "deny"):
			w.WriteHeader(http.StatusForbidden)
		case strings.HasPrefix(b.Stream, "slow"):
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		case strings.HasPrefix(b.Stream, "down"):
			if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
				c.Close()
			}
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, calls
}

// nextCall returns the next call of event, skipping others.
func nextCall(t *testing.T, calls chan hookCall, event string) hookCall {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case c := <-calls:
			if c.event == event {
				return c
			}
		case <-deadline:
			t.Fatalf("no %s call", event)
		}
	}
}

func TestAuthWebhook(t *testing.T) {
	requireTools(t, "ffmpeg", "ffprobe")
	t.Parallel()
	hook, calls := hookEndpoint(t)
	const hookSecret = "hook-signing-secret"
	s := startServer(t,
		`QUASIPAA_APPS=[{match: "hook/*", auth: webhook}]`,
		"QUASIPAA_AUTH_WEBHOOK_ON_PUBLISH="+hook.URL+"/publish",
		"QUASIPAA_AUTH_WEBHOOK_ON_PLAY="+hook.URL+"/play",
		"QUASIPAA_AUTH_WEBHOOK_ON_UNPUBLISH="+hook.URL+"/unpublish",
		"QUASIPAA_AUTH_WEBHOOK_ON_STOP="+hook.URL+"/stop",
		"QUASIPAA_AUTH_WEBHOOK_SECRET="+hookSecret,
		"QUASIPAA_AUTH_WEBHOOK_TIMEOUT=1s",
		"QUASIPAA_AUTH_FAIL_LIMIT=0",
	)
	// Denied publish: ffmpeg is refused.
	out := rtmpPublishFails(t, s.rtmpURL("hook/deny")+"?user=mallory")
	require.Contains(t, out, "forbidden")
	c := nextCall(t, calls, auth.EventPublish)
	require.Equal(t, "deny", c.body.Stream)
	require.Equal(t, "user=mallory", c.body.Query)

	// Allowed publish, then plays decided by the endpoint.
	pub := publishTestStream(t, s.rtmpURL("hook/allow")+"?user=alice", 0)
	waitStream(t, s, "hook/allow")
	c = nextCall(t, calls, auth.EventPublish)
	require.Equal(t, auth.HookBody{Action: "publish", Path: "hook/allow", App: "hook", Stream: "allow", Protocol: "rtmp",
		ClientIP: "127.0.0.1", Query: "user=alice", Node: c.body.Node}, c.body)
	require.NotEmpty(t, c.body.Node)
	require.True(t, auth.CheckSignature([]byte(hookSecret), c.raw, c.sig), "signed")

	requireH264AAC720p(t, ffprobe(t, s.flvURL("hook/allow")))
	c = nextCall(t, calls, auth.EventPlay)
	require.Equal(t, "flv", c.body.Protocol)
	stop := nextCall(t, calls, auth.EventStop)
	require.Equal(t, "play", stop.body.Action)
	require.Equal(t, "hook/allow", stop.body.Path)
	require.NotEmpty(t, stop.body.ClientID)
	require.Positive(t, stop.body.Bytes)
	require.True(t, auth.CheckSignature([]byte(hookSecret), stop.raw, stop.sig), "notifications are signed")

	// Plays of streams whose name the endpoint refuses, times out on, or drops.
	for name, want := range map[string]int{"deny": http.StatusForbidden, "slow": http.StatusServiceUnavailable, "down": http.StatusServiceUnavailable} {
		start := time.Now()
		code, body, _ := httpGet(t, s.flvURL("hook/"+name))
		require.Equal(t, want, code, "%s: %s", name, body)
		require.Less(t, time.Since(start), 3*time.Second, "%s: the timeout bounds the question", name)
	}

	pub.stop()
	un := nextCall(t, calls, auth.EventUnpublish)
	require.Equal(t, "publish", un.body.Action)
	require.Equal(t, "hook/allow", un.body.Path)
	require.True(t, auth.CheckSignature([]byte(hookSecret), un.raw, un.sig))
}

func TestAuthRateLimit(t *testing.T) {
	requireTools(t, "ffmpeg")
	t.Parallel()
	s := startServer(t,
		`QUASIPAA_APPS=[{match: "secure/*", auth: token}]`,
		"QUASIPAA_AUTH_JWT_SECRET="+authSecret,
		"QUASIPAA_AUTH_FAIL_LIMIT=3",
		"QUASIPAA_AUTH_FAIL_WINDOW=1m",
	)
	valid := tokensFor(t, "secure/cam", auth.ActionPlay).valid
	// Before the limit a valid token is merely told the stream is not there.
	code, _, _ := httpGet(t, withToken(s.flvURL("secure/cam"), valid))
	require.Equal(t, http.StatusNotFound, code)
	for i := range 3 {
		code, _, _ := httpGet(t, withToken(s.flvURL("secure/cam"), "bad-"+strconv.Itoa(i)))
		require.Equal(t, http.StatusUnauthorized, code)
	}
	start := time.Now()
	for range 20 {
		code, body, _ := httpGet(t, withToken(s.flvURL("secure/cam"), valid))
		require.Equal(t, http.StatusTooManyRequests, code, body)
	}
	perRequest := time.Since(start) / 20
	t.Logf("refusal of a rate-limited IP: %v per request", perRequest)
	require.Less(t, perRequest, 50*time.Millisecond)
	// RTMP from the same IP is refused too, even with a valid publish token.
	pubToken := tokensFor(t, "secure/cam", auth.ActionPublish).valid
	out := rtmpPublishFails(t, withToken(s.rtmpURL("secure/cam"), pubToken))
	require.Contains(t, out, "too many failed attempts")
	n := 0
	sc := bufio.NewScanner(strings.NewReader(s.logs.String()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"reason":"rate_limited"`) {
			n++
		}
	}
	require.Equal(t, 21, n)
}
