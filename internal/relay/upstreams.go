package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/media"
	wire "github.com/quasipaa/quasipaa/internal/protocol/relay"
	"github.com/quasipaa/quasipaa/internal/streampath"
)

// Errors of Upstreams. A stream published nowhere is an error wrapping
// hub.ErrStreamNotFound; a refused signature wraps ErrUnauthorized.
var (
	// ErrClosed means the Upstreams was closed.
	ErrClosed = errors.New("relay: upstreams closed")
	// ErrTimeout means the source node sent nothing (not even a keepalive)
	// within the connect or read timeout.
	ErrTimeout = errors.New("relay: upstream timed out")
	// ErrProtocol means the source node sent something the relay does not allow.
	ErrProtocol = errors.New("relay: protocol violation by the source node")
	// ErrUpstreamEnded means the source node ended the relay for a reason
	// other than the end of the stream (it is shutting down, it kicked us).
	ErrUpstreamEnded = errors.New("relay: source node ended the relay")
)

// Internal causes of an upstream's end.
var (
	errStreamEnded = errors.New("relay: stream ended at its source")
	errIdle        = errors.New("relay: no reader left")
	errReleased    = errors.New("relay: released")
	errLocalEnded  = errors.New("relay: local stream ended")
)

// Upstream states, for UpstreamInfo.State.
const (
	// StateConnecting is an upstream before its first TRACKS.
	StateConnecting = "connecting"
	// StateConnected is an upstream receiving its stream.
	StateConnected = "connected"
	// StateReconnecting is an upstream that lost its source and retries.
	StateReconnecting = "reconnecting"
)

// UpstreamOptions configure Upstreams. Zero durations take the defaults.
type UpstreamOptions struct {
	// Resolve returns the HTTP base URL ("http://10.0.0.5:8080") of the node
	// publishing path, or an error wrapping hub.ErrStreamNotFound when no
	// node does. Required.
	Resolve func(ctx context.Context, path string) (baseURL string, err error)
	// Secret is the cluster secret requests are signed with.
	Secret string
	// NodeID names this node in the requests.
	NodeID string
	// Idle closes an upstream this long after its local stream has no
	// reader left (default 30 s). Every reader counts, relay readers of
	// other nodes pulling from this one included; pinned paths never idle out.
	Idle time.Duration
	// Grace is how long an upstream that lost its source keeps re-resolving
	// and reconnecting before giving up (default 10 s). The local hub's
	// PublisherGrace should be at least as long, or the local stream ends
	// (and its viewers with it) before the upstream gives up.
	Grace time.Duration
	// ConnectTimeout bounds the wait for the source's response and its
	// first TRACKS (default 5 s).
	ConnectTimeout time.Duration
	// ReadTimeout declares the source lost after this long without any
	// message; the source sends a keepalive every second (default 5 s).
	ReadTimeout time.Duration
	// MaxMessage bounds one relay message (default wire.DefaultMaxMessage).
	MaxMessage int
	// HTTPClient makes the requests; it must have no overall Timeout, the
	// response being a live stream (default: a client of its own).
	HTTPClient *http.Client
	// Logger receives the logs (default slog.Default()).
	Logger *slog.Logger
}

// UpstreamInfo is a snapshot of one upstream.
type UpstreamInfo struct {
	// Path is the stream's path.
	Path string
	// Source is the base URL of the node it comes from (the last one tried).
	Source string
	// Since is when the upstream started.
	Since time.Time
	// State is StateConnecting, StateConnected or StateReconnecting.
	State string
	// Pinned counts the Pin calls not released yet.
	Pinned int
	// Frames and Bytes count what was received (bytes on the wire).
	Frames uint64
	Bytes  uint64
	// Reconnects counts the connections after the first.
	Reconnects uint64
}

// Upstreams brings streams this node lacks into its hub, over the relay
// from the node publishing them: one upstream per path at most, shared by
// every local reader.
type Upstreams struct {
	hub  *hub.Hub
	opts UpstreamOptions
	log  *slog.Logger
	own  *http.Transport // the transport of the default client, closed by Close

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	ups      map[string]*upstream
	stopping map[string]*upstream // stopped upstreams not finished yet
	closed   bool
}

