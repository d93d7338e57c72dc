// Package webrtc holds Quasipaa's WebRTC wire pieces, independent of the hub:
// the Engine (one pion API over one shared UDP socket and one ICE-TCP
// listener for every session), RTP depacketizers turning a received track
// into media frames (WHIP ingest), packetizers turning media frames into RTP
// packets shared by every viewer (WHEP playback), the per-viewer RTP sender,
// and the HTTP signalling of WHIP (RFC 9725) and WHEP.
package webrtc

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	pwebrtc "github.com/pion/webrtc/v4"
)

// EngineOptions configure an Engine. Zero values take the documented defaults.
type EngineOptions struct {
	// UDPListen is the one UDP host:port every session shares ("" disables
	// UDP candidates). A specific IP binds one socket; an unspecified host
	// (":8189") binds the port on every usable interface address.
	UDPListen string
	// TCPListen is the host:port of passive ICE-TCP candidates ("" disables ICE-TCP).
	TCPListen string
	// PublicIPs are advertised instead of the local addresses (1:1 NAT): at
	// most one IPv4 and one IPv6 address.
	PublicIPs []string
	// Interfaces restricts candidates to these network interface names (nil: all).
	Interfaces []string
	// HandshakeTimeout bounds ICE plus DTLS of a new session (default 10 s).
	HandshakeTimeout time.Duration
	// DisconnectedTimeout is how long without ICE traffic marks a session
	// disconnected (default 5 s).
	DisconnectedTimeout time.Duration
	// FailedTimeout is how long a disconnected session waits before failing
	// (default 10 s after DisconnectedTimeout).
	FailedTimeout time.Duration
	// Logger receives the engine's and pion's logs (default slog.Default()).
	Logger *slog.Logger
}

// Engine creates the PeerConnections of every WHIP and WHEP session of a
// node: one pion API with Quasipaa's codecs and interceptors, and one ICE
// UDP mux and one ICE-TCP mux shared by all sessions.
type Engine struct {
	api     *pwebrtc.API
	log     *slog.Logger
	opts    EngineOptions
	udpMux  ice.UDPMux
	tcpMux  ice.TCPMux
	udpAddr []net.Addr
	tcpAddr net.Addr

	closeOnce sync.Once

	kfMu      sync.Mutex
	keyframes map[string]*keyframeSource
}

