package pull

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/quasipaa/quasipaa/internal/cluster"
)

// HLSProxyHeader marks a request one proxy forwarded to the node packaging
// the stream: that node serves it locally whatever it believes about the
// owner, so two nodes that disagree for a moment never forward in a loop.
const HLSProxyHeader = "X-Quasipaa-Hls-Proxy"

// Errors reported by the HLS proxy.
var (
	// ErrNoHLSOwner means no node holds the HLS job of the stream (yet).
	ErrNoHLSOwner = errors.New("hls proxy: no node packages this stream")
	// ErrHLSProxyClosed means the proxy is shutting down.
	ErrHLSProxyClosed = errors.New("hls proxy: closed")
	// errTooLarge means the owner answered more than maxProxyBody.
	errTooLarge = errors.New("hls proxy: response too large")
)

// maxProxyBody bounds one proxied HLS file.
const maxProxyBody = 64 << 20

// HLSProxyOptions configure NewHLSProxy.
type HLSProxyOptions struct {
	// Owner returns the HTTP base URL of the node that holds the stream's
	// HLS job (cluster.KindHLS lease), or self when it is this node; it
	// returns an error wrapping ErrNoHLSOwner when nobody holds it.
	// RegistryOwner builds one from the registry. nil: always this node.
	Owner func(ctx context.Context, path string) (baseURL string, self bool, err error)
	// Local serves the HLS files packaged on this node (exchange.HLS); nil
	// on a node without the exchange role: requests it should serve get 503.
	Local HLSHandler
	// LocalHas, when set, reports whether path is in this node's hub:
	// while no node holds the stream's HLS job, such a stream is packaged
	// and served locally rather than waited for.
	LocalHas func(path string) bool
	// Sign, when set, authenticates a request forwarded to the owner as
	// internal (e.g. the cluster secret); HLSProxyHeader is always set.
	Sign func(*http.Request)
	// ForwardFullQuery forwards the viewer's whole query (tokens included)
	// instead of the LL-HLS directives alone: for an owner that admits
	// forwarded requests like viewers'. Identical requests then collapse
	// only when their queries are identical.
	ForwardFullQuery bool
	// NodeID is this node's ID, sent in HLSProxyHeader for the owner's logs.
	NodeID string
	// HTTPClient forwards the requests (default: a client of its own).
	HTTPClient *http.Client
	// Logger receives the logs (default slog.Default()).
	Logger *slog.Logger
	// Timeout bounds one forwarded request; it outlasts a blocking
	// playlist reload (default 15 s).
	Timeout time.Duration
	// OwnerWait is how long a request waits for a stream that has no HLS
	// owner yet before it gets 503 (default 3 s, polled every 100 ms).
	OwnerWait time.Duration
	// OwnerCache is how long an owner lookup is reused (default 1 s).
	OwnerCache time.Duration
	// CacheBytes bounds the cache of segments, parts and init files
	// (default 64 MiB; negative disables the cache).
	CacheBytes int64
	// CacheTTL is how long a cached file is served (default 30 s, a few
	// target durations: older files leave the playlist).
	CacheTTL time.Duration
}

// HLSProxy serves HLS on any node: a stream's files come from the one
// exchange node packaging it (the holder of its hls lease), fetched once per
// file whatever the number of viewers asking for it at the same time
// (concurrent identical requests share one upstream fetch, blocking
// playlist reloads included), with the immutable files (segments, parts,
// init) kept in a small cache. It implements HLSHandler for Options.HLS.
//
// A stream nobody packages yet (just published, the job not claimed yet) is
// served locally if it is in the local hub (LocalHas), else waited for up
// to OwnerWait.
type HLSProxy struct {
	opts   HLSProxyOptions
	log    *slog.Logger
	client *http.Client

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	flights map[string]*flight
	owners  map[string]ownerEntry
	closed  bool

	cache *fileCache
}

type ownerEntry struct {
	base    string
	self    bool
	expires time.Time
}

// flight is one upstream fetch shared by identical requests.
type flight struct {
	done chan struct{}
	resp *proxiedResponse
	err  error
}

// proxiedResponse is an owner's answer held in memory.
type proxiedResponse struct {
	status int
	header http.Header
	body   []byte
}

