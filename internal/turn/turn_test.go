package turn

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quasipaa/quasipaa/internal/auth"
)

// relayEcho sends n datagrams through relay to the echo peer and reads each
// back, checking the payloads.
func relayEcho(t *testing.T, relay net.PacketConn, peer *echoPeer, n int) {
	t.Helper()
	buf := make([]byte, 1500)
	for i := range n {
		msg := fmt.Appendf(nil, "hello %d", i)
		_, err := relay.WriteTo(msg, peer.addr())
		require.NoError(t, err)
		require.NoError(t, relay.SetReadDeadline(time.Now().Add(3*time.Second)))
		k, from, err := relay.ReadFrom(buf)
		require.NoError(t, err, "datagram %d not echoed", i)
		assert.Equal(t, msg, buf[:k])
		assert.Equal(t, peer.addr().String(), from.String())
	}
}

func TestAllocateAndRelay(t *testing.T) {
	for _, network := range []string{"udp", "tcp", "tls"} {
		t.Run(network, func(t *testing.T) {
			certFile, keyFile := writeCert(t)
			s := startServer(t, func(o *Options) {
				o.AllowPrivatePeers = true
				o.TLSListen, o.TLSCert, o.TLSKey = "127.0.0.1:0", certFile, keyFile
			})
			peer := newEchoPeer(t)
			username, password := mint("alice")
			c := newClient(t, s, network, username, password)
			relay, err := c.allocate()
			require.NoError(t, err)

			ra := relay.LocalAddr().(*net.UDPAddr)
			assert.Equal(t, "127.0.0.1", ra.IP.String())
			assert.GreaterOrEqual(t, ra.Port, 50000)
			assert.LessOrEqual(t, ra.Port, 50999)
			assert.Equal(t, 1, s.Stats().Allocations)

			// The first datagrams go as Send indications, later ones over
			// the channel pion's client binds meanwhile.
			relayEcho(t, relay, peer, 10)
			for _, from := range peer.received() {
				assert.Equal(t, ra.String(), from.String(), "peer sees the relayed address")
			}
			// Counted after the write returns: maybe after the echo came back.
			eventually(t, func() bool {
				st := s.Stats()
				return st.BytesToPeers == 70 && st.BytesFromPeers == 70
			}, "10 datagrams of 7 bytes each way")

			require.NoError(t, relay.Close())
			c.relay = nil
			eventually(t, func() bool { return s.Stats().Allocations == 0 }, "allocation released")
		})
	}
}

func TestAuthRefused(t *testing.T) {
	s := startServer(t, nil)
	now := time.Now()
	expiredUser, expiredPass, _ := auth.NewTURNCredentials([]byte(testSecret), time.Minute).Mint("alice", now.Add(-2*time.Minute))
	validUser, _ := mint("alice")
	otherUser, otherPass, _ := auth.NewTURNCredentials([]byte("other-secret"), time.Hour).Mint("alice", now)
	cases := []struct{ name, username, password string }{
		{"expired", expiredUser, expiredPass},
		{"wrong password", validUser, "not-the-password"},
		{"other secret", otherUser, otherPass},
		{"malformed username", "alice", "whatever"},
		{"empty password", validUser, ""},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, network := range []string{"udp", "tcp"} {
				c := newClient(t, s, network, tc.username, tc.password)
				_, err := c.allocate()
				require.Error(t, err)
				assert.Equal(t, 401, turnCode(err), "%v", err)
			}
			assert.Equal(t, uint64(2*(i+1)), s.Stats().RefusedAuth)
		})
	}
	assert.Equal(t, 0, s.Stats().Allocations)

	t.Run("wrong realm", func(t *testing.T) {
		r := newRawClient(t, s)
		username, password := mint("bob")
		allocate := stun.NewType(stun.MethodAllocate, stun.ClassRequest)
		res := r.do(allocate, requestedUDP, stun.Fingerprint)
		require.NoError(t, r.nonce.GetFrom(res))
		r.username, r.realm = username, stun.NewRealm("elsewhere")
		r.integrity = stun.NewLongTermIntegrity(username, "elsewhere", password)
		res = r.do(r.authed(allocate, requestedUDP)...)
		assert.Equal(t, 401, errorCode(t, res))
	})
}

