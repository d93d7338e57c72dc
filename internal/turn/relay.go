package turn

import (
	"net"

	"github.com/pion/turn/v5"
)

// relayGen allocates the relay sockets of allocations: UDP ports in the
// configured range on the relay IP, counted against the user's quota. TCP
// relays (RFC 6062) are refused: WebRTC never asks for them, and they would
// let clients open TCP connections from this host.
type relayGen struct {
	s     *Server
	inner *turn.RelayAddressGeneratorPortRange
	ipv4  bool // family of the relay IP
}

func (g *relayGen) Validate() error { return g.inner.Validate() }

func (g *relayGen) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	if (conf.Network == "udp4") != g.ipv4 {
		return nil, nil, ErrAddressFamily
	}
	if conf.RequestedPort != 0 && (conf.RequestedPort < int(g.inner.MinPort) || conf.RequestedPort > int(g.inner.MaxPort)) {
		return nil, nil, ErrRelayPortRange
	}
	if conf.UserID == "" {
		// pion probing for a free even port (EVEN-PORT): closed at once, not
		// an allocation.
		return g.inner.AllocatePacketConn(conf)
	}
	if err := g.s.reserveRelay(conf.UserID); err != nil {
		return nil, nil, err
	}
	pc, addr, err := g.inner.AllocatePacketConn(conf)
	if err != nil {
		g.s.releaseRelay(conf.UserID)
		g.s.wg.Done() // no reader will start
		return nil, nil, err
	}
	rc := newRelayConn(g.s, pc, conf.UserID)
	g.s.mu.Lock()
	g.s.relays[addr.String()] = rc
	g.s.mu.Unlock()
	return rc, addr, nil
}

func (g *relayGen) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, ErrTCPRelay
}

func (g *relayGen) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, ErrTCPRelay
}

// reserveRelay takes one allocation of user's quota and counts the relay
// socket's reader goroutine in wg (see relayConn); it fails when the quota
// is used up or the server is closing.
func (s *Server) reserveRelay(user string) error {
	limit := s.opts.MaxAllocationsPerUser
	s.mu.Lock()
	switch {
	case s.closing:
		s.mu.Unlock()
		return ErrClosed
	case limit > 0 && s.quota[user] >= limit:
		s.mu.Unlock()
		// Two allocations of one user raced past the QuotaHandler (TCP
		// clients are served concurrently): this one gets 508, not 486.
		s.refuse(reasonQuota, nil, "quota reached", "user", clip(user), "max", limit)
		return ErrQuota
	}
	s.quota[user]++
	s.active++
	s.wg.Add(1)
	s.mu.Unlock()
	return nil
}

// releaseRelay gives back one allocation of user's quota.
func (s *Server) releaseRelay(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.quota[user] <= 1 {
		delete(s.quota, user)
		return
	}
	s.quota[user]--
}

// quotaOK is pion's QuotaHandler: it refuses an Allocate with 486 when the
// user already holds MaxAllocationsPerUser allocations.
func (s *Server) quotaOK(user, _ string, src net.Addr) bool {
	limit := s.opts.MaxAllocationsPerUser
	if limit <= 0 {
		return true
	}
	s.mu.Lock()
	n := s.quota[user]
	s.mu.Unlock()
	if n >= limit {
		s.refuse(reasonQuota, src, "quota reached", "user", clip(user), "max", limit)
		return false
	}
	return true
}

// onAllocationCreated links the allocation's 5-tuple to its relay socket.
func (s *Server) onAllocationCreated(src, dst net.Addr, proto, user, _ string, relay net.Addr, _ int) {
	s.mu.Lock()
	rc := s.relays[addrString(relay)]
	delete(s.relays, addrString(relay))
	if rc != nil {
		s.allocs[tupleKey(src, dst)] = rc
	}
	s.mu.Unlock()
	if rc == nil {
		s.log.Error("turn: allocation without relay socket", "relay", addrString(relay))
	}
	s.log.Debug("turn: allocation created", "client", addrString(src), "transport", proto,
		"username", clip(user), "relay", addrString(relay))
}

// onAllocationDeleted is the last thing pion does for an allocation.
func (s *Server) onAllocationDeleted(src, dst net.Addr, proto, user, _ string) {
	s.log.Debug("turn: allocation deleted", "client", addrString(src), "transport", proto, "username", clip(user))
	key := tupleKey(src, dst)
	s.mu.Lock()
	rc := s.allocs[key]
	delete(s.allocs, key)
	s.mu.Unlock()
	if rc != nil {
		rc.release()
	}
}

// tupleKey identifies an allocation by its client's transport and address
// and the server's address (pion's 5-tuples always say UDP).
func tupleKey(src, dst net.Addr) string {
	if src == nil {
		return "|" + addrString(dst)
	}
	return src.Network() + "|" + src.String() + "|" + addrString(dst)
}
