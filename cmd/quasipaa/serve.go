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

	"github.com/quasipaa/quasipaa/internal/apps"
	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/config"
	"github.com/quasipaa/quasipaa/internal/dispatch"
	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/metrics"
	"github.com/quasipaa/quasipaa/internal/netutil"
	"github.com/quasipaa/quasipaa/internal/protocol/rtmp"
	"github.com/quasipaa/quasipaa/internal/protocol/webrtc"
	"github.com/quasipaa/quasipaa/internal/record"
	"github.com/quasipaa/quasipaa/internal/relay"
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

	adm *admission // publish/play authorisation (admission.go)

	// The cluster (cluster.go): the registry (memory in a single process),
	// the run-time apps, this node's routes, relays and exchange jobs.
	id          string
	reg         cluster.Registry
	apps        *apps.Store
	routes      *publish.Routes  // nil without the publish role
	relays      *relay.Upstreams // nil in a single process
	relayServer *relay.Server    // nil in a single process
	jobs        *exchange.Jobs   // nil unless clustered with the exchange role
	hlsProxy    *pull.HLSProxy   // nil in a single process
	metrics     *metrics.Metrics // nil when metrics.enabled is false
	load        *loadMeter
	started     time.Time

	rtmpLn net.Listener
	httpLn net.Listener
	apiLn  net.Listener // nil unless api.listen is set
}

