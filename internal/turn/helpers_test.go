package turn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quasipaa/quasipaa/internal/auth"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testSecret = "test-secret"
	testRealm  = "quasipaa"
)

func testCreds() *auth.TURNCredentials {
	return auth.NewTURNCredentials([]byte(testSecret), time.Hour)
}

// testLogger logs through t at debug level (pion's trace hidden).
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startServer starts a server on 127.0.0.1 with test credentials; mod
// adjusts the options. It is closed when the test ends.
func startServer(t *testing.T, mod func(*Options)) *Server {
	t.Helper()
	opts := Options{
		Listen:                "127.0.0.1:0",
		Realm:                 testRealm,
		Credentials:           testCreds(),
		RelayPortMin:          50000,
		RelayPortMax:          50999,
		MaxAllocationsPerUser: 10,
		Logger:                testLogger(t),
	}
	if mod != nil {
		mod(&opts)
	}
	s, err := New(opts)
	require.NoError(t, err)
	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func mint(user string) (string, string) {
	u, p, _ := testCreds().Mint(user, time.Now())
	return u, p
}

// turnClient is pion's TURN client on its own socket.
type turnClient struct {
	*turn.Client
	conn  net.PacketConn
	relay net.PacketConn
}

// newClient connects a pion client to s over "udp", "tcp" or "tls".
func newClient(t *testing.T, s *Server, network, username, password string) *turnClient {
	t.Helper()
	var (
		conn   net.PacketConn
		server string
	)
	switch network {
	case "udp":
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		conn, server = pc, s.UDPAddr().String()
	case "tcp":
		c, err := net.Dial("tcp", s.TCPAddr().String())
		require.NoError(t, err)
		conn, server = turn.NewSTUNConn(c), s.TCPAddr().String()
	case "tls":
		c, err := tls.Dial("tcp", s.TLSAddr().String(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test
		require.NoError(t, err)
		conn, server = turn.NewSTUNConn(c), s.TLSAddr().String()
	default:
		t.Fatalf("network %q", network)
	}
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: server,
		TURNServerAddr: server,
		Username:       username,
		Password:       password,
		Conn:           conn,
		RTO:            100 * time.Millisecond,
		LoggerFactory:  pionLoggerFactory{slog.New(slog.DiscardHandler)},
	})
	require.NoError(t, err)
	require.NoError(t, c.Listen())
	tc := &turnClient{Client: c, conn: conn}
	t.Cleanup(tc.close)
	return tc
}

func (c *turnClient) allocate() (net.PacketConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	relay, err := c.AllocateWithContext(ctx)
	if err == nil {
		c.relay = relay
	}
	return relay, err
}

func (c *turnClient) close() {
	if c.relay != nil {
		_ = c.relay.Close()
		c.relay = nil
	}
	c.Close()
	_ = c.conn.Close()
}

// turnCode returns the STUN error code of a pion client error, 0 if none.
func turnCode(err error) int {
	var te stun.TurnError
	if errors.As(err, &te) {
		return int(te.ErrorCodeAttr.Code)
	}
	var tp *stun.TurnError
	if errors.As(err, &tp) {
		return int(tp.ErrorCodeAttr.Code)
	}
	return 0
}

// echoPeer is a UDP peer on 127.0.0.1 that sends every datagram back, and
// records where they came from.
type echoPeer struct {
	conn net.PacketConn
	wg   sync.WaitGroup
	mu   sync.Mutex
	from []net.Addr
}

func newEchoPeer(t *testing.T) *echoPeer {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	e := &echoPeer{conn: pc}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			e.mu.Lock()
			e.from = append(e.from, from)
			e.mu.Unlock()
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() {
		_ = pc.Close()
		e.wg.Wait()
	})
	return e
}

func (e *echoPeer) addr() *net.UDPAddr { return e.conn.LocalAddr().(*net.UDPAddr) }

func (e *echoPeer) received() []net.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]net.Addr(nil), e.from...)
}

// peerAddr is an XOR-PEER-ADDRESS attribute.
type peerAddr struct {
	IP   net.IP
	Port int
}

func (p peerAddr) AddTo(m *stun.Message) error {
	return stun.XORMappedAddress{IP: p.IP, Port: p.Port}.AddToAs(m, stun.AttrXORPeerAddress)
}

// rawClient speaks STUN by hand, to send what pion's client would not.
type rawClient struct {
	t         *testing.T
	conn      net.PacketConn
	server    net.Addr
	username  string
	realm     stun.Realm
	nonce     stun.Nonce
	integrity stun.MessageIntegrity
}

func newRawClient(t *testing.T, s *Server) *rawClient {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	return &rawClient{t: t, conn: pc, server: s.UDPAddr()}
}

// do sends a request built from setters and returns the response.
func (r *rawClient) do(setters ...stun.Setter) *stun.Message {
	r.t.Helper()
	req, err := stun.Build(append([]stun.Setter{stun.TransactionID}, setters...)...)
	require.NoError(r.t, err)
	_, err = r.conn.WriteTo(req.Raw, r.server)
	require.NoError(r.t, err)
	buf := make([]byte, 2048)
	for {
		require.NoError(r.t, r.conn.SetReadDeadline(time.Now().Add(2*time.Second)))
		n, _, err := r.conn.ReadFrom(buf)
		require.NoError(r.t, err)
		res := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if res.Decode() == nil && res.TransactionID == req.TransactionID {
			return res
		}
	}
}

// authed returns the setters that authenticate a request, after a first
// unauthenticated Allocate taught realm and nonce.
func (r *rawClient) authed(setters ...stun.Setter) []stun.Setter {
	out := append(setters, stun.NewUsername(r.username), r.realm, r.nonce)
	return append(out, r.integrity, stun.Fingerprint)
}

var requestedUDP = stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}

// allocate performs the two-step authenticated Allocate.
func (r *rawClient) allocate(username, password string) *stun.Message {
	r.t.Helper()
	allocate := stun.NewType(stun.MethodAllocate, stun.ClassRequest)
	res := r.do(allocate, requestedUDP, stun.Fingerprint)
	require.Equal(r.t, stun.ClassErrorResponse, res.Type.Class)
	require.NoError(r.t, r.realm.GetFrom(res))
	require.NoError(r.t, r.nonce.GetFrom(res))
	r.username = username
	r.integrity = stun.NewLongTermIntegrity(username, r.realm.String(), password)
	return r.do(r.authed(allocate, requestedUDP)...)
}

func errorCode(t *testing.T, m *stun.Message) int {
	t.Helper()
	var ec stun.ErrorCodeAttribute
	if m.Type.Class != stun.ClassErrorResponse || ec.GetFrom(m) != nil {
		return 0
	}
	return int(ec.Code)
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key.
func writeCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting: " + msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