func TestQuota(t *testing.T) {
	s := startServer(t, func(o *Options) { o.MaxAllocationsPerUser = 2 })
	username, password := mint("carol")
	var held []*turnClient
	for _, network := range []string{"udp", "tcp"} {
		c := newClient(t, s, network, username, password)
		_, err := c.allocate()
		require.NoError(t, err)
		held = append(held, c)
	}
	assert.Equal(t, 2, s.Stats().Allocations)

	for _, network := range []string{"udp", "tcp"} {
		c := newClient(t, s, network, username, password)
		_, err := c.allocate()
		assert.Equal(t, 486, turnCode(err), "third allocation of one username: %v", err)
	}
	assert.Equal(t, uint64(2), s.Stats().RefusedQuota)

	// Another username has its own quota.
	u2, p2 := mint("dave")
	c := newClient(t, s, "udp", u2, p2)
	_, err := c.allocate()
	require.NoError(t, err)

	// Releasing one allocation (a TCP client disconnecting) frees a slot.
	held[1].close()
	eventually(t, func() bool { return s.Stats().Allocations == 2 }, "tcp allocation released")
	c = newClient(t, s, "udp", username, password)
	_, err = c.allocate()
	require.NoError(t, err)
	assert.Equal(t, 3, s.Stats().Allocations)
}

var privatePeers = []string{"127.0.0.1", "10.0.0.1", "192.168.1.1", "169.254.1.1", "172.16.5.4", "100.64.0.1", "0.0.0.0", "224.0.0.251", "255.255.255.255"}

func TestPrivatePeersRefused(t *testing.T) {
	s := startServer(t, nil)
	username, password := mint("erin")
	c := newClient(t, s, "udp", username, password)
	_, err := c.allocate()
	require.NoError(t, err)
	for i, ip := range privatePeers {
		err := c.CreatePermission(&net.UDPAddr{IP: net.ParseIP(ip), Port: 9})
		assert.Equal(t, 403, turnCode(err), "CreatePermission %s: %v", ip, err)
		assert.Equal(t, uint64(i+1), s.Stats().RefusedPeer)
	}
	// A public address is fine (nothing is sent to it).
	require.NoError(t, c.CreatePermission(&net.UDPAddr{IP: net.ParseIP("203.0.113.7"), Port: 9}))

	// ChannelBind and Send, by hand.
	peer := newEchoPeer(t)
	r := newRawClient(t, s)
	u2, p2 := mint("frank")
	res := r.allocate(u2, p2)
	require.Equal(t, stun.ClassSuccessResponse, res.Type.Class, "%v", res)
	channel := stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{0x40, 0x00, 0, 0}}
	res = r.do(r.authed(stun.NewType(stun.MethodChannelBind, stun.ClassRequest), channel,
		peerAddr{IP: net.ParseIP("10.0.0.1"), Port: 9})...)
	assert.Equal(t, stun.ClassErrorResponse, res.Type.Class)
	assert.NotZero(t, errorCode(t, res), "ChannelBind to a private peer")

	send, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication),
		peerAddr{IP: peer.addr().IP, Port: peer.addr().Port},
		stun.RawAttribute{Type: stun.AttrData, Value: []byte("leak")}, stun.Fingerprint)
	require.NoError(t, err)
	_, err = r.conn.WriteTo(send.Raw, r.server)
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond)
	assert.Empty(t, peer.received(), "Send indication to a loopback peer relayed")
	assert.Zero(t, s.Stats().BytesToPeers)
}

