package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/cluster/redistest"
)

// clusterTTL is cluster.ttl in the cluster test: short, so failures are
// noticed quickly.
const clusterTTL = 3 * time.Second

// testCluster is a real redis-server and node processes of the real binary,
// each on its own loopback address.
type testCluster struct {
	t      *testing.T
	redis  *redistest.Server
	common []string
	nodes  map[string]*server
	ips    map[string]string
	roles  map[string]string
}

func newTestCluster(t *testing.T, storageDir string) *testCluster {
	rd := redistest.Start(t)
	return &testCluster{
		t:     t,
		redis: rd,
		common: []string{
			"QUASIPAA_CLUSTER_REDIS=" + rd.URL(),
			"QUASIPAA_CLUSTER_SECRET=cluster-test-secret-0123456789",
			"QUASIPAA_CLUSTER_TTL=" + clusterTTL.String(),
			"QUASIPAA_CLUSTER_RELAY_IDLE=5s",
			// Longer than the TTL plus a republish, so viewers outlive a
			// publish node's death.
			"QUASIPAA_HUB_PUBLISHER_GRACE=25s",
			`QUASIPAA_APPS=[{match: "live/*", record: true, record_segment: 1s}]`,
			// One store for both exchange nodes, as S3 would be.
			"QUASIPAA_STORAGE_DIR=" + storageDir,
			"QUASIPAA_WEBRTC_UDP_LISTEN=",
			"QUASIPAA_WEBRTC_TCP_LISTEN=",
			"QUASIPAA_TURN_LISTEN=",
		},
		nodes: map[string]*server{},
		ips:   map[string]string{},
		roles: map[string]string{},
	}
}

// start runs node id with roles on ip (127.0.0.x), or restarts it.
func (c *testCluster) start(id, ip, roles string) *server {
	c.ips[id], c.roles[id] = ip, roles
	env := c.common
	if strings.Contains(roles, "pull") {
		env = append(env[:len(env):len(env)], "QUASIPAA_WEBRTC_UDP_LISTEN="+ip+":0", "QUASIPAA_WEBRTC_TCP_LISTEN="+ip+":0")
	}
	s := startServer(c.t, append(env,
		"QUASIPAA_CLUSTER_NODE_ID="+id,
		"QUASIPAA_CLUSTER_ROLES="+roles,
		"QUASIPAA_CLUSTER_ADVERTISE="+ip,
		"QUASIPAA_RTMP_LISTEN="+ip+":0",
		"QUASIPAA_HTTP_LISTEN="+ip+":0",
	)...)
	c.nodes[id] = s
	return s
}

// kill ends node id with SIGKILL: no goodbye to the registry.
func (c *testCluster) kill(id string) {
	s := c.nodes[id]
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

type apiNode struct {
	ID       string   `json:"id"`
	Roles    []string `json:"roles"`
	HTTP     string   `json:"http"`
	RTMP     string   `json:"rtmp"`
	Draining bool     `json:"draining"`
}

type apiLease struct {
	Kind  string `json:"kind"`
	Path  string `json:"path"`
	Owner string `json:"owner"`
}

func (c *testCluster) nodeIDs(core *server) map[string]bool {
	var out struct {
		Nodes []apiNode `json:"nodes"`
	}
	ids := map[string]bool{}
	if getJSON(c.t, "http://"+core.HTTPAddr+"/api/v1/nodes", &out) == http.StatusOK {
		for _, n := range out.Nodes {
			ids[n.ID] = true
		}
	}
	return ids
}

func (c *testCluster) leases(core *server, what string) []apiLease {
	var out map[string][]apiLease
	getJSON(c.t, "http://"+core.HTTPAddr+"/api/v1/"+what, &out)
	return out[what]
}

func (c *testCluster) leaseOwner(core *server, what, kind, path string) string {
	for _, l := range c.leases(core, what) {
		if l.Path == path && (kind == "" || l.Kind == kind) {
			return l.Owner
		}
	}
	return ""
}

type dispatched struct {
	URL  string `json:"url"`
	Node string `json:"node"`
}

func dispatch(t *testing.T, core *server, path, action, protocol string) (dispatched, int) {
	var d dispatched
	q := url.Values{"path": {path}, "action": {action}, "protocol": {protocol}}
	code := getJSON(t, "http://"+core.HTTPAddr+"/api/v1/dispatch?"+q.Encode(), &d)
	return d, code
}

// flvViewer reads an HTTP-FLV stream and counts its bytes until stopped.
type flvViewer struct {
	bytes  atomic.Int64
	err    atomic.Pointer[error]
	cancel context.CancelFunc
	done   chan struct{}
}

func startFLVViewer(url string) *flvViewer {
	ctx, cancel := context.WithCancel(context.Background())
	v := &flvViewer{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(v.done)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %s", resp.Status)
		}
		if err == nil {
			defer resp.Body.Close()
			buf := make([]byte, 64<<10)
			for {
				n, rerr := resp.Body.Read(buf)
				v.bytes.Add(int64(n))
				if rerr != nil {
					err = rerr
					break
				}
			}
		}
		if ctx.Err() == nil {
			v.err.Store(&err)
		}
	}()
	return v
}

