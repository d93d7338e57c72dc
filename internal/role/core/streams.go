package core

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/media"
	"github.com/quasipaa/quasipaa/internal/streampath"
)

// Limits of GET /api/v1/streams.
const (
	// DefaultStreamsLimit is the page size when limit is not given.
	DefaultStreamsLimit = 1000
	// MaxStreamsLimit is the largest page size.
	MaxStreamsLimit = 10000
	// maxClientIDLen bounds the id of DELETE /api/v1/clients/{id}.
	maxClientIDLen = 64
)

// TrackJSON is a track as the API shows it.
type TrackJSON struct {
	Codec      string  `json:"codec"`
	Kind       string  `json:"kind"`
	Width      int     `json:"width,omitempty"`
	Height     int     `json:"height,omitempty"`
	Profile    string  `json:"profile,omitempty"`
	Level      string  `json:"level,omitempty"`
	FPS        float64 `json:"fps,omitempty"`
	SampleRate int     `json:"sample_rate,omitempty"`
	Channels   int     `json:"channels,omitempty"`
	Bitrate    int64   `json:"bitrate"`
}

// ClientJSON is a publisher as the API shows it.
type ClientJSON struct {
	ID         string `json:"id"`
	Protocol   string `json:"protocol"`
	RemoteAddr string `json:"remote_addr"`
}

// ViewerJSON is one viewer (reader) of a stream.
type ViewerJSON struct {
	ID            string    `json:"id"`
	Protocol      string    `json:"protocol"`
	RemoteAddr    string    `json:"remote_addr"`
	Since         time.Time `json:"since"`
	BytesOut      uint64    `json:"bytes_out"`
	DroppedFrames uint64    `json:"dropped_frames"`
}

// StreamJSON is a stream as the API shows it.
type StreamJSON struct {
	Path           string         `json:"path"`
	Node           string         `json:"node,omitempty"`
	State          string         `json:"state"`
	Tracks         []TrackJSON    `json:"tracks"`
	Publisher      *ClientJSON    `json:"publisher,omitempty"`
	PublishedAt    *time.Time     `json:"published_at,omitempty"`
	UptimeSeconds  float64        `json:"uptime_seconds"`
	IngressBitrate int64          `json:"ingress_bitrate"`
	FramesIn       uint64         `json:"frames_in"`
	BytesIn        uint64         `json:"bytes_in"`
	BytesOut       uint64         `json:"bytes_out"`
	DroppedFrames  uint64         `json:"dropped_frames"`
	Viewers        map[string]int `json:"viewers"`
	ViewersTotal   int            `json:"viewers_total"`
	// Clients lists the viewers; only in the detail of one stream.
	Clients *[]ViewerJSON `json:"clients,omitempty"`
}

// StreamsJSON is the answer of GET /api/v1/streams.
type StreamsJSON struct {
	Streams []StreamJSON `json:"streams"`
	// Total is the number of streams listed (on the node, or in the
	// cluster); Offset and Limit are the page.
	Total  int `json:"total"`
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
	// Scope is ScopeLocal or ScopeCluster.
	Scope string `json:"scope"`
	// Errors are the nodes a cluster list could not ask.
	Errors []NodeErrorJSON `json:"errors,omitempty"`
}

