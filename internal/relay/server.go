package relay

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/media"
	wire "github.com/quasipaa/quasipaa/internal/protocol/relay"
	"github.com/quasipaa/quasipaa/internal/streampath"
)

// PathPrefix is the URL path under which a node serves its streams to other
// nodes: GET PathPrefix + "app/stream".
const PathPrefix = "/_quasipaa/relay/"

// ContentType is the media type of a relay response body.
const ContentType = "application/x-quasipaa-relay"

// ProtocolRelay is the hub ClientInfo.Protocol of relay readers and publishers.
const ProtocolRelay = "relay"

// END reasons other than wire.ReasonStreamEnded; the receiver reconnects.
const (
	reasonKicked       = "relay reader kicked"
	reasonSlow         = "relay reader too slow"
	reasonShutdown     = "node shutting down"
	reasonServerClosed = "relay server closing"
)

// Server serves the streams of a hub to other nodes over the relay protocol.
// It is an http.Handler for GET PathPrefix + "{app}/{stream...}".
type Server struct {
	hub     *hub.Hub
	log     *slog.Logger
	handler http.Handler

	// keepalive is how long the stream may stay silent before a KEEPALIVE.
	keepalive time.Duration
	// writeTimeout drops a client that accepts nothing for this long.
	writeTimeout time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// NewServer returns a Server of h's streams for the nodes that sign their
// requests with secret (see Sign). log may be nil.
func NewServer(h *hub.Hub, secret string, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{hub: h, log: log.With("component", "relay-server"), keepalive: time.Second,
		writeTimeout: 10 * time.Second, ctx: ctx, cancel: cancel}
	s.handler = RequireSecret(secret, http.HandlerFunc(s.serve))
	return s
}

// ServeHTTP serves one relay request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Close ends every relay being served (their clients get END and reconnect
// elsewhere) and waits for the handlers to return. Later requests get 503.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += n
	return n, err
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "the relay is read with GET")
		return
	}
	path, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "not a relay path")
		return
	}
	if err := streampath.Validate(path); err != nil || !strings.Contains(path, "/") {
		writeError(w, http.StatusBadRequest, "bad_request", "the relay path must be "+PathPrefix+"{app}/{stream}")
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "unavailable", reasonServerClosed)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	node, _ := NodeFromContext(r.Context())
	rd, err := s.hub.Subscribe(path, hub.ClientInfo{Protocol: ProtocolRelay, RemoteAddr: node + "@" + r.RemoteAddr})
	switch {
	case errors.Is(err, hub.ErrStreamNotFound):
		writeError(w, http.StatusNotFound, "stream_not_found", "stream "+path+" is not on this node")
		return
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	defer rd.Close()
	log := s.log.With("stream", path, "node", node, "remote", r.RemoteAddr)
	log.Info("relay started")
	reason, err := s.stream(w, r, rd)
	log.Info("relay ended", "reason", reason, "err", err, "bytes", rd.Stream().Summary().BytesOut)
}

// stream writes the stream read by rd until it ends, the client leaves or a
// write fails, and returns the END reason sent (empty when none was).
func (s *Server) stream(w http.ResponseWriter, r *http.Request, rd *hub.Reader) (string, error) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()

	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	cw := &countWriter{w: w}
	ww := wire.NewWriter(cw)
	flush := func() error {
		if d := s.writeTimeout; d > 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(d))
		}
		err := rc.Flush()
		rd.AddBytesOut(cw.n)
		cw.n = 0
		return err
	}

	// The tracks go out at once, so the client knows the stream before its
	// first frame; frames then carry the track set they belong to.
	var (
		sent    []*media.Track
		lastSet *hub.TrackSet
	)
	if tracks := rd.Stream().Summary().Tracks; tracks != nil {
		if err := ww.WriteTracks(tracks); err != nil {
			return "", err
		}
		sent = tracks
	}
	if err := flush(); err != nil {
		return "", err
	}

	entries := make([]*hub.Entry, 0, 256)
	lastWrite := time.Now()
	// A context per keepalive period wakes Next when the stream is silent.
	period := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, s.keepalive) }
	kctx, kcancel := period()
	defer func() { kcancel() }()
	for {
		var err error
		entries, err = rd.Next(kctx, entries[:0])
		for _, e := range entries {
			if e.Tracks != lastSet {
				if lastSet != nil || !sameTracks(sent, e.Tracks.Tracks) {
					if werr := ww.WriteTracks(e.Tracks.Tracks); werr != nil {
						return "", werr
					}
				}
				lastSet = e.Tracks
			}
			if werr := ww.WriteFrame(e.Frame); werr != nil {
				return "", werr
			}
		}
		clear(entries)
		if len(entries) > 0 {
			if ferr := flush(); ferr != nil {
				return "", ferr
			}
			lastWrite = time.Now()
		}
		if err == nil {
			continue
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			// The keepalive period passed: renew it, and prove the link
			// alive if nothing went out meanwhile.
			kcancel()
			kctx, kcancel = period()
			if time.Since(lastWrite) >= s.keepalive*9/10 {
				if werr := ww.WriteKeepalive(); werr != nil {
					return "", werr
				}
				if ferr := flush(); ferr != nil {
					return "", ferr
				}
				lastWrite = time.Now()
			}
			continue
		}
		reason := endReason(err, rd, s.ctx)
		if reason == "" {
			return "", err // the client left
		}
		if werr := ww.WriteEnd(reason); werr == nil {
			_ = flush()
		}
		return reason, err
	}
}

// endReason says why the relay of rd ends, given Next's error; empty when
// the client left.
func endReason(err error, rd *hub.Reader, serverCtx context.Context) string {
	switch {
	case errors.Is(err, hub.ErrKicked) && rd.Err() == nil:
		// The stream itself was kicked: it ended at its source.
		return wire.ReasonStreamEnded
	case errors.Is(err, hub.ErrStreamClosed):
		return wire.ReasonStreamEnded
	case errors.Is(err, hub.ErrKicked):
		return reasonKicked
	case errors.Is(err, hub.ErrSlowReader):
		return reasonSlow
	case errors.Is(err, hub.ErrHubClosed):
		return reasonShutdown
	case serverCtx.Err() != nil:
		return reasonServerClosed
	default:
		return ""
	}
}

// sameTracks reports whether a and b hold the same tracks.
func sameTracks(a, b []*media.Track) bool {
	if len(a) != len(b) || a == nil {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
