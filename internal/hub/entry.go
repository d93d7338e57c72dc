package hub

import (
	"time"

	"github.com/quasipaa/quasipaa/internal/media"
)

// TrackSet is an immutable snapshot of a stream's tracks. A new TrackSet is made
// whenever the publisher announces tracks, so readers notice a change by
// comparing pointers.
type TrackSet struct {
	// Tracks are the stream's tracks, indexed by media.Frame.Track.
	Tracks []*media.Track
	// Version increases with every TrackSet of a stream.
	Version uint64
	// Start is the stream time at which the track set took effect; headers
	// announcing it carry this timestamp.
	Start time.Duration

	cache byteCache
}

// Video returns the first video track and its index, or nil and -1.
func (ts *TrackSet) Video() (*media.Track, int) {
	for i, t := range ts.Tracks {
		if t.IsVideo() {
			return t, i
		}
	}
	return nil, -1
}

// Audio returns the first audio track and its index, or nil and -1.
func (ts *TrackSet) Audio() (*media.Track, int) {
	for i, t := range ts.Tracks {
		if t.IsAudio() {
			return t, i
		}
	}
	return nil, -1
}

// Track returns track i, or nil when out of range.
func (ts *TrackSet) Track(i int) *media.Track {
	if i < 0 || i >= len(ts.Tracks) {
		return nil
	}
	return ts.Tracks[i]
}

// HeaderBytes returns the serializer's header for this track set, built once.
func (ts *TrackSet) HeaderBytes(s Serializer) []byte {
	return ts.cache.get(s.Format(), func(dst []byte) []byte { return s.AppendHeader(dst, ts) })
}

// Entry is one published frame as the hub holds it: the frame, the track set
// in force when it was published and its cached wire bytes per format.
type Entry struct {
	// Frame is the published frame; immutable.
	Frame *media.Frame
	// Tracks is the track set the frame belongs to.
	Tracks *TrackSet

	seq   uint64
	key   bool
	cache byteCache
}

// Track returns the entry's track.
func (e *Entry) Track() *media.Track { return e.Tracks.Track(e.Frame.Track) }

// Bytes returns the serializer's bytes for this entry, built once per format.
func (e *Entry) Bytes(s Serializer) []byte {
	return e.cache.get(s.Format(), func(dst []byte) []byte { return s.AppendFrame(dst, e) })
}