func TestPrivatePeersAllowed(t *testing.T) {
	s := startServer(t, func(o *Options) { o.AllowPrivatePeers = true })
	username, password := mint("grace")
	c := newClient(t, s, "udp", username, password)
	relay, err := c.allocate()
	require.NoError(t, err)
	for _, ip := range []string{"127.0.0.1", "10.0.0.1", "192.168.1.1", "169.254.1.1"} {
		assert.NoError(t, c.CreatePermission(&net.UDPAddr{IP: net.ParseIP(ip), Port: 9}), ip)
	}
	relayEcho(t, relay, newEchoPeer(t), 3)
	assert.Zero(t, s.Stats().RefusedPeer)
}

func TestIsPrivatePeer(t *testing.T) {
	for _, ip := range append(privatePeers,
		"10.255.255.255", "172.31.0.1", "192.168.0.0", "127.5.5.5", "100.127.255.255", "169.254.169.254",
		"0.1.2.3", "240.0.0.1", "198.18.0.1", "192.0.0.8", "239.255.255.250",
		"::", "::1", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "fec0::1", "100::1",
		"::ffff:127.0.0.1", "::ffff:10.1.2.3", "::127.0.0.1", "64:ff9b::a00:1", "64:ff9b::7f00:1",
		"64:ff9b:1::1", "2002:a00:1::1", "2002:c0a8:101::1",
	) {
		assert.True(t, IsPrivatePeer(net.ParseIP(ip)), ip)
	}
	for _, ip := range []string{
		"8.8.8.8", "1.1.1.1", "203.0.113.7", "172.32.0.1", "100.128.0.1", "11.0.0.1", "192.169.0.1",
		"2001:4860:4860::8888", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
	} {
		assert.False(t, IsPrivatePeer(net.ParseIP(ip)), ip)
	}
	assert.True(t, IsPrivatePeer(nil))
	assert.True(t, IsPrivatePeer(net.IP{1, 2, 3}))
}

// bindingRequest sends a STUN Binding request on conn and checks that the
// XOR-MAPPED-ADDRESS is want.
func bindingRequest(t *testing.T, conn net.Conn, want net.Addr) {
	t.Helper()
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	_, err := conn.Write(req.Raw)
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(3*time.Second)))
	buf := make([]byte, 1500)
	res := &stun.Message{}
	for {
		// Skip the answers to earlier garbage.
		n, err := conn.Read(buf)
		require.NoError(t, err)
		res = &stun.Message{Raw: buf[:n]}
		if res.Decode() == nil && res.TransactionID == req.TransactionID {
			break
		}
	}
	assert.Equal(t, stun.BindingSuccess, res.Type)
	assert.Equal(t, req.TransactionID, res.TransactionID)
	var xor stun.XORMappedAddress
	require.NoError(t, xor.GetFrom(res))
	assert.Equal(t, want.String(), xor.String())
}

func TestSTUNBinding(t *testing.T) {
	s := startServer(t, nil)
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			addr := s.UDPAddr()
			if network == "tcp" {
				addr = s.TCPAddr()
			}
			conn, err := net.Dial(network, addr.String())
			require.NoError(t, err)
			defer conn.Close()
			// Twice on one TCP connection: the stream framing holds.
			bindingRequest(t, conn, conn.LocalAddr())
			bindingRequest(t, conn, conn.LocalAddr())
		})
	}
	t.Run("pion client", func(t *testing.T) {
		c := newClient(t, s, "udp", "", "")
		mapped, err := c.SendBindingRequest()
		require.NoError(t, err)
		assert.Equal(t, c.conn.LocalAddr().String(), mapped.String())
	})
}

