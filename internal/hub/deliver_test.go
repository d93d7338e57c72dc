package hub

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/media"
)

// TestDeliverOverTCP runs Deliver on real sockets: every reading viewer gets
// exactly the published bytes, in order, while a viewer that never reads is
// cut off by the write timeout without holding anyone up.
func TestDeliverOverTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	h := newTestHub(t, Options{QueueSize: 4096})
	p, _ := h.Publish("live/a", ClientInfo{})
	require.NoError(t, p.SetTracks(testTracks))

	const viewers, frames = 12, 1500
	var serverWG, clientWG sync.WaitGroup
	outs := make([][]byte, viewers)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stalled net.Conn
	for i := 0; i <= viewers; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		sc, err := ln.Accept()
		require.NoError(t, err)
		if i == viewers {
			stalled = c // reads nothing
			require.NoError(t, sc.(*net.TCPConn).SetWriteBuffer(8<<10))
		}
		r, err := h.Subscribe("live/a", ClientInfo{Protocol: "test"})
		require.NoError(t, err)
		serverWG.Add(1)
		go func() {
			defer serverWG.Done()
			defer sc.Close()
			defer r.Close()
			_ = Deliver(ctx, r, sc, lenSerializer{}, DeliverOptions{WriteTimeout: 300 * time.Millisecond})
		}()
		if i < viewers {
			clientWG.Add(1)
			go func(i int, c net.Conn) {
				defer clientWG.Done()
				defer c.Close()
				outs[i], _ = io.ReadAll(c)
			}(i, c)
		}
	}
	defer stalled.Close()

	var want bytes.Buffer
	want.WriteString("PH\x02")
	payload := make([]byte, 10_000)
	for i := 0; i < frames; i++ {
		payload[0] = byte(i)
		f := &media.Frame{DTS: time.Duration(i) * time.Millisecond, Key: i%60 == 0, Payload: append([]byte(nil), payload...)}
		require.NoError(t, p.WriteFrame(f))
		_ = binary.Write(&want, binary.BigEndian, uint32(len(payload)))
		want.Write(f.Payload)
		if i%50 == 49 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	p.Kick()
	serverWG.Wait()
	clientWG.Wait()
	for i, out := range outs {
		require.True(t, bytes.Equal(want.Bytes(), out), "viewer %d got %d bytes, want %d", i, len(out), want.Len())
	}
}
