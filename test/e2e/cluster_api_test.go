package e2e

// The cluster-wide streams API of a core node against real nodes of the
// real binary (redis-server registry, ffmpeg publishers, an FLV viewer on a
// pull node): the list covers every node, the detail and the kicks are
// forwarded, signed with the cluster secret, to the node concerned.

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	clusterReadKey  = "cluster-read-key-0123456789"
	clusterAdminKey = "cluster-admin-key-0123456789"
)

type clusterStreamList struct {
	Streams []struct {
		Path string `json:"path"`
		Node string `json:"node"`
	} `json:"streams"`
	Total  int    `json:"total"`
	Scope  string `json:"scope"`
	Errors []struct {
		Node string `json:"node"`
		Code string `json:"code"`
	} `json:"errors"`
}

func (l clusterStreamList) entries() map[string]string {
	out := map[string]string{}
	for _, s := range l.Streams {
		out[s.Path] = s.Node
	}
	return out
}

type clusterStreamDetail struct {
	Path    string         `json:"path"`
	Node    string         `json:"node"`
	Viewers map[string]int `json:"viewers"`
	Clients []struct {
		ID       string `json:"id"`
		Protocol string `json:"protocol"`
	} `json:"clients"`
}

func TestClusterAPI(t *testing.T) {
	requireTools(t, "ffmpeg", "redis-server")
	c := newTestCluster(t, t.TempDir())
	c.common = append(c.common, fmt.Sprintf(`QUASIPAA_API_KEYS=[{name: dash, key: %q, scope: read}, {name: ops, key: %q, scope: admin}]`,
		clusterReadKey, clusterAdminKey))
	core := c.start("core-1", "127.0.0.1", "core")
	common := c.common
	// pub-1 serves its API on a listener of its own: the forwarded requests
	// reach it on its HTTP listener, signed.
	c.common = append(common[:len(common):len(common)], "QUASIPAA_API_LISTEN=127.0.0.2:0")
	c.start("pub-1", "127.0.0.2", "publish")
	c.common = common
	c.start("pub-2", "127.0.0.3", "publish")
	c.start("pull-1", "127.0.0.4", "pull")
	coreAPI := "http://" + core.HTTPAddr + "/api/v1"
	require.Eventually(t, func() bool {
		var out struct {
			Nodes []apiNode `json:"nodes"`
		}
		return apiDo(t, "GET", coreAPI+"/nodes", clusterReadKey, &out) == 200 && len(out.Nodes) == 4
	}, 10*time.Second, 100*time.Millisecond, "four nodes registered")

	publishNoBFrames(t, c.nodes["pub-1"].rtmpURL("live/a"))
	publishNoBFrames(t, c.nodes["pub-2"].rtmpURL("live/b"))

	// The core lists the streams of both publish nodes.
	var list clusterStreamList
	require.Eventually(t, func() bool {
		list = clusterStreamList{}
		return apiDo(t, "GET", coreAPI+"/streams", clusterReadKey, &list) == 200 &&
			list.entries()["live/a"] == "pub-1" && list.entries()["live/b"] == "pub-2"
	}, 20*time.Second, 200*time.Millisecond, "the cluster list: %+v", list)
	require.Equal(t, "cluster", list.Scope)
	require.Empty(t, list.Errors)
	require.Equal(t, 2, list.Total)
	local := clusterStreamList{}
	require.Equal(t, 200, apiDo(t, "GET", coreAPI+"/streams?scope=local", clusterReadKey, &local))
	require.Empty(t, local.Streams, "the core itself holds no stream")

	// A viewer on the pull node; the core shows the stream as its publish
	// node has it (the pull node's relay), and as the pull node has it.
	v := startFLVViewer(c.nodes["pull-1"].flvURL("live/b"))
	defer v.stop()
	var d clusterStreamDetail
	require.Eventually(t, func() bool {
		d = clusterStreamDetail{}
		return apiDo(t, "GET", coreAPI+"/streams/live/b?node=pull-1", clusterReadKey, &d) == 200 && d.Viewers["flv"] == 1
	}, 10*time.Second, 100*time.Millisecond, "the pull node's view through the core: %+v", d)
	require.Equal(t, "pull-1", d.Node)
	var owner clusterStreamDetail
	require.Equal(t, 200, apiDo(t, "GET", coreAPI+"/streams/live/b", clusterReadKey, &owner))
	require.Equal(t, "pub-2", owner.Node)
	require.Equal(t, 1, owner.Viewers["relay"], "the publish node's readers: %+v", owner)

	// Forwarded detail latency, against the same request to the node.
	const n = 50
	start := time.Now()
	for range n {
		require.Equal(t, 200, apiDo(t, "GET", coreAPI+"/streams/live/b", clusterReadKey, nil))
	}
	forwarded := time.Since(start) / n
	start = time.Now()
	for range n {
		require.Equal(t, 200, apiDo(t, "GET", "http://"+c.nodes["pub-2"].HTTPAddr+"/api/v1/streams/live/b", clusterReadKey, nil))
	}
	t.Logf("stream detail: through the core %s, on the node %s (mean of %d)", forwarded, time.Since(start)/n, n)

	// Kick the viewer on the pull node through the core.
	var viewer string
	for _, cl := range d.Clients {
		if cl.Protocol == "flv" {
			viewer = cl.ID
		}
	}
	require.NotEmpty(t, viewer)
	require.Equal(t, http.StatusForbidden, apiDo(t, "DELETE", coreAPI+"/clients/"+viewer+"?path=live/b&node=pull-1", clusterReadKey, nil))
	require.Equal(t, http.StatusNoContent, apiDo(t, "DELETE", coreAPI+"/clients/"+viewer+"?path=live/b&node=pull-1", clusterAdminKey, nil))
	require.Eventually(t, func() bool { return v.failed() != nil }, 5*time.Second, 50*time.Millisecond, "the viewer is disconnected")
	require.Contains(t, c.nodes["pull-1"].logs.String(), "node:core-1", "the pull node logs the core as the caller")

	// End live/a on pub-1 (API on its own listener) through the core.
	require.Equal(t, http.StatusNoContent, apiDo(t, "DELETE", coreAPI+"/streams/live/a", clusterAdminKey, nil))
	require.Eventually(t, func() bool {
		l := clusterStreamList{}
		return apiDo(t, "GET", coreAPI+"/streams", clusterReadKey, &l) == 200 && l.entries()["live/a"] == ""
	}, 10*time.Second, 100*time.Millisecond, "live/a ended")

	// Only a good signature stands for a key; pub-1's HTTP listener answers
	// signed API requests only.
	for _, target := range []string{c.nodes["pub-2"].HTTPAddr, c.nodes["pub-1"].HTTPAddr} {
		req, _ := http.NewRequest("DELETE", "http://"+target+"/api/v1/streams/live/b", nil)
		req.Header.Set("X-Quasipaa-Node", "core-1")
		req.Header.Set("X-Quasipaa-Time", fmt.Sprint(time.Now().Unix()))
		req.Header.Set("X-Quasipaa-Signature", strings.Repeat("0", 64))
		req.Header.Set("X-Quasipaa-Forwarded", "core-1")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, target)
	}

	// pub-2 dies: until its route expires, the core's list names it in
	// errors, and the detail answers 502.
	c.kill("pub-2")
	l := clusterStreamList{}
	require.Equal(t, 200, apiDo(t, "GET", coreAPI+"/streams", clusterReadKey, &l))
	require.NotContains(t, l.entries(), "live/b")
	require.Len(t, l.Errors, 1, "the route outlives the node by up to cluster.ttl (3 s): %+v", l)
	require.Equal(t, "pub-2", l.Errors[0].Node)
	require.Contains(t, []string{"node_unreachable", "node_not_found"}, l.Errors[0].Code)
	code := apiDo(t, "GET", coreAPI+"/streams/live/b", clusterReadKey, nil)
	require.Contains(t, []int{http.StatusBadGateway, http.StatusNotFound}, code)
}
