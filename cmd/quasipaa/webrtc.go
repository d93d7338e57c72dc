package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/quasipaa/quasipaa/internal/auth"
	"github.com/quasipaa/quasipaa/internal/codec/aac"
	"github.com/quasipaa/quasipaa/internal/config"
	"github.com/quasipaa/quasipaa/internal/media"
	"github.com/quasipaa/quasipaa/internal/protocol/webrtc"
	"github.com/quasipaa/quasipaa/internal/role/publish"
	"github.com/quasipaa/quasipaa/internal/role/pull"
	"github.com/quasipaa/quasipaa/internal/transcode"
	"github.com/quasipaa/quasipaa/internal/turn"
)

// turnService is the built-in STUN/TURN server and the credentials it
// hands to WebRTC clients.
type turnService struct {
	cfg    config.TURN
	server *turn.Server
	creds  *auth.TURNCredentials
}

// newTURN prepares the TURN server of turn.*; nil when turn.listen is empty.
func newTURN(cfg config.TURN, log *slog.Logger) (*turnService, error) {
	if cfg.Listen == "" {
		return nil, nil
	}
	var secret []byte
	if cfg.Secret != "" {
		secret = []byte(cfg.Secret)
	}
	creds := auth.NewTURNCredentials(secret, cfg.CredentialTTL)
	var relayIP net.IP
	if cfg.RelayIP != "" {
		relayIP = net.ParseIP(cfg.RelayIP)
	}
	srv, err := turn.New(turn.Options{
		Listen:                cfg.Listen,
		TLSListen:             cfg.TLSListen,
		TLSCert:               cfg.TLSCert,
		TLSKey:                cfg.TLSKey,
		Realm:                 cfg.Realm,
		Credentials:           creds,
		RelayIP:               relayIP,
		RelayPortMin:          cfg.RelayPortMin,
		RelayPortMax:          cfg.RelayPortMax,
		MaxAllocationsPerUser: cfg.MaxAllocationsPerUser,
		AllowPrivatePeers:     cfg.AllowPrivatePeers,
		Logger:                log,
	})
	if err != nil {
		return nil, fmt.Errorf("turn: %w", err)
	}
	return &turnService{cfg: cfg, server: srv, creds: creds}, nil
}

// start binds the TURN sockets and logs their addresses.
func (t *turnService) start(ctx context.Context, log *slog.Logger) error {
	if err := t.server.Start(ctx); err != nil {
		return fmt.Errorf("turn.listen: %w", err)
	}
	log.Info("listening", "protocol", "turn-udp", "addr", t.server.UDPAddr().String())
	log.Info("listening", "protocol", "turn-tcp", "addr", t.server.TCPAddr().String())
	if a := t.server.TLSAddr(); a != nil {
		log.Info("listening", "protocol", "turn-tls", "addr", a.String())
	}
	return nil
}

// iceServers returns the STUN and TURN servers advertised to a WHIP or WHEP
// client, with fresh credentials: at turn.public_host, or the host the
// client reached the HTTP server at.
func (t *turnService) iceServers(r *http.Request) []webrtc.ICEServer {
	if t == nil {
		return nil
	}
	host := t.cfg.PublicHost
	if host == "" {
		host = r.Host
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			host = h
		}
	}
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]" // IPv6 literal
	}
	port := func(a net.Addr) string {
		switch v := a.(type) {
		case *net.UDPAddr:
			return strconv.Itoa(v.Port)
		case *net.TCPAddr:
			return strconv.Itoa(v.Port)
		}
		return ""
	}
	user, pass, _ := t.creds.Mint("webrtc", time.Now())
	stun := webrtc.ICEServer{URLs: []string{"stun:" + host + ":" + port(t.server.UDPAddr())}}
	relay := webrtc.ICEServer{
		URLs: []string{
			"turn:" + host + ":" + port(t.server.UDPAddr()) + "?transport=udp",
			"turn:" + host + ":" + port(t.server.TCPAddr()) + "?transport=tcp",
		},
		Username:   user,
		Credential: pass,
	}
	if a := t.server.TLSAddr(); a != nil {
		relay.URLs = append(relay.URLs, "turns:"+host+":"+port(a)+"?transport=tcp")
	}
	return []webrtc.ICEServer{stun, relay}
}

// aacConverter turns WHIP publishers' Opus into AAC with one ffmpeg per
// session (publish.AudioTranscoder).
type aacConverter struct {
	opts transcode.FFmpegOptions
}

// ToAAC starts converting opus; the AAC track (AAC-LC at 48 kHz, the Opus
// channel count) is known before the first output.
func (c aacConverter) ToAAC(ctx context.Context, opusTrack *media.Track) (publish.AudioConversion, error) {
	ch := min(max(opusTrack.Channels, 1), 2)
	asc, err := aac.BuildAudioSpecificConfig(2, 48000, ch)
	if err != nil {
		return nil, err
	}
	track, err := aac.TrackFromConfig(asc)
	if err != nil {
		return nil, err
	}
	tc, err := transcode.NewFFmpeg(ctx, opusTrack, media.CodecAAC, c.opts)
	if err != nil {
		return nil, err
	}
	conv := &aacConversion{tc: tc, track: track, frames: make(chan *media.Frame, 64)}
	go conv.pump()
	return conv, nil
}

