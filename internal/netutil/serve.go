// Package netutil holds the small pieces every listener of the server shares:
// an accept loop that owns its connections' goroutines and shuts down cleanly.
package netutil

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// ServeTCP accepts connections on ln and runs handle for each in its own
// goroutine until ctx ends. handle must return once its context ends. ServeTCP
// closes ln and returns after every handler has returned.
func ServeTCP(ctx context.Context, ln net.Listener, log *slog.Logger, handle func(ctx context.Context, c net.Conn)) error {
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer wg.Wait()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: back off, keep serving.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			log.Error("accept failed", "addr", ln.Addr().String(), "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
				continue
			case <-ctx.Done():
				return nil
			}
		}
		delay = 0
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			// Unblock the handler's I/O when the server stops.
			stopConn := context.AfterFunc(cctx, func() { _ = c.SetDeadline(time.Now()) })
			defer stopConn()
			handle(cctx, c)
		}()
	}
}
