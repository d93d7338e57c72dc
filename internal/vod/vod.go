// Package vod plays recordings back over HTTP: HLS playlists over the
// recorded segments (a VOD playlist for a time range, or a sliding DVR
// playlist of the last DVR window), the segments themselves, and a single
// downloadable MP4 of a time range. It only reads the store, through the
// keys of package record; see docs/recording.md for the URLs.
package vod

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/quasipaa/quasipaa/internal/record"
	"github.com/quasipaa/quasipaa/internal/storage"
	"github.com/quasipaa/quasipaa/internal/streampath"
)

// Prefix is the URL path the handler is mounted at.
const Prefix = "/vod/"

// DefaultMaxRange is the longest from..to range served when Options.MaxRange is 0.
const DefaultMaxRange = 24 * time.Hour

// Options configure the handler.
type Options struct {
	// DVRWindow returns how far back the DVR playlist of path reaches (0 = no DVR for that path).
	DVRWindow func(path string) time.Duration
	// Live reports whether path is being published right now (DVR playlists then omit ENDLIST).
	Live func(path string) bool
	// Logger receives storage errors and corrupt segments (default slog.Default()).
	Logger *slog.Logger
	// MaxRange bounds a from..to request (default 24h); bigger → 400.
	MaxRange time.Duration
}

// Handler serves every URL under /vod/.
type Handler struct {
	store storage.Store
	index *record.Index
	opts  Options
	log   *slog.Logger
	now   func() time.Time

	mu  sync.Mutex
	dvr map[string]*dvrState // numbering of the last DVR playlist of each path
}

// New returns the handler for every URL under /vod/.
func New(store storage.Store, opts Options) *Handler {
	if opts.MaxRange <= 0 {
		opts.MaxRange = DefaultMaxRange
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Handler{
		store: store,
		index: record.NewIndex(store),
		opts:  opts,
		log:   log.With("component", "vod"),
		now:   time.Now,
		dvr:   map[string]*dvrState{},
	}
}

// route kinds.
const (
	routePlaylist = iota
	routeInit
	routeSegment
	routeDownload
)

// route is a parsed /vod/ URL.
type route struct {
	kind int
	path string // stream path, validated
	name string // segment file name (init and seg)
}

// apiError is an error response.
type apiError struct {
	status  int
	code    string
	message string
}

// Error returns the message.
func (e *apiError) Error() string { return e.message }

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{status, code, fmt.Sprintf(format, args...)}
}

// ServeHTTP serves playlists, segments and downloads of recordings.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, errf(http.StatusMethodNotAllowed, "method_not_allowed", "method %s not allowed: use GET or HEAD", r.Method))
		return
	}
	rt, aerr := parseRoute(r.URL)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var err error
	switch rt.kind {
	case routePlaylist:
		err = h.servePlaylist(w, r, rt.path)
	case routeInit, routeSegment:
		err = h.serveSegment(w, r, rt)
	case routeDownload:
		err = h.serveDownload(w, r, rt.path)
	}
	if err != nil {
		writeError(w, h.toAPIError(r, err))
	}
}

// toAPIError maps an error to its response, logging the unexpected ones.
func (h *Handler) toAPIError(r *http.Request, err error) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, storage.ErrNotFound):
		return errf(http.StatusNotFound, "segment_not_found", "no such segment (never recorded, or deleted by retention)")
	case errors.Is(err, storage.ErrInvalidKey):
		return errf(http.StatusBadRequest, "invalid_path", "invalid path")
	}
	if r.Context().Err() == nil {
		h.log.Error("vod request failed", "url", r.URL.Path, "err", err)
	}
	if errors.Is(err, errBox) {
		return errf(http.StatusInternalServerError, "corrupt_segment", "a recorded segment is damaged; see the server log")
	}
	return errf(http.StatusBadGateway, "storage_unavailable", "cannot read the recordings store; see the server log")
}

