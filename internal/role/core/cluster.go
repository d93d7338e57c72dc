package core

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/quasipaa/quasipaa/internal/auth"
	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/dispatch"
	"github.com/quasipaa/quasipaa/internal/protocol/ws"
	"github.com/quasipaa/quasipaa/internal/streampath"
)

// SelfInfo describes the node the API runs on.
type SelfInfo struct {
	// ID is the node's cluster.node_id.
	ID string
	// Roles are the roles the node runs (cluster.Role* names).
	Roles []string
	// Region is the node's cluster.region; redirects prefer nodes of it.
	Region string
}

// has reports whether the node runs role.
func (s SelfInfo) has(role string) bool { return slices.Contains(s.Roles, role) }

// DispatchOptions configures the dispatch endpoint and the redirects.
type DispatchOptions struct {
	// Policy ranks the suitable nodes (see dispatch.FromConfig).
	Policy dispatch.Policy
	// Timeout bounds each registry call of a request; 0 is 3 s.
	Timeout time.Duration
	// Now reads the clock; nil is time.Now (tests set it).
	Now func() time.Time
}

// maxNodeIDLen is the longest node ID the registries accept.
const maxNodeIDLen = 256

// defaultRegistryTimeout bounds a registry call when DispatchOptions.Timeout is 0.
const defaultRegistryTimeout = 3 * time.Second

// clusterAPI is the state of the cluster endpoints.
type clusterAPI struct {
	reg  cluster.Registry
	self SelfInfo
	opts DispatchOptions

	mu  sync.Mutex
	rnd *rand.Rand // guarded by mu
	// pending counts the clients dispatched to each node since its last
	// heartbeat (its Seen), which its reported load does not include yet;
	// guarded by mu.
	pending map[string]pendingCount
}

// pendingCount is the clients dispatched to a node since its heartbeat at seen.
type pendingCount struct {
	seen time.Time
	n    int
}

// WithCluster serves the cluster endpoints (nodes, drain, dispatch, routes,
// jobs) over reg and enables Redirect; self is the node the API runs on.
func WithCluster(reg cluster.Registry, self SelfInfo, opts DispatchOptions) Option {
	return func(a *API) {
		if opts.Timeout <= 0 {
			opts.Timeout = defaultRegistryTimeout
		}
		if opts.Now == nil {
			opts.Now = time.Now
		}
		a.cluster = &clusterAPI{
			reg:     reg,
			self:    self,
			opts:    opts,
			rnd:     rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
			pending: make(map[string]pendingCount),
		}
	}
}

// registerCluster adds the cluster endpoints (nodes, drain, dispatch,
// routes, jobs) when the API has a registry.
func (a *API) registerCluster(mux *http.ServeMux) {
	if a.cluster == nil {
		return
	}
	mux.HandleFunc("GET /api/v1/nodes", a.listNodes)
	mux.HandleFunc("GET /api/v1/nodes/{id}", a.getNode)
	mux.HandleFunc("PUT /api/v1/nodes/{id}/drain", a.drainNode(true))
	mux.HandleFunc("DELETE /api/v1/nodes/{id}/drain", a.drainNode(false))
	mux.HandleFunc("GET /api/v1/dispatch", a.dispatch)
	mux.HandleFunc("GET /api/v1/routes", a.listRoutes)
	mux.HandleFunc("GET /api/v1/jobs", a.listJobs)
}

// NodesJSON is the answer of GET /api/v1/nodes.
type NodesJSON struct {
	Nodes []cluster.Node `json:"nodes"`
}

// RoutesJSON is the answer of GET /api/v1/routes.
type RoutesJSON struct {
	Routes []cluster.Lease `json:"routes"`
}

// JobsJSON is the answer of GET /api/v1/jobs.
type JobsJSON struct {
	Jobs []cluster.Lease `json:"jobs"`
}

// DispatchJSON is the answer of GET /api/v1/dispatch.
type DispatchJSON struct {
	// URL is where the client connects, its query kept.
	URL string `json:"url"`
	// Node is the ID of the chosen node.
	Node string `json:"node"`
	// Action is play or publish.
	Action string `json:"action"`
	// Protocol is the protocol asked for.
	Protocol string `json:"protocol"`
}

// ctx bounds one request's registry calls.
func (c *clusterAPI) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), c.opts.Timeout)
}

// registryError answers a failed registry call.
func registryError(w http.ResponseWriter, err error) {
	WriteError(w, http.StatusServiceUnavailable, "registry_unavailable", "cluster registry: "+err.Error())
}

func (a *API) listNodes(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := a.cluster.ctx(r)
	defer cancel()
	nodes, err := a.cluster.reg.Nodes(ctx)
	if err != nil {
		registryError(w, err)
		return
	}
	if nodes == nil {
		nodes = []cluster.Node{}
	}
	WriteJSON(w, http.StatusOK, NodesJSON{Nodes: nodes})
}

