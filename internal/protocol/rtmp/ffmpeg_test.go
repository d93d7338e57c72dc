package rtmp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/protocol/amf0"
)

func needFFmpeg(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("ffmpeg not installed")
	}
	return p
}

// listenOne accepts one connection on loopback and runs handler on it.
func listenOne(t *testing.T, handler func(s *ServerConn), opts ...Option) (port string, done <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		nc, err := ln.Accept()
		_ = ln.Close()
		if err != nil {
			return
		}
		s := NewServerConn(nc, opts...)
		defer s.Close()
		handler(s)
	}()
	t.Cleanup(func() { _ = ln.Close() })
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	return port, ch
}

type publishCapture struct {
	req  *Request
	msgs []*Message
	err  error
}

var (
	captureOnce sync.Once
	captured    publishCapture
)

// captureFFmpegPublish runs a real ffmpeg publisher against a ServerConn
// once and records what arrived.
func captureFFmpegPublish(t *testing.T) publishCapture {
	ffmpeg := needFFmpeg(t)
	captureOnce.Do(func() {
		var res publishCapture
		port, done := listenOne(t, func(s *ServerConn) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res.req, res.err = s.Accept(ctx)
			if res.err != nil {
				return
			}
			if res.err = s.AcceptPublish(); res.err != nil {
				return
			}
			for {
				m, err := s.ReadMessage()
				if err != nil {
					res.err = err
					return
				}
				res.msgs = append(res.msgs, m)
			}
		})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
			"-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
			"-f", "lavfi", "-i", "sine", "-t", "3",
			"-c:v", "libx264", "-g", "30", "-c:a", "aac",
			"-f", "flv", "rtmp://127.0.0.1:"+port+"/live/test?k=v")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("ffmpeg output:\n%s", out)
			res.err = errors.Join(res.err, err)
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			res.err = errors.Join(res.err, errors.New("server did not finish"))
		}
		captured = res
	})
	return captured
}

func TestFFmpegPublish(t *testing.T) {
	res := captureFFmpegPublish(t)
	if res.err != nil && !errors.Is(res.err, io.EOF) {
		t.Fatalf("publish: %v", res.err)
	}
	require.NotNil(t, res.req)
	assert.Equal(t, ActionPublish, res.req.Action)
	assert.Equal(t, "live", res.req.App)
	assert.Equal(t, "test", res.req.Name)
	assert.Equal(t, "k=v", res.req.Query)
	assert.Equal(t, "live", res.req.PublishType)
	assert.Contains(t, res.req.TcURL, "/live")

	var video, audio, data int
	var lastV, lastA uint32
	var sawMeta, sawAVCHeader, sawAACHeader bool
	for _, m := range res.msgs {
		switch m.Type {
		case MsgVideo:
			if video == 0 {
				// First video message: AVC sequence header (keyframe, AVC, type 0).
				sawAVCHeader = len(m.Payload) > 2 && m.Payload[0] == 0x17 && m.Payload[1] == 0
			} else {
				assert.GreaterOrEqual(t, m.Timestamp, lastV, "video timestamps must not go back")
			}
			lastV = m.Timestamp
			video++
		case MsgAudio:
			if audio == 0 {
				sawAACHeader = len(m.Payload) > 2 && m.Payload[0]>>4 == 10 && m.Payload[1] == 0
			} else {
				assert.GreaterOrEqual(t, m.Timestamp, lastA, "audio timestamps must not go back")
			}
			lastA = m.Timestamp
			audio++
		case MsgDataAMF0:
			data++
			vals, err := amf0.Decode(m.Payload)
			require.NoError(t, err)
			if len(vals) >= 3 && vals[0] == "@setDataFrame" && vals[1] == "onMetaData" {
				props, ok := amf0.Properties(vals[2])
				require.True(t, ok)
				w, _ := amf0.Object(props).GetNumber("width")
				assert.Equal(t, 320.0, w)
				sawMeta = true
			}
		}
	}
	t.Logf("ffmpeg published %d video, %d audio, %d data messages; last ts video %d ms, audio %d ms",
		video, audio, data, lastV, lastA)
	assert.True(t, sawMeta, "onMetaData")
	assert.True(t, sawAVCHeader, "AVC sequence header first")
	assert.True(t, sawAACHeader, "AAC sequence header first")
	assert.GreaterOrEqual(t, video, 80)
	assert.GreaterOrEqual(t, audio, 100)
	assert.Greater(t, lastV, uint32(2500))
	assert.Greater(t, lastA, uint32(2500))
}