// parseRoute checks the URL path and splits it into a route. Anything
// percent-encoded, a backslash, or a "." or ".." segment is refused before
// the path is looked at, so no encoded or dotted form can name another
// stream (let alone a file outside the store: keys are checked again by
// storage.ValidateKey).
func parseRoute(u *url.URL) (route, *apiError) {
	p := u.Path
	if u.RawPath != "" || strings.Contains(u.EscapedPath(), "%") {
		return route{}, errf(http.StatusBadRequest, "invalid_path", "invalid path: percent-encoded characters are not allowed")
	}
	if strings.ContainsAny(p, "\\\x00") {
		return route{}, errf(http.StatusBadRequest, "invalid_path", "invalid path: backslash or NUL")
	}
	rest, ok := strings.CutPrefix(p, Prefix)
	if !ok {
		return route{}, errf(http.StatusNotFound, "not_found", "not a /vod/ URL")
	}
	elems := strings.Split(rest, "/")
	for _, e := range elems {
		if e == "." || e == ".." {
			return route{}, errf(http.StatusBadRequest, "invalid_path", "invalid path: dot segments are not allowed")
		}
	}
	n := len(elems)
	var rt route
	switch {
	case elems[n-1] == "index.m3u8" && n >= 2:
		rt = route{kind: routePlaylist, path: strings.Join(elems[:n-1], "/")}
	case n >= 3 && (elems[n-2] == "init" || elems[n-2] == "seg"):
		rt = route{kind: routeSegment, path: strings.Join(elems[:n-2], "/"), name: elems[n-1]}
		if elems[n-2] == "init" {
			rt.kind = routeInit
		}
	case strings.HasSuffix(rest, ".mp4"):
		rt = route{kind: routeDownload, path: strings.TrimSuffix(rest, ".mp4")}
	default:
		return route{}, errf(http.StatusNotFound, "not_found",
			"no such recording URL: use /vod/{app}/{stream}/index.m3u8, /vod/{app}/{stream}.mp4, or init/ and seg/ URLs from a playlist")
	}
	if err := streampath.Validate(rt.path); err != nil {
		return route{}, errf(http.StatusBadRequest, "invalid_path", "invalid stream path: %v", err)
	}
	return rt, nil
}

// writeError writes the API's error shape: {"error": {"code", "message"}}.
func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": e.code, "message": e.message}})
}

// timeRange is a parsed from/to pair; both zero when neither was given.
type timeRange struct {
	from, to time.Time
}

// parseRange reads from and to. With both missing it returns the zero
// range and no error; with only one, an error naming the other.
func (h *Handler) parseRange(q url.Values) (timeRange, error) {
	fs, ts := q.Get("from"), q.Get("to")
	if fs == "" && ts == "" {
		return timeRange{}, nil
	}
	if fs == "" {
		return timeRange{}, errf(http.StatusBadRequest, "missing_parameter", "missing parameter from (RFC 3339 time, e.g. 2026-01-02T15:04:05Z)")
	}
	if ts == "" {
		return timeRange{}, errf(http.StatusBadRequest, "missing_parameter", "missing parameter to (RFC 3339 time, e.g. 2026-01-02T15:04:05Z)")
	}
	from, to, err := record.ParseRange(q)
	if errors.Is(err, record.ErrBadRange) {
		return timeRange{}, errf(http.StatusBadRequest, "bad_range", "%v", err)
	} else if err != nil {
		return timeRange{}, errf(http.StatusBadRequest, "bad_parameter", "%v", err)
	}
	if !to.After(from) {
		return timeRange{}, errf(http.StatusBadRequest, "bad_range", "to (%s) must be after from (%s)", ts, fs)
	}
	if d := to.Sub(from); d > h.opts.MaxRange {
		return timeRange{}, errf(http.StatusBadRequest, "range_too_large", "range of %s is longer than the maximum %s", d, h.opts.MaxRange)
	}
	return timeRange{from, to}, nil
}

// segments lists the usable segments of path overlapping [from, to);
// inconsistent ones (no media after the init) are skipped and logged.
func (h *Handler) segments(r *http.Request, path string, from, to time.Time) ([]record.Segment, error) {
	segs, err := h.index.Segments(r.Context(), path, from, to)
	if err != nil {
		if errors.Is(err, streampath.ErrInvalid) || errors.Is(err, storage.ErrInvalidKey) {
			return nil, errf(http.StatusBadRequest, "invalid_path", "invalid stream path: %v", err)
		}
		return nil, err
	}
	out := segs[:0]
	for _, s := range segs {
		if s.InitLen <= 0 || s.Size <= s.InitLen {
			h.log.Warn("skipping corrupt segment", "key", s.Key(), "size", s.Size, "init_len", s.InitLen)
			continue
		}
		out = append(out, s)
	}
	return out, nil
}

// noRecordings is the 404 for an empty listing.
func noRecordings(path string, tr timeRange) *apiError {
	if tr.from.IsZero() {
		return errf(http.StatusNotFound, "no_recordings", "no recordings of %s", path)
	}
	return errf(http.StatusNotFound, "no_recordings", "no recordings of %s between %s and %s",
		path, tr.from.Format(time.RFC3339), tr.to.Format(time.RFC3339))
}
