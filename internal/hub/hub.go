// Package hub is the centre of Quasipaa: one Stream per path with a single
// publisher and many readers. A stream keeps its frames in a shared ring that
// every reader walks with its own cursor, a GOP cache so new readers start at
// once, and the wire bytes of every frame per output format, built once.
package hub

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Sentinel errors of the hub.
var (
	// ErrStreamBusy means the path already has a publisher and the policy refuses a second.
	ErrStreamBusy = errors.New("hub: stream is already being published")
	// ErrStreamNotFound means nothing is published on the path.
	ErrStreamNotFound = errors.New("hub: stream not found")
	// ErrStreamClosed means the stream ended: its publisher left and the grace period ran out.
	ErrStreamClosed = errors.New("hub: stream closed")
	// ErrPublisherReplaced means another publisher took the path over.
	ErrPublisherReplaced = errors.New("hub: publisher replaced by a newer one")
	// ErrSlowReader means a reader fell behind too often and was disconnected.
	ErrSlowReader = errors.New("hub: reader too slow, disconnected")
	// ErrKicked means a reader or publisher was removed on request.
	ErrKicked = errors.New("hub: kicked")
	// ErrHubClosed means the hub is shutting down.
	ErrHubClosed = errors.New("hub: closed")
	// ErrClientNotFound means no publisher or reader of the stream has the given ID.
	ErrClientNotFound = errors.New("hub: no such client")
)

// Action is what a client wants to do with a stream.
type Action string

// Actions of Admit and Event.
const (
	ActionPublish Action = "publish"
	ActionPlay    Action = "play"
)

// Event tells that a publisher or a reader left its stream.
type Event struct {
	Action Action
	Path   string
	Client ClientInfo
	// Since is when the client attached; Duration how long it stayed.
	Since    time.Time
	Duration time.Duration
	// Bytes is what a publisher sent or a reader was sent.
	Bytes uint64
	// Err says why it left (ErrStreamClosed for a normal end).
	Err error
}

// ConflictPolicy says what happens when a second publisher arrives on a live path.
type ConflictPolicy int

const (
	// ConflictRefuse refuses the newcomer.
	ConflictRefuse ConflictPolicy = iota
	// ConflictTakeOver disconnects the current publisher and lets the newcomer in.
	ConflictTakeOver
)

// Options configure a Hub. Zero values take the documented defaults.
type Options struct {
	// QueueSize is the number of frames in each stream's ring, rounded up to a
	// power of two (default 1024). A reader further behind than this skips.
	QueueSize int
	// DisableGOPCache turns the GOP cache off: new readers wait for a keyframe.
	DisableGOPCache bool
	// MaxGOPFrames bounds the GOP cache (default 4 × QueueSize).
	MaxGOPFrames int
	// PublisherGrace keeps a stream and its readers alive this long after its
	// publisher leaves, so a reconnecting publisher resumes it (0 = end at once).
	PublisherGrace time.Duration
	// Conflict is the policy for a second publisher on a live path.
	Conflict ConflictPolicy
	// MaxDrops disconnects a reader that had to skip this many times within
	// DropWindow (default 8 in 30 s).
	MaxDrops int
	// DropWindow is the window MaxDrops counts in.
	DropWindow time.Duration
	// Logger receives the hub's logs (default slog.Default()).
	Logger *slog.Logger
	// OnStreamStart, when set, is called with the path of every new stream
	// (not one resumed within its grace period), after its publisher is
	// attached and outside the hub's locks. It must not block.
	OnStreamStart func(path string)
	// OnStreamEnd, when set, is called once with the final snapshot of every
	// stream that ends, outside the hub's locks. It must not block.
	OnStreamEnd func(StreamInfo)
	// Admit, when set, decides whether a client may publish or play, for
	// PublishContext and SubscribeContext (not Publish and Subscribe, which
	// internal consumers use). Its error is returned to the caller as is.
	Admit func(ctx context.Context, action Action, path string, info ClientInfo) error
	// Upstream, when set, is called by SubscribeContext when path has no
	// stream: it should bring the stream into this hub (e.g. over the relay
	// from the node publishing it) and return once it is there, or fail.
	Upstream func(ctx context.Context, path string) error
	// OnLeave, when set, is called once when a publisher or a reader added
	// by PublishContext or SubscribeContext leaves. It may run with the
	// hub's locks held: it must not block nor call into the hub.
	OnLeave func(Event)
}

