package exchange

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/quasipaa/quasipaa/internal/protocol/flv/flvtest"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/media"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// readFLV demuxes a test file into its tracks and frames.
func readFLV(t testing.TB, name string) ([]*media.Track, []*media.Frame) {
	return flvtest.Read(t, name)
}

// publishLoop writes frames loops times, each loop shifted by period.
func publishLoop(t *testing.T, p *hub.Publisher, frames []*media.Frame, from, loops int, period time.Duration) {
	t.Helper()
	for l := from; l < from+loops; l++ {
		off := time.Duration(l) * period
		for _, f := range frames {
			c := *f
			c.DTS += off
			c.PTS += off
			c.Ingest = time.Now()
			require.NoError(t, p.WriteFrame(&c))
		}
	}
}

type fixture struct {
	hub *hub.Hub
	hls *HLS
	srv *httptest.Server
	pub *hub.Publisher
}

func newFixture(t *testing.T, opts HLSOptions) *fixture {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := hub.New(hub.Options{QueueSize: 8192, Logger: log})
	x := NewHLS(h, opts, log)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{app}/{stream}/{file}", func(w http.ResponseWriter, r *http.Request) {
		x.ServeHLS(w, r, r.PathValue("app")+"/"+r.PathValue("stream"), r.PathValue("file"))
	})
	srv := httptest.NewServer(mux)
	fx := &fixture{hub: h, hls: x, srv: srv}
	t.Cleanup(func() {
		if fx.pub != nil {
			fx.pub.Close()
		}
		h.Close()
		x.Close()
		srv.Close()
	})
	return fx
}

func (fx *fixture) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(fx.srv.URL + "/" + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// startStream publishes one loop of file on live/x, starts the stream's
// muxer and publishes loops more, so that the muxer has segments.
func (fx *fixture) startStream(t *testing.T, file string, loops int) {
	t.Helper()
	tracks, frames := readFLV(t, file)
	p, err := fx.hub.Publish("live/x", hub.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	fx.pub = p
	require.NoError(t, p.SetTracks(tracks))
	const period = 2100 * time.Millisecond
	publishLoop(t, p, frames, 0, 1, period)
	_, err = fx.hls.get("live/x", true)
	require.NoError(t, err)
	publishLoop(t, p, frames, 1, loops, period)
}

func ffprobeCodecs(t *testing.T, url string) []string {
	t.Helper()
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-print_format", "json", "-show_streams", url).Output()
	require.NoError(t, err)
	var p struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
		} `json:"streams"`
	}
	require.NoError(t, json.Unmarshal(out, &p))
	var names []string
	for _, s := range p.Streams {
		names = append(names, s.CodecName)
		if s.CodecName == "h264" {
			require.Equal(t, 1280, s.Width)
		}
	}
	return names
}

func mediaURI(t *testing.T, index string) string {
	t.Helper()
	lines := strings.Split(index, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "#EXT-X-STREAM-INF") {
			return strings.TrimSpace(lines[i+1])
		}
	}
	t.Fatalf("no variant:\n%s", index)
	return ""
}

func TestHLSVariants(t *testing.T) {
	for _, v := range []HLSVariant{HLSLowLatency, HLSMPEGTS, HLSFMP4} {
		t.Run(v.String(), func(t *testing.T) {
			fx := newFixture(t, HLSOptions{Variant: v})
			fx.startStream(t, "h264aac.flv", 4)
			code, index := fx.get(t, "live/x/index.m3u8")
			require.Equal(t, http.StatusOK, code, index)
			code, pl := fx.get(t, "live/x/"+mediaURI(t, index))
			require.Equal(t, http.StatusOK, code, pl)
			switch v {
			case HLSLowLatency:
				require.Contains(t, pl, "#EXT-X-PART:")
				require.Contains(t, pl, "#EXT-X-PRELOAD-HINT")
			case HLSMPEGTS:
				require.Contains(t, pl, ".ts")
				require.NotContains(t, pl, "#EXT-X-PART")
			case HLSFMP4:
				require.Contains(t, pl, "#EXT-X-MAP")
				require.NotContains(t, pl, "#EXT-X-PART")
			}
			require.ElementsMatch(t, []string{"h264", "aac"}, ffprobeCodecs(t, fx.srv.URL+"/live/x/index.m3u8"))
			code, _ = fx.get(t, "live/x/unknown_seg99.mp4")
			require.Equal(t, http.StatusNotFound, code)
		})
	}
}

