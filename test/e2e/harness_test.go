// Package e2e runs the real quasipaa binary against real peers: ffmpeg and
// ffprobe publish and play, an independent WebSocket client reads WS-FLV.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var serverBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "quasipaa-e2e")
	if err != nil {
		panic(err)
	}
	serverBinary = filepath.Join(dir, "quasipaa")
	out, err := exec.Command("go", "build", "-o", serverBinary, "../../cmd/quasipaa").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build failed: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required in CI (scripts/deps.sh installs it)", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
}

// server is a running quasipaa process.
type server struct {
	cmd      *exec.Cmd
	RTMPAddr string
	HTTPAddr string
	logs     *syncBuffer
	exited   chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer runs the binary on loopback ports chosen by the kernel, with
// extra QUASIPAA_* settings, and waits until both listeners are up.
func startServer(t *testing.T, env ...string) *server {
	t.Helper()
	cmd := exec.Command(serverBinary)
	cmd.Env = append(os.Environ(),
		"QUASIPAA_RTMP_LISTEN=127.0.0.1:0",
		"QUASIPAA_HTTP_LISTEN=127.0.0.1:0",
		"QUASIPAA_WEBRTC_UDP_LISTEN=127.0.0.1:0",
		"QUASIPAA_WEBRTC_TCP_LISTEN=127.0.0.1:0",
		"QUASIPAA_TURN_LISTEN=127.0.0.1:0",
		"QUASIPAA_LOG_FORMAT=json",
		"QUASIPAA_STORAGE_DIR="+t.TempDir(),
	)
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	s := &server{cmd: cmd, logs: &syncBuffer{}, exited: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(s.exited)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			s.logs.Write([]byte(line + "\n"))
			var rec struct {
				Msg      string `json:"msg"`
				Protocol string `json:"protocol"`
				Addr     string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				switch rec.Protocol {
				case "rtmp":
					s.RTMPAddr = rec.Addr
				case "http":
					s.HTTPAddr = rec.Addr
				}
				if !signalled && s.RTMPAddr != "" && s.HTTPAddr != "" {
					signalled = true
					close(ready)
				}
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case <-ready:
	case <-s.exited:
		t.Fatalf("server exited before listening:\n%s", s.logs.String())
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("server did not start:\n%s", s.logs.String())
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop sends SIGTERM and expects a clean exit within 10 s.
func (s *server) stop(t *testing.T) {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if code := s.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("server exited with %d after SIGTERM:\n%s", code, tail(s.logs.String(), 4000))
		}
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		t.Errorf("server did not stop within 10 s of SIGTERM:\n%s", tail(s.logs.String(), 4000))
	}
	if t.Failed() {
		t.Logf("server log:\n%s", tail(s.logs.String(), 8000))
	}
}

func (s *server) rtmpURL(path string) string { return "rtmp://" + s.RTMPAddr + "/" + path }
func (s *server) flvURL(path string) string  { return "http://" + s.HTTPAddr + "/" + path + ".flv" }
func (s *server) wsURL(path string) string   { return "ws://" + s.HTTPAddr + "/" + path + ".flv" }

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// publisher is a running ffmpeg publishing a generated stream.
type publisher struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
}

// publishTestStream starts ffmpeg publishing 720p30 H.264 (2 s GOP) + AAC,
// generated in real time, to url, for seconds (0: until stopped).
func publishTestStream(t *testing.T, url string, seconds int) *publisher {
	t.Helper()
	args := []string{
		"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
	}
	if seconds > 0 {
		args = append(args, "-t", strconv.Itoa(seconds))
	}
	args = append(args,
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-profile:v", "high",
		"-g", "60", "-keyint_min", "60", "-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "5000k", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "128k", "-ac", "2",
		"-f", "flv", url)
	return startPublisher(t, args...)
}

// startPublisher starts ffmpeg reading its input in real time (-re) with
// args (inputs, encoding options and the output URL). It is stopped when
// the test ends, and its output is logged if the test failed.
func startPublisher(t *testing.T, args ...string) *publisher {
	t.Helper()
	args = append([]string{"-hide_banner", "-loglevel", "error", "-re"}, args...)
	p := &publisher{cmd: exec.Command("ffmpeg", args...), out: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	require.NoError(t, p.cmd.Start())
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("ffmpeg publishing to %s: %s", args[len(args)-1], tail(p.out.String(), 2000))
		}
	})
	return p
}

func (p *publisher) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *publisher) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// waitStream polls the API until path is live with two tracks.
func waitStream(t *testing.T, s *server, path string) streamJSON {
	t.Helper()
	var got streamJSON
	require.Eventually(t, func() bool {
		st, ok := getStream(s, path)
		if ok && st.State == "live" && len(st.Tracks) == 2 {
			got = st
			return true
		}
		return false
	}, 20*time.Second, 100*time.Millisecond, "stream %s never went live; server log:\n%s", path, tail(s.logs.String(), 3000))
	return got
}

