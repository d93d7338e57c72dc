package dispatch

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/config"
)

var t0 = time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC)

// node returns a fresh node with roles, HTTP and RTMP listeners and cores.
func node(id string, roles ...string) cluster.Node {
	return cluster.Node{ID: id, Roles: roles, Weight: 1, HTTP: "http://" + id + ":8080", RTMP: id + ":1935", Seen: t0, Load: cluster.Load{Cores: 4}}
}

func with(n cluster.Node, f func(*cluster.Node)) cluster.Node { f(&n); return n }

var pol = Policy{Kind: PolicyLeastLoaded, CPUWeight: 50, ConnectionsWeight: 25, BandwidthWeight: 25, Fresh: 6 * time.Second}

func TestSelect(t *testing.T) {
	play := Request{Path: "live/cam1", Action: ActionPlay, Protocol: ProtoFLV}
	pub := Request{Path: "live/cam1", Action: ActionPublish, Protocol: ProtoRTMP}
	busy := func(n cluster.Node, conns int) cluster.Node {
		return with(n, func(n *cluster.Node) { n.Load.Connections = conns })
	}
	cases := []struct {
		name  string
		nodes []cluster.Node
		req   Request
		pol   Policy
		want  string // "" expects ErrNoNode
	}{
		{"least loaded pull", []cluster.Node{busy(node("a", "pull"), 500), busy(node("b", "pull"), 100), busy(node("c", "pull"), 900)}, play, pol, "b"},
		{"play skips publish nodes", []cluster.Node{node("a", "publish"), busy(node("b", "pull"), 900)}, play, pol, "b"},
		{"publish skips pull nodes", []cluster.Node{node("a", "pull"), busy(node("b", "publish"), 900)}, pub, pol, "b"},
		{"draining skipped", []cluster.Node{with(node("a", "pull"), func(n *cluster.Node) { n.Draining = true }), busy(node("b", "pull"), 900)}, play, pol, "b"},
		{"stale skipped", []cluster.Node{with(node("a", "pull"), func(n *cluster.Node) { n.Seen = t0.Add(-7 * time.Second) }), busy(node("b", "pull"), 900)}, play, pol, "b"},
		{"fresh 0 keeps old", []cluster.Node{with(node("a", "pull"), func(n *cluster.Node) { n.Seen = t0.Add(-time.Hour) })}, play, Policy{Kind: PolicyLeastLoaded}, "a"},
		{"rtmp needs listener", []cluster.Node{with(node("a", "pull"), func(n *cluster.Node) { n.RTMP = "" }), busy(node("b", "pull"), 900)}, Request{Path: "live/x", Action: ActionPlay, Protocol: ProtoRTMP}, pol, "b"},
		{"http needs listener", []cluster.Node{with(node("a", "pull"), func(n *cluster.Node) { n.HTTP = "" }), busy(node("b", "pull"), 900)}, play, pol, "b"},
		{"region preferred over load", []cluster.Node{busy(node("a", "pull"), 0), with(busy(node("b", "pull"), 900), func(n *cluster.Node) { n.Region = "eu" })}, Request{Path: "live/x", Action: ActionPlay, Protocol: ProtoHLS, Region: "eu"}, pol, "b"},
		{"region falls back", []cluster.Node{busy(node("a", "pull"), 100), with(busy(node("b", "pull"), 900), func(n *cluster.Node) { n.Region = "us" })}, Request{Path: "live/x", Action: ActionPlay, Protocol: ProtoHLS, Region: "eu"}, pol, "a"},
		{"weight scales score", []cluster.Node{busy(node("a", "pull"), 300), with(busy(node("b", "pull"), 500), func(n *cluster.Node) { n.Weight = 2 })}, play, pol, "b"},
		{"cpu per core", []cluster.Node{with(node("a", "pull"), func(n *cluster.Node) { n.Load.CPU = 2 }), with(node("b", "pull"), func(n *cluster.Node) { n.Load.CPU = 3; n.Load.Cores = 16 })}, play, pol, "b"},
		{"bandwidth", []cluster.Node{with(node("a", "pull"), func(n *cluster.Node) { n.Load.EgressBps = 800e6 }), with(node("b", "pull"), func(n *cluster.Node) { n.Load.IngressBps = 100e6 })}, play, pol, "b"},
		{"route owner wins", []cluster.Node{node("a", "publish"), busy(node("b", "publish"), 900)}, with2(pub, "b"), pol, "b"},
		{"draining owner ignored", []cluster.Node{busy(node("a", "publish"), 900), with(node("b", "publish"), func(n *cluster.Node) { n.Draining = true })}, with2(pub, "b"), pol, "a"},
		{"dead owner ignored", []cluster.Node{busy(node("a", "publish"), 900)}, with2(pub, "gone"), pol, "a"},
		{"stale owner ignored", []cluster.Node{busy(node("a", "publish"), 900), with(node("b", "publish"), func(n *cluster.Node) { n.Seen = t0.Add(-time.Minute) })}, with2(pub, "b"), pol, "a"},
		{"owner without listener", []cluster.Node{node("a", "publish"), with(node("b", "publish"), func(n *cluster.Node) { n.RTMP = "" })}, with2(pub, "b"), pol, ""},
		{"whip on publish", []cluster.Node{node("a", "pull"), node("b", "publish")}, Request{Path: "live/x", Action: ActionPublish, Protocol: ProtoWHIP}, pol, "b"},
		{"no nodes", nil, play, pol, ""},
		{"only wrong role", []cluster.Node{node("a", "core", "exchange")}, play, pol, ""},
		{"srt", []cluster.Node{node("a", "pull")}, Request{Path: "live/x", Action: ActionPlay, Protocol: ProtoSRT}, pol, ""},
		{"random single", []cluster.Node{node("a", "publish"), node("b", "pull")}, play, Policy{Kind: PolicyRandom}, "b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := Select(c.nodes, c.req, c.pol, t0, rand.New(rand.NewPCG(1, 2)))
			if c.want == "" {
				require.ErrorIs(t, err, ErrNoNode)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, n.ID)
		})
	}
}