func (o *Options) setDefaults() {
	if o.QueueSize <= 0 {
		o.QueueSize = 1024
	}
	n := 16
	for n < o.QueueSize {
		n <<= 1
	}
	o.QueueSize = n
	if o.MaxGOPFrames <= 0 {
		o.MaxGOPFrames = 4 * o.QueueSize
	}
	if o.MaxDrops <= 0 {
		o.MaxDrops = 8
	}
	if o.DropWindow <= 0 {
		o.DropWindow = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// ClientInfo describes a publisher or a reader for logs and the API.
type ClientInfo struct {
	// Protocol is the protocol the client speaks ("rtmp", "flv", "ws-flv"...).
	Protocol string
	// RemoteAddr is the client's address.
	RemoteAddr string
	// Query is the raw query string the client connected with.
	Query string
	// Credential is a bearer credential given outside the query (the
	// Authorization header of WHIP/WHEP), for Admit.
	Credential string
	// ID identifies the client within the hub; assigned by the hub.
	ID string

	// notify is set for the clients whose leaving is reported to OnLeave.
	notify bool
}

// Hub holds every stream of a node, by path.
type Hub struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	streams map[string]*Stream
	closed  bool

	lastID atomic.Uint64
}

func (h *Hub) assignID(info *ClientInfo) {
	info.ID = strconv.FormatUint(h.lastID.Add(1), 10)
}

// PublishContext is Publish for clients: Admit decides first, and the
// publisher's leaving is reported to OnLeave.
func (h *Hub) PublishContext(ctx context.Context, path string, info ClientInfo) (*Publisher, error) {
	if h.opts.Admit != nil {
		if err := h.opts.Admit(ctx, ActionPublish, path, info); err != nil {
			return nil, err
		}
	}
	info.notify = h.opts.OnLeave != nil
	return h.Publish(path, info)
}

// SubscribeContext is Subscribe for clients: Admit decides first, a stream
// that is not here is asked of Upstream, and the reader's leaving is
// reported to OnLeave.
func (h *Hub) SubscribeContext(ctx context.Context, path string, info ClientInfo) (*Reader, error) {
	if h.opts.Admit != nil {
		if err := h.opts.Admit(ctx, ActionPlay, path, info); err != nil {
			return nil, err
		}
	}
	info.notify = h.opts.OnLeave != nil
	r, err := h.Subscribe(path, info)
	if errors.Is(err, ErrStreamNotFound) && h.opts.Upstream != nil {
		if uerr := h.opts.Upstream(ctx, path); uerr != nil {
			return nil, uerr
		}
		r, err = h.Subscribe(path, info)
	}
	return r, err
}

// Ensure brings the stream on path into the hub through Options.Upstream
// when it is not here (e.g. to read its tracks before subscribing); it
// returns ErrStreamNotFound when there is no Upstream.
func (h *Hub) Ensure(ctx context.Context, path string) error {
	h.mu.Lock()
	_, ok := h.streams[path]
	h.mu.Unlock()
	if ok {
		return nil
	}
	if h.opts.Upstream == nil {
		return ErrStreamNotFound
	}
	return h.opts.Upstream(ctx, path)
}

// Kick disconnects the publisher or the reader of the stream on path whose
// ClientInfo.ID is id. Kicking the publisher ends the stream.
func (h *Hub) Kick(path, id string) error {
	h.mu.Lock()
	s := h.streams[path]
	h.mu.Unlock()
	if s == nil {
		return ErrStreamNotFound
	}
	s.mu.Lock()
	p := s.publisher
	readers := s.readers
	s.mu.Unlock()
	if p != nil && p.info.ID == id {
		p.Kick()
		return nil
	}
	for _, r := range readers {
		if r.info.ID == id {
			r.Kick()
			return nil
		}
	}
	return ErrClientNotFound
}

// KickClient disconnects the publisher or the reader whose ClientInfo.ID is
// id, whatever its stream, and returns the stream's path. IDs are unique
// within the hub; this scans every stream, so give the path to Kick when
// it is known.
func (h *Hub) KickClient(id string) (string, error) {
	h.mu.Lock()
	list := make([]*Stream, 0, len(h.streams))
	for _, s := range h.streams {
		list = append(list, s)
	}
	h.mu.Unlock()
	for _, s := range list {
		if err := h.Kick(s.path, id); err == nil {
			return s.path, nil
		}
	}
	return "", ErrClientNotFound
}

// End ends the stream on path at once, whether or not a publisher is
// attached: the publisher and every reader get ErrKicked.
func (h *Hub) End(path string) error {
	h.mu.Lock()
	s := h.streams[path]
	h.mu.Unlock()
	if s == nil {
		return ErrStreamNotFound
	}
	s.end(ErrKicked)
	return nil
}

// New returns an empty hub.
func New(opts Options) *Hub {
	opts.setDefaults()
	return &Hub{opts: opts, log: opts.Logger, streams: make(map[string]*Stream)}
}

// Publish registers the caller as the publisher of path. If the path is in
// its grace period the stream resumes with its readers attached; if it is
// live, the conflict policy decides.
func (h *Hub) Publish(path string, info ClientInfo) (*Publisher, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrHubClosed
	}
	h.assignID(&info)
	s := h.streams[path]
	isNew := s == nil
	if isNew {
		s = newStream(h, path)
		h.streams[path] = s
	}
	p, err := s.attachPublisher(info)
	h.mu.Unlock()
	if err == nil && isNew && h.opts.OnStreamStart != nil {
		h.opts.OnStreamStart(path)
	}
	return p, err
}

