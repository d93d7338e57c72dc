// Package bench is a load generator for live-streaming servers: it plays a
// stream with many concurrent players over RTMP, HTTP-FLV, WebSocket-FLV,
// HLS / Low-Latency HLS or WebRTC (WHEP), optionally feeds it with
// publishers pushing an FLV file over RTMP (or its video over WHIP), and
// measures what every player received: connect and startup times, bytes,
// video frames received versus expected from the timestamps, and stalls;
// for HLS, requests by kind, their latency, and how far behind the ingest
// wall clock each part or segment arrives; for WHEP, RTP packet loss and
// each video frame's latency from the bench's publisher to the player.
//
// It is built to be cheap per player (one goroutine, reused buffers, no
// allocation per frame) so that one core can drive about a thousand players.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Protocol is a playback protocol.
type Protocol string

// The playback protocols, named as the server names them.
const (
	RTMP    Protocol = "rtmp"   // RTMP is RTMP play (rtmp:// URLs).
	HTTPFLV Protocol = "flv"    // HTTPFLV is HTTP-FLV (http:// URLs).
	WSFLV   Protocol = "ws-flv" // WSFLV is FLV over WebSocket (ws:// URLs).
	HLS     Protocol = "hls"    // HLS is HLS or Low-Latency HLS (http:// URLs of .m3u8 playlists).
	WHEP    Protocol = "whep"   // WHEP is WebRTC playback (http:// URLs of WHEP endpoints, .../whep).
)

// Protocols lists the playback protocols.
var Protocols = []Protocol{RTMP, HTTPFLV, WSFLV, HLS, WHEP}

// Defaults of Config.
const (
	DefaultPlayers  = 100              // DefaultPlayers is the default number of players.
	DefaultDuration = 30 * time.Second // DefaultDuration is the default run length.
	DefaultRamp     = time.Second      // DefaultRamp is the default spread of connection starts.
	DefaultTimeout  = 10 * time.Second // DefaultTimeout bounds connecting and silence.
	DefaultProgress = time.Second      // DefaultProgress is the default progress interval.
)

// Placeholder is replaced in URLs by a stream number (1..Publishers).
const Placeholder = "{i}"

// Config describes a run. URLs and Players, or PublishFile and Publishers,
// must be set.
type Config struct {
	// URLs are the stream URLs players play, assigned round robin:
	// rtmp://host:port/app/stream, http://host:port/app/stream.flv,
	// ws://host:port/app/stream.flv or http://host:port/app/stream/index.m3u8
	// (HLS) or http://host:port/app/stream/whep (WHEP). Placeholder is
	// replaced by the player's stream number, cycling over 1..Publishers.
	URLs []string
	// Protocol, when set, is the protocol of every URL instead of the one
	// its form tells; with HLS, a URL that does not name a playlist gets
	// /index.m3u8 appended (an .flv extension is dropped first); with WHEP,
	// one that does not end in /whep gets /whep appended likewise.
	Protocol Protocol
	// Players is the number of concurrent players.
	Players int
	// Duration is the whole run, a hard bound: everything stops after it.
	Duration time.Duration
	// Ramp spreads the players' connection starts evenly over this time.
	Ramp time.Duration
	// Timeout bounds connecting (dial to playing) and any silence of a
	// connection; 0 means DefaultTimeout.
	Timeout time.Duration
	// PublishFile is an FLV file that Publishers publishers push over RTMP
	// (or its video over WHIP) in real time, looping, before and while the
	// players play.
	PublishFile string
	// Publishers is the number of publishers (0: none).
	Publishers int
	// PublishURL is where publishers push, rtmp://host:port/app/stream, or
	// http://host:port/app/stream/whip to publish the file's video over WHIP;
	// with more than one publisher it must contain Placeholder.
	PublishURL string
	// Progress is the interval of the progress line (0: none).
	Progress time.Duration
	// ProgressOut receives the progress lines (nil: none).
	ProgressOut io.Writer
	// Logger receives diagnostics (nil: none).
	Logger *slog.Logger
}

