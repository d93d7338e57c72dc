// Package turn is the built-in STUN and TURN server (RFC 8489, RFC 8656) that
// WebRTC clients use to reach the server from restrictive networks. It wraps
// github.com/pion/turn/v5 and adds what a public server needs: coturn-style
// time-limited credentials (internal/auth), a per-user allocation quota, a
// refusal to relay to private and loopback peers, relay ports in a fixed
// range, timeouts on TCP and TLS clients, and a Close that stops and waits for
// every goroutine.
//
// STUN Binding requests are answered without authentication on UDP, TCP and
// TLS. Allocations are UDP relays only (no RFC 6062 TCP relays).
package turn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/quasipaa/quasipaa/internal/auth"
)

// Default relay port range, used when both RelayPortMin and RelayPortMax are 0.
const (
	DefaultRelayPortMin = 49152
	DefaultRelayPortMax = 65535
)

var (
	// ErrNoCredentials reports Options without Credentials.
	ErrNoCredentials = errors.New("turn: no credentials")
	// ErrNoRealm reports Options without Realm.
	ErrNoRealm = errors.New("turn: no realm")
	// ErrNoListener reports Options with neither Listen nor TLS set.
	ErrNoListener = errors.New("turn: nothing to listen on")
	// ErrBadAddress reports an invalid listen address.
	ErrBadAddress = errors.New("turn: invalid address")
	// ErrTLSConfig reports an incomplete or unloadable TLS certificate and key.
	ErrTLSConfig = errors.New("turn: invalid tls configuration")
	// ErrRelayPortRange reports an invalid relay port range, or a requested relay port outside it.
	ErrRelayPortRange = errors.New("turn: relay port out of range")
	// ErrRelayIP reports an unusable RelayIP, or no IP found for relays.
	ErrRelayIP = errors.New("turn: no usable relay ip")
	// ErrBadQuota reports a negative MaxAllocationsPerUser.
	ErrBadQuota = errors.New("turn: negative max allocations per user")
	// ErrStarted reports a second Start.
	ErrStarted = errors.New("turn: server already started")
	// ErrClosed reports a Start after Close, or an allocation while closing.
	ErrClosed = errors.New("turn: server closed")
	// ErrQuota is the allocation failure of a user over its quota.
	ErrQuota = errors.New("turn: allocation quota reached")
	// ErrAddressFamily is the allocation failure for a family other than the relay IP's.
	ErrAddressFamily = errors.New("turn: relay address family not supported")
	// ErrTCPRelay is the allocation failure of a TCP relay (RFC 6062), which is not offered.
	ErrTCPRelay = errors.New("turn: tcp relays not supported")
)

// Options configures a Server; see docs/turn.md.
type Options struct {
	// Listen is the host:port of STUN and TURN over UDP and TCP (both); ""
	// disables both. With port 0, TCP gets the UDP port when it is free, else
	// another one: see UDPAddr and TCPAddr.
	Listen string
	// TLSListen is the host:port of TURN over TLS, used when TLSCert is set.
	TLSListen string
	// TLSCert is a PEM certificate chain file; "" disables TLS.
	TLSCert string
	// TLSKey is the PEM private key file of TLSCert.
	TLSKey string
	// Realm is the TURN realm; requests naming another realm are refused.
	Realm string
	// Credentials checks the usernames and passwords of TURN requests; expiry
	// is enforced on Allocate only (see docs/turn.md).
	Credentials *auth.TURNCredentials
	// RelayIP is the IP of relayed addresses; nil uses the listen IP if it is
	// not unspecified, else the first non-loopback IPv4 of the host.
	RelayIP net.IP
	// RelayPortMin and RelayPortMax bound the UDP ports of relays; both 0
	// means DefaultRelayPortMin..DefaultRelayPortMax.
	RelayPortMin, RelayPortMax int
	// MaxAllocationsPerUser bounds the concurrent allocations of one TURN
	// username (the full "expiry:user" string); 0 means no limit.
	MaxAllocationsPerUser int
	// AllowPrivatePeers permits peers that IsPrivatePeer refuses by default.
	AllowPrivatePeers bool
	// Logger receives the server's logs; nil uses slog.Default().
	Logger *slog.Logger
}