// upstream is the one relay client of a path.
type upstream struct {
	m     *Upstreams
	path  string
	since time.Time
	log   *slog.Logger

	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{}
	prev   *upstream // an upstream of the same path still stopping

	// Guarded by m.mu.
	state    string
	source   string
	pins     int
	failures uint64 // attempts that failed
	lastErr  error
	changed  chan struct{} // closed and replaced when state or failures change
	idleFrom time.Time     // when the local stream was last seen in use

	frames     atomic.Uint64
	bytes      atomic.Uint64
	reconnects atomic.Uint64

	// Owned by the upstream's goroutine.
	pub        *hub.Publisher
	lastSource string
	lastIngest []time.Time // per track, of the last frame published
	dedup      []bool      // per track: skip frames already published
}

// NewUpstreams returns the upstream manager of h. Call Run for the idle
// closing, and Close to stop every upstream.
func NewUpstreams(h *hub.Hub, opts UpstreamOptions) *Upstreams {
	if opts.Idle <= 0 {
		opts.Idle = 30 * time.Second
	}
	if opts.Grace <= 0 {
		opts.Grace = 10 * time.Second
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = 5 * time.Second
	}
	if opts.MaxMessage <= 0 {
		opts.MaxMessage = wire.DefaultMaxMessage
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	m := &Upstreams{hub: h, opts: opts, log: opts.Logger.With("component", "relay-upstreams"), ups: map[string]*upstream{}}
	if opts.HTTPClient == nil {
		m.own = http.DefaultTransport.(*http.Transport).Clone()
		m.opts.HTTPClient = &http.Client{Transport: m.own}
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m
}

// Run closes idle upstreams until ctx ends, then closes m.
func (m *Upstreams) Run(ctx context.Context) {
	defer m.Close()
	period := min(max(m.opts.Idle/4, 20*time.Millisecond), time.Second)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.ctx.Done():
			return
		case now := <-t.C:
			m.sweep(now)
		}
	}
}

// sweep stops the connected, unpinned upstreams whose stream had no reader
// for Idle.
func (m *Upstreams) sweep(now time.Time) {
	m.mu.Lock()
	list := make([]*upstream, 0, len(m.ups))
	for _, u := range m.ups {
		if u.pins == 0 && u.state == StateConnected {
			list = append(list, u)
		}
	}
	m.mu.Unlock()
	for _, u := range list {
		info, ok := m.hub.Stream(u.path)
		m.mu.Lock()
		if ok && info.ViewersTotal > 0 || u.pins > 0 {
			u.idleFrom = now
		} else if now.Sub(u.idleFrom) >= m.opts.Idle {
			m.stopLocked(u, errIdle)
			u.log.Info("upstream idle, closing", "idle", m.opts.Idle)
		}
		m.mu.Unlock()
	}
}

// Close stops every upstream, ending their local streams, and waits for them.
func (m *Upstreams) Close() {
	m.mu.Lock()
	m.closed = true
	for _, u := range m.ups {
		m.stopLocked(u, ErrClosed)
	}
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	if m.own != nil {
		m.own.CloseIdleConnections()
	}
}

