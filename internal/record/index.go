package record

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/quasipaa/quasipaa/internal/storage"
)

// ErrBadRange is returned (wrapped) for a time range whose end is before its start.
var ErrBadRange = errors.New("record: bad time range")

// maxDayScan is the longest range listed day folder by day folder; a longer
// or open range lists the stream's whole folder.
const maxDayScan = 62

// Index finds recorded segments in a store.
type Index struct {
	store storage.Store
}

// NewIndex returns an index over store.
func NewIndex(store storage.Store) *Index { return &Index{store: store} }

// Segments returns the segments of path that overlap [from, to), sorted by
// start time. A zero from or to leaves that side open.
func (ix *Index) Segments(ctx context.Context, path string, from, to time.Time) ([]Segment, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return nil, fmt.Errorf("%w: to %s is before from %s", ErrBadRange, to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	var prefixes []string
	if from.IsZero() || to.IsZero() || to.Sub(from) > maxDayScan*24*time.Hour {
		prefixes = []string{streamPrefix(path)}
	} else {
		// A segment is filed under the day it starts, up to 10 minutes
		// (the longest record_segment, plus a late keyframe) before from.
		for d := truncDay(from.Add(-15 * time.Minute)); !d.After(to); d = d.Add(24 * time.Hour) {
			prefixes = append(prefixes, dayPrefix(path, d))
		}
	}
	var segs []Segment
	for _, p := range prefixes {
		infos, err := ix.store.List(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, o := range infos {
			s, err := ParseKey(path, o.Key)
			if err != nil {
				continue // someone else's file, or a nested stream's
			}
			s.Size = o.Size
			if (!from.IsZero() && !s.End().After(from)) || (!to.IsZero() && !s.Start.Before(to)) {
				continue
			}
			segs = append(segs, s)
		}
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].Start.Before(segs[j].Start) })
	return segs, nil
}

// Delete removes the segments of path lying entirely within [from, to) and
// returns them. A zero from or to leaves that side open.
func (ix *Index) Delete(ctx context.Context, path string, from, to time.Time) ([]Segment, error) {
	segs, err := ix.Segments(ctx, path, from, to)
	if err != nil {
		return nil, err
	}
	var deleted []Segment
	for _, s := range segs {
		if (!from.IsZero() && s.Start.Before(from)) || (!to.IsZero() && s.End().After(to)) {
			continue
		}
		if err := ix.store.Delete(ctx, s.Key()); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return deleted, err
		}
		deleted = append(deleted, s)
	}
	return deleted, nil
}

func truncDay(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// Span is a stretch of recording without gaps.
type Span struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Size     int64     `json:"size"`
	Segments int       `json:"segments"`
}

// Duration is the span's length.
func (s Span) Duration() time.Duration { return s.End.Sub(s.Start) }

// GapTolerance is the largest hole between two segments that still counts
// as continuous recording (timestamps are rounded to milliseconds and a run
// restart after a publisher reconnect leaves a short hole).
const GapTolerance = 500 * time.Millisecond

// Spans merges sorted segments into gap-free spans.
func Spans(segs []Segment) []Span {
	var out []Span
	for _, s := range segs {
		if n := len(out); n > 0 && !s.Start.After(out[n-1].End.Add(GapTolerance)) {
			last := &out[n-1]
			if s.End().After(last.End) {
				last.End = s.End()
			}
			last.Size += s.Size
			last.Segments++
			continue
		}
		out = append(out, Span{Start: s.Start, End: s.End(), Size: s.Size, Segments: 1})
	}
	return out
}
