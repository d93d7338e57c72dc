package pull

import (
	"context"
	"errors"
	"time"

	"github.com/quasipaa/quasipaa/internal/auth"
	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/protocol/rtmp"
	"github.com/quasipaa/quasipaa/internal/streampath"
)

// connLocker adapts the RTMP connection's write lock to sync.Locker.
type connLocker struct{ c *rtmp.ServerConn }

func (l connLocker) Lock()   { l.c.WriteLock() }
func (l connLocker) Unlock() { l.c.WriteUnlock() }

// ServeRTMP plays the requested stream to an RTMP player until it leaves.
func (s *Server) ServeRTMP(ctx context.Context, c *rtmp.ServerConn, req *rtmp.Request) error {
	remote := req.RemoteAddr.String()
	path, err := streampath.Join(req.App, req.Name)
	if err != nil {
		_ = c.Reject(rtmp.CodePlayStreamNotFound, err.Error())
		return err
	}
	reader, err := s.hub.SubscribeContext(ctx, path, hub.ClientInfo{Protocol: "rtmp", RemoteAddr: remote, Query: req.Query})
	if err != nil {
		code, desc := rtmp.CodeStreamFailed, "cannot play "+path+": "+err.Error()
		if errors.Is(err, hub.ErrStreamNotFound) {
			code, desc = rtmp.CodePlayStreamNotFound, "stream not found: "+path
		}
		if auth.IsRefusal(err) {
			// RTMP has no play-side code for credentials: NetStream.Failed
			// with the reason first ("unauthorized: …", "forbidden: …").
			desc = err.Error() + " (playing " + path + ")"
		}
		_ = c.Reject(code, desc)
		return err
	}
	defer reader.Close()
	started := time.Now()
	if err := c.AcceptPlay(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer cancel()
		_ = c.ServePlayer(ctx)
	}()
	opts := s.opts.Deliver
	opts.Lock = connLocker{c}
	err = hub.Deliver(ctx, reader, c.NetConn(), &s.rtmp, opts)
	if hub.IsNormalEnd(err) && ctx.Err() == nil {
		_ = c.WriteStatus("status", rtmp.CodePlayUnpublish, path+" ended.")
	}
	s.logEnd("rtmp", path, remote, reader, err, started)
	return err
}
