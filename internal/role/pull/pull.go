// Package pull is the edge role: it delivers streams from the hub to viewers
// over RTMP, HTTP-FLV and WS-FLV, and routes HLS requests to the packager.
package pull

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/quasipaa/quasipaa/internal/hub"
)

// Options configure the pull role.
type Options struct {
	// RTMPChunkSize is the chunk size of every RTMP play connection.
	RTMPChunkSize int
	// CORSOrigin is sent as Access-Control-Allow-Origin on HTTP playback ("" sends none).
	CORSOrigin string
	// Deliver configures the writers.
	Deliver hub.DeliverOptions
	// HLS serves /{app}/{stream}/index.m3u8 and its files (nil: no HLS), see WithHLS.
	HLS HLSHandler
}

// Server delivers the hub's streams to viewers.
type Server struct {
	hub  *hub.Hub
	opts Options
	log  *slog.Logger

	rtmp    rtmpSerializer
	flvHTTP flvHTTPSerializer
	flvWS   flvWSSerializer

	// conns tracks hijacked HTTP connections so shutdown waits for them.
	conns sync.WaitGroup
}

// New returns the pull role over h.
func New(h *hub.Hub, opts Options, log *slog.Logger) *Server {
	if opts.RTMPChunkSize <= 0 {
		opts.RTMPChunkSize = 60000
	}
	return &Server{
		hub:  h,
		opts: opts,
		log:  log,
		rtmp: rtmpSerializer{chunkSize: opts.RTMPChunkSize},
	}
}

// Wait blocks until every HTTP viewer connection has been closed.
func (s *Server) Wait() { s.conns.Wait() }

// watchClose cancels when the peer closes c or sends anything unexpected:
// HTTP-FLV viewers send nothing after their request.
func watchClose(c net.Conn, cancel context.CancelFunc) {
	defer cancel()
	var buf [512]byte
	for {
		if _, err := c.Read(buf[:]); err != nil {
			return
		}
	}
}

func (s *Server) logEnd(protocol, path, remote string, r *hub.Reader, err error, started time.Time) {
	attrs := []any{"protocol", protocol, "stream", path, "remote", remote, "duration", time.Since(started).Round(time.Millisecond), "dropped_frames", r.Dropped()}
	if hub.IsNormalEnd(err) || isClientGone(err) {
		s.log.Info("viewer left", append(attrs, "reason", errString(err))...)
		return
	}
	s.log.Warn("viewer disconnected", append(attrs, "err", errString(err))...)
}

func errString(err error) string {
	if err == nil {
		return "end"
	}
	return err.Error()
}

// lockedWriter serialises control writes with the media writer.
type lockedWriter struct{ mu sync.Mutex }

func (l *lockedWriter) write(c net.Conn, b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write(b)
}