func (v *flvViewer) failed() error {
	if e := v.err.Load(); e != nil {
		return *e
	}
	return nil
}

func (v *flvViewer) stop() { v.cancel(); <-v.done }

// relayReaders counts the relay readers of path on s, by the node they serve.
func relayReaders(t *testing.T, s *server, path string) map[string]int {
	var st struct {
		Clients []struct {
			Protocol   string `json:"protocol"`
			RemoteAddr string `json:"remote_addr"`
		} `json:"clients"`
	}
	out := map[string]int{}
	if getJSON(t, "http://"+s.HTTPAddr+"/api/v1/streams/"+path, &st) != http.StatusOK {
		return out
	}
	for _, v := range st.Clients {
		if v.Protocol == "relay" {
			node, _, _ := strings.Cut(v.RemoteAddr, "@")
			out[node]++
		}
	}
	return out
}

// publishThroughDispatch asks core where to publish path and publishes there
// with ffmpeg, retrying until a node accepts it; it returns the publisher
// and the node.
func publishThroughDispatch(t *testing.T, core *server, path string, within time.Duration) (*publisher, string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		d, code := dispatch(t, core, path, "publish", "rtmp")
		if code != http.StatusOK {
			time.Sleep(300 * time.Millisecond)
			continue
		}
		p := publishTestStream(t, d.URL, 0)
		select {
		case <-p.exited:
			// Refused (the route of a dead node has not expired yet): ask again.
			time.Sleep(500 * time.Millisecond)
		case <-time.After(3 * time.Second):
			return p, d.Node
		}
	}
	t.Fatalf("no node accepted %s within %s", path, within)
	return nil, ""
}

