package webrtc

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	pwebrtc "github.com/pion/webrtc/v4"

	"github.com/quasipaa/quasipaa/internal/streampath"
)

// Session is one WHIP or WHEP session as an Endpoint sees it.
type Session interface {
	// PeerConnection is the session's connection, for trickled candidates.
	PeerConnection() *pwebrtc.PeerConnection
	// Close ends the session and returns once it is cleaned up. It may be
	// called more than once, and after the session ended on its own.
	Close()
}

// Request is a new session an Endpoint asks its Starter for.
type Request struct {
	// HTTP is the client's POST.
	HTTP *http.Request
	// Path is the stream path ("app/stream").
	Path string
	// ID is the session id (also the last segment of its resource URL).
	ID string
	// Offer is the client's offer.
	Offer *Offer
	// Ended must be called once the session ended, whatever ended it; it
	// frees the session's id and limiter slot. It is idempotent.
	Ended func()
}

// Starter negotiates a new session: it returns the session and the SDP
// answer (with the candidates gathered), or an error, an *HTTPError to choose
// the status. On error it has cleaned up and never calls req.Ended.
type Starter func(ctx context.Context, req *Request) (Session, string, error)

// EndpointOptions configure an Endpoint.
type EndpointOptions struct {
	// Name is "whip" or "whep": the last URL segment of the endpoint.
	Name string
	// ICEServers returns the ICE servers advertised to a client in Link
	// headers (nil: none).
	ICEServers func(r *http.Request) []ICEServer
	// Sessions bounds the concurrent sessions (nil: unlimited).
	Sessions *Limiter
	// CORSOrigin, when set, is sent as Access-Control-Allow-Origin and CORS
	// preflight requests are answered.
	CORSOrigin string
	// Logger receives the endpoint's logs (default slog.Default()).
	Logger *slog.Logger
}

// Endpoint serves the HTTP side of WHIP (RFC 9725) or WHEP, the same for
// both: POST /{app}/{stream}/{name} with an SDP offer creates a session and
// answers 201 with the SDP answer and the session's URL in Location; PATCH
// on that URL trickles ICE candidates; DELETE ends the session; OPTIONS
// advertises the ICE servers.
type Endpoint struct {
	opts  EndpointOptions
	start Starter
	log   *slog.Logger

	mu       sync.Mutex
	sessions map[string]*endpointSession
	gone     map[string]bool // sessions that ended before they were registered
	closed   bool
	starting sync.WaitGroup
}

type endpointSession struct {
	s     Session
	path  string
	etag  string
	ufrag string
}

// NewEndpoint returns an endpoint whose sessions start.
func NewEndpoint(opts EndpointOptions, start Starter) *Endpoint {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Endpoint{opts: opts, start: start, log: opts.Logger, sessions: map[string]*endpointSession{}, gone: map[string]bool{}}
}

// ParsePath splits a URL path of the endpoint: "/{app}/{stream}/{name}"
// gives the stream path and an empty id, "/{app}/{stream}/{name}/{id}" the
// stream path and the session id (32 hex digits). ok is false for any other
// path, or an invalid stream path.
func ParsePath(urlPath, name string) (stream, id string, ok bool) {
	p := strings.TrimPrefix(urlPath, "/")
	if rest, found := strings.CutSuffix(p, "/"+name); found {
		stream = rest
	} else if i := strings.LastIndexByte(p, '/'); i > 0 && isSessionID(p[i+1:]) {
		rest, found := strings.CutSuffix(p[:i], "/"+name)
		if !found {
			return "", "", false
		}
		stream, id = rest, p[i+1:]
	} else {
		return "", "", false
	}
	app, s, found := strings.Cut(stream, "/")
	if !found {
		return "", "", false
	}
	stream, err := streampath.Join(app, s)
	if err != nil || strings.Trim(s, "/") != s {
		return "", "", false
	}
	return stream, id, true
}

func isSessionID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Match reports whether the endpoint serves a URL path.
func (e *Endpoint) Match(urlPath string) bool {
	_, _, ok := ParsePath(urlPath, e.opts.Name)
	return ok
}

// Len returns the number of live sessions.
func (e *Endpoint) Len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.sessions)
}

// ServeHTTP handles every method on the endpoint's URLs.
func (e *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	stream, id, ok := ParsePath(r.URL.Path, e.opts.Name)
	if !ok {
		WriteError(w, http.StatusNotFound, "not_found", "no "+strings.ToUpper(e.opts.Name)+" resource at "+r.URL.Path)
		return
	}
	h := w.Header()
	if e.opts.CORSOrigin != "" {
		h.Set("Access-Control-Allow-Origin", e.opts.CORSOrigin)
		h.Set("Access-Control-Expose-Headers", "Location, Link, ETag, Accept-Patch, Accept-Post")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "POST, PATCH, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
			h.Set("Access-Control-Max-Age", "86400")
		}
	}
	switch {
	case r.Method == http.MethodOptions:
		if id == "" {
			h.Set("Accept-Post", ContentTypeSDP)
			e.setLinks(w, r)
		} else {
			h.Set("Accept-Patch", ContentTypeSDPFrag)
		}
		h.Set("Allow", allowed(id))
		w.WriteHeader(http.StatusNoContent)
	case id == "" && r.Method == http.MethodPost:
		e.post(w, r, stream)
	case id != "" && r.Method == http.MethodPatch:
		e.patch(w, r, stream, id)
	case id != "" && r.Method == http.MethodDelete:
		e.delete(w, stream, id)
	default:
		h.Set("Allow", allowed(id))
		WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed here; allowed: "+allowed(id))
	}
}