// ProtocolOf returns the protocol of a player URL: rtmp:// is RTMP, ws://
// WebSocket-FLV, http:// (or https://) of a .m3u8 path HLS, of a path
// ending in /whep WHEP, and any other http:// HTTP-FLV.
func ProtocolOf(rawURL string) (Protocol, error) {
	u, err := url.Parse(strings.ReplaceAll(rawURL, Placeholder, "1"))
	if err != nil {
		return "", err
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q: no host", rawURL)
	}
	switch u.Scheme {
	case "rtmp":
		return RTMP, nil
	case "http", "https":
		if strings.HasSuffix(u.Path, ".m3u8") {
			return HLS, nil
		}
		if strings.HasSuffix(u.Path, "/whep") {
			return WHEP, nil
		}
		if u.Scheme == "http" {
			return HTTPFLV, nil
		}
		return "", fmt.Errorf("%q: https is only supported for HLS (.m3u8) and WHEP (/whep)", rawURL)
	case "ws":
		return WSFLV, nil
	}
	return "", fmt.Errorf("%q: scheme %q is not rtmp, http or ws", rawURL, u.Scheme)
}

// ParseProtocol parses a protocol name: rtmp, flv, ws-flv, hls or whep.
func ParseProtocol(s string) (Protocol, error) {
	for _, p := range Protocols {
		if string(p) == s {
			return p, nil
		}
	}
	return "", fmt.Errorf("unknown protocol %q (rtmp, flv, ws-flv, hls, whep)", s)
}

// playerURL returns the protocol and URL a player plays for rawURL: the
// protocol forced, if any, or the one the URL tells.
func playerURL(rawURL string, force Protocol) (Protocol, string, error) {
	got, err := ProtocolOf(rawURL)
	if force == "" || err != nil {
		return got, rawURL, err
	}
	want := map[Protocol][]string{RTMP: {"rtmp"}, HTTPFLV: {"http"}, WSFLV: {"ws"}, HLS: {"http", "https"}, WHEP: {"http", "https"}}[force]
	scheme, rest, _ := strings.Cut(rawURL, "://")
	if !slices.Contains(want, scheme) {
		return "", "", fmt.Errorf("%q: protocol %s needs a %s:// URL", rawURL, force, want[0])
	}
	if (force == HLS || force == WHEP) && got != force {
		// http://host/app/stream[.flv] -> http://host/app/stream/index.m3u8
		// (HLS) or http://host/app/stream/whep (WHEP)
		path, query, hasQuery := strings.Cut(rest, "?")
		path = strings.TrimSuffix(strings.TrimSuffix(path, "/"), "/index.m3u8")
		path = strings.TrimSuffix(strings.TrimSuffix(path, "/whep"), ".flv")
		if force == HLS {
			path += "/index.m3u8"
		} else {
			path += "/whep"
		}
		rawURL = scheme + "://" + path
		if hasQuery {
			rawURL += "?" + query
		}
	}
	return force, rawURL, nil
}