type streamJSON struct {
	Path   string `json:"path"`
	State  string `json:"state"`
	Tracks []struct {
		Codec      string `json:"codec"`
		Width      int    `json:"width"`
		Height     int    `json:"height"`
		SampleRate int    `json:"sample_rate"`
		Channels   int    `json:"channels"`
	} `json:"tracks"`
	IngressBitrate int64          `json:"ingress_bitrate"`
	Viewers        map[string]int `json:"viewers"`
	ViewersTotal   int            `json:"viewers_total"`
	UptimeSeconds  float64        `json:"uptime_seconds"`
	DroppedFrames  uint64         `json:"dropped_frames"`
}

func getStream(s *server, path string) (streamJSON, bool) {
	resp, err := httpClient.Get("http://" + s.HTTPAddr + "/api/v1/streams")
	if err != nil {
		return streamJSON{}, false
	}
	defer resp.Body.Close()
	var list struct {
		Streams []streamJSON `json:"streams"`
	}
	if json.NewDecoder(resp.Body).Decode(&list) != nil {
		return streamJSON{}, false
	}
	for _, st := range list.Streams {
		if st.Path == path {
			return st, true
		}
	}
	return streamJSON{}, false
}

// httpClient makes the helpers' requests: a server that hangs fails the
// test instead of hanging it.
var httpClient = &http.Client{Timeout: 20 * time.Second}

// httpGet returns the status, body and headers of a GET.
func httpGet(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := httpClient.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b), resp.Header
}

// apiDo sends method url, with key as a bearer token unless it is empty,
// and decodes a 200 answer into v unless v is nil. It returns the status,
// 0 if the request failed.
func apiDo(t *testing.T, method, url, key string, v any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && v != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(v), url)
	}
	return resp.StatusCode
}

// getJSON GETs url without a key and decodes a 200 answer into v; it
// returns the status, 0 if the request failed.
func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	return apiDo(t, http.MethodGet, url, "", v)
}

// probe is what ffprobe says of a URL or file.
type probe struct {
	Streams []struct {
		CodecType  string `json:"codec_type"`
		CodecName  string `json:"codec_name"`
		Width      int    `json:"width"`
		Height     int    `json:"height"`
		SampleRate string `json:"sample_rate"`
		Channels   int    `json:"channels"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func ffprobe(t *testing.T, input string, extra ...string) probe {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"-v", "error", "-print_format", "json", "-show_streams", "-show_format"}, extra...)
	args = append(args, input)
	out, err := exec.CommandContext(ctx, "ffprobe", args...).Output()
	var stderr string
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = string(ee.Stderr)
	}
	require.NoError(t, err, "ffprobe %s: %s", input, stderr)
	var p probe
	require.NoError(t, json.Unmarshal(out, &p))
	return p
}

// requireH264AAC720p asserts what every test stream must look like.
func requireH264AAC720p(t *testing.T, p probe) {
	t.Helper()
	var video, audio bool
	for _, st := range p.Streams {
		switch st.CodecType {
		case "video":
			video = true
			require.Equal(t, "h264", st.CodecName)
			require.Equal(t, 1280, st.Width)
			require.Equal(t, 720, st.Height)
		case "audio":
			audio = true
			require.Equal(t, "aac", st.CodecName)
			require.Equal(t, "48000", st.SampleRate)
		}
	}
	require.True(t, video && audio, "want video and audio, got %+v", p.Streams)
	require.Len(t, p.Streams, 2, "no extra streams")
}

// decode runs ffmpeg decoding input for seconds and returns its error output
// and the media duration it decoded.
func decode(t *testing.T, input string, seconds int, extra ...string) (string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds+30)*time.Second)
	defer cancel()
	args := append([]string{"-hide_banner", "-nostats", "-v", "error", "-progress", "pipe:1"}, extra...)
	args = append(args, "-i", input, "-t", strconv.Itoa(seconds), "-f", "null", "-")
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(t, err, "ffmpeg decode %s: %s", input, stderr.String())
	return stderr.String(), lastOutTime(stdout.String())
}

// lastOutTime reads the last out_time_us of ffmpeg's -progress output.
func lastOutTime(progress string) time.Duration {
	var last time.Duration
	for _, line := range strings.Split(progress, "\n") {
		if v, ok := strings.CutPrefix(line, "out_time_us="); ok {
			if us, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				last = time.Duration(us) * time.Microsecond
			}
		}
	}
	return last
}