func (a *API) streamJSON(info hub.StreamInfo, now time.Time) StreamJSON {
	s := StreamJSON{
		Path:           info.Path,
		Node:           a.node,
		State:          info.State,
		Tracks:         make([]TrackJSON, 0, len(info.Tracks)),
		UptimeSeconds:  now.Sub(info.Created).Seconds(),
		IngressBitrate: info.IngressBitrate,
		FramesIn:       info.FramesIn,
		BytesIn:        info.BytesIn,
		BytesOut:       info.BytesOut,
		DroppedFrames:  info.DroppedFrames,
		Viewers:        info.Viewers,
		ViewersTotal:   info.ViewersTotal,
	}
	for i, t := range info.Tracks {
		j := trackJSON(t)
		if i < len(info.TrackStats) {
			st := info.TrackStats[i]
			j.Bitrate = st.Bitrate
			if j.Kind == "video" {
				j.FPS = float64(int(st.FPS*100+0.5)) / 100
			}
		}
		s.Tracks = append(s.Tracks, j)
	}
	if p := info.Publisher; p != nil {
		s.Publisher = &ClientJSON{ID: p.ID, Protocol: p.Protocol, RemoteAddr: p.RemoteAddr}
		at := info.PublishedAt.UTC()
		s.PublishedAt = &at
	}
	if info.Readers != nil {
		clients := make([]ViewerJSON, 0, len(info.Readers))
		for _, r := range info.Readers {
			clients = append(clients, ViewerJSON{ID: r.ID, Protocol: r.Protocol, RemoteAddr: r.RemoteAddr,
				Since: r.Since.UTC(), BytesOut: r.BytesOut, DroppedFrames: r.Dropped})
		}
		s.Clients = &clients
	}
	return s
}

func trackJSON(t *media.Track) TrackJSON {
	j := TrackJSON{Codec: t.Codec.String(), Kind: "data"}
	switch {
	case t.IsVideo():
		j.Kind, j.Width, j.Height, j.Profile, j.Level = "video", t.Width, t.Height, t.Profile, t.Level
	case t.IsAudio():
		j.Kind, j.SampleRate, j.Channels = "audio", t.SampleRate, t.Channels
	}
	return j
}

// intParam reads the non-negative integer query parameter name (def when
// absent), answering 400 itself when it is invalid or above maxValue.
func intParam(w http.ResponseWriter, r *http.Request, name string, def, maxValue int) (int, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > maxValue {
		WriteError(w, http.StatusBadRequest, "bad_request", name+" must be an integer in 0.."+strconv.Itoa(maxValue)+", got "+strconv.Quote(s))
		return 0, false
	}
	return n, true
}

func (a *API) listStreams(w http.ResponseWriter, r *http.Request) {
	limit, ok := intParam(w, r, "limit", DefaultStreamsLimit, MaxStreamsLimit)
	if !ok {
		return
	}
	offset, ok := intParam(w, r, "offset", 0, 1<<30)
	if !ok {
		return
	}
	scope := ScopeLocal
	switch q := r.URL.Query().Get("scope"); {
	case q != "" && q != ScopeLocal && q != ScopeCluster:
		WriteError(w, http.StatusBadRequest, "bad_request", "scope must be local or cluster, got "+strconv.Quote(q))
		return
	case q == ScopeCluster && !a.forwards(r) && !forwarded(r):
		WriteError(w, http.StatusBadRequest, "bad_request", "scope=cluster needs a core node of a cluster (cluster.secret set)")
		return
	case q != ScopeLocal && a.forwards(r):
		scope = ScopeCluster
	}
	var (
		page  []StreamJSON
		total int
		errs  []NodeErrorJSON
	)
	if scope == ScopeCluster {
		all, nodeErrs, err := a.clusterStreams(r)
		if err != nil {
			registryError(w, err)
			return
		}
		page, total, errs = pageOf(all, offset, limit), len(all), nodeErrs
	} else {
		// Only the page is converted: the streams outside it cost nothing.
		infos := a.hub.Streams()
		page, total = a.streamsJSON(pageOf(infos, offset, limit)), len(infos)
	}
	if page == nil {
		page = []StreamJSON{}
	}
	WriteJSON(w, http.StatusOK, StreamsJSON{Streams: page, Total: total, Offset: offset, Limit: limit, Scope: scope, Errors: errs})
}

// streamsJSON converts the streams of the hub as the API shows them.
func (a *API) streamsJSON(infos []hub.StreamInfo) []StreamJSON {
	now := time.Now()
	out := make([]StreamJSON, 0, len(infos))
	for _, info := range infos {
		out = append(out, a.streamJSON(info, now))
	}
	return out
}

// pageOf returns the at most limit items of s from offset on.
func pageOf[T any](s []T, offset, limit int) []T {
	s = s[min(offset, len(s)):]
	return s[:min(limit, len(s))]
}