// TestCluster runs the five-node cluster of docs/cluster.md on one machine —
// core, two publish+exchange nodes, two pull nodes, one real redis-server —
// and proves relay, dispatch, failover of each kind and Redis restarts.
func TestCluster(t *testing.T) {
	requireTools(t, "ffmpeg", "ffprobe", "redis-server")
	store := t.TempDir()
	c := newTestCluster(t, store)
	core := c.start("core-1", "127.0.0.1", "core")
	c.start("pub-1", "127.0.0.2", "publish,exchange")
	c.start("pub-2", "127.0.0.3", "publish,exchange")
	c.start("pull-1", "127.0.0.4", "pull")
	c.start("pull-2", "127.0.0.5", "pull")
	require.Eventually(t, func() bool { return len(c.nodeIDs(core)) == 5 }, 10*time.Second, 100*time.Millisecond,
		"five nodes registered; got %v", c.nodeIDs(core))

	// Relay and internal endpoints refuse requests without the secret.
	for _, id := range []string{"pub-1", "pull-1"} {
		resp, err := http.Get("http://" + c.nodes[id].HTTPAddr + "/_quasipaa/relay/live/cam1")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s relay without the secret", id)
		req, _ := http.NewRequest(http.MethodGet, "http://"+c.nodes[id].HTTPAddr+"/_quasipaa/relay/live/cam1", nil)
		req.Header.Set("X-Quasipaa-Node", "intruder")
		req.Header.Set("X-Quasipaa-Time", fmt.Sprint(time.Now().Unix()))
		req.Header.Set("X-Quasipaa-Signature", strings.Repeat("0", 64))
		resp, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s relay with a forged signature", id)
	}

	// ffmpeg publishes to the publish node dispatch chooses.
	const path = "live/cam1"
	pub, pubNode := publishThroughDispatch(t, core, path, 20*time.Second)
	require.Contains(t, []string{"pub-1", "pub-2"}, pubNode)
	waitStream(t, c.nodes[pubNode], path)
	require.Eventually(t, func() bool { return c.leaseOwner(core, "routes", "route", path) == pubNode },
		5*time.Second, 100*time.Millisecond, "route of %s → %s", path, pubNode)
	// Both exchange jobs are claimed.
	require.Eventually(t, func() bool {
		return c.leaseOwner(core, "jobs", "record", path) != "" && c.leaseOwner(core, "jobs", "hls", path) != ""
	}, 10*time.Second, 100*time.Millisecond, "jobs %+v", c.leases(core, "jobs"))

	// Both pull nodes play RTMP, FLV and HLS (HLS from the exchange node
	// packaging it, the same playlists on each pull node).
	// WHEP first on pull-2: its answer needs the stream's tracks, which
	// the node relays from the publish node on demand.
	code, body := postOffer(t, "http://"+c.nodes["pull-2"].HTTPAddr+"/"+path+"/whep", "", rtcOffer(t, false))
	require.Equal(t, http.StatusCreated, code, "WHEP on a pull node: %s", body)
	for _, id := range []string{"pull-1", "pull-2"} {
		s := c.nodes[id]
		requireH264AAC720p(t, ffprobe(t, s.rtmpURL(path)))
		requireH264AAC720p(t, ffprobe(t, s.flvURL(path)))
		requireH264AAC720p(t, ffprobe(t, "http://"+s.HTTPAddr+"/"+path+"/index.m3u8"))
	}

	// 20 viewers on each pull node: one relay upstream per pull node.
	viewers := map[string][]*flvViewer{}
	for _, id := range []string{"pull-1", "pull-2"} {
		for range 20 {
			viewers[id] = append(viewers[id], startFLVViewer(c.nodes[id].flvURL(path)))
		}
	}
	defer func() {
		for _, vs := range viewers {
			for _, v := range vs {
				v.stop()
			}
		}
	}()
	require.Eventually(t, func() bool {
		st1, ok1 := getStream(c.nodes["pull-1"], path)
		st2, ok2 := getStream(c.nodes["pull-2"], path)
		return ok1 && ok2 && st1.Viewers["flv"] == 20 && st2.Viewers["flv"] == 20
	}, 10*time.Second, 100*time.Millisecond, "20 FLV viewers on each pull node")
	relays := relayReaders(t, c.nodes[pubNode], path)
	require.Equal(t, 1, relays["pull-1"], "pull-1 holds one upstream: %v", relays)
	require.Equal(t, 1, relays["pull-2"], "pull-2 holds one upstream: %v", relays)

	// kill -9 of a pull node: its viewers, re-dispatched, land on the other
	// one and play; the dead node leaves the inventory within the TTL.
	c.kill("pull-1")
	killedAt := time.Now()
	for _, v := range viewers["pull-1"] {
		<-v.done
	}
	// Dispatch ignores a node whose heartbeat is older than two thirds of
	// the TTL: from then on every viewer goes to pull-2.
	time.Sleep(2 * clusterTTL / 3)
	for range 10 {
		d, code := dispatch(t, core, path, "play", "flv")
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "pull-2", d.Node, "play re-dispatched to pull-2")
	}
	d, _ := dispatch(t, core, path, "play", "flv")
	requireH264AAC720p(t, ffprobe(t, d.URL))
	require.Eventually(t, func() bool { return !c.nodeIDs(core)["pull-1"] }, clusterTTL+time.Second, 100*time.Millisecond,
		"pull-1 gone from the inventory")
	t.Logf("pull-1 left the inventory %s after kill -9", time.Since(killedAt).Round(100*time.Millisecond))

	// Drain pull-2 through the API: no new viewer is sent to it (there is no
	// other pull node left, so dispatch has none), its viewers stay.
	drain := func(method string) {
		require.Equal(t, http.StatusOK, apiDo(t, method, "http://"+core.HTTPAddr+"/api/v1/nodes/pull-2/drain", "", nil),
			"%s drain", method)
	}
	drain(http.MethodPut)
	_, code = dispatch(t, core, path, "play", "flv")
	require.Equal(t, http.StatusServiceUnavailable, code, "a drained node gets no new viewers")
	for i, v := range viewers["pull-2"] {
		require.NoError(t, v.failed(), "pull-2 viewer %d stays while draining", i)
	}
	drain(http.MethodDelete)
	d, code = dispatch(t, core, path, "play", "flv")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "pull-2", d.Node)

	// kill -9 of the exchange node holding the recording job: the other
	// exchange node takes it over; what was stored stays.
	recOwner := c.leaseOwner(core, "jobs", "record", path)
	other := map[string]string{"pub-1": "pub-2", "pub-2": "pub-1"}
	var before map[string]bool
	require.Eventually(t, func() bool {
		before = recordedSegments(t, c.nodes[other[recOwner]], path)
		return len(before) > 0
	}, 15*time.Second, 250*time.Millisecond, "segments recorded before the kill")
	c.kill(recOwner)
	killedAt = time.Now()
	wasPublisher := recOwner == pubNode
	var republished time.Duration
	if wasPublisher {
		// The publish node died too: ffmpeg republishes through dispatch
		// and lands on the other publish node; pull-2's viewers resume
		// without reconnecting (publisher grace).
		pub.kill()
		pub, pubNode = publishThroughDispatch(t, core, path, clusterTTL+15*time.Second)
		republished = time.Since(killedAt)
		require.Equal(t, other[recOwner], pubNode)
	}
	require.Eventually(t, func() bool { return c.leaseOwner(core, "jobs", "record", path) == other[recOwner] },
		clusterTTL+5*time.Second, 100*time.Millisecond, "record job taken over")
	t.Logf("record job taken over %s after kill -9 (publish node died too: %v)", time.Since(killedAt).Round(100*time.Millisecond), wasPublisher)
	// The recording's hole around the kill: at most the TTL (the lease
	// expires, or sooner once the node is presumed dead; another exchange
	// node claims the job and relays the stream from its GOP cache on),
	// plus the segment being written when the node died (a segment ends
	// at a keyframe: the test stream's 2 s GOP). When the publish node
	// died too, plus the time ffmpeg took to republish.
	allowed := clusterTTL + 2*time.Second + republished
	time.Sleep(4 * time.Second)
	gap := longestGap(t, c.nodes[other[recOwner]], path)
	t.Logf("longest recording gap %s (allowed %s)", gap.Round(10*time.Millisecond), allowed.Round(10*time.Millisecond))
	require.LessOrEqual(t, gap, allowed, "recording gap across the exchange node's death")
	if !wasPublisher {
		// The exchange node was not the publish node: now kill the publish
		// node too, after bringing the first one back.
		c.start(recOwner, c.ips[recOwner], c.roles[recOwner])
		require.Eventually(t, func() bool { return c.nodeIDs(core)[recOwner] }, 10*time.Second, 100*time.Millisecond)
		c.kill(pubNode)
		pub.kill()
		dead := pubNode
		pub, pubNode = publishThroughDispatch(t, core, path, clusterTTL+15*time.Second)
		require.NotEqual(t, dead, pubNode)
	}
	// pull-2's viewers never reconnected and receive the new publisher's media.
	mid := make([]int64, len(viewers["pull-2"]))
	for i, v := range viewers["pull-2"] {
		mid[i] = v.bytes.Load()
	}
	time.Sleep(4 * time.Second)
	for i, v := range viewers["pull-2"] {
		require.NoError(t, v.failed(), "pull-2 viewer %d kept its connection", i)
		require.Greater(t, v.bytes.Load(), mid[i]+100_000, "pull-2 viewer %d receives media again", i)
	}
	time.Sleep(3 * time.Second)
	after := recordedSegments(t, c.nodes[pubNode], path)
	for key := range before {
		require.Contains(t, after, key, "segment stored before the kill is still there")
	}

	// Redis restarted: nodes re-register and the route is rebuilt.
	c.redis.Restart()
	require.Eventually(t, func() bool {
		ids := c.nodeIDs(core)
		return ids["core-1"] && ids["pull-2"] && ids[pubNode] &&
			c.leaseOwner(core, "routes", "route", path) == pubNode &&
			c.leaseOwner(core, "jobs", "record", path) != ""
	}, 2*clusterTTL+3*time.Second, 200*time.Millisecond, "registry rebuilt after the Redis restart: nodes %v routes %v",
		c.nodeIDs(core), c.leases(core, "routes"))
	for i, v := range viewers["pull-2"] {
		require.NoError(t, v.failed(), "pull-2 viewer %d survived the Redis restart", i)
	}
	pub.stop()
}

