package hub

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// maxBatch bounds how many ring entries one Next call returns.
const maxBatch = 256

// Reader is one consumer of a stream. It walks the stream's shared ring with
// its own cursor: publishing never waits for it, and a reader that falls a
// whole ring behind skips to the newest keyframe.
type Reader struct {
	s     *Stream
	info  ClientInfo
	since time.Time

	wake chan struct{}

	once    sync.Once
	done    chan struct{}
	err     atomic.Pointer[error]
	removed atomic.Bool

	// Owned by the reading goroutine.
	watched   context.Context
	stopWatch func() bool
	cursor    uint64
	pending   []*Entry
	waitKey   bool
	dropTimes []time.Time
	dropIdx   int

	drops    atomic.Uint64
	bytesOut atomic.Uint64
}

// Info returns what the reader was registered with.
func (r *Reader) Info() ClientInfo { return r.info }

// Stream returns the stream being read.
func (r *Reader) Stream() *Stream { return r.s }

// Dropped returns how many frames the reader skipped because it was too slow.
func (r *Reader) Dropped() uint64 { return r.drops.Load() }

// AddBytesOut accounts n bytes delivered to the reader's client.
func (r *Reader) AddBytesOut(n int) { r.bytesOut.Add(uint64(n)) }

// Next appends the entries ready for the reader to dst, waiting until there is
// at least one. It returns the stream's end error once everything queued was
// returned, ErrSlowReader when the reader fell behind too often, ErrKicked
// when it was kicked, or ctx's error.
//
// Waiting is a receive on one channel that the publisher, the stream's end,
// a kick and ctx's cancellation all signal: a select over several channels
// would cost more than the rest of the per-frame work of a reader.
func (r *Reader) Next(ctx context.Context, dst []*Entry) ([]*Entry, error) {
	r.watch(ctx)
	for {
		var err error
		dst, err = r.TryNext(dst)
		if err != nil || len(dst) > 0 {
			return dst, err
		}
		if r.s.isEnded() {
			// Entries written just before the end were returned above.
			return dst, r.s.endErr
		}
		if err := ctx.Err(); err != nil {
			return dst, err
		}
		<-r.wake
	}
}

// signal wakes the reader's goroutine if it waits in Next.
func (r *Reader) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// watch makes ctx's cancellation wake the reader. It registers once per
// context, so the per-frame path does not allocate.
func (r *Reader) watch(ctx context.Context) {
	if ctx == r.watched || ctx.Done() == nil {
		return
	}
	if r.stopWatch != nil {
		r.stopWatch()
	}
	r.watched = ctx
	r.stopWatch = context.AfterFunc(ctx, r.signal)
}

// TryNext appends the entries ready for the reader to dst without waiting.
func (r *Reader) TryNext(dst []*Entry) ([]*Entry, error) {
	if e := r.err.Load(); e != nil {
		return dst, *e
	}
	if len(r.pending) > 0 {
		dst = append(dst, r.pending...)
		r.pending = nil
	}
	s := r.s
	size := uint64(len(s.ring))
	for n := 0; n < maxBatch; {
		head := s.head.Load()
		if r.cursor >= head {
			break
		}
		if head-r.cursor > size {
			if err := r.skip(head); err != nil {
				return dst, err
			}
			continue
		}
		e := s.ring[r.cursor&s.mask].Load()
		if e == nil || e.seq != r.cursor {
			// Overwritten between the head check and the load.
			if err := r.skip(s.head.Load()); err != nil {
				return dst, err
			}
			continue
		}
		r.cursor++
		if r.waitKey {
			if !e.key {
				continue
			}
			r.waitKey = false
		}
		dst = append(dst, e)
		n++
	}
	return dst, nil
}

// skip moves a reader that fell a whole ring behind to the newest keyframe.
func (r *Reader) skip(head uint64) error {
	s := r.s
	from := r.cursor
	if k := s.lastKey.Load(); k != 0 && k-1 > r.cursor && head-(k-1) <= uint64(len(s.ring)) {
		r.cursor = k - 1
		r.waitKey = false
	} else {
		r.cursor = head
		r.waitKey = true
	}
	skipped := r.cursor - from
	r.drops.Add(skipped)
	s.drops.Add(skipped)
	now := time.Now()
	window := s.hub.opts.DropWindow
	// dropTimes holds the last MaxDrops skips; after writing this one, the
	// slot at dropIdx is the oldest of them.
	r.dropTimes[r.dropIdx] = now
	r.dropIdx = (r.dropIdx + 1) % len(r.dropTimes)
	oldest := r.dropTimes[r.dropIdx]
	s.log.Warn("slow reader skipped frames", "protocol", r.info.Protocol, "remote", r.info.RemoteAddr, "frames", skipped)
	if !oldest.IsZero() && now.Sub(oldest) < window {
		r.fail(ErrSlowReader)
		return ErrSlowReader
	}
	return nil
}

// Done is closed when the reader must stop (kicked or too slow).
func (r *Reader) Done() <-chan struct{} { return r.done }

// Err returns why the reader was stopped, or nil.
func (r *Reader) Err() error {
	if e := r.err.Load(); e != nil {
		return *e
	}
	return nil
}

// Kick disconnects the reader.
func (r *Reader) Kick() { r.fail(ErrKicked) }

// Close removes the reader from its stream. It is safe to call more than once.
func (r *Reader) Close() {
	r.fail(ErrStreamClosed)
	if r.removed.CompareAndSwap(false, true) {
		r.s.removeReader(r)
		if r.info.notify {
			r.s.hub.opts.OnLeave(Event{Action: ActionPlay, Path: r.s.path, Client: r.info, Since: r.since,
				Duration: time.Since(r.since), Bytes: r.bytesOut.Load(), Err: r.Err()})
		}
	}
	if r.stopWatch != nil {
		r.stopWatch()
	}
}

func (r *Reader) fail(err error) {
	r.once.Do(func() {
		r.err.Store(&err)
		close(r.done)
		r.signal()
	})
}