// streamPath reads and validates the {path...} of a streams URL, answering
// 400 itself when it is not a valid stream path.
func streamPath(w http.ResponseWriter, r *http.Request) (string, bool) {
	path := strings.Trim(r.PathValue("path"), "/")
	if !validPath(w, path) {
		return "", false
	}
	return path, true
}

// validPath reports whether path is a valid stream path, answering 400
// itself when it is not.
func validPath(w http.ResponseWriter, path string) bool {
	if err := streampath.Validate(path); err != nil {
		WriteError(w, http.StatusBadRequest, "bad_request", "path: "+err.Error())
		return false
	}
	return true
}

func (a *API) getStream(w http.ResponseWriter, r *http.Request) {
	path, ok := streamPath(w, r)
	if !ok {
		return
	}
	node, ok := a.nodeParam(w, r)
	if !ok {
		return
	}
	if node != "" {
		a.forwardTo(w, r, node)
		return
	}
	if info, ok := a.hub.StreamDetail(path); ok {
		WriteJSON(w, http.StatusOK, a.streamJSON(info, time.Now()))
		return
	}
	if a.forwards(r) {
		owner, err := a.routeOwner(r.Context(), path)
		if err != nil {
			registryError(w, err)
			return
		}
		if owner != "" {
			a.forwardTo(w, r, owner)
			return
		}
	}
	WriteError(w, http.StatusNotFound, "stream_not_found", "no live stream at path "+path)
}

// kickStream ends the stream: its publisher and viewers are disconnected.
// On a core node of a cluster, a stream routed to another node is ended
// there (a copy relayed here ends with it).
func (a *API) kickStream(w http.ResponseWriter, r *http.Request) {
	path, ok := streamPath(w, r)
	if !ok {
		return
	}
	if a.forwards(r) {
		owner, err := a.routeOwner(r.Context(), path)
		if err != nil {
			if _, local := a.hub.Stream(path); !local {
				registryError(w, err)
				return
			}
		}
		if owner != "" {
			a.forwardTo(w, r, owner)
			return
		}
	}
	if err := a.hub.End(path); err != nil {
		WriteError(w, http.StatusNotFound, "stream_not_found", "no live stream at path "+path)
		return
	}
	a.log.Info("stream kicked through the API", "path", path, "key", KeyName(r.Context()))
	w.WriteHeader(http.StatusNoContent)
}

// kickClient disconnects one publisher or viewer by its id, in the stream
// ?path= when given (direct), else in whichever stream has it; on the node
// ?node= when given (forwarded there).
func (a *API) kickClient(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "" || len(id) > maxClientIDLen {
		WriteError(w, http.StatusBadRequest, "bad_request", "client id must be 1.."+strconv.Itoa(maxClientIDLen)+" characters")
		return
	}
	node, ok := a.nodeParam(w, r)
	if !ok {
		return
	}
	path := r.URL.Query().Get("path")
	if path != "" && !validPath(w, path) {
		return
	}
	if node != "" {
		a.forwardTo(w, r, node)
		return
	}
	if path == "" {
		// Without the stream: look the id up in every stream.
		p, err := a.hub.KickClient(id)
		if err != nil {
			WriteError(w, http.StatusNotFound, "client_not_found", "no client with id "+strconv.Quote(id))
			return
		}
		a.log.Info("client kicked through the API", "path", p, "client", id, "key", KeyName(r.Context()))
		w.WriteHeader(http.StatusNoContent)
		return
	}
	switch err := a.hub.Kick(path, id); {
	case errors.Is(err, hub.ErrStreamNotFound):
		WriteError(w, http.StatusNotFound, "stream_not_found", "no live stream at path "+path)
	case errors.Is(err, hub.ErrClientNotFound):
		WriteError(w, http.StatusNotFound, "client_not_found", "stream "+path+" has no client with id "+strconv.Quote(id))
	case err != nil:
		WriteError(w, http.StatusInternalServerError, "internal", err.Error())
	default:
		a.log.Info("client kicked through the API", "path", path, "client", id, "key", KeyName(r.Context()))
		w.WriteHeader(http.StatusNoContent)
	}
}