// Stats is a snapshot of a Server's counters.
type Stats struct {
	// Allocations is the number of active allocations.
	Allocations int
	// RefusedAuth counts requests refused for expired, malformed or wrong credentials or realm.
	RefusedAuth uint64
	// RefusedQuota counts allocations refused by MaxAllocationsPerUser.
	RefusedQuota uint64
	// RefusedPeer counts CreatePermission and ChannelBind requests refused for a private peer.
	RefusedPeer uint64
	// BytesToPeers counts payload bytes relayed from clients to peers.
	BytesToPeers uint64
	// BytesFromPeers counts payload bytes received on relay sockets (including
	// datagrams then dropped for lack of permission).
	BytesFromPeers uint64
}

// Server is a STUN and TURN server. Create it with New, serve with Start,
// stop with Close. It starts once.
type Server struct {
	opts             Options
	timeouts         timeouts
	log              *slog.Logger
	tlsConf          *tls.Config
	portMin, portMax uint16

	ctx          context.Context // canceled by shutdown
	cancel       context.CancelFunc
	done         chan struct{} // closed by shutdown
	shutdownOnce sync.Once
	// wg counts our goroutines and pion's: each pion goroutine is released by
	// the socket wrapper that sees it return from its last blocking call.
	wg sync.WaitGroup

	startMu sync.Mutex // held by Start
	mu      sync.Mutex
	state   int  // stateNew, stateStarted, stateClosed
	closing bool // no more connections or allocations
	pion    *turn.Server
	udp     *udpSocket
	tcp     *listener
	tlsLn   *listener
	conns   map[*conn]struct{}
	quota   map[string]int        // allocations per username
	relays  map[string]*relayConn // by relayed address, until the allocation is created
	allocs  map[string]*relayConn // by tupleKey
	active  int                   // allocations

	refused        [numReasons]atomic.Uint64
	warn           [numReasons]warnLimiter
	bytesToPeers   atomic.Uint64
	bytesFromPeers atomic.Uint64
}

const (
	stateNew = iota
	stateStarted
	stateClosed
)

// New validates opts and loads the TLS certificate; it does not listen.
func New(opts Options) (*Server, error) {
	if opts.Credentials == nil {
		return nil, ErrNoCredentials
	}
	if opts.Realm == "" {
		return nil, ErrNoRealm
	}
	if opts.Listen == "" && opts.TLSCert == "" {
		return nil, ErrNoListener
	}
	if opts.Listen != "" {
		if err := checkAddr(opts.Listen); err != nil {
			return nil, err
		}
	}
	var tlsConf *tls.Config
	switch {
	case opts.TLSCert != "":
		if opts.TLSKey == "" {
			return nil, fmt.Errorf("%w: tls cert without key", ErrTLSConfig)
		}
		if opts.TLSListen == "" {
			return nil, fmt.Errorf("%w: tls cert without tls listen address", ErrTLSConfig)
		}
		if err := checkAddr(opts.TLSListen); err != nil {
			return nil, err
		}
		cert, err := tls.LoadX509KeyPair(opts.TLSCert, opts.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrTLSConfig, err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	case opts.TLSKey != "":
		return nil, fmt.Errorf("%w: tls key without cert", ErrTLSConfig)
	}
	if opts.RelayPortMin == 0 && opts.RelayPortMax == 0 {
		opts.RelayPortMin, opts.RelayPortMax = DefaultRelayPortMin, DefaultRelayPortMax
	}
	if opts.RelayPortMin < 1 || opts.RelayPortMax > 65535 || opts.RelayPortMin > opts.RelayPortMax {
		return nil, fmt.Errorf("%w: %d..%d", ErrRelayPortRange, opts.RelayPortMin, opts.RelayPortMax)
	}
	if opts.MaxAllocationsPerUser < 0 {
		return nil, ErrBadQuota
	}
	if opts.RelayIP != nil {
		ip := opts.RelayIP
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		if (len(ip) != net.IPv4len && len(ip) != net.IPv6len) || ip.IsUnspecified() || ip.IsMulticast() {
			return nil, fmt.Errorf("%w: %v", ErrRelayIP, opts.RelayIP)
		}
		opts.RelayIP = append(net.IP(nil), ip...)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		opts:     opts,
		timeouts: timeouts{firstRead: firstReadTimeout, idle: idleTimeout, write: writeTimeout},
		log:      log,
		tlsConf:  tlsConf,
		portMin:  uint16(opts.RelayPortMin), //nolint:gosec // checked above
		portMax:  uint16(opts.RelayPortMax), //nolint:gosec // checked above
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
		conns:    make(map[*conn]struct{}),
		quota:    make(map[string]int),
		relays:   make(map[string]*relayConn),
		allocs:   make(map[string]*relayConn),
	}, nil
}

func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w %q: %w", ErrBadAddress, addr, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%w %q: port must be a number 0..65535", ErrBadAddress, addr)
	}
	return nil
}

