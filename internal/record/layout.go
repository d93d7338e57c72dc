// Package record writes live streams to storage as fMP4 segments and finds
// them again: the Recorder turns a hub stream into complete segment files,
// the Index lists them by time range, and the Janitor applies retention.
//
// Every segment is one self-contained, complete MP4 file (ftyp+moov+moof+mdat)
// whose key carries everything needed to list and serve it without reading it:
//
//	recordings/{app}/{stream}/{YYYY-MM-DD}/{start}_{duration}_{initLen}_{run}.mp4
//
// start and run are Unix milliseconds (UTC day folder of start), duration is
// milliseconds, initLen is the byte length of the ftyp+moov head (so the
// media part, for HLS, starts at that offset). Segments of one run share one
// init and one continuous decode timeline that starts at 0 at the run's start;
// a new run begins when the tracks change or the wall clock jumps (publisher
// gone and back). A file is written only once complete, so a crash loses at
// most the segment in progress.
package record

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/quasipaa/quasipaa/internal/storage"
	"github.com/quasipaa/quasipaa/internal/streampath"
)

// Prefix is the top folder of every recording in the store.
const Prefix = "recordings"

// dayLayout names the day folders.
const dayLayout = "2006-01-02"

// ErrBadKey is returned (wrapped) for a key that is not a segment of the path.
var ErrBadKey = errors.New("record: not a segment key")

// Segment is one recorded file.
type Segment struct {
	// Path is the stream path, "app/stream".
	Path string
	// Start is the wall-clock time of the segment's first sample.
	Start time.Time
	// Duration is how much media the segment holds.
	Duration time.Duration
	// InitLen is the length of the ftyp+moov head; the fragment follows it.
	InitLen int64
	// Run is the start of the run the segment belongs to (see the package doc).
	Run time.Time
	// Size is the file's length in bytes (0 until known from the store).
	Size int64
}

// End is the wall-clock time just after the segment's last sample.
func (s Segment) End() time.Time { return s.Start.Add(s.Duration) }

// Name is the segment's file name, the last element of its key.
func (s Segment) Name() string {
	return fmt.Sprintf("%d_%d_%d_%d.mp4", s.Start.UnixMilli(), s.Duration.Milliseconds(), s.InitLen, s.Run.UnixMilli())
}

// Key is the segment's storage key.
func (s Segment) Key() string {
	return streamPrefix(s.Path) + s.Start.UTC().Format(dayLayout) + "/" + s.Name()
}

// streamPrefix is the folder of a stream's recordings, with a trailing "/".
func streamPrefix(path string) string { return Prefix + "/" + path + "/" }

// dayPrefix is the folder of one UTC day of a stream's recordings.
func dayPrefix(path string, day time.Time) string {
	return streamPrefix(path) + day.UTC().Format(dayLayout) + "/"
}

// ParseKey returns the segment that key names for the stream path. Keys of
// other streams (including nested ones such as path+"/sub") are ErrBadKey.
func ParseKey(path, key string) (Segment, error) {
	rest, ok := strings.CutPrefix(key, streamPrefix(path))
	if !ok {
		return Segment{}, fmt.Errorf("%w: %q is not under %q", ErrBadKey, key, streamPrefix(path))
	}
	day, name, ok := strings.Cut(rest, "/")
	if !ok || strings.Contains(name, "/") {
		return Segment{}, fmt.Errorf("%w: %q", ErrBadKey, key)
	}
	seg, err := ParseName(path, name)
	if err != nil {
		return Segment{}, err
	}
	if seg.Start.UTC().Format(dayLayout) != day {
		return Segment{}, fmt.Errorf("%w: %q is in the wrong day folder", ErrBadKey, key)
	}
	return seg, nil
}

// ParseName parses a segment file name (see Segment.Name) of the stream path.
func ParseName(path, name string) (Segment, error) {
	base, ok := strings.CutSuffix(name, ".mp4")
	fields := strings.Split(base, "_")
	if !ok || len(fields) != 4 {
		return Segment{}, fmt.Errorf("%w: %q", ErrBadKey, name)
	}
	var n [4]int64
	for i, f := range fields {
		v, err := strconv.ParseInt(f, 10, 64)
		// Canonical decimal only, so one segment has exactly one name.
		if err != nil || v < 0 || strconv.FormatInt(v, 10) != f {
			return Segment{}, fmt.Errorf("%w: %q", ErrBadKey, name)
		}
		n[i] = v
	}
	// Times up to 2^50 ms are far beyond any real date; a segment lasts at
	// most a day (segments are cut every few seconds), which keeps its
	// duration far from overflowing time.Duration (about 292 years).
	const maxMs, maxDurMs = 1 << 50, 24 * 60 * 60 * 1000
	if n[0] > maxMs || n[1] > maxDurMs || n[3] > maxMs || n[3] > n[0] {
		return Segment{}, fmt.Errorf("%w: %q", ErrBadKey, name)
	}
	return Segment{
		Path:     path,
		Start:    time.UnixMilli(n[0]).UTC(),
		Duration: time.Duration(n[1]) * time.Millisecond,
		InitLen:  n[2],
		Run:      time.UnixMilli(n[3]).UTC(),
	}, nil
}

// checkPath validates a stream path given by a client before it becomes part
// of a key.
func checkPath(path string) error {
	if err := streampath.Validate(path); err != nil {
		return err
	}
	return storage.ValidateKey(streamPrefix(path) + "x")
}
