// Package ws is the server side of the WebSocket protocol (RFC 6455) as a
// media server needs it: the upgrade handshake, frame headers to prepend to
// pre-serialised payloads, and a reader for what clients send back.
package ws

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// Opcodes of RFC 6455 §5.2.
const (
	OpContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	OpClose        = 0x8
	OpPing         = 0x9
	OpPong         = 0xA
)

// Sentinel errors.
var (
	// ErrNotWebSocket means the request is not a WebSocket upgrade.
	ErrNotWebSocket = errors.New("ws: not a websocket upgrade request")
	// ErrBadFrame means a client frame violates RFC 6455.
	ErrBadFrame = errors.New("ws: malformed frame")
	// ErrFrameTooLarge means a client frame exceeds the reader's limit.
	ErrFrameTooLarge = errors.New("ws: frame too large")
)

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// IsUpgrade reports whether r asks for a WebSocket upgrade.
func IsUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

// Upgrade completes the handshake and hijacks the connection. The returned
// reader holds any bytes the client already sent after its request.
func Upgrade(w http.ResponseWriter, r *http.Request, extraHeader http.Header) (net.Conn, *bufio.Reader, error) {
	if r.Method != http.MethodGet || !IsUpgrade(r) {
		http.Error(w, "websocket upgrade required", http.StatusBadRequest)
		return nil, nil, ErrNotWebSocket
	}
	if r.Header.Get("Sec-Websocket-Version") != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		http.Error(w, "unsupported websocket version", http.StatusUpgradeRequired)
		return nil, nil, fmt.Errorf("%w: version %q", ErrNotWebSocket, r.Header.Get("Sec-Websocket-Version"))
	}
	key := r.Header.Get("Sec-Websocket-Key")
	if raw, err := base64.StdEncoding.DecodeString(key); err != nil || len(raw) != 16 {
		http.Error(w, "bad Sec-WebSocket-Key", http.StatusBadRequest)
		return nil, nil, fmt.Errorf("%w: bad key", ErrNotWebSocket)
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "cannot upgrade this connection", http.StatusInternalServerError)
		return nil, nil, errors.New("ws: response writer cannot hijack")
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("ws: hijack: %w", err)
	}
	var b strings.Builder
	b.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
	b.WriteString(AcceptKey(key))
	b.WriteString("\r\n")
	for k, vs := range extraHeader {
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	b.WriteString("\r\n")
	if _, err := conn.Write([]byte(b.String())); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("ws: write handshake: %w", err)
	}
	return conn, rw.Reader, nil
}

// AcceptKey computes Sec-WebSocket-Accept for a client's key.
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + acceptGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// AppendHeader appends the header of an unmasked, final server frame with the
// given opcode and payload length.
func AppendHeader(dst []byte, opcode byte, length int) []byte {
	dst = append(dst, 0x80|opcode)
	switch {
	case length < 126:
		return append(dst, byte(length))
	case length <= 0xFFFF:
		return binary.BigEndian.AppendUint16(append(dst, 126), uint16(length))
	default:
		return binary.BigEndian.AppendUint64(append(dst, 127), uint64(length))
	}
}

// Frame is one frame read from a client; Payload is unmasked.
type Frame struct {
	Fin     bool
	Opcode  byte
	Payload []byte
}

// ReadFrame reads one client frame. Client frames must be masked; payloads
// over maxPayload are refused before they are read.
func ReadFrame(r io.Reader, maxPayload int) (Frame, error) {
	var hdr [14]byte
	if _, err := io.ReadFull(r, hdr[:2]); err != nil {
		return Frame{}, err
	}
	f := Frame{Fin: hdr[0]&0x80 != 0, Opcode: hdr[0] & 0x0F}
	if hdr[0]&0x70 != 0 {
		return Frame{}, fmt.Errorf("%w: reserved bits set", ErrBadFrame)
	}
	if hdr[1]&0x80 == 0 {
		return Frame{}, fmt.Errorf("%w: client frame not masked", ErrBadFrame)
	}
	length := uint64(hdr[1] & 0x7F)
	switch length {
	case 126:
		if _, err := io.ReadFull(r, hdr[2:4]); err != nil {
			return Frame{}, err
		}
		length = uint64(binary.BigEndian.Uint16(hdr[2:4]))
	case 127:
		if _, err := io.ReadFull(r, hdr[2:10]); err != nil {
			return Frame{}, err
		}
		length = binary.BigEndian.Uint64(hdr[2:10])
	}
	if f.Opcode >= 0x8 && (length > 125 || !f.Fin) {
		return Frame{}, fmt.Errorf("%w: control frame fragmented or over 125 bytes", ErrBadFrame)
	}
	switch f.Opcode {
	case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
	default:
		return Frame{}, fmt.Errorf("%w: unknown opcode %#x", ErrBadFrame, f.Opcode)
	}
	if length > uint64(maxPayload) {
		return Frame{}, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, length, maxPayload)
	}
	var mask [4]byte
	if _, err := io.ReadFull(r, mask[:]); err != nil {
		return Frame{}, err
	}
	f.Payload = make([]byte, length)
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		return Frame{}, err
	}
	for i := range f.Payload {
		f.Payload[i] ^= mask[i&3]
	}
	return f, nil
}

// AppendClose appends a close frame with a status code and reason.
func AppendClose(dst []byte, code uint16, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	dst = AppendHeader(dst, OpClose, 2+len(reason))
	dst = binary.BigEndian.AppendUint16(dst, code)
	return append(dst, reason...)
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, part := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}