// Start binds the sockets and serves until ctx is done or Close is called.
// It returns once serving, or with the binding error. Call Close in any case
// to wait for the server's goroutines.
func (s *Server) Start(ctx context.Context) error {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	s.mu.Lock()
	switch s.state {
	case stateStarted:
		s.mu.Unlock()
		return ErrStarted
	case stateClosed:
		s.mu.Unlock()
		return ErrClosed
	}
	s.state = stateStarted
	s.mu.Unlock()

	var (
		lc      net.ListenConfig
		udp     *udpSocket
		tcp     *listener
		tlsLn   *listener
		started bool
	)
	defer func() {
		if started {
			return
		}
		if udp != nil {
			_ = udp.Close()
		}
		if tcp != nil {
			_ = tcp.Close()
		}
		if tlsLn != nil {
			_ = tlsLn.Close()
		}
		s.mu.Lock()
		s.state = stateClosed
		s.mu.Unlock()
		s.cancel()
	}()

	if s.opts.Listen != "" {
		pc, err := lc.ListenPacket(ctx, "udp", s.opts.Listen)
		if err != nil {
			return fmt.Errorf("turn: listen udp %s: %w", s.opts.Listen, err)
		}
		udp = &udpSocket{PacketConn: pc, s: s}
		ln, err := listenTCP(ctx, &lc, s.opts.Listen, pc.LocalAddr())
		if err != nil {
			return fmt.Errorf("turn: listen tcp %s: %w", s.opts.Listen, err)
		}
		tcp = newListener(s, ln, nil)
	}
	if s.tlsConf != nil {
		ln, err := lc.Listen(ctx, "tcp", s.opts.TLSListen)
		if err != nil {
			return fmt.Errorf("turn: listen tls %s: %w", s.opts.TLSListen, err)
		}
		tlsLn = newListener(s, ln, s.tlsConf)
	}

	relayIP, bindIP, err := s.relayAddrs(udp, tcp, tlsLn)
	if err != nil {
		return err
	}
	gen := &relayGen{
		s:    s,
		ipv4: relayIP.To4() != nil,
		inner: &turn.RelayAddressGeneratorPortRange{
			RelayAddress: relayIP,
			Address:      bindIP.String(),
			MinPort:      s.portMin,
			MaxPort:      s.portMax,
			MaxRetries:   32,
		},
	}
	cfg := turn.ServerConfig{
		Realm:         s.opts.Realm,
		LoggerFactory: pionLoggerFactory{s.log},
		AuthHandler:   s.authenticate,
		QuotaHandler:  s.quotaOK,
		EventHandler: turn.EventHandler{
			OnAuth:              s.onAuth,
			OnAllocationCreated: s.onAllocationCreated,
			OnAllocationDeleted: s.onAllocationDeleted,
		},
		// Without REQUESTED-ADDRESS-FAMILY, allocate in the relay IP's family
		// rather than the family the client came in with.
		StrictAddressFamily: gen.ipv4,
	}
	if udp != nil {
		cfg.PacketConnConfigs = append(cfg.PacketConnConfigs, turn.PacketConnConfig{
			PacketConn: udp, RelayAddressGenerator: gen, PermissionHandler: s.permit,
		})
	}
	for _, ln := range []*listener{tcp, tlsLn} {
		if ln != nil {
			cfg.ListenerConfigs = append(cfg.ListenerConfigs, turn.ListenerConfig{
				Listener: ln, RelayAddressGenerator: gen, PermissionHandler: s.permit,
			})
		}
	}

	// One pion goroutine per socket, counted before it starts.
	s.wg.Add(len(cfg.PacketConnConfigs) + len(cfg.ListenerConfigs))
	srv, err := turn.NewServer(cfg)
	if err != nil {
		// pion validates before starting goroutines.
		s.wg.Add(-(len(cfg.PacketConnConfigs) + len(cfg.ListenerConfigs)))
		return fmt.Errorf("turn: %w", err)
	}
	started = true

	s.mu.Lock()
	s.pion, s.udp, s.tcp, s.tlsLn = srv, udp, tcp, tlsLn
	s.mu.Unlock()
	if tlsLn != nil {
		s.wg.Add(1)
		go tlsLn.acceptTLS()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-ctx.Done():
			s.shutdown()
		case <-s.done:
		}
	}()

	attrs := []any{"relay_ip", relayIP.String(), "relay_ports", fmt.Sprintf("%d-%d", s.portMin, s.portMax)}
	if udp != nil {
		attrs = append(attrs, "udp", udp.LocalAddr().String(), "tcp", tcp.Addr().String())
	}
	if tlsLn != nil {
		attrs = append(attrs, "tls", tlsLn.Addr().String())
	}
	s.log.Info("turn: serving", attrs...)
	return nil
}