func TestHLSErrors(t *testing.T) {
	fx := newFixture(t, HLSOptions{Variant: HLSMPEGTS})
	code, body := fx.get(t, "live/none/index.m3u8")
	require.Equal(t, http.StatusNotFound, code)
	require.Contains(t, body, "stream not found: live/none")

	tracks, frames := readFLV(t, "mp3.flv")
	p, err := fx.hub.Publish("live/x", hub.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	fx.pub = p
	require.NoError(t, p.SetTracks(tracks))
	publishLoop(t, p, frames, 0, 1, 0)
	code, body = fx.get(t, "live/x/index.m3u8")
	require.Equal(t, http.StatusUnsupportedMediaType, code)
	require.Contains(t, body, "mp3")
}

func TestHLSIdleAndStreamEnd(t *testing.T) {
	fx := newFixture(t, HLSOptions{IdleTimeout: 400 * time.Millisecond})
	fx.startStream(t, "h264aac.flv", 2)
	code, _ := fx.get(t, "live/x/index.m3u8")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, []string{"live/x"}, fx.hls.Active())
	require.Eventually(t, func() bool { return len(fx.hls.Active()) == 0 }, 3*time.Second, 20*time.Millisecond, "idle muxer closed")

	// A new request starts a new muxer; the stream's end closes it.
	st, err := fx.hls.get("live/x", true)
	require.NoError(t, err)
	fx.pub.Close()
	fx.pub = nil
	select {
	case <-st.done:
	case <-time.After(3 * time.Second):
		t.Fatal("muxer outlived its stream")
	}
	require.Empty(t, fx.hls.Active())
	code, _ = fx.get(t, "live/x/index.m3u8")
	require.Equal(t, http.StatusNotFound, code)
}

func TestPlanTracks(t *testing.T) {
	_, err := planTracks([]*media.Track{{Codec: media.CodecVP8}}, HLSLowLatency)
	require.ErrorIs(t, err, ErrUnsupportedCodec)
	v, err := ParseHLSVariant("mpegts")
	require.NoError(t, err)
	require.Equal(t, HLSMPEGTS, v)
	_, err = ParseHLSVariant("dash")
	require.Error(t, err)
}

func TestToClock(t *testing.T) {
	require.Equal(t, int64(90000), toClock(time.Second, 90000))
	require.Equal(t, int64(48), toClock(time.Millisecond, 48000))
	require.Equal(t, int64(100*3600*90000), toClock(100*time.Hour, 90000))
}

// A blocking reload for a part that never comes (the publisher is connected
// but sends nothing) answers 503 after BlockTimeout instead of hanging.
func TestHLSBlockingReloadTimesOut(t *testing.T) {
	fx := newFixture(t, HLSOptions{Variant: HLSLowLatency, BlockTimeout: time.Second})
	fx.startStream(t, "h264aac.flv", 4)
	code, index := fx.get(t, "live/x/index.m3u8")
	require.Equal(t, http.StatusOK, code, index)
	media := mediaURI(t, index)
	// The muxer consumes the published frames in its own goroutine: wait
	// until it has packaged them all (the playlist stops changing).
	var pl string
	require.Eventually(t, func() bool {
		_, a := fx.get(t, "live/x/"+media)
		time.Sleep(300 * time.Millisecond)
		code, b := fx.get(t, "live/x/"+media)
		pl = b
		return code == http.StatusOK && a == b
	}, 10*time.Second, 10*time.Millisecond)
	seq, segs, parts := 0, 0, 0
	for _, l := range strings.Split(pl, "\n") {
		switch {
		case strings.HasPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"):
			seq, _ = strconv.Atoi(strings.TrimPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"))
		case strings.HasPrefix(l, "#EXTINF:"):
			segs++
			parts = 0
		case strings.HasPrefix(l, "#EXT-X-PART:"):
			parts++
		}
	}
	start := time.Now()
	code, body := fx.get(t, fmt.Sprintf("live/x/%s?_HLS_msn=%d&_HLS_part=%d", media, seq+segs, parts+1))
	waited := time.Since(start)
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	require.Contains(t, body, "did not come within 1s")
	require.InDelta(t, time.Second.Seconds(), waited.Seconds(), 0.5)

	// A part that exists is answered at once, through the same path.
	code, body = fx.get(t, fmt.Sprintf("live/x/%s?_HLS_msn=%d&_HLS_part=0", media, seq+segs-1))
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "#EXT-X-PART:")
}
