package ws

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

func TestAcceptKeyRFCExample(t *testing.T) {
	// RFC 6455 §1.3.
	require.Equal(t, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="))
}

// TestGorillaClientReadsOurFrames proves the handshake and framing against an
// independent client implementation.
func TestGorillaClientReadsOurFrames(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, br, err := Upgrade(w, r, http.Header{"Access-Control-Allow-Origin": {"*"}})
		if err != nil {
			return
		}
		defer conn.Close()
		for _, n := range []int{0, 5, 200, 70000} {
			msg := append(AppendHeader(nil, OpBinary, n), bytes.Repeat([]byte{byte(n)}, n)...)
			if _, err := conn.Write(msg); err != nil {
				return
			}
		}
		f, err := ReadFrame(br, 1<<20)
		if err == nil && f.Opcode == OpText {
			_, _ = conn.Write(append(AppendHeader(nil, OpText, len(f.Payload)), f.Payload...))
		}
		_, _ = conn.Write(AppendClose(nil, 1000, "bye"))
	}))
	defer srv.Close()
	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	require.NoError(t, err)
	defer c.Close()
	require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
	for _, n := range []int{0, 5, 200, 70000} {
		typ, data, err := c.ReadMessage()
		require.NoError(t, err)
		require.Equal(t, websocket.BinaryMessage, typ)
		require.Equal(t, bytes.Repeat([]byte{byte(n)}, n), data)
	}
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("echo me")))
	typ, data, err := c.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, websocket.TextMessage, typ)
	require.Equal(t, "echo me", string(data))
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	require.True(t, errors.As(err, &ce))
	require.Equal(t, 1000, ce.Code)
}

func TestUpgradeRefusesPlainRequest(t *testing.T) {
	rec := httptest.NewRecorder()
	_, _, err := Upgrade(rec, httptest.NewRequest("GET", "/x", nil), nil)
	require.ErrorIs(t, err, ErrNotWebSocket)
	require.Equal(t, http.StatusBadRequest, rec.Code)
}

func TestReadFrameRejectsBadInput(t *testing.T) {
	for name, in := range map[string][]byte{
		"unmasked":      {0x82, 0x01, 'x'},
		"reserved bits": {0xF2, 0x80, 0, 0, 0, 0},
		"bad opcode":    {0x83, 0x80, 0, 0, 0, 0},
		"big control":   {0x89, 0xFE, 0, 200, 0, 0, 0, 0},
		"too large":     append([]byte{0x82, 0xFF}, binary.BigEndian.AppendUint64(nil, 1<<40)...),
		"truncated":     {0x82, 0x85, 1, 2, 3, 4, 'a'},
	} {
		_, err := ReadFrame(bytes.NewReader(in), 1<<20)
		require.Error(t, err, name)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}) // RFC 6455 "Hello"
	f.Add([]byte{0x88, 0x82, 1, 2, 3, 4, 0x02, 0xea})
	f.Add([]byte{0x82, 0xFE, 0x01, 0x00, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for {
			fr, err := ReadFrame(r, 4096)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrBadFrame) && !errors.Is(err, ErrFrameTooLarge) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				return
			}
			if len(fr.Payload) > 4096 {
				t.Fatalf("payload over limit: %d", len(fr.Payload))
			}
		}
	})
}
