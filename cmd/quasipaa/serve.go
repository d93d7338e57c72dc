package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/quasipaa/quasipaa/internal/config"
	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/netutil"
	"github.com/quasipaa/quasipaa/internal/protocol/rtmp"
	"github.com/quasipaa/quasipaa/internal/protocol/webrtc"
	"github.com/quasipaa/quasipaa/internal/record"
	"github.com/quasipaa/quasipaa/internal/role/core"
	"github.com/quasipaa/quasipaa/internal/role/exchange"
	"github.com/quasipaa/quasipaa/internal/role/publish"
	"github.com/quasipaa/quasipaa/internal/role/pull"
	"github.com/quasipaa/quasipaa/internal/transcode"
	"github.com/quasipaa/quasipaa/internal/vod"
	"github.com/quasipaa/quasipaa/web"
)

// node is one running server: the hub and the roles over it, and the
// listeners that feed them.
type node struct {
	cfg     *config.Config
	log     *slog.Logger
	hub     *hub.Hub
	publish *publish.Server
	pull    *pull.Server
	hls     *exchange.HLS
	api     *core.API
	vod     http.Handler // nil without storage

	turn *turnService // nil when turn.listen is empty

	// WebRTC: nil when webrtc.udp_listen and webrtc.tcp_listen are both empty.
	rtcEngine *webrtc.Engine
	whip      *publish.WHIP
	whep      *pull.WHEP
	opusJobs  *transcode.Manager

	// storage and recording; rec is nil when nothing is stored.
	rec       *recording
	recorder  *record.Recorder
	recCancel context.CancelFunc

	rtmpLn net.Listener
	httpLn net.Listener
}

// newNode builds every role and binds the listeners, so that a port in use is
// reported before anything runs.
func newNode(cfg *config.Config, log *slog.Logger) (*node, error) {
	conflict := hub.ConflictRefuse
	if cfg.Hub.Conflict == config.ConflictTakeover {
		conflict = hub.ConflictTakeOver
	}
	rec, err := openStorage(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	// The recorder is created after the hub it reads, and before anything
	// can publish.
	var recorder *record.Recorder
	h := hub.New(hub.Options{
		OnStreamStart: func(path string) {
			if recorder != nil {
				recorder.StreamStarted(path)
			}
		},
		QueueSize:       cfg.Hub.QueueSize,
		DisableGOPCache: !cfg.Hub.GOPCache,
		PublisherGrace:  cfg.Hub.PublisherGrace,
		Conflict:        conflict,
		MaxDrops:        cfg.Hub.MaxDrops,
		DropWindow:      cfg.Hub.DropWindow,
		Logger:          log,
	})
	variant, err := exchange.ParseHLSVariant(cfg.HLS.Variant)
	if err != nil {
		return nil, fmt.Errorf("hls.variant: %w", err)
	}
	hls := exchange.NewHLS(h, exchange.HLSOptions{
		Variant:            variant,
		VariantFor:         appHLSVariant(cfg),
		SegmentCount:       cfg.HLS.SegmentCount,
		SegmentMinDuration: cfg.HLS.SegmentMinDuration,
		PartMinDuration:    cfg.HLS.PartMinDuration,
		IdleTimeout:        cfg.HLS.IdleTimeout,
	}, log)
	n := &node{
		cfg:     cfg,
		log:     log,
		hub:     h,
		publish: publish.New(h, log),
		pull: pull.New(h, pull.Options{
			RTMPChunkSize: cfg.RTMP.ChunkSize,
			CORSOrigin:    cfg.HTTP.CORSOrigin,
			Deliver:       hub.DeliverOptions{WriteTimeout: cfg.Hub.WriteTimeout, WriteMerge: cfg.Hub.WriteMerge},
			HLS:           hls,
		}, log),
		hls: hls,
		rec: rec,
	}
	if n.turn, err = newTURN(cfg.TURN, log); err != nil {
		n.closeEarly()
		return nil, err
	}
	if err := n.newWebRTC(); err != nil {
		n.closeEarly()
		return nil, err
	}
	var apiOpts []core.Option
	if rec != nil {
		ctx, cancel := context.WithCancel(context.Background())
		recorder = record.NewRecorder(ctx, h, rec.sink, recordPolicy(cfg), log)
		n.recorder, n.recCancel = recorder, cancel
		apiOpts = append(apiOpts, core.WithRecordings(record.NewIndex(rec.store)))
		n.vod = vod.New(rec.store, vod.Options{
			DVRWindow: func(path string) time.Duration {
				if a, ok := cfg.AppFor(path); ok && a.Record {
					return a.DVRWindow
				}
				return 0
			},
			Live: func(path string) bool {
				info, ok := h.Stream(path)
				return ok && info.State == "live"
			},
			Logger: log,
		})
	}
	n.api = core.NewAPI(h, log, apiOpts...)
	if cfg.RTMP.Listen != "" {
		if n.rtmpLn, err = net.Listen("tcp", cfg.RTMP.Listen); err != nil {
			hls.Close()
			return nil, fmt.Errorf("rtmp.listen: %w", err)
		}
	}
	if n.httpLn, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
		if n.rtmpLn != nil {
			n.rtmpLn.Close()
		}
		n.closeEarly()
		return nil, fmt.Errorf("http.listen: %w", err)
	}
	return n, nil
}

