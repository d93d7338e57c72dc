package hub

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// DeliverOptions configure Deliver.
type DeliverOptions struct {
	// WriteTimeout disconnects a client whose socket accepts nothing for this
	// long (default 10 s).
	WriteTimeout time.Duration
	// WriteMerge batches frames for this long into one write (0: each frame is
	// written as soon as it arrives). Fewer, larger writes cost less CPU; the
	// added latency is at most this value.
	WriteMerge time.Duration
	// Lock, when set, is held around every write, for protocols whose
	// connection also carries control messages written elsewhere.
	Lock sync.Locker
}

// Deliver writes r's stream to conn in s's format until ctx ends, the stream
// ends, the reader is stopped or a write fails, and returns why. The bytes of
// each frame come from the shared per-format cache, and everything pending is
// written with one writev.
func Deliver(ctx context.Context, r *Reader, conn net.Conn, s Serializer, opt DeliverOptions) error {
	if opt.WriteTimeout <= 0 {
		opt.WriteTimeout = 10 * time.Second
	}
	var (
		entries = make([]*Entry, 0, maxBatch)
		backing = make([][]byte, 0, 2*maxBatch)
		bufs    net.Buffers
		last    *TrackSet
		timer   *time.Timer
		// The write deadline is pushed forward only when a tenth of the
		// timeout has passed: a blocked write still fails after 0.9 to 1 ×
		// WriteTimeout, without a timer update on every write.
		deadlineSet time.Time
		refresh     = opt.WriteTimeout / 10
	)
	if opt.WriteMerge > 0 {
		timer = time.NewTimer(time.Hour)
		timer.Stop()
		defer timer.Stop()
	}
	for {
		var err error
		entries, err = r.Next(ctx, entries[:0])
		// The first batch (the GOP cache) goes out at once, so merging never
		// delays a viewer's start.
		if len(entries) > 0 && err == nil && opt.WriteMerge > 0 && last != nil {
			timer.Reset(opt.WriteMerge)
			select {
			case <-timer.C:
			case <-ctx.Done():
			case <-r.Done():
			}
			entries, err = r.TryNext(entries)
		}
		if len(entries) == 0 {
			return err
		}
		backing = backing[:0]
		for _, e := range entries {
			if e.Tracks != last {
				if last == nil {
					if p := s.AppendPrefix(nil, e.Tracks); len(p) > 0 {
						backing = append(backing, p)
					}
				}
				last = e.Tracks
				if h := e.Tracks.HeaderBytes(s); len(h) > 0 {
					backing = append(backing, h)
				}
			}
			if b := e.Bytes(s); len(b) > 0 {
				backing = append(backing, b)
			}
		}
		clear(entries)
		if len(backing) > 0 {
			bufs = backing
			if opt.Lock != nil {
				opt.Lock.Lock()
			}
			if now := time.Now(); now.Sub(deadlineSet) >= refresh {
				_ = conn.SetWriteDeadline(now.Add(opt.WriteTimeout))
				deadlineSet = now
			}
			n, werr := bufs.WriteTo(conn)
			if opt.Lock != nil {
				opt.Lock.Unlock()
			}
			r.AddBytesOut(int(n))
			if werr != nil {
				return werr
			}
		}
		if err != nil {
			return err
		}
	}
}

// IsNormalEnd reports whether err from Deliver is an ordinary end of playback
// rather than a failure worth logging as an error.
func IsNormalEnd(err error) bool {
	return err == nil || errors.Is(err, ErrStreamClosed) || errors.Is(err, ErrHubClosed) ||
		errors.Is(err, context.Canceled) || errors.Is(err, ErrKicked)
}