func with2(r Request, owner string) Request { r.Owner = owner; return r }

func TestSelectErrorSaysWhy(t *testing.T) {
	nodes := []cluster.Node{node("a", "publish"), with(node("b", "pull"), func(n *cluster.Node) { n.Draining = true }), with(node("c", "pull"), func(n *cluster.Node) { n.Seen = t0.Add(-time.Minute) })}
	_, err := Select(nodes, Request{Path: "live/x", Action: ActionPlay, Protocol: ProtoHLS}, pol, t0, nil)
	require.ErrorIs(t, err, ErrNoNode)
	assert.Contains(t, err.Error(), "1 without the role, 1 draining, 1 stale")
	_, err = Select(nil, Request{Path: "live/x", Action: ActionPlay, Protocol: ProtoSRT}, pol, t0, nil)
	assert.Contains(t, err.Error(), "no node serves srt")
}

func TestTiesSpread(t *testing.T) {
	nodes := []cluster.Node{node("a", "pull"), node("b", "pull"), node("c", "pull"), busy2(node("d", "pull"))}
	rnd := rand.New(rand.NewPCG(7, 7))
	seen := map[string]int{}
	for range 300 {
		n, err := Select(nodes, Request{Path: "live/x", Action: ActionPlay, Protocol: ProtoFLV}, pol, t0, rnd)
		require.NoError(t, err)
		seen[n.ID]++
	}
	assert.Zero(t, seen["d"], "the loaded node is not tied")
	for _, id := range []string{"a", "b", "c"} {
		assert.Greater(t, seen[id], 50, "idle node %s gets its share: %v", id, seen)
	}
	// Without a random source the choice is stable for a client.
	req := Request{Path: "live/x", Action: ActionPlay, Protocol: ProtoFLV, ClientIP: "192.0.2.7"}
	first, err := Select(nodes, req, pol, t0, nil)
	require.NoError(t, err)
	for range 10 {
		n, _ := Select(nodes, req, pol, t0, nil)
		assert.Equal(t, first.ID, n.ID)
	}
}

func busy2(n cluster.Node) cluster.Node { n.Load.Connections = 800; return n }

func TestRandomWeighted(t *testing.T) {
	nodes := []cluster.Node{node("a", "pull"), with(node("b", "pull"), func(n *cluster.Node) { n.Weight = 3 })}
	rnd := rand.New(rand.NewPCG(3, 4))
	seen := map[string]int{}
	for range 4000 {
		n, err := Select(nodes, Request{Path: "live/x", Action: ActionPlay, Protocol: ProtoWHEP}, Policy{Kind: PolicyRandom}, t0, rnd)
		require.NoError(t, err)
		seen[n.ID]++
	}
	// b has 3/4 of the weight: expect ~3000, far from the 2000 of a uniform draw.
	assert.InDelta(t, 3000, seen["b"], 200, "%v", seen)
}

