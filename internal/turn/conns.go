package turn

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Timeouts of TCP and TLS client connections; pion/turn has none.
const (
	// firstReadTimeout bounds the wait for a new connection's first bytes,
	// including the TLS handshake.
	firstReadTimeout = 10 * time.Second
	// idleTimeout closes a connection that sent nothing for this long: a live
	// TURN client refreshes its allocation and permissions well within it.
	idleTimeout = 10 * time.Minute
	// writeTimeout bounds one write to a client that does not read.
	writeTimeout = 10 * time.Second
)

// timeouts are the above, shortened by tests.
type timeouts struct{ firstRead, idle, write time.Duration }

// These wrappers sit between pion/turn and the sockets. They let Close know
// when each of pion's goroutines has returned from its last blocking call:
// every goroutine pion starts is counted in Server.wg, and released by the
// wrapper that sees its final read, accept or close. They also keep serving
// through transient socket errors, on which pion's loops would stop for good.

// udpSocket is the server's UDP socket, read by one pion goroutine.
type udpSocket struct {
	net.PacketConn
	s      *Server
	closed atomic.Bool
	done   sync.Once
}

func (u *udpSocket) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := u.PacketConn.ReadFrom(b)
		if err == nil {
			return n, addr, nil
		}
		if u.closed.Load() || errors.Is(err, net.ErrClosed) {
			u.done.Do(u.s.wg.Done)
			return n, addr, err
		}
		u.s.log.Debug("turn: udp read", "err", err)
		time.Sleep(time.Millisecond)
	}
}

func (u *udpSocket) Close() error {
	if u.closed.Swap(true) {
		return nil
	}
	return u.PacketConn.Close()
}

// listener is a TCP or TLS listening socket, accepted from by one pion
// goroutine. For TLS, an acceptor goroutine of ours accepts and handshakes,
// and Accept hands out established *tls.Conn.
type listener struct {
	net.Listener
	s         *Server
	tls       *tls.Config // nil for plain TCP
	ready     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
	done      sync.Once
}

func newListener(s *Server, ln net.Listener, tlsConf *tls.Config) *listener {
	return &listener{Listener: ln, s: s, tls: tlsConf, ready: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *listener) Accept() (net.Conn, error) {
	if l.tls != nil {
		select {
		case c := <-l.ready:
			return c, nil
		case <-l.closed:
			l.done.Do(l.s.wg.Done)
			return nil, net.ErrClosed
		}
	}
	for {
		c, err := l.acceptRaw()
		if err != nil {
			l.done.Do(l.s.wg.Done)
			return nil, err
		}
		if tc := l.s.track(c); tc != nil {
			return tc, nil
		}
	}
}

// acceptRaw accepts one connection, retrying transient errors (out of file
// descriptors…) with backoff; it fails only once the listener is closed.
func (l *listener) acceptRaw() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			return c, nil
		}
		select {
		case <-l.closed:
			return nil, net.ErrClosed
		default:
		}
		if errors.Is(err, net.ErrClosed) {
			return nil, err
		}
		delay = min(max(2*delay, 5*time.Millisecond), time.Second)
		l.s.log.Warn("turn: accept", "addr", l.Addr().String(), "err", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-l.closed:
			t.Stop()
			return nil, net.ErrClosed
		}
	}
}

// acceptTLS is the acceptor goroutine of a TLS listener.
func (l *listener) acceptTLS() {
	defer l.s.wg.Done()
	for {
		c, err := l.acceptRaw()
		if err != nil {
			return
		}
		tc := l.s.track(c)
		if tc == nil {
			continue
		}
		l.s.wg.Add(1)
		go l.handshake(tc)
	}
}

// handshake completes the TLS handshake of c, then hands it to pion, or
// closes it.
func (l *listener) handshake(c *conn) {
	defer l.s.wg.Done()
	tc := tls.Server(c, l.tls)
	ctx, cancel := context.WithTimeout(l.s.ctx, l.s.timeouts.firstRead)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		l.s.log.Debug("turn: tls handshake", "client", addrString(c.RemoteAddr()), "err", err)
		_ = c.Close()
		return
	}
	select {
	case l.ready <- tc:
	case <-l.closed:
		_ = c.Close()
	}
}

func (l *listener) Close() error {
	err := net.ErrClosed
	l.closeOnce.Do(func() {
		close(l.closed)
		err = l.Listener.Close()
	})
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// conn is an accepted TCP connection (under TLS for a TLS listener), with
// read and write deadlines. It is counted in Server.wg until closed: the
// goroutine reading it closes it last thing before returning.
type conn struct {
	net.Conn
	s      *Server
	active atomic.Bool // got bytes once
	once   sync.Once
}

func (c *conn) Read(b []byte) (int, error) {
	d := c.s.timeouts.idle
	if !c.active.Load() {
		d = c.s.timeouts.firstRead
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(d))
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.active.Store(true)
	}
	return n, err
}

func (c *conn) Write(b []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.s.timeouts.write))
	return c.Conn.Write(b)
}

func (c *conn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		err = c.Conn.Close()
		c.s.untrack(c)
	})
	return err
}

// relayConn is the relay socket of one allocation, read by one pion
// goroutine. Closing it ends the allocation's quota share. That goroutine
// ends either right after its last read (when the allocation was deleted
// first), or by deleting the allocation itself, which reports
// OnAllocationDeleted: it is released from Server.wg once both its last read
// and the deletion were seen.
type relayConn struct {
	net.PacketConn
	s       *Server
	user    string
	closed  atomic.Bool
	done    sync.Once
	pending atomic.Int32 // of the last read and the deletion event
}

func newRelayConn(s *Server, pc net.PacketConn, user string) *relayConn {
	r := &relayConn{PacketConn: pc, s: s, user: user}
	r.pending.Store(2)
	return r
}

// release marks the last read or the deletion event as seen.
func (r *relayConn) release() {
	if r.pending.Add(-1) == 0 {
		r.s.wg.Done()
	}
}

func (r *relayConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := r.PacketConn.ReadFrom(b)
		if err == nil {
			r.s.bytesFromPeers.Add(uint64(n))
			return n, addr, nil
		}
		if r.closed.Load() || errors.Is(err, net.ErrClosed) {
			r.done.Do(r.release)
			return n, addr, err
		}
		r.s.log.Debug("turn: relay read", "err", err)
		time.Sleep(time.Millisecond)
	}
}

func (r *relayConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	n, err := r.PacketConn.WriteTo(b, addr)
	r.s.bytesToPeers.Add(uint64(max(n, 0)))
	return n, err
}

// Close never fails: pion stops closing the remaining allocations at the
// first error.
func (r *relayConn) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	r.s.releaseRelay(r.user)
	_ = r.PacketConn.Close()
	return nil
}