// NewEngine binds the engine's sockets and builds its pion API.
func NewEngine(opts EngineOptions) (*Engine, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 10 * time.Second
	}
	if opts.DisconnectedTimeout <= 0 {
		opts.DisconnectedTimeout = 5 * time.Second
	}
	if opts.FailedTimeout <= 0 {
		opts.FailedTimeout = 10 * time.Second
	}
	e := &Engine{log: opts.Logger, opts: opts, keyframes: map[string]*keyframeSource{}}
	lf := slogFactory{log: opts.Logger}
	var se pwebrtc.SettingEngine
	se.LoggerFactory = lf
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(opts.DisconnectedTimeout, opts.FailedTimeout, 2*time.Second)
	se.SetIncludeLoopbackCandidate(true) // filtered below unless a listen address is loopback
	var (
		networks []pwebrtc.NetworkType
		loopback bool
	)
	keepIface := func(name string) bool {
		return len(opts.Interfaces) == 0 || slices.Contains(opts.Interfaces, name)
	}
	if opts.UDPListen != "" {
		if err := e.listenUDP(lf, keepIface); err != nil {
			return nil, err
		}
		for _, a := range e.udpAddr {
			if ip := a.(*net.UDPAddr).IP; ip.IsLoopback() {
				loopback = true
			}
			if a.(*net.UDPAddr).IP.To4() != nil {
				networks = append(networks, pwebrtc.NetworkTypeUDP4)
			} else {
				networks = append(networks, pwebrtc.NetworkTypeUDP6)
			}
		}
		se.SetICEUDPMux(e.udpMux)
	}
	if opts.TCPListen != "" {
		ln, err := net.Listen("tcp", opts.TCPListen)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("webrtc: ICE-TCP listen: %w", err)
		}
		e.tcpAddr = ln.Addr()
		ip := ln.Addr().(*net.TCPAddr).IP
		loopback = loopback || ip.IsLoopback()
		switch {
		case ip.IsUnspecified():
			networks = append(networks, pwebrtc.NetworkTypeTCP4, pwebrtc.NetworkTypeTCP6)
		case ip.To4() != nil:
			networks = append(networks, pwebrtc.NetworkTypeTCP4)
		default:
			networks = append(networks, pwebrtc.NetworkTypeTCP6)
		}
		e.tcpMux = pwebrtc.NewICETCPMux(lf.NewLogger("ice-tcp"), ln, 64)
		se.SetICETCPMux(e.tcpMux)
	}
	if len(networks) == 0 {
		return nil, errors.New("webrtc: neither a UDP nor a TCP listen address is configured")
	}
	se.SetNetworkTypes(dedupe(networks))
	// Loopback candidates only when the engine listens on loopback (tests,
	// a proxy on the same host); pion would otherwise skip them.
	se.SetIPFilter(func(ip net.IP) bool { return loopback || !ip.IsLoopback() })
	if len(opts.Interfaces) > 0 {
		se.SetInterfaceFilter(keepIface)
	}
	if rules, err := rewriteRules(opts.PublicIPs); err != nil {
		e.Close()
		return nil, err
	} else if len(rules) > 0 {
		if err := se.SetICEAddressRewriteRules(rules...); err != nil {
			e.Close()
			return nil, fmt.Errorf("webrtc: public IPs: %w", err)
		}
	}
	m := &pwebrtc.MediaEngine{}
	if err := registerCodecs(m); err != nil {
		e.Close()
		return nil, fmt.Errorf("webrtc: codecs: %w", err)
	}
	reg := &interceptor.Registry{}
	if err := pwebrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		e.Close()
		return nil, fmt.Errorf("webrtc: interceptors: %w", err)
	}
	e.api = pwebrtc.NewAPI(pwebrtc.WithMediaEngine(m), pwebrtc.WithSettingEngine(se), pwebrtc.WithInterceptorRegistry(reg))
	// Catch configuration errors (public IPs...) now rather than per session.
	pc, err := e.api.NewPeerConnection(pwebrtc.Configuration{})
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("webrtc: %w", err)
	}
	_ = pc.Close()
	e.log.Info("webrtc engine ready", "udp", addrList(e.udpAddr), "tcp", addrString(e.tcpAddr), "public_ips", opts.PublicIPs)
	return e, nil
}