// newNode builds every role and binds the listeners, so that a port in use is
// reported before anything runs.
func newNode(cfg *config.Config, log *slog.Logger) (*node, error) {
	ctx := context.Background()
	conflict := hub.ConflictRefuse
	if cfg.Hub.Conflict == config.ConflictTakeover {
		conflict = hub.ConflictTakeOver
	}
	reg, err := openRegistry(ctx, cfg)
	if err != nil {
		return nil, err
	}
	id := nodeID(cfg)
	isCluster := clustered(cfg)
	appStore, err := apps.NewStore(ctx, reg, cfg.Apps, log)
	if err != nil {
		reg.Close()
		return nil, fmt.Errorf("apps: %w", err)
	}
	policy := appStore.For
	var m *metrics.Metrics // nil-safe; nil when metrics.enabled is false
	adm, err := newAdmission(cfg, policy, admissionCounts{
		refused: func(action, protocol, reason string) { m.AuthRefused(action, protocol, metricReason(reason)) },
		webhook: func(event, outcome string) { m.WebhookSent(event, outcome) },
	}, log)
	if err != nil {
		reg.Close()
		return nil, err
	}
	rec, err := openStorage(ctx, cfg)
	if err != nil {
		reg.Close()
		return nil, err
	}
	// The recorder, the route keeper and the relay upstreams are created
	// after the hub that calls them, and before anything can publish.
	var (
		recorder  *record.Recorder
		routes    *publish.Routes
		upstreams *relay.Upstreams
	)
	gates := []admitFunc{roleGate(cfg), adm.admit}
	h := hub.New(hub.Options{
		OnStreamStart: func(path string) {
			// In a cluster the record job of the stream decides (exchange.Jobs).
			if recorder != nil && !isCluster {
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
		Admit: func(ctx context.Context, action hub.Action, path string, info hub.ClientInfo) error {
			for _, gate := range gates {
				if err := gate(ctx, action, path, info); err != nil {
					return err
				}
			}
			if action == hub.ActionPublish && routes != nil {
				return routes.Claim(ctx, path)
			}
			return nil
		},
		OnLeave: func(ev hub.Event) {
			adm.onLeave(ev)
			m.ClientLeft(ev)
		},
		OnStreamEnd: func(info hub.StreamInfo) { m.StreamEnded(info) },
		Upstream: func(ctx context.Context, path string) error {
			if upstreams == nil {
				return hub.ErrStreamNotFound
			}
			return upstreams.Ensure(ctx, path)
		},
	})
	adm.bind(h)
	if cfg.Cluster.HasRole(config.RolePublish) {
		routes = publish.NewRoutes(reg, id, cfg.Cluster.TTL, h, log.With("component", "routes"))
	}
	if isCluster {
		upstreams = relay.NewUpstreams(h, relay.UpstreamOptions{
			Resolve: resolveRoute(reg, id),
			Secret:  cfg.Cluster.Secret,
			NodeID:  id,
			Idle:    cfg.Cluster.RelayIdle,
			Grace:   cfg.Hub.PublisherGrace,
			Logger:  log, // NewUpstreams names its component
		})
	}
	variant, err := exchange.ParseHLSVariant(cfg.HLS.Variant)
	if err != nil {
		return nil, fmt.Errorf("hls.variant: %w", err)
	}
	hls := exchange.NewHLS(h, exchange.HLSOptions{
		Variant:            variant,
		VariantFor:         appHLSVariant(policy),
		SegmentCount:       cfg.HLS.SegmentCount,
		SegmentMinDuration: cfg.HLS.SegmentMinDuration,
		PartMinDuration:    cfg.HLS.PartMinDuration,
		IdleTimeout:        cfg.HLS.IdleTimeout,
	}, log)
	var hlsHandler pull.HLSHandler = hls
	var hlsProxy *pull.HLSProxy
	if isCluster {
		// Every node serves the HLS of a stream from the exchange node
		// holding its hls job, so all pull nodes serve the same playlists.
		var local pull.HLSHandler
		if cfg.Cluster.HasRole(config.RoleExchange) {
			local = hls
		}
		secret := cfg.Cluster.Secret
		hlsProxy = pull.NewHLSProxy(pull.HLSProxyOptions{
			Owner:  pull.RegistryOwner(reg, id),
			Local:  local,
			Sign:   func(r *http.Request) { relay.Sign(r, secret, id) },
			NodeID: id,
			Logger: log, // NewHLSProxy names its component
		})
		hlsHandler = hlsProxy
	}
	n := &node{
		cfg:     cfg,
		log:     log,
		hub:     h,
		id:      id,
		reg:     reg,
		apps:    appStore,
		routes:  routes,
		relays:  upstreams,
		publish: publish.New(h, log),
		pull: pull.New(h, pull.Options{
			RTMPChunkSize: cfg.RTMP.ChunkSize,
			CORSOrigin:    cfg.HTTP.CORSOrigin,
			Deliver:       hub.DeliverOptions{WriteTimeout: cfg.Hub.WriteTimeout, WriteMerge: cfg.Hub.WriteMerge},
			HLS:           hlsHandler,
		}, log),
		hls:      hls,
		hlsProxy: hlsProxy,
		adm:      adm,
		rec:      rec,
		load:     newLoadMeter(h),
		started:  time.Now(),
	}
	if isCluster {
		n.relayServer = relay.NewServer(h, cfg.Cluster.Secret, log)
	}
	if n.turn, err = newTURN(cfg.TURN, log); err != nil {
		n.closeEarly()
		return nil, err
	}
	if err := n.newWebRTC(); err != nil {
		n.closeEarly()
		return nil, err
	}
	apiOpts := []core.Option{
		core.WithApps(appStore),
		core.WithNode(id, version),
		core.WithCluster(reg, core.SelfInfo{ID: id, Roles: splitRoles(cfg), Region: cfg.Cluster.Region},
			core.DispatchOptions{Policy: dispatch.FromConfig(cfg.Cluster)}),
	}
	if isCluster {
		apiOpts = append(apiOpts, core.WithForwarding(cfg.Cluster.Secret, 0))
	}
	records := rec != nil && (!isCluster || cfg.Cluster.HasRole(config.RoleExchange))
	if rec != nil {
		apiOpts = append(apiOpts, core.WithRecordings(record.NewIndex(rec.store)))
		n.vod = vod.New(rec.store, vod.Options{
			DVRWindow: func(path string) time.Duration {
				if a, ok := policy(path); ok && a.Record {
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
	if records {
		rctx, cancel := context.WithCancel(ctx)
		recorder = record.NewRecorder(rctx, h, rec.sink, recordPolicy(policy), log, record.WithSegmentHook(adm.segment))
		n.recorder, n.recCancel = recorder, cancel
	}
	if isCluster && cfg.Cluster.HasRole(config.RoleExchange) {
		n.jobs = exchange.NewJobs(exchange.JobsOptions{
			Registry:   reg,
			NodeID:     id,
			TTL:        cfg.Cluster.TTL,
			Pinner:     upstreams,
			RouteGrace: cfg.Hub.PublisherGrace,
			Logger:     log, // NewJobs names its component
			Wants: func(path string) []string {
				kinds := []string{cluster.KindHLS}
				if a, ok := policy(path); ok && a.Record && recorder != nil {
					kinds = append(kinds, cluster.KindRecord)
				}
				return kinds
			},
			Start: func(kind, path string) func() {
				switch kind {
				case cluster.KindRecord:
					return recorder.Start(path)
				case cluster.KindHLS:
					return hls.Keep(path)
				}
				return func() {}
			},
		})
	}
	if cfg.Metrics.Enabled {
		opts := []metrics.Option{
			metrics.WithLogger(log),
			metrics.WithNode(id, cfg.Cluster.Roles, version),
			metrics.WithNodeLoad(n.load.Last),
		}
		if upstreams != nil {
			opts = append(opts, metrics.WithRelays(func() []metrics.RelayState {
				var out []metrics.RelayState
				for _, u := range upstreams.Active() {
					out = append(out, metrics.RelayState{Path: u.Path, Source: u.Source, State: u.State, Frames: u.Frames, Bytes: u.Bytes})
				}
				return out
			}))
		}
		if n.jobs != nil {
			opts = append(opts, metrics.WithJobs(n.jobs.Held))
		}
		m = metrics.New(h, opts...)
		n.metrics = m
	}
	n.api = core.NewAPI(h, log, apiOpts...)
	if cfg.RTMP.Listen != "" {
		if n.rtmpLn, err = net.Listen("tcp", cfg.RTMP.Listen); err != nil {
			n.closeEarly()
			return nil, fmt.Errorf("rtmp.listen: %w", err)
		}
	}
	if n.httpLn, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
		n.closeEarly()
		return nil, fmt.Errorf("http.listen: %w", err)
	}
	if cfg.API.Listen != "" {
		if n.apiLn, err = net.Listen("tcp", cfg.API.Listen); err != nil {
			n.closeEarly()
			return nil, fmt.Errorf("api.listen: %w", err)
		}
	}
	return n, nil
}

// closeEarly releases what newNode built when it fails half-way.
func (n *node) closeEarly() {
	for _, ln := range []net.Listener{n.rtmpLn, n.httpLn, n.apiLn} {
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
	if n.relays != nil {
		n.relays.Close()
	}
	if n.hlsProxy != nil {
		n.hlsProxy.Close()
	}
	n.reg.Close()
}

// appHLSVariant returns the per-app HLS variant override of apps[].hls_variant.
func appHLSVariant(policy func(string) (config.App, bool)) func(string) (exchange.HLSVariant, bool) {
	return func(path string) (exchange.HLSVariant, bool) {
		a, ok := policy(path)
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
	goRun := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	if n.rtmpLn != nil {
		n.log.Info("listening", "protocol", "rtmp", "addr", n.rtmpLn.Addr().String())
		goRun(func() { _ = netutil.ServeTCP(ctx, n.rtmpLn, n.log, n.serveRTMP) })
	}
	if n.turn != nil {
		if err := n.turn.start(ctx, n.log); err != nil {
			n.closeEarly()
			return err
		}
		defer n.turn.server.Close()
	}
	defer n.adm.start()()
	var waitRecording func()
	recCtx, stopRecording := context.WithCancel(ctx)
	defer stopRecording()
	if n.rec != nil {
		waitRecording = n.rec.run(recCtx, n.cfg, n.apps.For, n.log)
	}

	// The cluster's loops: heartbeats (the node leaves the registry when ctx
	// ends), run-time apps, routes, relay upstreams; the exchange jobs stop
	// first at shutdown, before the hub closes.
	goRun(func() {
		_ = cluster.NewHeartbeater(n.reg, n.self, n.cfg.Cluster.TTL, n.log).Run(ctx)
	})
	goRun(func() { n.apps.Run(ctx) })
	if n.routes != nil {
		goRun(func() { n.routes.Run(ctx) })
	}
	if n.relays != nil {
		goRun(func() { n.relays.Run(ctx) })
	}
	jobsCtx, stopJobs := context.WithCancel(ctx)
	defer stopJobs()
	jobsDone := make(chan struct{})
	if n.jobs != nil {
		go func() { defer close(jobsDone); _ = n.jobs.Run(jobsCtx) }()
	} else {
		close(jobsDone)
	}

	mux := http.NewServeMux()
	apiMux := mux
	if n.apiLn != nil {
		apiMux = http.NewServeMux()
	}
	n.api.Register(apiMux)
	if n.apiLn != nil && n.cfg.Cluster.Secret != "" {
		// The API requests other nodes' cores forward (signed) come to
		// the HTTP listener, the node's address in the registry.
		mux.Handle("/api/v1/", relay.RequireSecret(n.cfg.Cluster.Secret, apiMux))
	}
	if n.metrics != nil {
		apiMux.Handle("GET /metrics", n.metrics.Handler())
	}
	n.pull.Register(mux)
	if n.relayServer != nil {
		mux.Handle(relay.PathPrefix, n.relayServer)
	}
	player := web.PlayerHandler()
	// Outermost first: dispatch redirects (core without the role asked
	// for), WebRTC (answers its own CORS preflights), CORS, API keys, path
	// checks, recordings, the console, the built-in pages and their assets,
	// live HLS (authorised, except signed requests of other nodes), the mux.
	ungated := n.pull.WithHLS(mux)
	var handler http.Handler = n.internalHLS(ungated, pull.WithHLSGate(ungated, n.adm.admitter))
	handler = withPages(player, handler)
	handler = withPrefix(web.AssetPrefix, player, handler)
	if n.apiLn == nil {
		handler = withConsole(handler)
	}
	handler = withPrefix("/vod/", n.vod, handler)
	handler = rejectDotSegments(handler)
	if n.apiLn == nil {
		handler = core.RequireKeys(n.cfg.API.Keys, n.log, handler, core.TrustCluster(n.cfg.Cluster.Secret))
	}
	handler = withCORS(n.cfg.HTTP.CORSOrigin, handler)
	handler = withWebRTC(n.whip, n.whep, handler)
	handler = n.api.Redirect(handler)
	if len(n.cfg.API.Keys) == 0 {
		n.log.Warn("the API has no keys (api.keys): anyone who reaches it can change apps and kick clients")
	}
	servers := []*http.Server{n.httpServer(ctx, handler)}
	n.log.Info("listening", "protocol", "http", "addr", n.httpLn.Addr().String())
	httpErr := make(chan error, 2)
	go func() { httpErr <- servers[0].Serve(n.httpLn) }()
	if n.apiLn != nil {
		var apiHandler http.Handler = withConsole(apiMux)
		apiHandler = core.RequireKeys(n.cfg.API.Keys, n.log, rejectDotSegments(apiHandler), core.TrustCluster(n.cfg.Cluster.Secret))
		apiHandler = withCORS(n.cfg.HTTP.CORSOrigin, apiHandler)
		apiSrv := n.httpServer(ctx, apiHandler)
		servers = append(servers, apiSrv)
		n.log.Info("listening", "protocol", "api", "addr", n.apiLn.Addr().String())
		go func() { httpErr <- apiSrv.Serve(n.apiLn) }()
	}
	n.log.Info("node ready", "node", n.id, "roles", n.cfg.Cluster.Roles, "cluster", clustered(n.cfg))

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
	// Jobs first: each stops its recording (filing the last segment) and
	// releases its lease, so another exchange node takes over at once.
	stopJobs()
	<-jobsDone
	n.hub.Close()
	// Ends every HLS muxer, which releases the requests blocked on them.
	n.hls.Close()
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Warn("http shutdown", "err", err)
		}
	}
	if n.relayServer != nil {
		n.relayServer.Close()
	}
	if n.hlsProxy != nil {
		n.hlsProxy.Close()
	}
	n.pull.Wait()
	n.closeWebRTC()
	if n.relays != nil {
		n.relays.Close()
	}
	wg.Wait()
	if n.recorder != nil {
		// The hub is closed: every recording session files its last segment.
		n.recorder.Wait()
		n.recCancel()
	}
	if n.rec != nil {
		stopRecording()
		waitRecording()
		n.rec.close()
	}
	n.reg.Close()
	n.log.Info("stopped")
	if errors.Is(runErr, http.ErrServerClosed) {
		runErr = nil
	}
	return runErr
}

// httpServer returns an HTTP server of handler whose requests' contexts end
// with ctx.
func (n *node) httpServer(ctx context.Context, handler http.Handler) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelWarn),
	}
}

// internalHLS sends HLS requests forwarded by another node's HLS proxy
// (marked and signed with the cluster secret) to ungated: the viewer was
// authorised on that node. Everything else goes to gated.
func (n *node) internalHLS(ungated, gated http.Handler) http.Handler {
	if !clustered(n.cfg) {
		return gated
	}
	secret := n.cfg.Cluster.Secret
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(pull.HLSProxyHeader) != "" {
			if _, err := relay.Verify(r, secret, relay.DefaultMaxSkew); err == nil {
				ungated.ServeHTTP(w, r)
				return
			}
		}
		gated.ServeHTTP(w, r)
	})
}

// withConsole serves the web console under /console/ (and redirects /console).
func withConsole(next http.Handler) http.Handler {
	console := web.ConsoleHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/console" || strings.HasPrefix(r.URL.Path, web.ConsolePrefix) {
			console.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
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
