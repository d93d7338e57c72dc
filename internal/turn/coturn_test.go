package turn

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/auth"
)

// needTool returns the path of a coturn utility, skipping the test when it is
// not installed (failing under CI=true).
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found (install the coturn package): %v", name, err)
		}
		t.Skipf("%s not found (install the coturn package)", name)
	}
	return path
}

// runTool runs a command bounded by timeout and returns its combined output
// and exit code (-1 when killed by the timeout), logging both.
func runTool(t *testing.T, timeout time.Duration, name string, args ...string) (string, int) {
	t.Helper()
	r := runCmd(timeout, name, args...)
	if r.err != nil {
		t.Fatalf("%s: %v", name, r.err)
	}
	r.log(t)
	return r.out, r.code
}

type cmdResult struct {
	cmd  string
	out  string
	code int
	err  error
}

func (r cmdResult) log(t *testing.T) {
	t.Helper()
	t.Logf("$ %s\n(exit %d)\n%s", r.cmd, r.code, r.out)
}

// runCmd runs a command bounded by timeout; it may be called from any
// goroutine.
func runCmd(timeout time.Duration, name string, args ...string) cmdResult {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	r := cmdResult{cmd: name + " " + strings.Join(args, " "), out: string(out)}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.code = -1
	case errors.As(err, &exitErr):
		r.code = exitErr.ExitCode()
	case err != nil:
		r.err = err
	}
	return r
}

func port(a net.Addr) string {
	switch a := a.(type) {
	case *net.UDPAddr:
		return strconv.Itoa(a.Port)
	case *net.TCPAddr:
		return strconv.Itoa(a.Port)
	}
	return ""
}

// The runs below were checked by hand first: a successful turnutils_uclient
// run ends with lines such as
//
//	6: : start_mclient: tot_send_msgs=6, tot_recv_msgs=6
//	6: : Total lost packets 0 (0.000000%), total send dropped 0 (0.000000%)
//
// and exits 0. A refused one exits 255 within milliseconds after printing, per
// cause:
//
//	0: : ERROR: Cannot complete Allocation    (401: expired or wrong credentials)
//	0: : error 486 ()                         (quota)
//	0: : channel bind: error 401 ()           (private peer; pion answers ChannelBind refusals with 401)
//
// uclient, even with -c (no RTCP), makes two allocations per run with -y and
// with -e, and does not deallocate on failure.

var totals = regexp.MustCompile(`start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)`)

// uclientOK checks the output of a successful uclient run: every message
// sent came back, none lost.
func uclientOK(t *testing.T, out string, code int) {
	t.Helper()
	require.Equal(t, 0, code, "exit status")
	m := totals.FindAllStringSubmatch(out, -1)
	require.NotEmpty(t, m, "no totals in output")
	last := m[len(m)-1]
	sent, _ := strconv.Atoi(last[1])
	recv, _ := strconv.Atoi(last[2])
	assert.Positive(t, sent)
	assert.Equal(t, sent, recv, "messages received back")
	assert.Contains(t, out, "Total lost packets 0 (0.000000%)")
}

// uclientRefused checks a refused uclient run: exit status 255 and the
// refusal in the output, and no completed run.
func uclientRefused(t *testing.T, out string, code int, refusal string) {
	t.Helper()
	assert.Equal(t, 255, code, "exit status")
	assert.Contains(t, out, refusal)
	assert.NotContains(t, out, "Total lost packets")
}

func TestCoturnUclient(t *testing.T) {
	uclient := needTool(t, "turnutils_uclient")
	certFile, keyFile := writeCert(t)
	s := startServer(t, func(o *Options) {
		o.AllowPrivatePeers = true
		o.TLSListen, o.TLSCert, o.TLSKey = "127.0.0.1:0", certFile, keyFile
	})
	peer := newEchoPeer(t)
	creds := func(user string) []string {
		u, p := mint(user)
		return []string{"-u", u, "-w", p}
	}
	server := func(a net.Addr) []string { return []string{"-p", port(a), "127.0.0.1"} }
	cases := []struct {
		name string
		args []string
	}{
		// Two clients relaying to each other's relayed address, over UDP,
		// TCP and TLS to the server.
		{"udp client-to-client", concat([]string{"-y", "-c", "-n", "5"}, creds("u1"), server(s.UDPAddr()))},
		{"tcp client-to-client", concat([]string{"-t", "-y", "-c", "-n", "5"}, creds("u2"), server(s.TCPAddr()))},
		{"tls client-to-client", concat([]string{"-S", "-t", "-y", "-c", "-n", "5"}, creds("u3"), server(s.TLSAddr()))},
		// One client relaying to an echo peer on 127.0.0.1.
		{"udp to echo peer", concat([]string{"-c", "-n", "5", "-e", "127.0.0.1", "-r", port(peer.addr())}, creds("u4"), server(s.UDPAddr()))},
		// uclient minting its own credentials from the secret (-W): the
		// scheme is coturn's.
		{"rest api secret", concat([]string{"-y", "-c", "-n", "5", "-W", testSecret, "-u", "u5"}, server(s.UDPAddr()))},
	}
	// Each run takes 2 to 6 s, mostly waiting: run them all at once (not as
	// parallel subtests, which -parallel limits to GOMAXPROCS).
	results := make([]chan cmdResult, len(cases))
	for i, tc := range cases {
		results[i] = make(chan cmdResult, 1)
		go func() { results[i] <- runCmd(30*time.Second, uclient, tc.args...) }()
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := <-results[i]
			require.NoError(t, r.err)
			r.log(t)
			uclientOK(t, r.out, r.code)
		})
	}
	assert.NotEmpty(t, peer.received(), "echo peer reached")
	st := s.Stats()
	assert.Positive(t, st.BytesToPeers)
	assert.Positive(t, st.BytesFromPeers)
	assert.Zero(t, st.RefusedAuth+st.RefusedPeer+st.RefusedQuota)
}

