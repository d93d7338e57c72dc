// Package core is the control plane role: the HTTP API over the node's hub
// (and, as the cluster lands, over the registry).
package core

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/media"
	"github.com/quasipaa/quasipaa/internal/record"
)

// API serves /api/v1.
type API struct {
	hub        *hub.Hub
	log        *slog.Logger
	start      time.Time
	recordings *record.Index
}

// Option configures the API.
type Option func(*API)

// NewAPI returns the API over h.
func NewAPI(h *hub.Hub, log *slog.Logger, opts ...Option) *API {
	a := &API{hub: h, log: log, start: time.Now()}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/streams", a.listStreams)
	mux.HandleFunc("GET /api/v1/streams/{path...}", a.getStream)
	if a.recordings != nil {
		mux.HandleFunc("GET /api/v1/recordings", a.listRecordings)
		mux.HandleFunc("DELETE /api/v1/recordings", a.deleteRecordings)
	}
	a.registerCluster(mux)
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusNotFound, "not_found", "no such API endpoint: "+r.Method+" "+r.URL.Path)
	})
}

// TrackJSON is a track as the API shows it.
type TrackJSON struct {
	Codec      string `json:"codec"`
	Kind       string `json:"kind"`
	Width      int    `json:"width,omitempty"`
	Height     int    `json:"height,omitempty"`
	Profile    string `json:"profile,omitempty"`
	Level      string `json:"level,omitempty"`
	SampleRate int    `json:"sample_rate,omitempty"`
	Channels   int    `json:"channels,omitempty"`
}

// ClientJSON is a publisher as the API shows it.
type ClientJSON struct {
	Protocol   string `json:"protocol"`
	RemoteAddr string `json:"remote_addr"`
}

// StreamJSON is a stream as the API shows it.
type StreamJSON struct {
	Path           string         `json:"path"`
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
}

func streamJSON(info hub.StreamInfo, now time.Time) StreamJSON {
	s := StreamJSON{
		Path:           info.Path,
		State:          info.State,
		Tracks:         make([]TrackJSON, 0, len(info.Tracks)),
		UptimeSeconds:  now.Sub(info.Created).Seconds(),
		IngressBitrate: info.IngressBitrate,
		FramesIn:       info.FramesIn,
		BytesIn:        info.BytesIn,
		BytesOut:       info.BytesOut,
		DroppedFrames:  info.DroppedFrames,
		Viewers:        info.Viewers,
	}
	for _, t := range info.Tracks {
		s.Tracks = append(s.Tracks, trackJSON(t))
	}
	if p := info.Publisher; p != nil {
		s.Publisher = &ClientJSON{Protocol: p.Protocol, RemoteAddr: p.RemoteAddr}
		at := info.PublishedAt
		s.PublishedAt = &at
	}
	for _, n := range info.Viewers {
		s.ViewersTotal += n
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

func (a *API) listStreams(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	infos := a.hub.Streams()
	out := struct {
		Streams []StreamJSON `json:"streams"`
	}{Streams: make([]StreamJSON, 0, len(infos))}
	for _, info := range infos {
		out.Streams = append(out.Streams, streamJSON(info, now))
	}
	WriteJSON(w, http.StatusOK, out)
}

func (a *API) getStream(w http.ResponseWriter, r *http.Request) {
	path := strings.Trim(r.PathValue("path"), "/")
	info, ok := a.hub.Stream(path)
	if !ok {
		WriteError(w, http.StatusNotFound, "stream_not_found", "no live stream at path "+path)
		return
	}
	WriteJSON(w, http.StatusOK, streamJSON(info, time.Now()))
}

// WriteJSON writes v as a JSON response.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// WriteError writes the API's error shape: {"error": {"code", "message"}}.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	WriteJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}
