package e2e

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestGarbageDoesNotDisturbOtherStreams throws malformed input at both ports
// while a stream plays; the bad connections are logged and closed, the player
// receives every frame.
func TestGarbageDoesNotDisturbOtherStreams(t *testing.T) {
	requireTools(t, "ffmpeg")
	s := startServer(t, "QUASIPAA_RTMP_HANDSHAKE_TIMEOUT=2s")
	publishTestStream(t, s.rtmpURL("live/ok"), 0)
	waitStream(t, s, "live/ok")

	var wg sync.WaitGroup
	var frames int
	var playErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		frames, playErr = countFrames(context.Background(), s.flvURL("live/ok"), 8)
	}()

	attacks := map[string]func(c net.Conn){
		"random bytes": func(c net.Conn) {
			b := make([]byte, 64<<10)
			_, _ = rand.Read(b)
			_, _ = c.Write(b)
		},
		"truncated handshake": func(c net.Conn) {
			_, _ = c.Write([]byte{3, 0, 0, 0, 0, 1, 2})
		},
		"wrong version": func(c net.Conn) {
			_, _ = c.Write(append([]byte{0x47}, make([]byte, 1536)...))
		},
		"oversized chunk size": func(c net.Conn) {
			if !handshake(c) {
				return
			}
			// Set Chunk Size (type 1) on csid 2 to 0x7FFFFFFF.
			msg := []byte{0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0}
			msg = binary.BigEndian.AppendUint32(msg, 0x7FFFFFFF)
			_, _ = c.Write(msg)
		},
		"oversized message": func(c net.Conn) {
			if !handshake(c) {
				return
			}
			// A 16 MB "command" message (type 20) header, then silence.
			_, _ = c.Write([]byte{0x03, 0, 0, 0, 0xFF, 0xFF, 0xFF, 20, 0, 0, 0, 0})
		},
		"garbage after handshake": func(c net.Conn) {
			if !handshake(c) {
				return
			}
			b := make([]byte, 8<<10)
			_, _ = rand.Read(b)
			_, _ = c.Write(b)
		},
	}
	for name, attack := range attacks {
		for i := 0; i < 3; i++ {
			c, err := net.Dial("tcp", s.RTMPAddr)
			require.NoError(t, err, name)
			attack(c)
			// The server closes the connection (or times it out) by itself.
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = io.Copy(io.Discard, c)
			// A close with unread input arrives as a reset: also a close.
			if err != nil {
				var ne net.Error
				require.False(t, errors.As(err, &ne) && ne.Timeout(), "%s: the server must close the connection, not leave it hanging", name)
			}
			c.Close()
		}
	}
	for _, req := range []string{
		"GARBAGE\r\n\r\n",
		"GET /live/../../etc/passwd.flv HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /live/%2e%2e%2fetc.flv HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /live/ok.flv HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 2<<20) + "\r\n\r\n",
		"GET /live/ok.flv HTTP/1.0\r\n\r\n",
	} {
		c, err := net.Dial("tcp", s.HTTPAddr)
		require.NoError(t, err)
		_, _ = c.Write([]byte(req))
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		n, _ := io.ReadAtLeast(c, buf, 12)
		c.Close()
		require.Regexp(t, `^HTTP/1\.[01] [45]\d\d`, string(buf[:n]), "request %.40q gets a 4xx/5xx", req)
	}
	wg.Wait()
	require.NoError(t, playErr)
	require.GreaterOrEqual(t, frames, 8*30-2, "the player kept receiving")
	require.Contains(t, s.logs.String(), "rtmp connection failed", "bad RTMP connections are logged")
}

// handshake performs a plain RTMP handshake as a client.
func handshake(c net.Conn) bool {
	c0c1 := make([]byte, 1537)
	c0c1[0] = 3
	if _, err := c.Write(c0c1); err != nil {
		return false
	}
	s0s1s2 := make([]byte, 1+1536*2)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, s0s1s2); err != nil {
		return false
	}
	_, err := c.Write(s0s1s2[1 : 1+1536])
	return err == nil
}