func TestCoturnUclientRefused(t *testing.T) {
	uclient := needTool(t, "turnutils_uclient")
	s := startServer(t, func(o *Options) { o.AllowPrivatePeers = true })
	server := func(a net.Addr) []string { return []string{"-p", port(a), "127.0.0.1"} }
	expUser, expPass, _ := auth.NewTURNCredentials([]byte(testSecret), time.Minute).Mint("old", time.Now().Add(-time.Hour))
	user, _ := mint("u")

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"expired udp", concat([]string{"-y", "-c", "-n", "3", "-u", expUser, "-w", expPass}, server(s.UDPAddr()))},
		{"expired tcp", concat([]string{"-t", "-y", "-c", "-n", "3", "-u", expUser, "-w", expPass}, server(s.TCPAddr()))},
		{"wrong password", concat([]string{"-y", "-c", "-n", "3", "-u", user, "-w", "wrong"}, server(s.UDPAddr()))},
		{"wrong secret", concat([]string{"-y", "-c", "-n", "3", "-W", "not-the-secret", "-u", "u"}, server(s.UDPAddr()))},
		{"plain username", concat([]string{"-y", "-c", "-n", "3", "-u", "alice", "-w", "password"}, server(s.UDPAddr()))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Stats()
			out, code := runTool(t, 20*time.Second, uclient, tc.args...)
			uclientRefused(t, out, code, "ERROR: Cannot complete Allocation")
			after := s.Stats()
			assert.Greater(t, after.RefusedAuth, before.RefusedAuth)
			assert.Equal(t, before.Allocations, after.Allocations)
		})
	}
	assert.Zero(t, s.Stats().Allocations)
	assert.Zero(t, s.Stats().BytesToPeers)

	t.Run("quota", func(t *testing.T) {
		q := startServer(t, func(o *Options) { o.AllowPrivatePeers, o.MaxAllocationsPerUser = true, 1 })
		u, p := mint("q")
		out, code := runTool(t, 20*time.Second, uclient, concat([]string{"-y", "-c", "-n", "3", "-u", u, "-w", p}, server(q.UDPAddr()))...)
		uclientRefused(t, out, code, "error 486")
		assert.Equal(t, uint64(1), q.Stats().RefusedQuota)
		assert.Equal(t, 1, q.Stats().Allocations, "the first of the two allocations")
	})

	t.Run("private peers", func(t *testing.T) {
		strict := startServer(t, nil) // relayed addresses on 127.0.0.1 are private too
		peer := newEchoPeer(t)
		u, p := mint("p")
		for _, args := range [][]string{
			{"-y", "-c", "-n", "3"},
			{"-c", "-n", "3", "-e", "127.0.0.1", "-r", port(peer.addr())},
		} {
			out, code := runTool(t, 20*time.Second, uclient, concat(args, []string{"-u", u, "-w", p}, server(strict.UDPAddr()))...)
			uclientRefused(t, out, code, "channel bind: error 401")
		}
		assert.Equal(t, uint64(2), strict.Stats().RefusedPeer)
		assert.Zero(t, strict.Stats().BytesToPeers)
		assert.Empty(t, peer.received())
	})
}

func TestCoturnStunclient(t *testing.T) {
	stunclient := needTool(t, "turnutils_stunclient")
	s := startServer(t, nil)
	out, code := runTool(t, 10*time.Second, stunclient, "-p", port(s.UDPAddr()), "127.0.0.1")
	assert.Equal(t, 0, code)
	assert.Regexp(t, `UDP reflexive addr: 127\.0\.0\.1:\d+`, out)
}

func concat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