// TestSelectProperty checks on random clusters that Select never returns a
// node of the wrong role, draining, stale or without the listener, and
// returns ErrNoNode only when no node is suitable.
func TestSelectProperty(t *testing.T) {
	rnd := rand.New(rand.NewPCG(11, 13))
	protos := []string{ProtoRTMP, ProtoFLV, ProtoWSFLV, ProtoHLS, ProtoWHEP, ProtoWHIP}
	roles := []string{cluster.RolePublish, cluster.RolePull, cluster.RoleCore, cluster.RoleExchange}
	for iter := range 2000 {
		nodes := make([]cluster.Node, rnd.IntN(12))
		for i := range nodes {
			n := node(fmt.Sprintf("n%02d", i))
			for _, r := range roles {
				if rnd.IntN(2) == 0 {
					n.Roles = append(n.Roles, r)
				}
			}
			n.Draining = rnd.IntN(4) == 0
			n.Seen = t0.Add(-time.Duration(rnd.IntN(10)) * time.Second)
			if rnd.IntN(4) == 0 {
				n.RTMP = ""
			}
			if rnd.IntN(6) == 0 {
				n.HTTP = ""
			}
			n.Region = []string{"", "eu", "us"}[rnd.IntN(3)]
			n.Weight = float64(rnd.IntN(3))
			n.Load = cluster.Load{CPU: rnd.Float64() * 8, Cores: rnd.IntN(9), Connections: rnd.IntN(3000), EgressBps: rnd.Int64N(3e9)}
			nodes[i] = n
		}
		req := Request{Path: "live/x", Protocol: protos[rnd.IntN(len(protos))], Region: []string{"", "eu", "us"}[rnd.IntN(3)]}
		req.Action = ActionPlay
		if req.Protocol == ProtoWHIP || (req.Protocol == ProtoRTMP && rnd.IntN(2) == 0) {
			req.Action = ActionPublish
		}
		if len(nodes) > 0 && rnd.IntN(3) == 0 {
			req.Owner = nodes[rnd.IntN(len(nodes))].ID
		}
		p := pol
		if rnd.IntN(2) == 0 {
			p.Kind = PolicyRandom
		}
		role := req.role()
		suitable := func(n *cluster.Node) bool {
			return n.HasRole(role) && !n.Draining && t0.Sub(n.Seen) <= p.Fresh && Serves(n, req.Protocol)
		}
		anySuitable, regional := false, false
		for i := range nodes {
			if suitable(&nodes[i]) {
				anySuitable = true
				regional = regional || (req.Region != "" && nodes[i].Region == req.Region)
			}
		}
		got, err := Select(nodes, req, p, t0, rnd)
		if err != nil {
			require.ErrorIs(t, err, ErrNoNode, "iter %d", iter)
			if anySuitable {
				// Only an alive owner without the listener may refuse.
				require.NotEmpty(t, req.Owner, "iter %d: %v", iter, err)
			}
			continue
		}
		require.True(t, suitable(&got), "iter %d: picked unsuitable %+v for %+v", iter, got, req)
		if regional && req.Owner != got.ID {
			require.Equal(t, req.Region, got.Region, "iter %d", iter)
		}
		u, err := URL(got, req)
		require.NoError(t, err)
		require.NotEmpty(t, u)
	}
}

func TestURL(t *testing.T) {
	n := node("a", "pull")
	n.HTTP = "http://10.0.0.21:8080/"
	n.RTMP = "10.0.0.21:1935"
	cases := []struct{ proto, query, want string }{
		{ProtoRTMP, "", "rtmp://10.0.0.21:1935/live/cam1"},
		{ProtoRTMP, "token=abc", "rtmp://10.0.0.21:1935/live/cam1?token=abc"},
		{ProtoFLV, "token=a%20b&x=1", "http://10.0.0.21:8080/live/cam1.flv?token=a%20b&x=1"},
		{ProtoWSFLV, "", "ws://10.0.0.21:8080/live/cam1.flv"},
		{ProtoHLS, "", "http://10.0.0.21:8080/live/cam1/index.m3u8"},
		{ProtoWHEP, "", "http://10.0.0.21:8080/live/cam1/whep"},
		{ProtoWHIP, "t=1", "http://10.0.0.21:8080/live/cam1/whip?t=1"},
	}
	for _, c := range cases {
		u, err := URL(n, Request{Path: "live/cam1", Protocol: c.proto, Query: c.query})
		require.NoError(t, err, c.proto)
		assert.Equal(t, c.want, u, c.proto)
	}
	n.HTTP = "https://edge.example:443"
	u, err := URL(n, Request{Path: "live/cam1", Protocol: ProtoWSFLV})
	require.NoError(t, err)
	assert.Equal(t, "wss://edge.example:443/live/cam1.flv", u)

	_, err = URL(n, Request{Path: "live/cam1", Protocol: ProtoSRT})
	require.ErrorIs(t, err, ErrNoNode)
	assert.Contains(t, err.Error(), "no node serves srt")
	n.RTMP = ""
	_, err = URL(n, Request{Path: "live/cam1", Protocol: ProtoRTMP})
	require.ErrorIs(t, err, ErrNoNode)
	n.HTTP = "ftp://x"
	_, err = URL(n, Request{Path: "live/cam1", Protocol: ProtoWSFLV})
	require.ErrorIs(t, err, ErrNoNode)
}