// aacConversion adapts a transcode.Transcoder to publish.AudioConversion.
type aacConversion struct {
	tc     transcode.Transcoder
	track  *media.Track
	frames chan *media.Frame
}

func (a *aacConversion) pump() {
	defer close(a.frames)
	for out := range a.tc.Output() {
		a.frames <- out.Frame
	}
}

func (a *aacConversion) Track() *media.Track         { return a.track }
func (a *aacConversion) Write(f *media.Frame) error  { return a.tc.Write(f) }
func (a *aacConversion) Frames() <-chan *media.Frame { return a.frames }

// Close stops ffmpeg; Frames closes once its last output is delivered.
func (a *aacConversion) Close() error { return a.tc.Close() }

// opusSource gives WHEP viewers of streams without Opus the output of the
// stream's shared AAC→Opus job (pull.OpusSource).
type opusSource struct {
	jobs *transcode.Manager
}

// Acquire joins (or starts) the stream's Opus job.
func (o opusSource) Acquire(path string) (pull.OpusFeed, error) {
	job, err := o.jobs.Acquire(path, media.CodecOpus)
	if err != nil {
		return nil, err
	}
	return &opusFeed{job: job}, nil
}

// opusFeed is one viewer's cursor on an Opus job.
type opusFeed struct {
	job     *transcode.Job
	pending []transcode.Output
	next    int
}

// defaultOpus describes the job's output before its first frame: what
// the AAC→Opus conversion produces for stereo input.
var defaultOpus = &media.Track{Codec: media.CodecOpus, SampleRate: 48000, Channels: 2}

func (f *opusFeed) Track() *media.Track {
	if t := f.job.Track(); t != nil {
		return t
	}
	return defaultOpus
}

func (f *opusFeed) Next(ctx context.Context) (*media.Frame, error) {
	for f.next >= len(f.pending) {
		clear(f.pending)
		var err error
		f.pending, err = f.job.Next(ctx, f.pending[:0])
		f.next = 0
		if len(f.pending) == 0 && err != nil {
			return nil, err
		}
	}
	out := f.pending[f.next]
	f.next++
	return out.Frame, nil
}

func (f *opusFeed) Release() { f.job.Release() }

// newWebRTC binds the ICE sockets of webrtc.* and builds WHIP and WHEP,
// with Opus→AAC for WHIP publishers and AAC→Opus jobs for WHEP viewers.
func (n *node) newWebRTC() error {
	cfg := n.cfg.WebRTC
	if cfg.UDPListen == "" && cfg.TCPListen == "" {
		return nil
	}
	eng, err := webrtc.NewEngine(webrtc.EngineOptions{
		UDPListen:        cfg.UDPListen,
		TCPListen:        cfg.TCPListen,
		PublicIPs:        config.List(cfg.PublicIPs),
		Interfaces:       config.List(cfg.Interfaces),
		HandshakeTimeout: cfg.HandshakeTimeout,
		Logger:           n.log,
	})
	if err != nil {
		return fmt.Errorf("webrtc: %w", err)
	}
	n.rtcEngine = eng
	for _, a := range eng.Addrs() {
		n.log.Info("listening", "protocol", "webrtc-"+a.Network(), "addr", a.String())
	}
	limiter := webrtc.NewLimiter(cfg.MaxSessions)
	ffmpeg := transcode.FFmpegOptions{Logger: n.log}
	n.opusJobs = transcode.NewManager(n.hub, transcode.ManagerOptions{FFmpeg: ffmpeg, Logger: n.log})
	ice := n.turn.iceServers
	n.whip = publish.NewWHIP(n.hub, eng, publish.WHIPOptions{
		ICEServers: ice,
		Sessions:   limiter,
		Transcoder: aacConverter{opts: ffmpeg},
		CORSOrigin: n.cfg.HTTP.CORSOrigin,
	}, n.log)
	n.whep = pull.NewWHEP(n.hub, eng, pull.WHEPOptions{
		ICEServers: ice,
		Sessions:   limiter,
		Opus:       opusSource{jobs: n.opusJobs},
		CORSOrigin: n.cfg.HTTP.CORSOrigin,
	}, n.log)
	return nil
}

// closeWebRTC ends every WebRTC session and conversion and closes the ICE
// sockets; safe to call more than once.
func (n *node) closeWebRTC() {
	if n.rtcEngine == nil {
		return
	}
	n.whip.Close()
	n.whep.Close()
	n.opusJobs.Close()
	n.rtcEngine.Close()
	n.rtcEngine = nil
}

// withWebRTC sends WHIP and WHEP requests (every method, CORS preflight
// included: the handlers answer it themselves) to their handlers.
func withWebRTC(whip *publish.WHIP, whep *pull.WHEP, next http.Handler) http.Handler {
	if whip == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case publish.IsWHIPPath(r.URL.Path):
			whip.ServeHTTP(w, r)
		case pull.IsWHEPPath(r.URL.Path):
			whep.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}