// TestFFmpegPlay replays the captured publish to a real ffmpeg player
// (which uses the complex handshake and verifies our S1/S2 digests).
func TestFFmpegPlay(t *testing.T) {
	res := captureFFmpegPublish(t)
	if len(res.msgs) == 0 {
		t.Fatalf("no captured messages: %v", res.err)
	}
	ffmpeg := needFFmpeg(t)
	serveErr := make(chan error, 1)
	var req *Request
	var logBuf syncBuffer
	logger := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	port, done := listenOne(t, func(s *ServerConn) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var err error
		if req, err = s.Accept(ctx); err != nil {
			serveErr <- err
			return
		}
		if err := s.AcceptPlay(); err != nil {
			serveErr <- err
			return
		}
		// Serialise every message once, as the hub would, and write them
		// with writev while ServePlayer consumes what the player sends.
		var frames net.Buffers
		for _, m := range res.msgs {
			p := m.Payload
			if m.Type == MsgDataAMF0 {
				vals, _ := amf0.Decode(p)
				if len(vals) > 1 && vals[0] == "@setDataFrame" {
					p, _ = amf0.Append(nil, vals[1:]...)
				}
			}
			frames = append(frames, AppendMessage(nil, CSIDForType(m.Type), m.Type, PlayStreamID, m.Timestamp, p, s.ChunkSize()))
		}
		go func() {
			for len(frames) > 0 {
				batch := frames[:min(16, len(frames))]
				frames = frames[len(batch):]
				if _, err := s.WriteBuffers(&batch); err != nil {
					return
				}
			}
		}()
		serveErr <- s.ServePlayer(ctx)
	}, WithLogger(logger))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "info",
		"-i", "rtmp://127.0.0.1:"+port+"/live/test", "-t", "2", "-f", "null", "-")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Logf("ffmpeg output:\n%s", out)
	}
	require.NoError(t, err, "ffmpeg play must exit 0")
	s := string(out)
	assert.Contains(t, s, "Video: h264")
	assert.Contains(t, s, "Audio: aac")
	assert.Regexp(t, `frame=\s*[1-9]`, s)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("server did not notice the player leaving")
	}
	assert.ErrorIs(t, <-serveErr, io.EOF)
	// ffmpeg's player sends a Flash-style C1 and verifies our S1/S2 digests.
	assert.Contains(t, logBuf.String(), "complex=true")
	require.NotNil(t, req)
	assert.Equal(t, ActionPlay, req.Action)
	assert.Equal(t, "live", req.App)
	assert.Equal(t, "test", req.Name)
}

func TestFFmpegPlayNotFound(t *testing.T) {
	ffmpeg := needFFmpeg(t)
	port, done := listenOne(t, func(s *ServerConn) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := s.Accept(ctx); err == nil {
			_ = s.Reject(CodePlayStreamNotFound, "No such stream.")
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "info",
		"-i", "rtmp://127.0.0.1:"+port+"/live/missing", "-t", "1", "-f", "null", "-").CombinedOutput()
	require.Error(t, err, "ffmpeg must fail")
	assert.Less(t, time.Since(start), 15*time.Second)
	assert.True(t, bytes.Contains(out, []byte("Server error: No such stream.")), "%s", out)
	<-done
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
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
