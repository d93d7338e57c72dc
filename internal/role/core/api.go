// Package core is the control plane role: the HTTP API under /api/v1 over
// the node's hub, the run-time apps list and the cluster registry. The API
// is described by an OpenAPI 3 document served at /api/v1/openapi.json.
package core

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/quasipaa/quasipaa/internal/apps"
	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/record"
)

// API serves /api/v1.
type API struct {
	hub        *hub.Hub
	log        *slog.Logger
	start      time.Time
	recordings *record.Index
	cluster    *clusterAPI
	fwd        *forwarder
	apps       *apps.Store
	node       string
	version    string
}

// Option configures the API.
type Option func(*API)

// WithApps serves /api/v1/apps over s.
func WithApps(s *apps.Store) Option {
	return func(a *API) { a.apps = s }
}

// WithNode names the node the API runs on (cluster.node_id, shown as
// "node" in stream objects and by /api/v1/health) and the software version.
func WithNode(id, version string) Option {
	return func(a *API) { a.node, a.version = id, version }
}

// NewAPI returns the API over h.
func NewAPI(h *hub.Hub, log *slog.Logger, opts ...Option) *API {
	a := &API{hub: h, log: log, start: time.Now()}
	for _, o := range opts {
		o(a)
	}
	if a.node == "" && a.cluster != nil {
		a.node = a.cluster.self.ID
	}
	return a
}

// route is one endpoint of the API: a ServeMux pattern and its handler.
type route struct {
	pattern string
	handler http.HandlerFunc
}

// routes are the endpoints of this file's family (the cluster ones are
// added by registerCluster), depending on the options given.
func (a *API) routes() []route {
	rs := []route{
		{"GET /api/v1/health", a.health},
		{"GET /api/v1/openapi.json", serveOpenAPI},
		{"GET /api/v1/streams", a.listStreams},
		{"GET /api/v1/streams/{path...}", a.getStream},
		{"DELETE /api/v1/streams/{path...}", a.kickStream},
		{"DELETE /api/v1/clients/{id}", a.kickClient},
	}
	if a.recordings != nil {
		rs = append(rs,
			route{"GET /api/v1/recordings", a.listRecordings},
			route{"DELETE /api/v1/recordings", a.deleteRecordings})
	}
	if a.apps != nil {
		rs = append(rs,
			route{"GET /api/v1/apps", a.listApps},
			route{"POST /api/v1/apps", a.createApp},
			route{"GET /api/v1/apps/{match...}", a.getApp},
			route{"PUT /api/v1/apps/{match...}", a.updateApp},
			route{"DELETE /api/v1/apps/{match...}", a.deleteApp})
	}
	return rs
}

// Register adds the API's routes to mux. Any other request under /api/v1/
// answers 404 not_found, or 405 method_not_allowed (with Allow) when the
// path exists for other methods.
func (a *API) Register(mux *http.ServeMux) {
	known := http.NewServeMux() // the same routes, to tell 404 from 405
	fallback := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.notFound(known, w, r) })
	roots := map[string]bool{}
	for _, r := range a.routes() {
		mux.HandleFunc(r.pattern, r.handler)
		known.HandleFunc(r.pattern, r.handler)
		// "GET /x/{p...}" would make ServeMux redirect any method on /x to
		// /x/: /x answers itself (404 or 405) instead.
		if _, path, _ := strings.Cut(r.pattern, " "); strings.HasSuffix(path, "...}") {
			root := path[:strings.LastIndex(path, "/{")]
			if !roots[root] {
				roots[root] = true
				mux.Handle(root, fallback)
				known.Handle(root, fallback)
			}
		}
	}
	a.registerCluster(mux)
	a.registerCluster(known)
	mux.Handle("/api/v1/", fallback)
}

// notFound answers the requests no route takes: 405 with Allow when the
// path exists for other methods, else 404.
func (a *API) notFound(known *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	if allow := allowedMethods(known, r); len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed",
			r.Method+" is not allowed on "+r.URL.Path+"; allowed: "+strings.Join(allow, ", "))
		return
	}
	WriteError(w, http.StatusNotFound, "not_found", "no such API endpoint: "+r.Method+" "+r.URL.Path)
}

// apiMethods are the methods the API's routes use.
var apiMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// allowedMethods returns the methods known routes r's path for (the
// method-less fallbacks excepted).
func allowedMethods(known *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range apiMethods {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := known.Handler(probe); strings.Contains(pattern, " ") {
			allow = append(allow, m)
		}
	}
	return allow
}

// HealthJSON is the answer of GET /api/v1/health.
type HealthJSON struct {
	Status        string    `json:"status"`
	Node          string    `json:"node,omitempty"`
	Version       string    `json:"version,omitempty"`
	Started       time.Time `json:"started"`
	UptimeSeconds float64   `json:"uptime_seconds"`
}

func (a *API) health(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, HealthJSON{Status: "ok", Node: a.node, Version: a.version,
		Started: a.start.UTC(), UptimeSeconds: time.Since(a.start).Seconds()})
}

// WriteJSON writes v as a compact JSON response.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	setJSONHeaders(w)
	w.WriteHeader(status)
	// Compact: a list of 1,000 streams is half the size and encodes twice
	// as fast as indented (pipe to jq to read it).
	_ = json.NewEncoder(w).Encode(v)
}

// setJSONHeaders sets the headers of every JSON answer of the API.
func setJSONHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
}

// ErrorJSON is the API's error shape.
type ErrorJSON struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody is the content of ErrorJSON: a stable code and a message for people.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteError writes the API's error shape: {"error": {"code", "message"}}.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	WriteJSON(w, status, ErrorJSON{Error: ErrorBody{Code: code, Message: message}})
}