// listenTCP listens on addr; with port 0 it first tries the port the UDP
// socket got, so that both share one port when possible.
func listenTCP(ctx context.Context, lc *net.ListenConfig, addr string, udpAddr net.Addr) (net.Listener, error) {
	host, port, _ := net.SplitHostPort(addr)
	if port == "0" {
		if ua, ok := udpAddr.(*net.UDPAddr); ok {
			if ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(ua.Port))); err == nil {
				return ln, nil
			}
		}
	}
	return lc.Listen(ctx, "tcp", addr)
}

// relayAddrs returns the IP advertised in relayed addresses and the IP relay
// sockets bind to.
func (s *Server) relayAddrs(udp *udpSocket, tcp, tlsLn *listener) (relay, bind net.IP, err error) {
	var listenIP net.IP
	switch {
	case udp != nil:
		listenIP = addrIP(udp.LocalAddr())
	case tcp != nil:
		listenIP = addrIP(tcp.Addr())
	case tlsLn != nil:
		listenIP = addrIP(tlsLn.Addr())
	}
	if listenIP != nil && listenIP.IsUnspecified() {
		listenIP = nil
	}
	relay = s.opts.RelayIP
	if relay == nil {
		if listenIP != nil {
			return listenIP, listenIP, nil
		}
		relay = firstHostIPv4()
		if relay == nil {
			return nil, nil, fmt.Errorf("%w: no non-loopback IPv4 address on this host; set the relay IP", ErrRelayIP)
		}
		return relay, net.IPv4zero, nil
	}
	v4 := relay.To4() != nil
	switch {
	case isLocalIP(relay):
		return relay, relay, nil
	case listenIP != nil && (listenIP.To4() != nil) == v4:
		return relay, listenIP, nil
	case v4:
		return relay, net.IPv4zero, nil
	default:
		return relay, net.IPv6unspecified, nil
	}
}

func addrIP(a net.Addr) net.IP {
	switch a := a.(type) {
	case *net.UDPAddr:
		return normIP(a.IP)
	case *net.TCPAddr:
		return normIP(a.IP)
	}
	return nil
}

func normIP(ip net.IP) net.IP {
	if v4 := ip.To4(); v4 != nil {
		return v4
	}
	return ip
}

// firstHostIPv4 returns the first IPv4 address of an up, non-loopback
// interface, skipping link-local ones; nil if none.
func firstHostIPv4() net.IP {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ip := ipn.IP.To4(); ip != nil && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
				return ip
			}
		}
	}
	return nil
}

func isLocalIP(ip net.IP) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// UDPAddr returns the address of the UDP socket; nil before Start or when disabled.
func (s *Server) UDPAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.udp == nil {
		return nil
	}
	return s.udp.LocalAddr()
}

// TCPAddr returns the address of the TCP listener; nil before Start or when disabled.
func (s *Server) TCPAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tcp == nil {
		return nil
	}
	return s.tcp.Addr()
}