func TestValidate(t *testing.T) {
	ok := []Request{
		{Path: "live/cam1", Action: ActionPlay, Protocol: ProtoFLV},
		{Path: "live/cam1", Action: ActionPublish, Protocol: ProtoWHIP},
		{Path: "live/cam1", Action: ActionPublish, Protocol: ProtoSRT},
	}
	for _, r := range ok {
		require.NoError(t, r.Validate(), "%+v", r)
	}
	bad := []struct {
		r    Request
		word string
	}{
		{Request{Path: "live/cam1", Action: "watch", Protocol: ProtoFLV}, "action"},
		{Request{Path: "live/cam1", Action: ActionPlay, Protocol: "dash"}, "protocol"},
		{Request{Path: "live/cam1", Action: ActionPlay, Protocol: ProtoWHIP}, "cannot play"},
		{Request{Path: "live/cam1", Action: ActionPublish, Protocol: ProtoHLS}, "cannot publish"},
		{Request{Path: "live/../x", Action: ActionPlay, Protocol: ProtoFLV}, "path"},
		{Request{Path: "", Action: ActionPlay, Protocol: ProtoFLV}, "path"},
		{Request{Path: "a/b/c", Action: ActionPlay, Protocol: ProtoFLV}, "app/stream"},
		{Request{Path: "cam1", Action: ActionPlay, Protocol: ProtoFLV}, "app/stream"},
	}
	for _, c := range bad {
		err := c.r.Validate()
		require.ErrorIs(t, err, ErrBadRequest, "%+v", c.r)
		assert.Contains(t, err.Error(), c.word)
	}
}

func TestScore(t *testing.T) {
	n := node("a", "pull")
	assert.Zero(t, Score(&n, pol))
	n.Load = cluster.Load{CPU: 4, Cores: 4, Connections: ConnectionsRef, IngressBps: BandwidthRef / 2, EgressBps: BandwidthRef / 2}
	assert.InDelta(t, 1.0, Score(&n, pol), 1e-9)
	n.Weight = 2
	assert.InDelta(t, 0.5, Score(&n, pol), 1e-9)
	n.Weight = 0 // unset counts as 1
	n.Load = cluster.Load{Connections: ConnectionsRef}
	assert.InDelta(t, 0.25, Score(&n, pol), 1e-9)
	assert.InDelta(t, 0.25, Score(&n, Policy{}), 1e-9, "all-zero weights default to 50/25/25")
	assert.InDelta(t, 1.0, Score(&n, Policy{ConnectionsWeight: 10}), 1e-9)
}

func TestFromConfig(t *testing.T) {
	c := config.Cluster{TTL: 9 * time.Second, Dispatch: config.Dispatch{Policy: "random", CPUWeight: 1, ConnectionsWeight: 2, BandwidthWeight: 3}}
	assert.Equal(t, Policy{Kind: PolicyRandom, CPUWeight: 1, ConnectionsWeight: 2, BandwidthWeight: 3, Fresh: 6 * time.Second}, FromConfig(c))
}

func BenchmarkSelect(b *testing.B) {
	nodes := make([]cluster.Node, 100)
	for i := range nodes {
		n := node(fmt.Sprintf("node-%03d", i), "pull", "publish")
		n.Region = []string{"eu", "us"}[i%2]
		n.Load.Connections = (i * 37) % 1000
		n.Load.CPU = float64(i%8) / 2
		nodes[i] = n
	}
	req := Request{Path: "live/cam1", Action: ActionPlay, Protocol: ProtoHLS, Region: "eu"}
	rnd := rand.New(rand.NewPCG(1, 1))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Select(nodes, req, pol, t0, rnd); err != nil {
			b.Fatal(err)
		}
	}
}