func TestGarbage(t *testing.T) {
	s := startServer(t, func(o *Options) { o.AllowPrivatePeers = true })
	rng := rand.New(rand.NewPCG(1, 2)) //nolint:gosec // test data
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	valid := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint).Raw
	stunHeader := func(typ uint16, length uint16) []byte {
		b := append([]byte(nil), valid[:20]...)
		b[0], b[1] = byte(typ>>8), byte(typ)
		b[2], b[3] = byte(length>>8), byte(length)
		return b
	}
	var packets [][]byte
	for _, n := range []int{0, 1, 3, 4, 8, 19, 20, 21, 100, 1500, 1599, 1600, 1601, 4000, 65000} {
		packets = append(packets, random(n))
	}
	packets = append(packets,
		valid[:len(valid)-1],                            // truncated
		valid[:20],                                      // header only, length says more
		stunHeader(0x0001, 0xfffc),                      // Binding claiming 64 KiB
		stunHeader(0x0003, 8),                           // Allocate with missing attributes
		stunHeader(0x0016, 0),                           // Send indication, no attributes
		stunHeader(0x0111, 0),                           // Binding error response to the server
		append(stunHeader(0x0001, 8), 0x80, 0x22, 0, 4), // truncated attribute
		[]byte{0x40, 0x00, 0xff, 0xff, 1, 2, 3, 4},      // ChannelData claiming 64 KiB
		[]byte{0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4},      // ChannelData without allocation
		[]byte{0x7f, 0xff, 0x00, 0x00},                  // out-of-range channel
	)
	for i := range 200 {
		b := append([]byte(nil), valid...)
		b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255)) // a flipped byte
		if i%2 == 1 {
			b = b[:1+rng.IntN(len(b))] // and truncated
		}
		packets = append(packets, b)
	}

	// UDP.
	udp, err := net.Dial("udp", s.UDPAddr().String())
	require.NoError(t, err)
	defer udp.Close()
	for _, p := range packets {
		if len(p) > 65000 {
			continue
		}
		_, _ = udp.Write(p)
	}

	// TCP: each garbage stream on its own connection, and all of it on one.
	var streams []net.Conn
	for _, p := range append(packets[:20:20], bytes.Join(packets, nil)) {
		c, err := net.Dial("tcp", s.TCPAddr().String())
		require.NoError(t, err)
		streams = append(streams, c)
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Write(p)
	}
	// Connections left open mid-frame stay until the idle timeout or Close.
	for _, c := range streams[:len(streams)/2] {
		_ = c.Close()
	}
	defer func() {
		for _, c := range streams {
			_ = c.Close()
		}
	}()

	// Still serving: Binding on both transports, and a relayed allocation.
	bindingRequest(t, udp, udp.LocalAddr())
	tcp, err := net.Dial("tcp", s.TCPAddr().String())
	require.NoError(t, err)
	defer tcp.Close()
	bindingRequest(t, tcp, tcp.LocalAddr())
	username, password := mint("mallory")
	c := newClient(t, s, "udp", username, password)
	relay, err := c.allocate()
	require.NoError(t, err)
	relayEcho(t, relay, newEchoPeer(t), 2)
}