// TLSAddr returns the address of the TLS listener; nil before Start or when disabled.
func (s *Server) TLSAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tlsLn == nil {
		return nil
	}
	return s.tlsLn.Addr()
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	active := s.active
	s.mu.Unlock()
	return Stats{
		Allocations:    active,
		RefusedAuth:    s.refused[reasonAuth].Load(),
		RefusedQuota:   s.refused[reasonQuota].Load(),
		RefusedPeer:    s.refused[reasonPeer].Load(),
		BytesToPeers:   s.bytesToPeers.Load(),
		BytesFromPeers: s.bytesFromPeers.Load(),
	}
}

// Close stops serving, closes every socket and allocation, and returns once
// every goroutine of the server has returned. It may be called more than once.
func (s *Server) Close() error {
	s.startMu.Lock()   // not during Start
	s.startMu.Unlock() //nolint:staticcheck // empty critical section on purpose
	s.mu.Lock()
	if s.state == stateNew {
		s.state = stateClosed
		s.mu.Unlock()
		s.cancel()
		return nil
	}
	s.state = stateClosed
	s.mu.Unlock()
	s.shutdown()
	s.wg.Wait()
	return nil
}

// shutdown closes everything without waiting. Closing a socket ends the
// pion goroutine reading it; pion then closes the allocations of that socket,
// which ends their relay goroutines.
func (s *Server) shutdown() {
	s.shutdownOnce.Do(func() {
		close(s.done)
		s.cancel()
		s.mu.Lock()
		s.closing = true
		srv := s.pion
		s.mu.Unlock()
		if srv != nil {
			if err := srv.Close(); err != nil {
				s.log.Debug("turn: close", "err", err)
			}
		}
		s.mu.Lock()
		conns := make([]*conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		// Close the sockets under the wrappers: the goroutine reading each
		// one closes the wrapper, and so releases it, once it has returned.
		for _, c := range conns {
			_ = c.Conn.Close()
		}
		if srv != nil {
			s.log.Info("turn: stopped")
		}
	})
}

// track registers an accepted connection, or closes it when shutting down.
func (s *Server) track(raw net.Conn) *conn {
	c := &conn{Conn: raw, s: s}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		_ = raw.Close()
		return nil
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	return c
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// authenticate is pion's AuthHandler: it returns the long-term credential
// key of the username's password. Expiry is checked on Allocate only, as
// coturn does: an allocation made in time can be refreshed, and given
// permissions and channels, after its username expired, so that sessions
// outlive the credential TTL. The user ID pion keys allocations and quotas
// by is the full username.
func (s *Server) authenticate(ra *turn.RequestAttributes) (string, []byte, bool) {
	if ra.Realm != s.opts.Realm {
		s.refuse(reasonAuth, ra.SrcAddr, "wrong realm", "realm", clip(ra.Realm), "username", clip(ra.Username))
		return "", nil, false
	}
	password, _, err := s.opts.Credentials.Check(ra.Username, time.Now())
	if errors.Is(err, auth.ErrExpired) && ra.Method != stun.MethodAllocate {
		password, _, err = s.opts.Credentials.Password(ra.Username)
	}
	if err != nil {
		s.refuse(reasonAuth, ra.SrcAddr, err.Error(), "username", clip(ra.Username), "method", ra.Method.String())
		return "", nil, false
	}
	return ra.Username, turn.GenerateAuthKey(ra.Username, ra.Realm, password), true
}

// onAuth sees the verdict of pion's MESSAGE-INTEGRITY check: false means a
// valid, unexpired username with the wrong password.
func (s *Server) onAuth(src, _ net.Addr, _, username, _, method string, verdict bool) {
	if !verdict {
		s.refuse(reasonAuth, src, "wrong password", "username", clip(username), "method", method)
	}
}

// permit is pion's PermissionHandler, consulted on CreatePermission,
// ChannelBind (and Connect); Send indications and ChannelData need a
// permission, so they are covered too.
func (s *Server) permit(client net.Addr, peer net.IP) bool {
	if s.opts.AllowPrivatePeers || !IsPrivatePeer(peer) {
		return true
	}
	s.refuse(reasonPeer, client, "private peer", "peer", peer.String())
	return false
}