// longestGap returns the longest hole in the recording of path in the last
// ten minutes, as the recordings API lists it.
func longestGap(t *testing.T, s *server, path string) time.Duration {
	q := url.Values{"path": {path}, "from": {time.Now().Add(-10 * time.Minute).UTC().Format(time.RFC3339)},
		"to": {time.Now().Add(time.Minute).UTC().Format(time.RFC3339)}}
	var out struct {
		Spans []struct {
			Duration float64 `json:"duration"`
		} `json:"spans"`
		Gaps []struct {
			Duration float64 `json:"duration"`
		} `json:"gaps"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, "http://"+s.HTTPAddr+"/api/v1/recordings?"+q.Encode(), &out))
	require.NotEmpty(t, out.Spans)
	var longest time.Duration
	for _, g := range out.Gaps {
		longest = max(longest, time.Duration(g.Duration*float64(time.Second)))
	}
	return longest
}

// recordedSegments returns the names of the segments of path listed by s's
// VOD playlist of the last minutes.
func recordedSegments(t *testing.T, s *server, path string) map[string]bool {
	from := time.Now().Add(-10 * time.Minute).UTC().Format(time.RFC3339)
	to := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	resp, err := httpClient.Get("http://" + s.HTTPAddr + "/vod/" + path + "/index.m3u8?from=" + from + "&to=" + to)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "seg/") || strings.Contains(line, ".mp4") && !strings.HasPrefix(line, "#") {
			out[line] = true
		}
	}
	return out
}