// Ensure makes sure the stream on path is in the hub: at once if it is
// there, else by starting the path's upstream (or joining the one starting)
// and waiting for its first TRACKS. Its signature fits hub.Options.Upstream.
// A stream published nowhere fails with an error wrapping
// hub.ErrStreamNotFound.
func (m *Upstreams) Ensure(ctx context.Context, path string) error {
	if err := streampath.Validate(path); err != nil {
		return err
	}
	if _, ok := m.hub.Stream(path); ok {
		return nil
	}
	m.mu.Lock()
	u, err := m.getLocked(path)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	u.idleFrom = time.Now()
	failures := u.failures
	for {
		state, ch := u.state, u.changed
		if state == StateConnected {
			m.mu.Unlock()
			if _, ok := m.hub.Stream(path); !ok {
				return fmt.Errorf("relay: upstream of %s lost its stream: %w", path, hub.ErrStreamNotFound)
			}
			return nil
		}
		if u.failures > failures {
			err := u.lastErr
			m.mu.Unlock()
			return err
		}
		m.mu.Unlock()
		select {
		case <-ch:
		case <-u.done:
			m.mu.Lock()
			err := u.lastErr
			m.mu.Unlock()
			if err == nil {
				err = ErrClosed
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
		m.mu.Lock()
	}
}

// Pin keeps the upstream of path open whatever its readers, starting it if
// needed and retrying in the background (no Grace limit) until release is
// called. release may be called more than once. On a closed Upstreams or an
// invalid path, Pin does nothing (and logs why).
func (m *Upstreams) Pin(path string) (release func()) {
	if err := streampath.Validate(path); err != nil {
		m.log.Warn("pin refused", "stream", path, "err", err)
		return func() {}
	}
	m.mu.Lock()
	u, err := m.getLocked(path)
	if err != nil {
		m.mu.Unlock()
		m.log.Warn("pin refused", "stream", path, "err", err)
		return func() {}
	}
	u.pins++
	m.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			u.pins--
			u.idleFrom = time.Now()
			if u.pins == 0 && u.state != StateConnected {
				m.stopLocked(u, errReleased)
			}
		})
	}
}