// NewHLSProxy returns the proxy; Close releases it.
func NewHLSProxy(opts HLSProxyOptions) *HLSProxy {
	if opts.Timeout <= 0 {
		opts.Timeout = 15 * time.Second
	}
	if opts.OwnerWait <= 0 {
		opts.OwnerWait = 3 * time.Second
	}
	if opts.OwnerCache <= 0 {
		opts.OwnerCache = time.Second
	}
	if opts.CacheBytes == 0 {
		opts.CacheBytes = 64 << 20
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &HLSProxy{
		opts: opts, log: opts.Logger.With("component", "hls-proxy"), client: client,
		ctx: ctx, cancel: cancel,
		flights: map[string]*flight{}, owners: map[string]ownerEntry{},
	}
	if opts.CacheBytes > 0 {
		p.cache = newFileCache(opts.CacheBytes, opts.CacheTTL)
	}
	return p
}

// Close cancels the fetches in progress and waits for them.
func (p *HLSProxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	if tr, ok := p.client.Transport.(*http.Transport); ok && p.opts.HTTPClient == nil {
		tr.CloseIdleConnections()
	}
}

// RegistryOwner returns an HLSProxyOptions.Owner that reads the stream's
// hls lease from reg and the holder's HTTP base URL from its heartbeat.
func RegistryOwner(reg cluster.Registry, nodeID string) func(ctx context.Context, path string) (string, bool, error) {
	return func(ctx context.Context, path string) (string, bool, error) {
		owner, base, err := cluster.HolderHTTP(ctx, reg, cluster.KindHLS, path, nodeID)
		switch {
		case errors.Is(err, cluster.ErrNotFound):
			return "", false, fmt.Errorf("%w: %s", ErrNoHLSOwner, path)
		case err != nil:
			return "", false, err
		case owner == nodeID:
			return "", true, nil
		case base == "":
			return "", false, fmt.Errorf("%w: %s is held by %s, which announces no HTTP address", ErrNoHLSOwner, path, owner)
		}
		return base, false, nil
	}
}

// ServeHLS answers one HLS request for file of the stream at path, from this
// node or from the node packaging the stream.
func (p *HLSProxy) ServeHLS(w http.ResponseWriter, r *http.Request, path, file string) {
	if r.Header.Get(HLSProxyHeader) != "" {
		// Forwarded by another node: never forward again.
		p.serveLocal(w, r, path, file)
		return
	}
	base, self, err := p.owner(r.Context(), path)
	switch {
	case err == nil && self:
		p.serveLocal(w, r, path, file)
		return
	case errors.Is(err, ErrNoHLSOwner) && p.opts.LocalHas != nil && p.opts.LocalHas(path):
		p.serveLocal(w, r, path, file)
		return
	case errors.Is(err, ErrNoHLSOwner):
		w.Header().Set("Retry-After", "1")
		http.Error(w, "HLS not available yet for "+path+": no node packages it", http.StatusServiceUnavailable)
		return
	case err != nil:
		if r.Context().Err() != nil {
			return
		}
		w.Header().Set("Retry-After", "1")
		http.Error(w, "cannot find the node packaging "+path+" as HLS: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	target := strings.TrimSuffix(base, "/") + (&url.URL{Path: "/" + path + "/" + file}).EscapedPath()
	if q := p.forwardQuery(r.URL.RawQuery); q != "" {
		target += "?" + q
	}
	immutable := !strings.HasSuffix(file, ".m3u8")
	if immutable && p.cache != nil {
		if resp := p.cache.get(target); resp != nil {
			resp.writeTo(w)
			return
		}
	}
	resp, err := p.fetch(r.Context(), target, immutable)
	if err != nil {
		if r.Context().Err() != nil {
			return // the viewer left
		}
		p.forget(path)
		status := http.StatusBadGateway
		if errors.Is(err, context.DeadlineExceeded) {
			status = http.StatusGatewayTimeout
		} else if errors.Is(err, ErrHLSProxyClosed) {
			status = http.StatusServiceUnavailable
		}
		p.log.Warn("hls proxy: owner request failed", "stream", path, "owner", base, "err", err)
		http.Error(w, "HLS of "+path+" unavailable: the node packaging it ("+base+") failed: "+err.Error(), status)
		return
	}
	resp.writeTo(w)
}

// forwardQuery is the query sent to the owner: by default only the LL-HLS
// directives (_HLS_msn, _HLS_part, _HLS_skip…), in a canonical order, so
// that viewers with different tokens share one fetch; the viewer was
// admitted here, and the owner trusts the signed internal request.
func (p *HLSProxy) forwardQuery(raw string) string {
	if raw == "" || p.opts.ForwardFullQuery {
		return raw
	}
	q, _ := url.ParseQuery(raw) // what parses; the rest is not an HLS directive
	for k := range q {
		if !strings.HasPrefix(k, "_HLS_") {
			delete(q, k)
		}
	}
	return q.Encode()
}

// serveLocal serves the request from this node's packager, if it has one.
func (p *HLSProxy) serveLocal(w http.ResponseWriter, r *http.Request, path, file string) {
	if p.opts.Local == nil {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "HLS of "+path+" unavailable: this node does not package HLS", http.StatusServiceUnavailable)
		return
	}
	p.opts.Local.ServeHLS(w, r, path, file)
}

// owner resolves path's HLS owner, from the cache or Owner, waiting up to
// OwnerWait for a stream that has none yet (unless it is local).
func (p *HLSProxy) owner(ctx context.Context, path string) (string, bool, error) {
	if p.opts.Owner == nil {
		return "", true, nil
	}
	now := time.Now()
	p.mu.Lock()
	e, ok := p.owners[path]
	p.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.base, e.self, nil
	}
	deadline := now.Add(p.opts.OwnerWait)
	const every = 100 * time.Millisecond
	for {
		cctx, cancel := context.WithTimeout(ctx, p.opts.OwnerWait)
		base, self, err := p.opts.Owner(cctx, path)
		cancel()
		if err == nil {
			p.mu.Lock()
			if len(p.owners) > 4096 {
				clear(p.owners) // bounded: a cache, not a list of every stream
			}
			p.owners[path] = ownerEntry{base: base, self: self, expires: time.Now().Add(p.opts.OwnerCache)}
			p.mu.Unlock()
			return base, self, nil
		}
		if !errors.Is(err, ErrNoHLSOwner) || (p.opts.LocalHas != nil && p.opts.LocalHas(path)) || time.Now().Add(every).After(deadline) {
			return "", false, err
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", false, ctx.Err()
		case <-p.ctx.Done():
			t.Stop()
			return "", false, ErrHLSProxyClosed
		case <-t.C:
		}
	}
}

// forget drops path's cached owner after a failure, so the next request
// asks the registry again.
func (p *HLSProxy) forget(path string) {
	p.mu.Lock()
	delete(p.owners, path)
	p.mu.Unlock()
}

// fetch returns the owner's answer for target, sharing one upstream request
// among the identical requests in flight. The fetch runs detached from the
// first viewer: its leaving does not fail the others.
func (p *HLSProxy) fetch(ctx context.Context, target string, cacheable bool) (*proxiedResponse, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrHLSProxyClosed
	}
	f := p.flights[target]
	if f == nil {
		f = &flight{done: make(chan struct{})}
		p.flights[target] = f
		p.wg.Add(1)
		go p.run(f, target, cacheable)
	}
	p.mu.Unlock()
	select {
	case <-f.done:
		return f.resp, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run performs one flight.
func (p *HLSProxy) run(f *flight, target string, cacheable bool) {
	defer p.wg.Done()
	f.resp, f.err = p.get(target)
	if f.err == nil && cacheable && f.resp.status == http.StatusOK && p.cache != nil {
		p.cache.put(target, f.resp)
	}
	p.mu.Lock()
	delete(p.flights, target)
	p.mu.Unlock()
	close(f.done)
}

// hopHeaders are not copied from the owner's answer.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Trailer", "Date"}

// get forwards one GET to the owner and reads the whole answer.
func (p *HLSProxy) get(target string) (*proxiedResponse, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	node := p.opts.NodeID
	if node == "" {
		node = "1"
	}
	req.Header.Set(HLSProxyHeader, node)
	if p.opts.Sign != nil {
		p.opts.Sign(req)
	}
	res, err := p.client.Do(req)
	if err != nil {
		if p.ctx.Err() != nil {
			return nil, ErrHLSProxyClosed
		}
		return nil, err
	}
	defer res.Body.Close()
	if res.ContentLength > maxProxyBody {
		return nil, fmt.Errorf("%w: %d bytes (at most %d)", errTooLarge, res.ContentLength, maxProxyBody)
	}
	var body []byte
	if res.ContentLength >= 0 {
		// One allocation of the announced size.
		body = make([]byte, res.ContentLength)
		if _, err := io.ReadFull(res.Body, body); err != nil {
			return nil, err
		}
	} else {
		if body, err = io.ReadAll(io.LimitReader(res.Body, maxProxyBody+1)); err != nil {
			return nil, err
		}
		if len(body) > maxProxyBody {
			return nil, fmt.Errorf("%w: more than %d bytes", errTooLarge, maxProxyBody)
		}
	}
	h := res.Header.Clone()
	for _, k := range hopHeaders {
		h.Del(k)
	}
	return &proxiedResponse{status: res.StatusCode, header: h, body: body}, nil
}

// writeTo sends the held answer; the body is shared, never modified.
func (r *proxiedResponse) writeTo(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range r.header {
		h[k] = v
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body)
}

// fileCache keeps immutable HLS files, bounded in bytes, each for ttl.
type fileCache struct {
	max int64
	ttl time.Duration

	mu    sync.Mutex
	size  int64
	items map[string]*cacheItem
	order []string // insertion order, for eviction
}

type cacheItem struct {
	resp    *proxiedResponse
	expires time.Time
}

func newFileCache(maxBytes int64, ttl time.Duration) *fileCache {
	return &fileCache{max: maxBytes, ttl: ttl, items: map[string]*cacheItem{}}
}

func (c *fileCache) get(key string) *proxiedResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	it := c.items[key]
	if it == nil || time.Now().After(it.expires) {
		return nil
	}
	return it.resp
}

// put stores resp, evicting the oldest entries (expired or not) to make room.
func (c *fileCache) put(key string, resp *proxiedResponse) {
	n := int64(len(resp.body))
	if n > c.max/4 {
		return // one file may not take most of the cache
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items[key] != nil {
		return
	}
	now := time.Now()
	for len(c.order) > 0 && (c.size+n > c.max || now.After(c.items[c.order[0]].expires)) {
		old := c.order[0]
		c.order = c.order[1:]
		c.size -= int64(len(c.items[old].resp.body))
		delete(c.items, old)
	}
	c.items[key] = &cacheItem{resp: resp, expires: now.Add(c.ttl)}
	c.order = append(c.order, key)
	c.size += n
}
