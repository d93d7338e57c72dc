package vod

import (
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/quasipaa/quasipaa/internal/record"
)

// maxDVRPaths bounds how many streams' DVR numbering is remembered.
const maxDVRPaths = 1024

// servePlaylist answers index.m3u8: the VOD playlist of from..to, or the
// DVR playlist without them.
func (h *Handler) servePlaylist(w http.ResponseWriter, r *http.Request, path string) error {
	q := r.URL.Query()
	tr, err := h.parseRange(q)
	if err != nil {
		return err
	}
	dvr := tr.from.IsZero()
	var window time.Duration
	if dvr {
		if h.opts.DVRWindow != nil {
			window = h.opts.DVRWindow(path)
		}
		if window <= 0 {
			return errf(http.StatusNotFound, "dvr_disabled",
				"no DVR playlist for %s (apps[].dvr_window is 0 or the stream is not recorded); ask for a range with ?from=…&to=…", path)
		}
		// The window is bounded like a range; listing up to an hour ahead
		// (rather than open-ended) keeps the index on a few day folders.
		window = min(window, h.opts.MaxRange)
		now := h.now()
		tr.from, tr.to = now.Add(-window), now.Add(time.Hour)
	}
	segs, err := h.segments(r, path, tr.from, tr.to)
	if err != nil {
		return err
	}
	if len(segs) == 0 {
		if dvr {
			return errf(http.StatusNotFound, "no_recordings", "no recordings of %s in the last %s", path, window)
		}
		return noRecordings(path, tr)
	}
	q.Del("from")
	q.Del("to")
	pl := playlist{segs: segs, query: q.Encode()}
	if dvr {
		pl.live = h.opts.Live != nil && h.opts.Live(path)
		pl.msn, pl.dseq, pl.target = h.numberDVR(path, segs)
	}
	body := pl.render(dvr)
	w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	return nil
}

// playlist is an HLS media playlist over recorded segments.
type playlist struct {
	segs   []record.Segment
	query  string // carried onto every URI ("" for none)
	live   bool   // DVR of a live stream: no ENDLIST
	msn    uint64 // DVR: media sequence number of segs[0]
	dseq   uint64 // DVR: discontinuity sequence number of segs[0]
	target int    // DVR: target duration, at least what segs need
}

// discontinuous reports whether segs[i] does not continue segs[i-1]: a new
// run (new init and timeline) or a gap longer than record.GapTolerance.
func discontinuous(segs []record.Segment, i int) bool {
	if i == 0 {
		return false
	}
	a, b := segs[i-1], segs[i]
	return !a.Run.Equal(b.Run) || a.InitLen != b.InitLen || b.Start.Sub(a.End()) > record.GapTolerance
}

// targetDuration is the ceiling of the longest segment, in seconds (at least 1).
func targetDuration(segs []record.Segment) int {
	t := 1
	for _, s := range segs {
		t = max(t, int(math.Ceil(s.Duration.Seconds())))
	}
	return t
}

// render writes the playlist. Each run gets an EXT-X-MAP of its first
// segment's init; runs and gaps are separated by EXT-X-DISCONTINUITY.
func (pl *playlist) render(dvr bool) []byte {
	var b strings.Builder
	suffix := ""
	if pl.query != "" {
		suffix = "?" + pl.query
	}
	target := max(pl.target, targetDuration(pl.segs))
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n")
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", target)
	if dvr {
		fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n", pl.msn)
		fmt.Fprintf(&b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", pl.dseq)
	} else {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n")
	}
	b.WriteString("#EXT-X-INDEPENDENT-SEGMENTS\n")
	for i, s := range pl.segs {
		if i > 0 && discontinuous(pl.segs, i) {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if i == 0 || !s.Run.Equal(pl.segs[i-1].Run) || s.InitLen != pl.segs[i-1].InitLen {
			fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"init/%s%s\"\n", s.Name(), suffix)
		}
		fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", s.Start.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
		fmt.Fprintf(&b, "#EXTINF:%.3f,\n", s.Duration.Seconds())
		fmt.Fprintf(&b, "seg/%s%s\n", s.Name(), suffix)
	}
	if !pl.live {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return []byte(b.String())
}

// dvrState is how the last DVR playlist of a path was numbered: a segment
// keeps its media sequence and discontinuity sequence numbers from one
// playlist to the next, as HLS requires of a sliding playlist.
type dvrState struct {
	starts []int64 // start (Unix ms) of each listed segment, ascending
	discs  []int   // indices i, ascending, where a discontinuity precedes starts[i]
	msn0   uint64  // media sequence number of starts[0]; the others follow
	dseq0  uint64  // discontinuity sequence number of starts[0]
	target int     // target duration; never decreases (HLS forbids a change)
	used   time.Time
}

// dseqAt is the discontinuity sequence number of starts[j].
func (st *dvrState) dseqAt(j int) uint64 {
	return st.dseq0 + uint64(sort.SearchInts(st.discs, j+1))
}

// numberDVR returns the media sequence number, discontinuity sequence
// number and target duration of a DVR playlist listing segs.
//
// A segment found in the previous playlist of the path keeps its numbers,
// so numbering is consistent from one reload to the next while the window
// slides. With nothing to continue from (first request since the server
// started, or the whole window replaced), both numbers start from the Unix
// time in seconds of the first segment, and never below what was already
// handed out: since a recorded segment lasts at least a second
// (record_segment ≥ 1s), this keeps them increasing across server restarts.
func (h *Handler) numberDVR(path string, segs []record.Segment) (msn, dseq uint64, target int) {
	// disc[i]: discontinuities from segs[0] to segs[i].
	disc := make([]uint64, len(segs))
	var discs []int
	for i := 1; i < len(segs); i++ {
		disc[i] = disc[i-1]
		if discontinuous(segs, i) {
			disc[i]++
			discs = append(discs, i)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.dvr[path]
	matched := false
	if st != nil {
		for i, s := range segs {
			ms := s.Start.UnixMilli()
			j := sort.Search(len(st.starts), func(j int) bool { return st.starts[j] >= ms })
			if j == len(st.starts) || st.starts[j] != ms {
				continue
			}
			if m, d := st.msn0+uint64(j), st.dseqAt(j); m >= uint64(i) && d >= disc[i] {
				msn, dseq, matched = m-uint64(i), d-disc[i], true
			}
			break
		}
	}
	if !matched {
		first := uint64(max(segs[0].Start.Unix(), 0))
		msn, dseq = first, first
		if st != nil && len(st.starts) > 0 {
			last := len(st.starts) - 1
			msn = max(msn, st.msn0+uint64(last)+1)
			dseq = max(dseq, st.dseqAt(last)+1)
		}
	}
	target = targetDuration(segs)
	if matched {
		target = max(target, st.target)
	}
	if st == nil {
		h.evictDVR()
		st = &dvrState{}
		h.dvr[path] = st
	}
	st.starts = st.starts[:0]
	for _, s := range segs {
		st.starts = append(st.starts, s.Start.UnixMilli())
	}
	st.discs, st.msn0, st.dseq0, st.target, st.used = discs, msn, dseq, target, h.now()
	return msn, dseq, target
}

// evictDVR makes room for one more path, forgetting the least recently used.
func (h *Handler) evictDVR() {
	if len(h.dvr) < maxDVRPaths {
		return
	}
	var (
		oldest string
		at     time.Time
	)
	for p, st := range h.dvr {
		if oldest == "" || st.used.Before(at) {
			oldest, at = p, st.used
		}
	}
	delete(h.dvr, oldest)
}