// listenUDP binds the shared UDP socket(s) and their mux.
func (e *Engine) listenUDP(lf slogFactory, keepIface func(string) bool) error {
	host, portStr, err := net.SplitHostPort(e.opts.UDPListen)
	if err != nil {
		return fmt.Errorf("webrtc: udp listen %q: %w", e.opts.UDPListen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("webrtc: udp listen %q: bad port", e.opts.UDPListen)
	}
	ip := net.ParseIP(host)
	if host != "" && ip == nil {
		addrs, err := net.LookupIP(host)
		if err != nil || len(addrs) == 0 {
			return fmt.Errorf("webrtc: udp listen %q: cannot resolve host", e.opts.UDPListen)
		}
		ip = addrs[0]
	}
	if ip != nil && !ip.IsUnspecified() {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
		if err != nil {
			return fmt.Errorf("webrtc: udp listen: %w", err)
		}
		_ = conn.SetReadBuffer(4 << 20)
		_ = conn.SetWriteBuffer(4 << 20)
		e.udpMux = pwebrtc.NewICEUDPMux(lf.NewLogger("ice-udp"), conn)
		e.udpAddr = []net.Addr{conn.LocalAddr()}
		return nil
	}
	// Every interface address on one port: a socket per address, so that
	// replies leave from the address the client sent to.
	if port == 0 {
		probe, err := net.ListenUDP("udp", &net.UDPAddr{})
		if err != nil {
			return fmt.Errorf("webrtc: udp listen: %w", err)
		}
		port = probe.LocalAddr().(*net.UDPAddr).Port
		_ = probe.Close()
	}
	nets := []ice.NetworkType{ice.NetworkTypeUDP4, ice.NetworkTypeUDP6}
	if ip != nil && ip.To4() != nil {
		nets = nets[:1]
	}
	mux, err := ice.NewMultiUDPMuxFromPort(port,
		ice.UDPMuxFromPortWithInterfaceFilter(keepIface),
		ice.UDPMuxFromPortWithNetworks(nets...),
		ice.UDPMuxFromPortWithReadBufferSize(4<<20),
		ice.UDPMuxFromPortWithWriteBufferSize(4<<20),
		ice.UDPMuxFromPortWithLogger(lf.NewLogger("ice-udp")))
	if err != nil {
		return fmt.Errorf("webrtc: udp listen on port %d: %w", port, err)
	}
	e.udpMux = mux
	e.udpAddr = mux.GetListenAddresses()
	if len(e.udpAddr) == 0 {
		_ = mux.Close()
		return fmt.Errorf("webrtc: udp listen %q: no usable interface address", e.opts.UDPListen)
	}
	return nil
}

// rewriteRules turns public IPs into one host-candidate rewrite rule per
// address family.
func rewriteRules(ips []string) ([]pwebrtc.ICEAddressRewriteRule, error) {
	var v4, v6 []string
	for _, s := range ips {
		ip := net.ParseIP(s)
		switch {
		case ip == nil:
			return nil, fmt.Errorf("webrtc: public IP %q is not an IP address", s)
		case ip.To4() != nil:
			v4 = append(v4, s)
		default:
			v6 = append(v6, s)
		}
	}
	if len(v4) > 1 || len(v6) > 1 {
		return nil, errors.New("webrtc: at most one public IPv4 and one public IPv6 address")
	}
	var rules []pwebrtc.ICEAddressRewriteRule
	for _, ext := range [][]string{v4, v6} {
		if len(ext) > 0 {
			rules = append(rules, pwebrtc.ICEAddressRewriteRule{External: ext, AsCandidateType: pwebrtc.ICECandidateTypeHost, Mode: pwebrtc.ICEAddressRewriteReplace})
		}
	}
	return rules, nil
}

func dedupe(n []pwebrtc.NetworkType) []pwebrtc.NetworkType {
	var out []pwebrtc.NetworkType
	for _, t := range n {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

func addrList(a []net.Addr) []string {
	out := make([]string, len(a))
	for i, x := range a {
		out[i] = x.String()
	}
	return out
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// NewPeerConnection returns a PeerConnection on the engine's sockets. The
// ICE servers are the server side's own (normally none: the server is
// reachable on its host or public addresses).
func (e *Engine) NewPeerConnection(iceServers []ICEServer) (*pwebrtc.PeerConnection, error) {
	cfg := pwebrtc.Configuration{BundlePolicy: pwebrtc.BundlePolicyMaxBundle, RTCPMuxPolicy: pwebrtc.RTCPMuxPolicyRequire}
	for _, s := range iceServers {
		cfg.ICEServers = append(cfg.ICEServers, s.pion())
	}
	return e.api.NewPeerConnection(cfg)
}

// HandshakeTimeout is how long a new session may take to connect.
func (e *Engine) HandshakeTimeout() time.Duration { return e.opts.HandshakeTimeout }

// Addrs returns the bound UDP addresses, then the ICE-TCP address.
func (e *Engine) Addrs() []net.Addr {
	out := slices.Clone(e.udpAddr)
	if e.tcpAddr != nil {
		out = append(out, e.tcpAddr)
	}
	return out
}

// Close closes the engine's sockets; sessions must be closed first.
func (e *Engine) Close() error {
	var errs []error
	e.closeOnce.Do(func() {
		if e.udpMux != nil {
			errs = append(errs, e.udpMux.Close())
		}
		if e.tcpMux != nil {
			errs = append(errs, e.tcpMux.Close())
		}
	})
	return errors.Join(errs...)
}

// keyframeSource is a publisher that can be asked for a keyframe.
type keyframeSource struct{ request func() }

// RegisterKeyframeSource lets viewers of path ask its publisher for a
// keyframe (a WHIP session sends a PLI). The returned function unregisters.
func (e *Engine) RegisterKeyframeSource(path string, request func()) (unregister func()) {
	src := &keyframeSource{request: request}
	e.kfMu.Lock()
	e.keyframes[path] = src
	e.kfMu.Unlock()
	return func() {
		e.kfMu.Lock()
		if e.keyframes[path] == src {
			delete(e.keyframes, path)
		}
		e.kfMu.Unlock()
	}
}

// RequestKeyframe asks the publisher of path for a keyframe, when it can be
// asked; it reports whether one was asked.
func (e *Engine) RequestKeyframe(path string) bool {
	e.kfMu.Lock()
	src := e.keyframes[path]
	e.kfMu.Unlock()
	if src == nil {
		return false
	}
	src.request()
	return true
}