func TestTLSHandshakeFailures(t *testing.T) {
	certFile, keyFile := writeCert(t)
	s := startServer(t, func(o *Options) {
		o.Listen = ""
		o.TLSListen, o.TLSCert, o.TLSKey = "127.0.0.1:0", certFile, keyFile
	})
	assert.Nil(t, s.UDPAddr())
	assert.Nil(t, s.TCPAddr())
	// Plain STUN on the TLS port, then a client that never handshakes.
	c, err := net.Dial("tcp", s.TLSAddr().String())
	require.NoError(t, err)
	_, _ = c.Write(stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw)
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err = c.Read(make([]byte, 100))
	assert.Error(t, err, "server closes the connection")
	c.Close()
	idle, err := net.Dial("tcp", s.TLSAddr().String())
	require.NoError(t, err)
	defer idle.Close()

	// Still serving TLS.
	tc, err := tls.Dial("tcp", s.TLSAddr().String(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test
	require.NoError(t, err)
	defer tc.Close()
	bindingRequest(t, tc, tc.LocalAddr())
}

func TestCloseStopsEverything(t *testing.T) {
	certFile, keyFile := writeCert(t)
	opts := Options{
		Listen: "127.0.0.1:0", TLSListen: "127.0.0.1:0", TLSCert: certFile, TLSKey: keyFile,
		Realm: testRealm, Credentials: testCreds(), AllowPrivatePeers: true,
		RelayPortMin: 50000, RelayPortMax: 50999, Logger: testLogger(t),
	}
	before := goleak.IgnoreCurrent()
	s, err := New(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	require.NoError(t, s.Start(ctx))
	assert.ErrorIs(t, s.Start(ctx), ErrStarted)

	// Allocations on UDP, TCP and TLS, an idle TCP connection, a TLS
	// connection stuck before its handshake.
	var clients []*turnClient
	for _, network := range []string{"udp", "tcp", "tls"} {
		username, password := mint(network)
		c := newClient(t, s, network, username, password)
		_, err := c.allocate()
		require.NoError(t, err)
		clients = append(clients, c)
	}
	idle, err := net.Dial("tcp", s.TCPAddr().String())
	require.NoError(t, err)
	defer idle.Close()
	stuck, err := net.Dial("tcp", s.TLSAddr().String())
	require.NoError(t, err)
	defer stuck.Close()
	assert.Equal(t, 3, s.Stats().Allocations)

	// Stop the clients' goroutines. Their socket closed first, the UDP
	// client cannot deallocate: its allocation stays on the server.
	for _, c := range clients {
		_ = c.conn.Close()
		_ = c.relay.Close()
		c.relay = nil
		c.Close()
	}
	// Let the server see the TCP and TLS clients go.
	eventually(t, func() bool { return s.Stats().Allocations == 1 }, "tcp and tls allocations released")

	done := make(chan error)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs")
	}
	assert.Equal(t, 0, s.Stats().Allocations)
	goleak.VerifyNone(t, before)
	require.NoError(t, s.Close(), "second Close")
	assert.ErrorIs(t, s.Start(ctx), ErrClosed)

	_, err = idle.Read(make([]byte, 1))
	assert.Error(t, err, "idle connection closed")
}

func TestContextCancelStops(t *testing.T) {
	s, err := New(Options{Listen: "127.0.0.1:0", Realm: testRealm, Credentials: testCreds(), Logger: testLogger(t)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, s.Start(ctx))
	addr := s.TCPAddr().String()
	cancel()
	eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, "listener closed after cancel")
	require.NoError(t, s.Close())
}

func TestCloseBeforeStart(t *testing.T) {
	s, err := New(Options{Listen: "127.0.0.1:0", Realm: testRealm, Credentials: testCreds()})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	assert.ErrorIs(t, s.Start(context.Background()), ErrClosed)
	assert.Nil(t, s.UDPAddr())
}

func TestStartFailsOnBusyPort(t *testing.T) {
	busy, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	s, err := New(Options{Listen: busy.LocalAddr().String(), Realm: testRealm, Credentials: testCreds()})
	require.NoError(t, err)
	require.Error(t, s.Start(context.Background()))
	require.NoError(t, s.Close())
}

func TestRelayPortRangeExhausted(t *testing.T) {
	// A one-port range: the second allocation finds no port (508).
	probe, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	port := probe.LocalAddr().(*net.UDPAddr).Port
	probe.Close()
	s := startServer(t, func(o *Options) { o.RelayPortMin, o.RelayPortMax = port, port })
	u1, p1 := mint("a")
	relay, err := newClient(t, s, "udp", u1, p1).allocate()
	require.NoError(t, err)
	assert.Equal(t, port, relay.LocalAddr().(*net.UDPAddr).Port)
	u2, p2 := mint("b")
	_, err = newClient(t, s, "udp", u2, p2).allocate()
	assert.Equal(t, 508, turnCode(err), "%v", err)
}

func TestNewValidation(t *testing.T) {
	certFile, keyFile := writeCert(t)
	base := func() Options {
		return Options{Listen: ":3478", Realm: "r", Credentials: testCreds()}
	}
	for _, tc := range []struct {
		name string
		mod  func(*Options)
		want error
	}{
		{"no credentials", func(o *Options) { o.Credentials = nil }, ErrNoCredentials},
		{"no realm", func(o *Options) { o.Realm = "" }, ErrNoRealm},
		{"no listener", func(o *Options) { o.Listen = "" }, ErrNoListener},
		{"bad listen", func(o *Options) { o.Listen = "3478" }, ErrBadAddress},
		{"bad port", func(o *Options) { o.Listen = ":99999" }, ErrBadAddress},
		{"cert without key", func(o *Options) { o.TLSCert, o.TLSListen = certFile, ":5349" }, ErrTLSConfig},
		{"key without cert", func(o *Options) { o.TLSKey = keyFile }, ErrTLSConfig},
		{"cert without listen", func(o *Options) { o.TLSCert, o.TLSKey = certFile, keyFile }, ErrTLSConfig},
		{"unreadable cert", func(o *Options) { o.TLSCert, o.TLSKey, o.TLSListen = keyFile, keyFile, ":5349" }, ErrTLSConfig},
		{"port range reversed", func(o *Options) { o.RelayPortMin, o.RelayPortMax = 60000, 50000 }, ErrRelayPortRange},
		{"port range too high", func(o *Options) { o.RelayPortMin, o.RelayPortMax = 60000, 70000 }, ErrRelayPortRange},
		{"port min only", func(o *Options) { o.RelayPortMin = 60000 }, ErrRelayPortRange},
		{"negative quota", func(o *Options) { o.MaxAllocationsPerUser = -1 }, ErrBadQuota},
		{"unspecified relay ip", func(o *Options) { o.RelayIP = net.IPv4zero }, ErrRelayIP},
		{"bad relay ip", func(o *Options) { o.RelayIP = net.IP{1, 2} }, ErrRelayIP},
	} {
		o := base()
		tc.mod(&o)
		_, err := New(o)
		assert.ErrorIs(t, err, tc.want, tc.name)
	}
	o := base()
	o.TLSCert, o.TLSKey, o.TLSListen = certFile, keyFile, ":5349"
	s, err := New(o)
	require.NoError(t, err)
	assert.Equal(t, DefaultRelayPortMin, s.opts.RelayPortMin)
	assert.Equal(t, DefaultRelayPortMax, s.opts.RelayPortMax)
}

func TestRelayAddrs(t *testing.T) {
	mk := func(relay net.IP) *Server {
		o := Options{Listen: ":0", Realm: "r", Credentials: testCreds(), RelayIP: relay}
		s, err := New(o)
		require.NoError(t, err)
		return s
	}
	udpOn := func(ip string) *udpSocket {
		return &udpSocket{PacketConn: fakePacketConn{&net.UDPAddr{IP: net.ParseIP(ip), Port: 3478}}}
	}
	// Listen IP specific, no relay IP: both the listen IP.
	relay, bind, err := mk(nil).relayAddrs(udpOn("127.0.0.1"), nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", relay.String())
	assert.Equal(t, "127.0.0.1", bind.String())
	// Unspecified listen IP: the host's first IPv4, bound on all interfaces.
	if ip := firstHostIPv4(); ip != nil {
		relay, bind, err = mk(nil).relayAddrs(udpOn("0.0.0.0"), nil, nil)
		require.NoError(t, err)
		assert.Equal(t, ip.String(), relay.String())
		assert.Equal(t, "0.0.0.0", bind.String())
	}
	// A relay IP that is not local (1:1 NAT): bound on the listen IP.
	relay, bind, err = mk(net.ParseIP("203.0.113.9")).relayAddrs(udpOn("127.0.0.1"), nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "203.0.113.9", relay.String())
	assert.Equal(t, "127.0.0.1", bind.String())
	relay, bind, err = mk(net.ParseIP("203.0.113.9")).relayAddrs(udpOn("::"), nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "203.0.113.9", relay.String())
	assert.Equal(t, "0.0.0.0", bind.String())
	// A local relay IP is bound.
	relay, bind, err = mk(net.ParseIP("127.0.0.1")).relayAddrs(udpOn("0.0.0.0"), nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", relay.String())
	assert.Equal(t, "127.0.0.1", bind.String())
}

type fakePacketConn struct{ addr net.Addr }

func (f fakePacketConn) ReadFrom([]byte) (int, net.Addr, error) { return 0, nil, net.ErrClosed }
func (f fakePacketConn) WriteTo([]byte, net.Addr) (int, error)  { return 0, net.ErrClosed }
func (f fakePacketConn) Close() error                           { return nil }
func (f fakePacketConn) LocalAddr() net.Addr                    { return f.addr }
func (f fakePacketConn) SetDeadline(time.Time) error            { return nil }
func (f fakePacketConn) SetReadDeadline(time.Time) error        { return nil }
func (f fakePacketConn) SetWriteDeadline(time.Time) error       { return nil }

func TestWarnLimiter(t *testing.T) {
	var l warnLimiter
	t0 := time.Unix(1000, 0)
	ok, n := l.allow(t0)
	assert.True(t, ok)
	assert.Zero(t, n)
	for i := range 5 {
		ok, _ = l.allow(t0.Add(time.Duration(i) * time.Second))
		assert.False(t, ok)
	}
	ok, n = l.allow(t0.Add(refusalWarnInterval))
	assert.True(t, ok)
	assert.Equal(t, uint64(5), n)
}

func TestClientTimeouts(t *testing.T) {
	certFile, keyFile := writeCert(t)
	s, err := New(Options{
		Listen: "127.0.0.1:0", TLSListen: "127.0.0.1:0", TLSCert: certFile, TLSKey: keyFile,
		Realm: testRealm, Credentials: testCreds(), Logger: testLogger(t),
	})
	require.NoError(t, err)
	s.timeouts = timeouts{firstRead: 200 * time.Millisecond, idle: 600 * time.Millisecond, write: time.Second}
	require.NoError(t, s.Start(context.Background()))
	defer func() { require.NoError(t, s.Close()) }()

	// closedWithin dials addr, runs prepare, and checks that the server
	// closes the connection between lo and hi later.
	closedWithin := func(name string, addr net.Addr, prepare func(net.Conn), lo, hi time.Duration) {
		c, err := net.Dial("tcp", addr.String())
		require.NoError(t, err)
		defer c.Close()
		if prepare != nil {
			prepare(c)
		}
		start := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.Copy(io.Discard, c)
		elapsed := time.Since(start)
		require.NoError(t, err, "%s: closed by the server, not the test's deadline", name)
		assert.GreaterOrEqual(t, elapsed, lo, name)
		assert.LessOrEqual(t, elapsed, hi, name)
	}
	closedWithin("silent tcp", s.TCPAddr(), nil, 100*time.Millisecond, 2*time.Second)
	closedWithin("silent tls", s.TLSAddr(), nil, 100*time.Millisecond, 2*time.Second)
	closedWithin("idle tcp", s.TCPAddr(), func(c net.Conn) {
		bindingRequest(t, c, c.LocalAddr())
	}, 400*time.Millisecond, 3*time.Second)
}

func TestExpiryOnlyAtAllocate(t *testing.T) {
	s := startServer(t, nil)
	// Valid until the end of the next second.
	creds := testCreds()
	username, password, expires := creds.Mint("ivan", time.Now().Add(time.Second-creds.TTL()))
	c := newClient(t, s, "udp", username, password)
	relay, err := c.allocate()
	require.NoError(t, err)
	time.Sleep(time.Until(expires.Add(1100 * time.Millisecond)))

	// Expired: the allocation is kept up, and can be used...
	require.NoError(t, c.CreatePermission(&net.UDPAddr{IP: net.ParseIP("203.0.113.8"), Port: 9}))
	assert.Equal(t, 1, s.Stats().Allocations)
	// ...but no new allocation is made with it.
	_, err = newClient(t, s, "udp", username, password).allocate()
	assert.Equal(t, 401, turnCode(err), "%v", err)
	// Deallocation (Refresh with lifetime 0) still authenticates.
	require.NoError(t, relay.Close())
	c.relay = nil
	eventually(t, func() bool { return s.Stats().Allocations == 0 }, "deallocated")
	assert.Equal(t, uint64(1), s.Stats().RefusedAuth)
}