// closeEarly releases what newNode built when it fails half-way.
func (n *node) closeEarly() {
	for _, ln := range []net.Listener{n.rtmpLn, n.httpLn} {
		if ln != nil {
			ln.Close()
		}
	}
	n.closeWebRTC()
	n.hls.Close()
	if n.recCancel != nil {
		n.recCancel()
	}
	if n.rec != nil {
		n.rec.close()
	}
}

// appHLSVariant returns the per-app HLS variant override of apps[].hls_variant.
func appHLSVariant(cfg *config.Config) func(string) (exchange.HLSVariant, bool) {
	return func(path string) (exchange.HLSVariant, bool) {
		a, ok := cfg.AppFor(path)
		if !ok || a.HLSVariant == "" {
			return 0, false
		}
		v, err := exchange.ParseHLSVariant(a.HLSVariant)
		return v, err == nil
	}
}

// runServe runs every role until ctx is cancelled, then shuts down: it stops
// accepting, ends every stream and waits for connections to close.
func runServe(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	n, err := newNode(cfg, log)
	if err != nil {
		return err
	}
	return n.run(ctx)
}

func (n *node) run(ctx context.Context) error {
	var wg sync.WaitGroup
	if n.rtmpLn != nil {
		n.log.Info("listening", "protocol", "rtmp", "addr", n.rtmpLn.Addr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = netutil.ServeTCP(ctx, n.rtmpLn, n.log, n.serveRTMP)
		}()
	}
	if n.turn != nil {
		if err := n.turn.start(ctx, n.log); err != nil {
			n.closeEarly()
			return err
		}
		defer n.turn.server.Close()
	}
	var waitRecording func()
	recCtx, stopRecording := context.WithCancel(ctx)
	defer stopRecording()
	if n.rec != nil {
		waitRecording = n.rec.run(recCtx, n.cfg, n.log)
	}
	mux := http.NewServeMux()
	n.api.Register(mux)
	n.pull.Register(mux)
	player := web.PlayerHandler()
	// Outermost first: WebRTC (answers its own CORS preflights), CORS, path
	// checks, recordings, the built-in pages and their assets, live HLS, the mux.
	var handler http.Handler = n.pull.WithHLS(mux)
	handler = withPages(player, handler)
	handler = withPrefix(web.AssetPrefix, player, handler)
	handler = withPrefix("/vod/", n.vod, handler)
	handler = rejectDotSegments(handler)
	handler = withCORS(n.cfg.HTTP.CORSOrigin, handler)
	handler = withWebRTC(n.whip, n.whep, handler)
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelWarn),
	}
	n.log.Info("listening", "protocol", "http", "addr", n.httpLn.Addr().String())
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(n.httpLn) }()

	if n.cfg.Debug.PprofListen != "" {
		pprofSrv, err := startPprof(ctx, n.cfg.Debug.PprofListen, n.log)
		if err != nil {
			n.log.Error("pprof listener failed", "err", err)
		} else {
			defer pprofSrv.Close()
		}
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-httpErr:
		n.log.Error("http server failed", "err", runErr)
	}
	n.log.Info("shutting down")
	n.hub.Close()
	// Ends every HLS muxer, which releases the requests blocked on them.
	n.hls.Close()
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		n.log.Warn("http shutdown", "err", err)
	}
	n.pull.Wait()
	n.closeWebRTC()
	wg.Wait()
	if n.rec != nil {
		// The hub is closed: every recording session files its last segment.
		n.recorder.Wait()
		n.recCancel()
		stopRecording()
		waitRecording()
		n.rec.close()
	}
	n.log.Info("stopped")
	if errors.Is(runErr, http.ErrServerClosed) {
		runErr = nil
	}
	return runErr
}