func allowed(id string) string {
	if id == "" {
		return "POST, OPTIONS"
	}
	return "PATCH, DELETE, OPTIONS"
}

func (e *Endpoint) setLinks(w http.ResponseWriter, r *http.Request) {
	if e.opts.ICEServers == nil {
		return
	}
	for _, l := range LinkHeaders(e.opts.ICEServers(r)) {
		w.Header().Add("Link", l)
	}
}

func writeHTTPError(w http.ResponseWriter, err error) {
	var he *HTTPError
	if errors.As(err, &he) {
		WriteError(w, he.Status, he.Code, he.Message)
		return
	}
	WriteError(w, http.StatusInternalServerError, "internal", err.Error())
}

func (e *Endpoint) post(w http.ResponseWriter, r *http.Request, stream string) {
	body, herr := readBody(w, r, ContentTypeSDP, MaxSDPSize)
	if herr != nil {
		writeHTTPError(w, herr)
		return
	}
	offer, err := ParseOffer(body)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "bad_sdp", err.Error())
		return
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		WriteError(w, http.StatusServiceUnavailable, "shutting_down", "the server is shutting down")
		return
	}
	e.starting.Add(1)
	e.mu.Unlock()
	defer e.starting.Done()
	if !e.opts.Sessions.Acquire() {
		WriteError(w, http.StatusServiceUnavailable, "too_many_sessions", "the node has reached its WebRTC session limit")
		return
	}
	id := NewSessionID()
	var once sync.Once
	ended := func() {
		once.Do(func() {
			e.mu.Lock()
			if _, ok := e.sessions[id]; ok {
				delete(e.sessions, id)
			} else {
				e.gone[id] = true
			}
			e.mu.Unlock()
			e.opts.Sessions.Release()
		})
	}
	req := &Request{HTTP: r, Path: stream, ID: id, Offer: offer, Ended: ended}
	sess, answer, err := e.start(r.Context(), req)
	if err != nil {
		e.opts.Sessions.Release()
		writeHTTPError(w, err)
		return
	}
	es := &endpointSession{s: sess, path: stream, etag: `"` + NewSessionID()[:16] + `"`, ufrag: offer.ICEUfrag}
	e.mu.Lock()
	switch {
	case e.closed:
		e.mu.Unlock()
		sess.Close()
		WriteError(w, http.StatusServiceUnavailable, "shutting_down", "the server is shutting down")
		return
	case e.gone[id]:
		// Ended already (the client vanished): nothing to register.
		delete(e.gone, id)
	default:
		e.sessions[id] = es
	}
	e.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", ContentTypeSDP)
	h.Set("Location", "/"+stream+"/"+e.opts.Name+"/"+id)
	h.Set("ETag", es.etag)
	h.Set("Accept-Patch", ContentTypeSDPFrag)
	h.Set("Cache-Control", "no-store")
	e.setLinks(w, r)
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte(answer))
}

func (e *Endpoint) lookup(stream, id string) *endpointSession {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.sessions[id]
	if s == nil || s.path != stream {
		return nil
	}
	return s
}

func (e *Endpoint) patch(w http.ResponseWriter, r *http.Request, stream, id string) {
	s := e.lookup(stream, id)
	if s == nil {
		WriteError(w, http.StatusNotFound, "session_not_found", "no session "+id)
		return
	}
	body, herr := readBody(w, r, ContentTypeSDPFrag, MaxSDPSize)
	if herr != nil {
		writeHTTPError(w, herr)
		return
	}
	if m := r.Header.Get("If-Match"); m != "" && m != "*" && m != s.etag {
		WriteError(w, http.StatusPreconditionFailed, "etag_mismatch", "If-Match does not match the session's ETag "+s.etag)
		return
	}
	frag, err := ParseSDPFrag(body)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "bad_sdpfrag", err.Error())
		return
	}
	if frag.ICEUfrag != "" && frag.ICEUfrag != s.ufrag {
		WriteError(w, http.StatusNotImplemented, "ice_restart_unsupported", "ICE restarts are not supported: start a new session")
		return
	}
	pc := s.s.PeerConnection()
	for _, c := range frag.Candidates {
		if err := pc.AddICECandidate(c); err != nil {
			WriteError(w, http.StatusBadRequest, "bad_candidate", "candidate "+c.Candidate+": "+err.Error())
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (e *Endpoint) delete(w http.ResponseWriter, stream, id string) {
	e.mu.Lock()
	s := e.sessions[id]
	if s != nil && s.path == stream {
		delete(e.sessions, id)
		e.gone[id] = true // its Ended only releases the limiter now
	} else {
		s = nil
	}
	e.mu.Unlock()
	if s == nil {
		WriteError(w, http.StatusNotFound, "session_not_found", "no session "+id)
		return
	}
	s.s.Close()
	e.mu.Lock()
	delete(e.gone, id)
	e.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// Close ends every session, waits for them and for the sessions being
// started, and refuses new ones.
func (e *Endpoint) Close() {
	e.mu.Lock()
	e.closed = true
	list := make([]*endpointSession, 0, len(e.sessions))
	for _, s := range e.sessions {
		list = append(list, s)
	}
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range list {
		wg.Go(s.s.Close)
	}
	wg.Wait()
	e.starting.Wait()
}
