package vod

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/quasipaa/quasipaa/internal/record"
	"github.com/quasipaa/quasipaa/internal/storage"
)

// objectReader is an io.ReadSeeker over bytes [base, base+size) of one
// stored object. It reads lazily: the first Read after a Seek opens one
// store.Get from there to the end, so nothing is buffered and a Range
// request reads only from its start.
type objectReader struct {
	ctx   context.Context
	store storage.Store
	key   string
	base  int64
	size  int64

	pos   int64
	rc    io.ReadCloser
	rcPos int64 // position of rc, valid when rc != nil
}

// Read reads from the object, opening a store read at the position if needed.
func (o *objectReader) Read(p []byte) (int, error) {
	if o.pos >= o.size {
		return 0, io.EOF
	}
	if o.rc != nil && o.rcPos != o.pos {
		o.rc.Close()
		o.rc = nil
	}
	if o.rc == nil {
		rc, err := o.store.Get(o.ctx, o.key, o.base+o.pos, o.size-o.pos)
		if err != nil {
			return 0, err
		}
		o.rc, o.rcPos = rc, o.pos
	}
	if rest := o.size - o.pos; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := o.rc.Read(p)
	o.pos += int64(n)
	o.rcPos += int64(n)
	if errors.Is(err, io.EOF) {
		if o.pos < o.size {
			return n, fmt.Errorf("vod: %q ended %d bytes early: %w", o.key, o.size-o.pos, io.ErrUnexpectedEOF)
		}
		err = nil
	}
	return n, err
}

// Seek moves the position; the next Read reopens the store read there.
func (o *objectReader) Seek(offset int64, whence int) (int64, error) {
	pos, err := seekPos(o.pos, o.size, offset, whence)
	if err != nil {
		return o.pos, err
	}
	o.pos = pos
	return pos, nil
}

// Close releases the open store read, if any.
func (o *objectReader) Close() error {
	if o.rc == nil {
		return nil
	}
	err := o.rc.Close()
	o.rc = nil
	return err
}

// seekPos implements io.Seeker's arithmetic.
func seekPos(cur, size, offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += cur
	case io.SeekEnd:
		offset += size
	default:
		return 0, errors.New("vod: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("vod: negative position")
	}
	return offset, nil
}

// part is one segment's fragment within a download.
type part struct {
	seg record.Segment
	off int64 // where the fragment starts in the download
	n   int64 // fragment length: seg.Size − seg.InitLen
}

// mp4Reader is an io.ReadSeeker over a download: a patched init followed by
// the fragments of parts, with each moof's tfdt rebased. Only the current
// fragment's moof (and small rewritten headers) is held in memory; mdat
// payloads are streamed from the store.
type mp4Reader struct {
	ctx   context.Context
	store storage.Store
	init  []byte
	parts []part
	bases map[uint32]uint64
	size  int64

	pos    int64
	curIdx int // part whose layout is cur, -1 for none
	cur    *fragLayout
	stream objectReader // the current part's fragment
}

// fragmentGetter reads bytes [off, off+n) of the fragment of p, for scanFragment.
func fragmentGetter(ctx context.Context, store storage.Store, p part) func(off, n int64) ([]byte, error) {
	return func(off, n int64) ([]byte, error) {
		if off < 0 || n < 0 || off+n > p.n {
			return nil, fmt.Errorf("%w: read beyond the fragment", errBox)
		}
		rc, err := store.Get(ctx, p.seg.Key(), p.seg.InitLen+off, n)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		b := make([]byte, n)
		if _, err := io.ReadFull(rc, b); err != nil {
			return nil, fmt.Errorf("vod: read %q: %w", p.seg.Key(), err)
		}
		return b, nil
	}
}

// layout returns the rewritten layout of part i, scanning it if needed.
func (r *mp4Reader) layout(i int) (*fragLayout, error) {
	if r.curIdx == i {
		return r.cur, nil
	}
	p := r.parts[i]
	lay, err := scanFragment(fragmentGetter(r.ctx, r.store, p), p.n)
	if err != nil {
		return nil, fmt.Errorf("vod: segment %s: %w", p.seg.Key(), err)
	}
	if err := lay.patch(r.bases, uint32(i+1)); err != nil {
		return nil, err
	}
	r.setPart(i, lay)
	return lay, nil
}

// setPart makes lay, the rewritten layout of part i, the current one.
func (r *mp4Reader) setPart(i int, lay *fragLayout) {
	r.stream.Close()
	p := r.parts[i]
	r.curIdx, r.cur = i, lay
	r.stream = objectReader{ctx: r.ctx, store: r.store, key: p.seg.Key(), base: p.seg.InitLen, size: p.n}
}

// Read reads the download: init, rewritten regions, or streamed media data.
func (r *mp4Reader) Read(b []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if r.pos < int64(len(r.init)) {
		n := copy(b, r.init[r.pos:])
		r.pos += int64(n)
		return n, nil
	}
	i := sort.Search(len(r.parts), func(i int) bool { return r.parts[i].off > r.pos }) - 1
	p := r.parts[i]
	lay, err := r.layout(i)
	if err != nil {
		return 0, err
	}
	x := r.pos - p.off
	reg, next := lay.find(x, p.n)
	if reg != nil {
		n := copy(b, reg.b[x-reg.off:])
		r.pos += int64(n)
		return n, nil
	}
	if int64(len(b)) > next-x {
		b = b[:next-x]
	}
	r.stream.pos = x
	n, err := r.stream.Read(b)
	r.pos += int64(n)
	if errors.Is(err, io.EOF) && r.pos < r.size {
		err = nil
	}
	return n, err
}

// Seek moves the position within the download.
func (r *mp4Reader) Seek(offset int64, whence int) (int64, error) {
	pos, err := seekPos(r.pos, r.size, offset, whence)
	if err != nil {
		return r.pos, err
	}
	r.pos = pos
	return pos, nil
}

// Close releases the open store read, if any.
func (r *mp4Reader) Close() error { return r.stream.Close() }