// serveRTMP runs one RTMP connection: the handshake and command exchange,
// then publish or play.
func (n *node) serveRTMP(ctx context.Context, nc net.Conn) {
	c := rtmp.NewServerConn(nc,
		rtmp.WithChunkSize(n.cfg.RTMP.ChunkSize),
		rtmp.WithHandshakeTimeout(n.cfg.RTMP.HandshakeTimeout),
		rtmp.WithMaxMessageSize(uint32(n.cfg.RTMP.MaxMessageSize)),
		rtmp.WithLogger(n.log),
	)
	defer c.Close()
	// The handshake and the whole command exchange up to publish or play
	// must finish within rtmp.handshake_timeout.
	actx, cancel := context.WithTimeout(ctx, n.cfg.RTMP.HandshakeTimeout)
	req, err := c.Accept(actx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			n.log.Warn("rtmp connection failed", "remote", nc.RemoteAddr().String(), "err", err)
		}
		return
	}
	switch req.Action {
	case rtmp.ActionPublish:
		_ = n.publish.ServeRTMP(ctx, c, req)
	case rtmp.ActionPlay:
		_ = n.pull.ServeRTMP(ctx, c, req)
	}
}

// rejectDotSegments answers 400 to any path with a "." or ".." segment, in
// plain or percent-encoded form, instead of letting the mux redirect it to a
// cleaned path: such a request is never a legitimate stream name.
func rejectDotSegments(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, seg := range strings.Split(r.URL.Path, "/") {
			if seg == "." || seg == ".." {
				http.Error(w, "invalid path: dot segments are not allowed", http.StatusBadRequest)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// withPages sends GET and HEAD of the built-in pages, /{app}/{stream}/ and
// /{app}/{stream}/publish, to pages. They are not mux patterns because a
// three-segment wildcard conflicts with the API's /api/v1/ catch-all.
func withPages(pages, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			parts := strings.Split(r.URL.Path, "/")
			if len(parts) == 4 && parts[0] == "" && parts[1] != "" && parts[2] != "" && parts[1] != "api" &&
				(parts[3] == "" || parts[3] == "publish") {
				pages.ServeHTTP(w, r)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// withPrefix sends the requests under prefix to h (404 when h is nil) and
// the others to next.
func withPrefix(prefix string, h, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, prefix) {
			next.ServeHTTP(w, r)
			return
		}
		if h == nil {
			core.WriteError(w, http.StatusNotFound, "not_found", "no recordings: nothing is recorded on this node (see apps[].record)")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// startPprof serves Go's profiling endpoints on addr until ctx ends.
func startPprof(ctx context.Context, addr string, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug.pprof_listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	log.Info("listening", "protocol", "pprof", "addr", ln.Addr().String())
	go func() { _ = srv.Serve(ln) }()
	return srv, nil
}

// withCORS adds Access-Control-Allow-Origin to every response (API and
// playback) and answers CORS preflight requests.
func withCORS(origin string, next http.Handler) http.Handler {
	if origin == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "*")
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