// Subscribe adds a reader to the stream on path. The reader starts from the
// GOP cache when there is one.
func (h *Hub) Subscribe(path string, info ClientInfo) (*Reader, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrHubClosed
	}
	s := h.streams[path]
	if s == nil {
		return nil, ErrStreamNotFound
	}
	h.assignID(&info)
	return s.addReader(info)
}

// Stream returns a snapshot of the stream on path without its readers'
// list (their counts are there): see StreamDetail.
func (h *Hub) Stream(path string) (StreamInfo, bool) {
	return h.snapshot(path, false)
}

// StreamDetail is Stream with the list of readers (StreamInfo.Readers),
// which costs a copy per reader: for the API's stream detail.
func (h *Hub) StreamDetail(path string) (StreamInfo, bool) {
	return h.snapshot(path, true)
}

func (h *Hub) snapshot(path string, withReaders bool) (StreamInfo, bool) {
	h.mu.Lock()
	s := h.streams[path]
	h.mu.Unlock()
	if s == nil {
		return StreamInfo{}, false
	}
	return s.info(withReaders), true
}

// Streams returns a snapshot of every stream without their readers' lists,
// sorted by path.
func (h *Hub) Streams() []StreamInfo {
	h.mu.Lock()
	list := make([]*Stream, 0, len(h.streams))
	for _, s := range h.streams {
		list = append(list, s)
	}
	h.mu.Unlock()
	infos := make([]StreamInfo, 0, len(list))
	for _, s := range list {
		infos = append(infos, s.info(false))
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Path < infos[j].Path })
	return infos
}

// Close ends every stream: publishers are told to stop and readers receive
// what is queued, then ErrHubClosed.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	list := make([]*Stream, 0, len(h.streams))
	for _, s := range h.streams {
		list = append(list, s)
	}
	h.mu.Unlock()
	for _, s := range list {
		s.end(ErrHubClosed)
	}
}

// remove forgets s if it is still the stream registered for its path.
func (h *Hub) remove(s *Stream) {
	h.mu.Lock()
	if h.streams[s.path] == s {
		delete(h.streams, s.path)
	}
	h.mu.Unlock()
}