// findNode returns node id, or writes the error and returns false.
func (a *API) findNode(ctx context.Context, w http.ResponseWriter, id string) (cluster.Node, bool) {
	nodes, err := a.cluster.reg.Nodes(ctx)
	if err != nil {
		registryError(w, err)
		return cluster.Node{}, false
	}
	for _, n := range nodes {
		if n.ID == id {
			return n, true
		}
	}
	WriteError(w, http.StatusNotFound, "node_not_found", "no live node with id "+id)
	return cluster.Node{}, false
}

func (a *API) getNode(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := a.cluster.ctx(r)
	defer cancel()
	if n, ok := a.findNode(ctx, w, r.PathValue("id")); ok {
		WriteJSON(w, http.StatusOK, n)
	}
}

// drainNode sets (PUT) or clears (DELETE) a node's draining flag and
// answers with the node.
func (a *API) drainNode(draining bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := a.cluster.ctx(r)
		defer cancel()
		id := r.PathValue("id")
		if len(id) > maxNodeIDLen {
			WriteError(w, http.StatusNotFound, "node_not_found", "no live node with an id that long")
			return
		}
		if err := a.cluster.reg.SetDraining(ctx, id, draining); err != nil {
			if errors.Is(err, cluster.ErrNotFound) {
				WriteError(w, http.StatusNotFound, "node_not_found", "no live node with id "+id)
				return
			}
			registryError(w, err)
			return
		}
		a.log.Info("node draining changed", "node", id, "draining", draining)
		if n, ok := a.findNode(ctx, w, id); ok {
			WriteJSON(w, http.StatusOK, n)
		}
	}
}

func (a *API) listRoutes(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := a.cluster.ctx(r)
	defer cancel()
	routes, err := a.cluster.reg.Leases(ctx, cluster.KindRoute)
	if err != nil {
		registryError(w, err)
		return
	}
	if routes == nil {
		routes = []cluster.Lease{}
	}
	WriteJSON(w, http.StatusOK, RoutesJSON{Routes: routes})
}

func (a *API) listJobs(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := a.cluster.ctx(r)
	defer cancel()
	jobs := []cluster.Lease{}
	for _, kind := range []string{cluster.KindHLS, cluster.KindRecord} {
		l, err := a.cluster.reg.Leases(ctx, kind)
		if err != nil {
			registryError(w, err)
			return
		}
		jobs = append(jobs, l...)
	}
	slices.SortStableFunc(jobs, func(x, y cluster.Lease) int {
		if c := strings.Compare(x.Path, y.Path); c != 0 {
			return c
		}
		return strings.Compare(x.Kind, y.Kind)
	})
	WriteJSON(w, http.StatusOK, JobsJSON{Jobs: jobs})
}

// dispatchParams are the query parameters the dispatch endpoint reads; the
// others are kept on the produced URL.
var dispatchParams = []string{"path", "action", "protocol", "region"}

func (a *API) dispatch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for _, name := range dispatchParams[:3] {
		if q.Get(name) == "" {
			WriteError(w, http.StatusBadRequest, "bad_request", "query parameter "+name+" is required")
			return
		}
	}
	req := dispatch.Request{
		Path:     q.Get("path"),
		Action:   q.Get("action"),
		Protocol: q.Get("protocol"),
		Region:   q.Get("region"),
		ClientIP: auth.ClientIP(r.RemoteAddr),
		Query:    keepQuery(r.URL.RawQuery, dispatchParams),
	}
	if err := req.Validate(); err != nil {
		WriteError(w, http.StatusBadRequest, "bad_request", strings.TrimPrefix(err.Error(), dispatch.ErrBadRequest.Error()+": "))
		return
	}
	ctx, cancel := a.cluster.ctx(r)
	defer cancel()
	u, n, err := a.cluster.resolve(ctx, req)
	if err != nil {
		a.cluster.writeDispatchError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, DispatchJSON{URL: u, Node: n.ID, Action: req.Action, Protocol: req.Protocol})
}

// writeDispatchError answers a failed resolve.
func (c *clusterAPI) writeDispatchError(w http.ResponseWriter, err error) {
	if errors.Is(err, dispatch.ErrNoNode) {
		WriteError(w, http.StatusServiceUnavailable, "no_node", strings.TrimPrefix(err.Error(), "dispatch: "))
		return
	}
	registryError(w, err)
}

// resolve chooses the node for a validated req and builds its URL: for a
// publish the live route owner is passed to dispatch.Select, and the
// clients dispatched since a node's last heartbeat are added to its
// connections so that a burst does not all land on one node.
func (c *clusterAPI) resolve(ctx context.Context, req dispatch.Request) (string, cluster.Node, error) {
	if req.Action == dispatch.ActionPublish {
		l, err := c.reg.Lease(ctx, cluster.KindRoute, req.Path)
		switch {
		case err == nil:
			req.Owner = l.Owner
		case !errors.Is(err, cluster.ErrNotFound):
			return "", cluster.Node{}, err
		}
	}
	nodes, err := c.reg.Nodes(ctx)
	if err != nil {
		return "", cluster.Node{}, err
	}
	c.mu.Lock()
	for i := range nodes {
		if p, ok := c.pending[nodes[i].ID]; ok && p.seen.Equal(nodes[i].Seen) {
			nodes[i].Load.Connections += p.n
		}
	}
	n, err := dispatch.Select(nodes, req, c.opts.Policy, c.opts.Now(), c.rnd)
	if err == nil {
		p := c.pending[n.ID]
		if !p.seen.Equal(n.Seen) {
			p = pendingCount{seen: n.Seen}
		}
		p.n++
		c.pending[n.ID] = p
		if len(c.pending) > 2*len(nodes)+16 {
			c.prunePendingLocked(nodes)
		}
	}
	c.mu.Unlock()
	if err != nil {
		return "", cluster.Node{}, err
	}
	u, err := dispatch.URL(n, req)
	return u, n, err
}

