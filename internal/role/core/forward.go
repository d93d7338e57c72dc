package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/relay"
)

// HeaderForwarded marks an API request one node's core forwarded to
// another node (its value is the forwarding node's id): it is answered
// from the receiving node's own hub and never forwarded again.
const HeaderForwarded = "X-Quasipaa-Forwarded"

// Stream list scopes (GET /api/v1/streams?scope=).
const (
	// ScopeLocal lists the streams of the node's own hub.
	ScopeLocal = "local"
	// ScopeCluster lists every routed stream of the cluster as its publish
	// node reports it.
	ScopeCluster = "cluster"
)

const (
	// DefaultForwardTimeout bounds one forwarded request when
	// WithForwarding is given 0.
	DefaultForwardTimeout = 2 * time.Second
	// maxForwardBody caps the body read from another node.
	maxForwardBody = 32 << 20
	// maxForwardFanout is the most nodes asked at once for a cluster list.
	maxForwardFanout = 16
)

// errNodeAnswer wraps an answer of another node that cannot be passed on.
var errNodeAnswer = errors.New("unexpected answer")

// forwarder sends API requests to other nodes, signed with the cluster secret.
type forwarder struct {
	secret  string
	timeout time.Duration
	client  *http.Client
}

// WithForwarding makes a core node's streams endpoints answer for the whole
// cluster: the stream list covers every route lease, the detail and kicks
// of a stream held by another node are forwarded to it (signed with
// secret, the cluster secret, see relay.Sign), and ?node= asks a given
// node. Each forwarded request is bounded by timeout (0 is
// DefaultForwardTimeout). It takes effect only with WithCluster, a
// non-empty secret and the core role in SelfInfo.Roles; the receiving
// nodes accept the signed requests with RequireKeys(..., TrustCluster(secret)).
func WithForwarding(secret string, timeout time.Duration) Option {
	return func(a *API) {
		if secret == "" {
			return
		}
		if timeout <= 0 {
			timeout = DefaultForwardTimeout
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil // node-to-node traffic never goes through a proxy
		tr.MaxIdleConnsPerHost = 4
		tr.IdleConnTimeout = 30 * time.Second
		a.fwd = &forwarder{secret: secret, timeout: timeout, client: &http.Client{
			Transport: tr,
			// An answer is passed on as is: a redirect is not followed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}}
	}
}

// forwards reports whether r may be forwarded to other nodes: the API has
// forwarding, a registry and the core role, and r was not itself forwarded.
func (a *API) forwards(r *http.Request) bool {
	return a.fwd != nil && a.cluster != nil && a.cluster.self.has(cluster.RoleCore) && !forwarded(r)
}

// forwarded reports whether r comes from another node's core.
func forwarded(r *http.Request) bool { return r.Header.Get(HeaderForwarded) != "" }

// nodeAnswer is another node's answer to a forwarded request.
type nodeAnswer struct {
	status int
	body   []byte
}

// send makes the signed request method base+escapedPath?query to another
// node and reads its answer (at most maxForwardBody bytes).
func (a *API) send(ctx context.Context, method, base, escapedPath, query string) (nodeAnswer, error) {
	bu, err := url.Parse(strings.TrimSuffix(base, "/"))
	if err != nil || (bu.Scheme != "http" && bu.Scheme != "https") || bu.Host == "" {
		return nodeAnswer{}, fmt.Errorf("bad node address %q", base)
	}
	target := bu.String() + escapedPath
	if query != "" {
		target += "?" + query
	}
	ctx, cancel := context.WithTimeout(ctx, a.fwd.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return nodeAnswer{}, err
	}
	relay.Sign(req, a.fwd.secret, a.cluster.self.ID)
	req.Header.Set(HeaderForwarded, a.cluster.self.ID)
	req.Header.Set("Accept", "application/json")
	resp, err := a.fwd.client.Do(req)
	if err != nil {
		return nodeAnswer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxForwardBody+1))
	if err != nil {
		return nodeAnswer{}, err
	}
	if len(body) > maxForwardBody {
		return nodeAnswer{}, fmt.Errorf("%w: body over %d bytes", errNodeAnswer, maxForwardBody)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nodeAnswer{}, fmt.Errorf("%w: status %d, the node refused the cluster signature (same cluster.secret? RequireKeys with TrustCluster?)", errNodeAnswer, resp.StatusCode)
	case resp.StatusCode == http.StatusNoContent:
	case !isJSON(resp.Header.Get("Content-Type")) || !json.Valid(body):
		return nodeAnswer{}, fmt.Errorf("%w: status %d with a %q body that is not the API's JSON", errNodeAnswer, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return nodeAnswer{status: resp.StatusCode, body: body}, nil
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// nodeUnreachable answers a forwarded request that failed.
func nodeUnreachable(w http.ResponseWriter, node string, err error) {
	WriteError(w, http.StatusBadGateway, "node_unreachable", "node "+node+": "+err.Error())
}

// forwardTo forwards r (method, path, query without node and scope) to the
// node id and passes its answer on; the registry and transport failures
// are answered 503, 404 node_not_found and 502 node_unreachable.
func (a *API) forwardTo(w http.ResponseWriter, r *http.Request, id string) {
	ctx, cancel := a.cluster.ctx(r)
	n, ok := a.findNode(ctx, w, id)
	cancel()
	if !ok {
		return
	}
	start := time.Now()
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet // its body is dropped by net/http
	}
	ans, err := a.send(r.Context(), method, n.HTTP, r.URL.EscapedPath(), keepQuery(r.URL.RawQuery, []string{"node", "scope"}))
	if err != nil {
		a.log.Warn("forwarded API request failed", "node", id, "method", r.Method, "path", r.URL.Path, "err", err)
		nodeUnreachable(w, id, err)
		return
	}
	a.log.Debug("API request forwarded", "node", id, "method", r.Method, "path", r.URL.Path,
		"status", ans.status, "took", time.Since(start))
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		a.log.Info("API request forwarded", "node", id, "method", r.Method, "path", r.URL.Path,
			"status", ans.status, "key", KeyName(r.Context()))
	}
	if ans.status == http.StatusNoContent {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	setJSONHeaders(w)
	w.WriteHeader(ans.status)
	_, _ = w.Write(ans.body)
}

// routeOwner returns the node holding the route of path, "" when there is
// none or it is this node.
func (a *API) routeOwner(ctx context.Context, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cluster.opts.Timeout)
	defer cancel()
	l, err := a.cluster.reg.Lease(ctx, cluster.KindRoute, path)
	switch {
	case errors.Is(err, cluster.ErrNotFound):
		return "", nil
	case err != nil:
		return "", err
	case l.Owner == a.cluster.self.ID:
		return "", nil
	}
	return l.Owner, nil
}

// nodeParam reads ?node=: the id of another node to ask ("" for this one),
// answering 400 itself when it is given but cannot be honoured.
func (a *API) nodeParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.URL.Query().Get("node")
	if id == "" || id == a.node || forwarded(r) || (a.cluster != nil && id == a.cluster.self.ID) {
		return "", true
	}
	if !a.forwards(r) {
		WriteError(w, http.StatusBadRequest, "bad_request", "node="+id+" needs a core node of a cluster (cluster.secret set); this node answers for itself only")
		return "", false
	}
	if len(id) > maxNodeIDLen {
		WriteError(w, http.StatusNotFound, "node_not_found", "no live node with an id that long")
		return "", false
	}
	return id, true
}

// NodeErrorJSON is a node a cluster-wide list could not ask.
type NodeErrorJSON struct {
	Node    string `json:"node"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// clusterStreams lists every routed stream of the cluster as its publish
// node reports it: this node's from its hub, the others' asked in
// parallel; the nodes that fail are returned as errors. A registry
// failure is returned as err.
func (a *API) clusterStreams(r *http.Request) ([]StreamJSON, []NodeErrorJSON, error) {
	ctx, cancel := a.cluster.ctx(r)
	routes, err := a.cluster.reg.Leases(ctx, cluster.KindRoute)
	var nodes []cluster.Node
	if err == nil {
		nodes, err = a.cluster.reg.Nodes(ctx)
	}
	cancel()
	if err != nil {
		return nil, nil, err
	}
	byOwner := map[string]map[string]bool{}
	for _, l := range routes {
		if byOwner[l.Owner] == nil {
			byOwner[l.Owner] = map[string]bool{}
		}
		byOwner[l.Owner][l.Path] = true
	}
	addrs := make(map[string]string, len(nodes))
	for _, n := range nodes {
		addrs[n.ID] = n.HTTP
	}
	var (
		mu      sync.Mutex
		streams []StreamJSON
		errs    []NodeErrorJSON
		wg      sync.WaitGroup
		sem     = make(chan struct{}, maxForwardFanout)
	)
	keep := func(owner string, list []StreamJSON) {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range list {
			if byOwner[owner][s.Path] {
				if s.Node == "" {
					s.Node = owner
				}
				streams = append(streams, s)
			}
		}
	}
	fail := func(owner, code string, err error) {
		mu.Lock()
		errs = append(errs, NodeErrorJSON{Node: owner, Code: code, Message: err.Error()})
		mu.Unlock()
	}
	for owner := range byOwner {
		if owner == a.cluster.self.ID {
			keep(owner, a.streamsJSON(a.hub.Streams()))
			continue
		}
		base, ok := addrs[owner]
		if !ok {
			fail(owner, "node_not_found", errors.New("the node holds routes but is not live in the registry"))
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			list, err := a.nodeStreams(r.Context(), base)
			keep(owner, list) // a truncated list is kept, with its error
			if err != nil {
				fail(owner, "node_unreachable", err)
			}
		}()
	}
	wg.Wait()
	slices.SortFunc(streams, func(x, y StreamJSON) int { return strings.Compare(x.Path, y.Path) })
	slices.SortFunc(errs, func(x, y NodeErrorJSON) int { return strings.Compare(x.Node, y.Node) })
	return streams, errs, nil
}

// nodeStreams asks the node at base for its local streams.
func (a *API) nodeStreams(ctx context.Context, base string) ([]StreamJSON, error) {
	ans, err := a.send(ctx, http.MethodGet, base, "/api/v1/streams",
		"scope="+ScopeLocal+"&limit="+strconv.Itoa(MaxStreamsLimit))
	if err != nil {
		return nil, err
	}
	if ans.status != http.StatusOK {
		return nil, fmt.Errorf("%w: status %d: %s", errNodeAnswer, ans.status, errorMessage(ans.body))
	}
	var list StreamsJSON
	if err := json.Unmarshal(ans.body, &list); err != nil {
		return nil, fmt.Errorf("%w: %v", errNodeAnswer, err)
	}
	if list.Total > len(list.Streams) {
		return list.Streams, fmt.Errorf("%w: the node has %d streams, only the first %d are listed", errNodeAnswer, list.Total, len(list.Streams))
	}
	return list.Streams, nil
}

// errorMessage is the message of an API error body, or the body itself.
func errorMessage(body []byte) string {
	var e ErrorJSON
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		return e.Error.Code + ": " + e.Error.Message
	}
	if len(body) > 200 {
		body = body[:200]
	}
	return string(body)
}