func (c *Config) validate() error {
	if c.Players < 0 || c.Publishers < 0 {
		return errors.New("players and publishers must not be negative")
	}
	if c.Players == 0 && c.Publishers == 0 {
		return errors.New("nothing to do: no players and no publishers")
	}
	if c.Duration <= 0 {
		return errors.New("duration must be positive")
	}
	if c.Ramp < 0 || c.Ramp >= c.Duration {
		return fmt.Errorf("ramp %s must be shorter than the duration %s", c.Ramp, c.Duration)
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Players > 0 && len(c.URLs) == 0 {
		return errors.New("players need a stream URL")
	}
	if c.Protocol != "" {
		if _, err := ParseProtocol(string(c.Protocol)); err != nil {
			return err
		}
	}
	for _, u := range c.URLs {
		if _, _, err := playerURL(u, c.Protocol); err != nil {
			return err
		}
	}
	if (c.PublishFile == "") != (c.Publishers == 0) {
		return errors.New("publishing needs both a file and a number of publishers")
	}
	if c.Publishers > 0 {
		if p, err := ProtocolOf(c.PublishURL); !isWHIPURL(c.PublishURL) && (err != nil || p != RTMP) {
			return fmt.Errorf("publish URL %q must be rtmp://host:port/app/stream or http://host:port/app/stream/whip", c.PublishURL)
		}
		if c.Publishers > 1 && !strings.Contains(c.PublishURL, Placeholder) {
			return fmt.Errorf("with %d publishers the publish URL must contain %s (one stream each)", c.Publishers, Placeholder)
		}
	}
	return nil
}

// streamURL replaces Placeholder in u with n.
func streamURL(u string, n int) string {
	return strings.ReplaceAll(u, Placeholder, strconv.Itoa(n))
}

// Report is the outcome of a run: the summary and every player's result.
type Report struct {
	Summary
	// PlayerResults has one entry per player, in start order.
	PlayerResults []PlayerResult `json:"-"`
	// PublisherResults has one entry per publisher.
	PublisherResults []PublisherResult `json:"-"`
}

// OK reports whether no player and no publisher failed.
func (r *Report) OK() bool {
	return r.Failed == 0 && (r.Publishers == nil || r.Publishers.Failed == 0)
}

// Run runs the load described by cfg until cfg.Duration has passed or ctx
// ends, and reports what every player received. The error is for a run that
// could not start (bad configuration, unreadable file); players that fail
// are counted in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var file *flvFile
	if cfg.Publishers > 0 {
		var err error
		if file, err = loadFLV(cfg.PublishFile); err != nil {
			return nil, err
		}
	}

	// WHEP players and WHIP publishers share one pion API, certificate and
	// HTTP client.
	var wc *whepClient
	var rtcURLs []string
	for _, u := range cfg.URLs {
		if proto, pu, _ := playerURL(streamURL(u, 1), cfg.Protocol); proto == WHEP && cfg.Players > 0 {
			rtcURLs = append(rtcURLs, pu)
		}
	}
	whip := cfg.Publishers > 0 && isWHIPURL(cfg.PublishURL)
	if whip {
		rtcURLs = append(rtcURLs, cfg.PublishURL)
	}
	if len(rtcURLs) > 0 {
		var err error
		if wc, err = newWHEPClient(rtcURLs, cfg.Players+cfg.Publishers, cfg.Timeout); err != nil {
			return nil, err
		}
		defer wc.close()
	}

	begin := time.Now()
	runCtx, cancel := context.WithDeadline(ctx, begin.Add(cfg.Duration))
	defer cancel()
	var wg sync.WaitGroup

	pubs := make([]*publisher, cfg.Publishers)
	for i := range pubs {
		pubs[i] = newPublisher(streamURL(cfg.PublishURL, i+1))
		if whip {
			pubs[i].wc = wc
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pubs[i].run(runCtx, file, cfg.Timeout, log)
		}()
	}
	// Players start once every publisher has sent its first video frame.
	for _, p := range pubs {
		select {
		case <-p.primed:
		case <-p.done:
		case <-runCtx.Done():
		}
	}

	// HLS players share one HTTP client, as the players of one CDN edge would.
	var hc *http.Client
	if slices.ContainsFunc(cfg.URLs, func(u string) bool {
		proto, _, _ := playerURL(u, cfg.Protocol)
		return proto == HLS
	}) {
		var tr *http.Transport
		hc, tr = newHLSClient(cfg.Players, cfg.Timeout)
		defer tr.CloseIdleConnections()
	}

	streams := max(cfg.Publishers, 1)
	start := time.Now()
	players := make([]*player, cfg.Players)
	for i := range players {
		proto, u, _ := playerURL(streamURL(cfg.URLs[i%len(cfg.URLs)], 1+i%streams), cfg.Protocol)
		p := &player{url: u, proto: proto, hc: hc, done: make(chan struct{})}
		if proto == WHEP {
			p.wc = wc
			if len(pubs) > 0 {
				// Player i plays stream 1 + i mod publishers: publisher i mod publishers's.
				p.sent = pubs[i%streams].sent
			}
		}
		players[i] = p
		at := start
		if cfg.Players > 1 {
			at = start.Add(cfg.Ramp * time.Duration(i) / time.Duration(cfg.Players))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.run(runCtx, at, cfg.Timeout, log)
		}()
	}

	prog := newProgress(cfg.ProgressOut, start, players, pubs)
	var tick <-chan time.Time
	if cfg.Progress > 0 && cfg.ProgressOut != nil {
		t := time.NewTicker(cfg.Progress)
		defer t.Stop()
		tick = t.C
	}
	for running := true; running; {
		select {
		case <-runCtx.Done():
			running = false
		case now := <-tick:
			prog.print(now)
		}
	}
	stop := time.Now()

	// Every connection is closed by now or about to be; wait, bounded.
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	select {
	case <-allDone:
	case <-time.After(cfg.Timeout + 5*time.Second):
		log.Warn("bench: some connections did not stop in time")
	}
	return buildReport(&cfg, start, stop, players, pubs), nil
}