// prunePendingLocked drops the counts of nodes no longer listed.
func (c *clusterAPI) prunePendingLocked(nodes []cluster.Node) {
	alive := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		alive[n.ID] = true
	}
	for id := range c.pending {
		if !alive[id] {
			delete(c.pending, id)
		}
	}
}

// keepQuery returns raw without the parameters named in drop, keeping the
// order and encoding of the others.
func keepQuery(raw string, drop []string) string {
	if raw == "" {
		return ""
	}
	var kept []string
	for _, kv := range strings.Split(raw, "&") {
		if kv == "" {
			continue
		}
		k, _, _ := strings.Cut(kv, "=")
		if slices.Contains(drop, k) {
			continue
		}
		kept = append(kept, kv)
	}
	return strings.Join(kept, "&")
}

// Redirect answers the client requests this node cannot serve itself with
// 307 Temporary Redirect to a dispatched node (query kept): on a core node
// without the pull role, GET or HEAD /{app}/{stream}.flv (HTTP-FLV, or
// WS-FLV for a WebSocket upgrade), GET or HEAD /{app}/{stream}/index.m3u8
// and POST /{app}/{stream}/whep; on a node without the publish role, POST
// /{app}/{stream}/whip. Redirects prefer nodes of the node's own region.
// Every other request, and every request without WithCluster, goes to next.
func (a *API) Redirect(next http.Handler) http.Handler {
	c := a.cluster
	if c == nil {
		return next
	}
	if !c.self.has(cluster.RoleCore) {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, ok := redirectRequest(r)
		// Requests of other nodes (signed, with X-Quasipaa-Node, e.g. HLS
		// forwarded by a pull node to the exchange node packaging it) are
		// never redirected: they are for this node.
		if !ok || r.Header.Get("X-Quasipaa-Node") != "" || (req.Action == dispatch.ActionPlay && c.self.has(cluster.RolePull)) ||
			(req.Action == dispatch.ActionPublish && c.self.has(cluster.RolePublish)) {
			next.ServeHTTP(w, r)
			return
		}
		req.Region = c.self.Region
		req.ClientIP = auth.ClientIP(r.RemoteAddr)
		req.Query = r.URL.RawQuery
		ctx, cancel := c.ctx(r)
		defer cancel()
		u, n, err := c.resolve(ctx, req)
		if err != nil {
			c.writeDispatchError(w, err)
			return
		}
		a.log.Debug("redirect", "path", req.Path, "action", req.Action, "protocol", req.Protocol, "node", n.ID)
		w.Header().Set("Location", u)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusTemporaryRedirect)
	})
}

// redirectRequest recognises a client URL Redirect handles and returns its
// validated dispatch request.
func redirectRequest(r *http.Request) (dispatch.Request, bool) {
	parts := strings.Split(r.URL.Path, "/")
	if parts[0] != "" {
		return dispatch.Request{}, false
	}
	getOrHead := r.Method == http.MethodGet || r.Method == http.MethodHead
	var req dispatch.Request
	var app, name string
	switch {
	case len(parts) == 3 && getOrHead && strings.HasSuffix(parts[2], ".flv"):
		app, name = parts[1], strings.TrimSuffix(parts[2], ".flv")
		req.Action, req.Protocol = dispatch.ActionPlay, dispatch.ProtoFLV
		if ws.IsUpgrade(r) {
			req.Protocol = dispatch.ProtoWSFLV
		}
	case len(parts) == 4 && getOrHead && parts[3] == "index.m3u8":
		app, name = parts[1], parts[2]
		req.Action, req.Protocol = dispatch.ActionPlay, dispatch.ProtoHLS
	case len(parts) == 4 && r.Method == http.MethodPost && parts[3] == "whep":
		app, name = parts[1], parts[2]
		req.Action, req.Protocol = dispatch.ActionPlay, dispatch.ProtoWHEP
	case len(parts) == 4 && r.Method == http.MethodPost && parts[3] == "whip":
		app, name = parts[1], parts[2]
		req.Action, req.Protocol = dispatch.ActionPublish, dispatch.ProtoWHIP
	default:
		return dispatch.Request{}, false
	}
	if app == "api" {
		return dispatch.Request{}, false
	}
	p, err := streampath.Join(app, name)
	if err != nil || app == "" || name == "" {
		return dispatch.Request{}, false
	}
	req.Path = p
	return req, true
}