// Active returns a snapshot of every upstream, sorted by path.
func (m *Upstreams) Active() []UpstreamInfo {
	m.mu.Lock()
	out := make([]UpstreamInfo, 0, len(m.ups))
	for _, u := range m.ups {
		out = append(out, UpstreamInfo{Path: u.path, Source: u.source, Since: u.since, State: u.state, Pinned: u.pins,
			Frames: u.frames.Load(), Bytes: u.bytes.Load(), Reconnects: u.reconnects.Load()})
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// getLocked returns the running upstream of path, starting one if needed.
func (m *Upstreams) getLocked(path string) (*upstream, error) {
	if m.closed {
		return nil, ErrClosed
	}
	if m.opts.Resolve == nil {
		return nil, errors.New("relay: UpstreamOptions.Resolve is not set")
	}
	if u := m.ups[path]; u != nil {
		return u, nil
	}
	ctx, cancel := context.WithCancelCause(m.ctx)
	u := &upstream{m: m, path: path, since: time.Now(), log: m.log.With("stream", path), ctx: ctx, cancel: cancel,
		done: make(chan struct{}), state: StateConnecting, changed: make(chan struct{}), idleFrom: time.Now()}
	if old := m.stopping[path]; old != nil {
		u.prev = old
	}
	m.ups[path] = u
	m.wg.Add(1)
	go u.run()
	return u, nil
}

// stopLocked stops u with cause and forgets it, so the next Ensure starts
// a fresh upstream (which waits for u to finish first).
func (m *Upstreams) stopLocked(u *upstream, cause error) {
	if m.ups[u.path] == u {
		delete(m.ups, u.path)
		if m.stopping == nil {
			m.stopping = map[string]*upstream{}
		}
		m.stopping[u.path] = u
	}
	u.cancel(cause)
}

// notifyLocked wakes the Ensure calls waiting on u.
func (u *upstream) notifyLocked() {
	close(u.changed)
	u.changed = make(chan struct{})
}

// run is the upstream's goroutine: resolve, connect, receive, and on a loss
// retry within Grace (forever while pinned).
func (u *upstream) run() {
	m := u.m
	defer m.wg.Done()
	defer u.finish()
	if u.prev != nil {
		select {
		case <-u.prev.done:
		case <-u.ctx.Done():
			return
		}
	}
	var (
		connectedOnce bool
		lostAt        time.Time
		backoff       = 100 * time.Millisecond
	)
	// Bounded by Grace (or by release for pinned paths) and by backoff.
	for {
		base, err := m.opts.Resolve(u.ctx, u.path)
		connected := false
		if err == nil {
			connected, err = u.session(base)
		}
		if cause := context.Cause(u.ctx); cause != nil {
			u.setFailed(cause) // finish ends the local stream
			return
		}
		if u.pub != nil {
			if errors.Is(err, errStreamEnded) {
				u.pub.End()
			} else {
				// Lost: the local stream waits in the hub's grace period,
				// its readers attached, for the next session to resume it.
				u.pub.Close()
			}
			u.pub = nil
		}
		if connected {
			connectedOnce = true
			lostAt = time.Now()
			backoff = 100 * time.Millisecond
		}
		m.mu.Lock()
		pinned := u.pins > 0
		m.mu.Unlock()
		switch {
		case errors.Is(err, errLocalEnded):
			u.log.Info("local stream ended, upstream stops")
			u.setFailed(err)
			return
		case errors.Is(err, errStreamEnded):
			u.log.Info("stream ended at its source")
			u.setFailed(fmt.Errorf("relay: %s: %w", u.path, hub.ErrStreamNotFound))
			if !pinned {
				return
			}
			connectedOnce = false
		case !connectedOnce && !pinned:
			u.log.Info("upstream failed", "err", err)
			u.setFailed(err)
			return
		case connectedOnce && !pinned && time.Since(lostAt) > m.opts.Grace:
			u.log.Warn("upstream lost for good", "grace", m.opts.Grace, "err", err)
			u.setFailed(err)
			return
		default:
			u.log.Info("upstream lost, retrying", "err", err, "backoff", backoff)
			u.setFailed(err)
		}
		m.mu.Lock()
		u.state = StateConnecting
		if connectedOnce {
			u.state = StateReconnecting
		}
		m.mu.Unlock()
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-u.ctx.Done():
			t.Stop()
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// setFailed records a failed attempt and wakes the waiting Ensure calls.
func (u *upstream) setFailed(err error) {
	u.m.mu.Lock()
	u.failures++
	u.lastErr = err
	u.notifyLocked()
	u.m.mu.Unlock()
}

// finish ends the local stream the upstream still publishes and forgets u.
func (u *upstream) finish() {
	if u.pub != nil {
		u.pub.End()
		u.pub = nil
	}
	m := u.m
	m.mu.Lock()
	if m.ups[u.path] == u {
		delete(m.ups, u.path)
	}
	if m.stopping[u.path] == u {
		delete(m.stopping, u.path)
	}
	if u.lastErr == nil {
		u.lastErr = ErrClosed
	}
	m.mu.Unlock()
	u.cancel(ErrClosed)
	close(u.done)
}

// session runs one connection to base. connected tells whether TRACKS came
// (the stream was published locally); err says why the session ended.
func (u *upstream) session(base string) (connected bool, err error) {
	m := u.m
	ctx, cancel := context.WithCancelCause(u.ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(m.opts.ConnectTimeout, func() { cancel(ErrTimeout) })
	defer watchdog.Stop()
	// cause prefers the reason the session's context was cancelled for.
	cause := func(err error) error {
		if c := context.Cause(ctx); c != nil && ctx.Err() != nil {
			if errors.Is(c, ErrTimeout) {
				return fmt.Errorf("relay: %s from %s: %w", u.path, base, c)
			}
			return c
		}
		return err
	}

	url := strings.TrimRight(base, "/") + PathPrefix + u.path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, fmt.Errorf("relay: bad source URL %q: %w", base, err)
	}
	Sign(req, m.opts.Secret, m.opts.NodeID)
	m.mu.Lock()
	u.source = base
	m.mu.Unlock()
	resp, err := m.opts.HTTPClient.Do(req)
	if err != nil {
		return false, cause(fmt.Errorf("relay: %s: %w", url, err))
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		return false, fmt.Errorf("%w: %s refused the cluster secret: %s", ErrUnauthorized, base, errorBody(resp))
	case http.StatusNotFound:
		return false, fmt.Errorf("relay: %s is not on %s: %w", u.path, base, hub.ErrStreamNotFound)
	default:
		return false, fmt.Errorf("relay: %s answered %s: %s", url, resp.Status, errorBody(resp))
	}
	if ct := resp.Header.Get("Content-Type"); ct != ContentType {
		return false, fmt.Errorf("%w: content type %q", ErrProtocol, ct)
	}

	r := wire.NewReader(resp.Body, m.opts.MaxMessage)
	sameSource := base == u.lastSource
	u.lastSource = base
	for {
		msg, err := r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("%w: connection closed without END", ErrUpstreamEnded)
			}
			return connected, cause(fmt.Errorf("relay: %s from %s: %w", u.path, base, err))
		}
		if connected {
			watchdog.Reset(m.opts.ReadTimeout)
		}
		switch msg.Type {
		case wire.TypeTracks:
			if err := u.publishTracks(base, msg.Tracks, sameSource); err != nil {
				return connected, err
			}
			if !connected {
				connected = true
				watchdog.Reset(m.opts.ReadTimeout)
				u.setConnected(base)
			}
		case wire.TypeFrame:
			if u.pub == nil {
				return connected, fmt.Errorf("%w: FRAME before TRACKS", ErrProtocol)
			}
			u.frames.Add(1)
			u.bytes.Add(uint64(msg.Size))
			if err := u.writeFrame(msg.Frame); err != nil {
				return connected, err
			}
		case wire.TypeEnd:
			if msg.Reason == wire.ReasonStreamEnded {
				return connected, errStreamEnded
			}
			return connected, fmt.Errorf("%w: %q", ErrUpstreamEnded, msg.Reason)
		default:
			// KEEPALIVE, or a type of a later version: nothing to do.
			u.bytes.Add(uint64(msg.Size))
		}
	}
}

// publishTracks publishes the stream locally on the first TRACKS of a
// session, and announces tracks.
func (u *upstream) publishTracks(base string, tracks []*media.Track, sameSource bool) error {
	if u.pub == nil {
		p, err := u.m.hub.Publish(u.path, hub.ClientInfo{Protocol: ProtocolRelay, RemoteAddr: base})
		if err != nil {
			return fmt.Errorf("%w: %w", errLocalEnded, err)
		}
		u.pub = p
		// Reconnected to the same source: it sends its GOP cache again,
		// frames the local stream already has. Skip them, track by track,
		// up to the first newer one.
		keep := sameSource && len(u.lastIngest) == len(tracks)
		u.dedup = make([]bool, len(tracks))
		if !keep {
			u.lastIngest = make([]time.Time, len(tracks))
		}
		for i := range u.dedup {
			u.dedup[i] = keep && !u.lastIngest[i].IsZero()
		}
	} else if len(tracks) != len(u.lastIngest) {
		u.lastIngest = make([]time.Time, len(tracks))
		u.dedup = make([]bool, len(tracks))
	}
	if err := u.pub.SetTracks(tracks); err != nil {
		return fmt.Errorf("%w: %w", errLocalEnded, err)
	}
	return nil
}

// writeFrame publishes one frame received from the source.
func (u *upstream) writeFrame(f *media.Frame) error {
	if f.Track < len(u.dedup) {
		if u.dedup[f.Track] {
			if !f.Ingest.After(u.lastIngest[f.Track]) {
				return nil
			}
			u.dedup[f.Track] = false
		}
		u.lastIngest[f.Track] = f.Ingest
	}
	if err := u.pub.WriteFrame(f); err != nil {
		if u.pub.Err() != nil {
			return fmt.Errorf("%w: %w", errLocalEnded, err)
		}
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return nil
}

// setConnected marks u connected to base.
func (u *upstream) setConnected(base string) {
	m := u.m
	m.mu.Lock()
	if u.state == StateReconnecting {
		u.reconnects.Add(1)
	}
	u.state = StateConnected
	u.source = base
	u.idleFrom = time.Now()
	u.notifyLocked()
	m.mu.Unlock()
	u.log.Info("upstream connected", "source", base)
}

// errorBody returns the message of an API error body, or its first bytes.
func errorBody(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return strings.TrimSpace(string(b))
}
