package pull

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/quasipaa/quasipaa/internal/auth"
	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/protocol/ws"
	"github.com/quasipaa/quasipaa/internal/streampath"
)

// Register adds the HTTP playback routes to mux:
// GET /{app}/{stream}.flv as HTTP-FLV, or WS-FLV when it is a WebSocket upgrade.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{app}/{file}", s.serveFLV)
}

func (s *Server) serveFLV(w http.ResponseWriter, r *http.Request) {
	file := r.PathValue("file")
	name, ok := strings.CutSuffix(file, ".flv")
	if !ok {
		http.NotFound(w, r)
		return
	}
	path, err := streampath.Join(r.PathValue("app"), name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.Method == http.MethodHead {
		if _, ok := s.hub.Stream(path); !ok {
			http.Error(w, "stream not found: "+path, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "video/x-flv")
		w.WriteHeader(http.StatusOK)
		return
	}
	isWS := ws.IsUpgrade(r)
	protocol := "flv"
	if isWS {
		protocol = "ws-flv"
	}
	reader, err := s.hub.SubscribeContext(r.Context(), path, hub.ClientInfo{Protocol: protocol, RemoteAddr: r.RemoteAddr, Query: r.URL.RawQuery})
	if err != nil {
		status := http.StatusServiceUnavailable
		if errors.Is(err, hub.ErrStreamNotFound) {
			status = http.StatusNotFound
		}
		msg := "cannot play " + path + ": " + err.Error()
		if status == http.StatusNotFound {
			msg = "stream not found: " + path
		}
		if st, _ := auth.HTTPStatus(err); st != 0 {
			status = st
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="quasipaa"`)
			}
		}
		http.Error(w, msg, status)
		return
	}
	defer reader.Close()
	s.conns.Add(1)
	defer s.conns.Done()
	started := time.Now()
	if isWS {
		err = s.serveWSFLV(w, r, reader)
	} else {
		err = s.serveHTTPFLV(w, r, reader)
	}
	s.logEnd(protocol, path, r.RemoteAddr, reader, err, started)
}

func (s *Server) serveHTTPFLV(w http.ResponseWriter, r *http.Request, reader *hub.Reader) error {
	if !r.ProtoAtLeast(1, 1) {
		http.Error(w, "HTTP-FLV needs HTTP/1.1", http.StatusHTTPVersionNotSupported)
		return errors.New("HTTP/1.0 client")
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "connection cannot be hijacked", http.StatusInternalServerError)
		return errors.New("cannot hijack")
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return err
	}
	defer conn.Close()
	// Written by hand so that every later write is one writev of shared,
	// pre-framed chunks.
	var hdr strings.Builder
	hdr.WriteString("HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nTransfer-Encoding: chunked\r\nCache-Control: no-cache, no-store\r\nConnection: close\r\n")
	if s.opts.CORSOrigin != "" {
		hdr.WriteString("Access-Control-Allow-Origin: " + s.opts.CORSOrigin + "\r\n")
	}
	hdr.WriteString("\r\n")
	if _, err := conn.Write([]byte(hdr.String())); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if brw.Reader.Buffered() == 0 {
		go watchClose(conn, cancel)
	}
	err = hub.Deliver(ctx, reader, conn, &s.flvHTTP, s.opts.Deliver)
	if hub.IsNormalEnd(err) && ctx.Err() == nil {
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = conn.Write([]byte("0\r\n\r\n"))
	}
	return err
}

func (s *Server) serveWSFLV(w http.ResponseWriter, r *http.Request, reader *hub.Reader) error {
	extra := http.Header{}
	if s.opts.CORSOrigin != "" {
		extra.Set("Access-Control-Allow-Origin", s.opts.CORSOrigin)
	}
	conn, br, err := ws.Upgrade(w, r, extra)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var lock lockedWriter
	go func() {
		defer cancel()
		for {
			f, err := ws.ReadFrame(br, 4096)
			if err != nil {
				return
			}
			switch f.Opcode {
			case ws.OpClose:
				lock.write(conn, ws.AppendClose(nil, 1000, ""))
				return
			case ws.OpPing:
				lock.write(conn, append(ws.AppendHeader(nil, ws.OpPong, len(f.Payload)), f.Payload...))
			}
		}
	}()
	opts := s.opts.Deliver
	opts.Lock = &lock.mu
	err = hub.Deliver(ctx, reader, conn, &s.flvWS, opts)
	if hub.IsNormalEnd(err) && ctx.Err() == nil {
		lock.write(conn, ws.AppendClose(nil, 1000, "stream ended"))
	}
	return err
}

func isClientGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, context.Canceled)
}
