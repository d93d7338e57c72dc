package vod

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"path"
	"sync"
	"time"

	"github.com/quasipaa/quasipaa/internal/record"
	"github.com/quasipaa/quasipaa/internal/storage"
)

// maxInit bounds the init segment the download reads into memory.
const maxInit = 16 << 20

// immutable is the Cache-Control of init and media segments: a segment's
// name identifies its bytes for good.
const immutable = "public, max-age=31536000, immutable"

// serveSegment answers init/{name} (bytes [0, InitLen) of the segment file)
// and seg/{name} (bytes [InitLen, end)), with Range support.
func (h *Handler) serveSegment(w http.ResponseWriter, r *http.Request, rt route) error {
	seg, err := record.ParseName(rt.path, rt.name)
	if err != nil {
		return errf(http.StatusBadRequest, "bad_segment_name", "bad segment name %q: want {start}_{duration}_{initLen}_{run}.mp4 as listed in a playlist", rt.name)
	}
	key := seg.Key()
	info, err := h.store.Stat(r.Context(), key)
	if err != nil {
		return err
	}
	if seg.InitLen <= 0 || info.Size <= seg.InitLen {
		h.log.Warn("corrupt segment", "key", key, "size", info.Size, "init_len", seg.InitLen)
		return errf(http.StatusInternalServerError, "corrupt_segment", "segment %s is damaged", rt.name)
	}
	rd := &objectReader{ctx: r.Context(), store: h.store, key: key}
	hdr := w.Header()
	if rt.kind == routeInit {
		rd.size = seg.InitLen
		hdr.Set("Content-Type", "video/mp4")
		hdr.Set("ETag", fmt.Sprintf(`"i%s-%d"`, seg.Name(), info.Size))
	} else {
		rd.base, rd.size = seg.InitLen, info.Size-seg.InitLen
		hdr.Set("Content-Type", "video/iso.segment")
		hdr.Set("ETag", fmt.Sprintf(`"s%s-%d"`, seg.Name(), info.Size))
	}
	hdr.Set("Cache-Control", immutable)
	h.serveContent(w, r, info.ModTime, rd)
	return nil
}

// serveContent serves rd with http.ServeContent (Range, conditional
// requests, HEAD), closes it, and logs a read error that cut the body short.
func (h *Handler) serveContent(w http.ResponseWriter, r *http.Request, modTime time.Time, rd io.ReadSeekCloser) {
	gr := &guardedReader{rs: rd}
	http.ServeContent(w, r, "", modTime, gr)
	if err := gr.close(); err != nil && r.Context().Err() == nil {
		h.log.Error("vod response cut short", "url", r.URL.Path, "err", err)
	}
}

// guardedReader serializes the use of a reader: for a multi-range request
// http.ServeContent reads from another goroutine, which may still be at it
// when ServeContent returns early (client gone) and the reader is closed.
// It remembers the first read error other than io.EOF.
type guardedReader struct {
	mu     sync.Mutex
	rs     io.ReadSeekCloser
	closed bool
	err    error
}

// Read reads under the lock, remembering the first error.
func (g *guardedReader) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, errClosed
	}
	n, err := g.rs.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && g.err == nil {
		g.err = err
	}
	return n, err
}

// Seek seeks under the lock.
func (g *guardedReader) Seek(offset int64, whence int) (int64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, errClosed
	}
	return g.rs.Seek(offset, whence)
}

// close closes the reader and returns the first read error.
func (g *guardedReader) close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	g.rs.Close()
	return g.err
}

// errClosed is returned by a guardedReader after close.
var errClosed = errors.New("vod: response finished")

// serveDownload answers {path}.mp4?from&to: one fragmented MP4 made of the
// init of the first run in range and the fragments of that run's segments
// in range, with its timeline rebased to 0.
func (h *Handler) serveDownload(w http.ResponseWriter, r *http.Request, streamPath string) error {
	q := r.URL.Query()
	if q.Get("from") == "" && q.Get("to") == "" {
		return errf(http.StatusBadRequest, "missing_parameter", "missing parameters from and to (RFC 3339 times): a download needs a range")
	}
	tr, err := h.parseRange(q)
	if err != nil {
		return err
	}
	segs, err := h.segments(r, streamPath, tr.from, tr.to)
	if err != nil {
		return err
	}
	if len(segs) == 0 {
		return noRecordings(streamPath, tr)
	}
	first := segs[0]
	run := 1
	for run < len(segs) && segs[run].Run.Equal(first.Run) && segs[run].InitLen == first.InitLen {
		run++
	}
	rd, err := h.newMP4Reader(r, segs[:run])
	if err != nil {
		return err
	}

	hdr := w.Header()
	hdr.Set("Content-Type", "video/mp4")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s_%s.mp4"`, path.Base(streamPath), tr.from.Format("20060102T150405Z")))
	hash := fnv.New64a()
	for _, p := range rd.parts {
		fmt.Fprintf(hash, "%s %d\n", p.seg.Key(), p.seg.Size)
	}
	hdr.Set("ETag", fmt.Sprintf(`"m%016x"`, hash.Sum64()))
	hdr.Set("Access-Control-Expose-Headers", "Content-Disposition, X-Quasipaa-Truncated, X-Quasipaa-Next")
	if run < len(segs) {
		// Only one run fits one init: the rest starts at the next run.
		hdr.Set("X-Quasipaa-Truncated", "run")
		hdr.Set("X-Quasipaa-Next", segs[run].Start.Format("2006-01-02T15:04:05.000Z07:00"))
	}
	h.serveContent(w, r, time.Time{}, rd)
	return nil
}

// newMP4Reader prepares the download of segs, all of one run: it reads and
// patches the init and the first fragment's moof (which gives the time
// bases), so a damaged file fails before anything is sent.
func (h *Handler) newMP4Reader(r *http.Request, segs []record.Segment) (*mp4Reader, error) {
	ctx := r.Context()
	first, last := segs[0], segs[len(segs)-1]
	if first.InitLen > maxInit {
		return nil, fmt.Errorf("%w: init of %d bytes in %s", errBox, first.InitLen, first.Key())
	}
	init, err := readRange(r, h.store, first.Key(), 0, first.InitLen)
	if err != nil {
		return nil, err
	}
	info, err := patchInit(init, last.End().Sub(first.Start).Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("segment %s: %w", first.Key(), err)
	}
	rd := &mp4Reader{ctx: ctx, store: h.store, init: init, curIdx: -1}
	off := first.InitLen
	for _, s := range segs {
		p := part{seg: s, off: off, n: s.Size - s.InitLen}
		rd.parts = append(rd.parts, p)
		off += p.n
	}
	rd.size = off
	lay, err := scanFragment(fragmentGetter(ctx, h.store, rd.parts[0]), rd.parts[0].n)
	if err != nil {
		return nil, fmt.Errorf("segment %s: %w", first.Key(), err)
	}
	var times []trackTime
	for _, m := range lay.moofs {
		tt, err := moofTimes(m)
		if err != nil {
			return nil, err
		}
		times = append(times, tt...)
	}
	rd.bases = timeBases(info.timescales, times)
	if err := lay.patch(rd.bases, 1); err != nil {
		return nil, err
	}
	rd.setPart(0, lay)
	return rd, nil
}

// readRange reads bytes [off, off+n) of key into memory.
func readRange(r *http.Request, store storage.Store, key string, off, n int64) ([]byte, error) {
	rc, err := store.Get(r.Context(), key, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(rc, b); err != nil {
		return nil, fmt.Errorf("vod: read %q: %w", key, err)
	}
	return b, nil
}
