package exchange

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/quasipaa/quasipaa/internal/hub"
)

// Keep runs the muxer of path eagerly until stop is called: the cluster's
// HLS job, so the first viewer of any pull node finds segments ready. The
// muxer is started as soon as the stream is in the hub, restarted when the
// stream comes back after it ended, and kept from the idle timeout; after
// stop it lives on until nobody requested it for IdleTimeout. stop waits
// for Keep's goroutine; calling it again is a no-op.
func (x *HLS) Keep(path string) (stop func()) {
	x.mu.Lock()
	if x.closed {
		x.mu.Unlock()
		return func() {}
	}
	x.wg.Add(1) // under mu: never after Close started waiting
	x.mu.Unlock()
	ctx, cancel := context.WithCancel(x.ctx)
	done := make(chan struct{})
	go func() {
		defer x.wg.Done()
		defer close(done)
		every := min(x.opts.IdleTimeout/4, time.Second)
		t := time.NewTicker(every)
		defer t.Stop()
		var lastErr error
		for {
			st, err := x.get(path, true)
			switch {
			case err == nil:
				st.touch()
			case errors.Is(err, ErrHLSClosed):
				return
			case !errors.Is(err, hub.ErrStreamNotFound) && (lastErr == nil || err.Error() != lastErr.Error()):
				x.log.Warn("hls job cannot package the stream", "stream", path, "err", err)
			}
			lastErr = err
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
}
