package core

import (
	"errors"
	"net/http"
	"time"

	"github.com/quasipaa/quasipaa/internal/record"
)

// RecordingsJSON is the answer of GET /api/v1/recordings.
type RecordingsJSON struct {
	Path          string     `json:"path"`
	From          *time.Time `json:"from,omitempty"`
	To            *time.Time `json:"to,omitempty"`
	Spans         []SpanJSON `json:"spans"`
	Gaps          []GapJSON  `json:"gaps"`
	TotalDuration float64    `json:"total_duration"`
	TotalSize     int64      `json:"total_size"`
}

// SpanJSON is a gap-free stretch of recording.
type SpanJSON struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Duration float64   `json:"duration"`
	Size     int64     `json:"size"`
	Segments int       `json:"segments"`
}

// GapJSON is a hole between two spans.
type GapJSON struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Duration float64   `json:"duration"`
}

// WithRecordings serves /api/v1/recordings from ix.
func WithRecordings(ix *record.Index) Option {
	return func(a *API) { a.recordings = ix }
}

// recordingsQuery reads path, from and to, answering 400 itself on error.
func recordingsQuery(w http.ResponseWriter, r *http.Request) (path string, from, to time.Time, ok bool) {
	q := r.URL.Query()
	path = q.Get("path")
	if path == "" {
		WriteError(w, http.StatusBadRequest, "bad_request", "path is required, e.g. ?path=live/cam1")
		return "", from, to, false
	}
	if !validPath(w, path) {
		return "", from, to, false
	}
	from, to, err := record.ParseRange(q)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "bad_request", err.Error())
		return "", from, to, false
	}
	return path, from, to, true
}

func (a *API) listRecordings(w http.ResponseWriter, r *http.Request) {
	path, from, to, ok := recordingsQuery(w, r)
	if !ok {
		return
	}
	segs, err := a.recordings.Segments(r.Context(), path, from, to)
	if err != nil {
		a.storageError(w, err)
		return
	}
	out := RecordingsJSON{Path: path, Spans: []SpanJSON{}, Gaps: []GapJSON{}}
	if !from.IsZero() {
		out.From = &from
	}
	if !to.IsZero() {
		out.To = &to
	}
	spans := record.Spans(segs)
	for i, s := range spans {
		out.Spans = append(out.Spans, SpanJSON{Start: s.Start, End: s.End, Duration: s.Duration().Seconds(), Size: s.Size, Segments: s.Segments})
		out.TotalDuration += s.Duration().Seconds()
		out.TotalSize += s.Size
		if i > 0 {
			prev := spans[i-1].End
			out.Gaps = append(out.Gaps, GapJSON{Start: prev, End: s.Start, Duration: s.Start.Sub(prev).Seconds()})
		}
	}
	WriteJSON(w, http.StatusOK, out)
}

func (a *API) deleteRecordings(w http.ResponseWriter, r *http.Request) {
	path, from, to, ok := recordingsQuery(w, r)
	if !ok {
		return
	}
	if from.IsZero() || to.IsZero() {
		WriteError(w, http.StatusBadRequest, "bad_request", "from and to are both required to delete recordings")
		return
	}
	deleted, err := a.recordings.Delete(r.Context(), path, from, to)
	if err != nil {
		a.log.Warn("deleting recordings", "path", path, "deleted", len(deleted), "err", err)
		a.storageError(w, err)
		return
	}
	a.log.Info("recordings deleted", "path", path, "from", from, "to", to, "segments", len(deleted))
	WriteJSON(w, http.StatusOK, map[string]int{"deleted": len(deleted)})
}

// storageError answers a failed storage operation.
func (a *API) storageError(w http.ResponseWriter, err error) {
	if errors.Is(err, record.ErrBadRange) {
		WriteError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	a.log.Error("storage request failed", "err", err)
	WriteError(w, http.StatusBadGateway, "storage_unavailable", "storage: "+err.Error())
}
