// Package publish is the ingest role: it takes pushed streams and publishes
// them into the hub.
package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/quasipaa/quasipaa/internal/auth"
	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/media"
	"github.com/quasipaa/quasipaa/internal/protocol/flv"
	"github.com/quasipaa/quasipaa/internal/protocol/rtmp"
	"github.com/quasipaa/quasipaa/internal/streampath"
)

// Server ingests streams into a hub.
type Server struct {
	hub *hub.Hub
	log *slog.Logger
}

// New returns the publish role over h.
func New(h *hub.Hub, log *slog.Logger) *Server { return &Server{hub: h, log: log} }

// ServeRTMP takes an RTMP publisher's stream until it stops, is replaced or
// ctx ends.
func (s *Server) ServeRTMP(ctx context.Context, c *rtmp.ServerConn, req *rtmp.Request) error {
	remote := req.RemoteAddr.String()
	path, err := streampath.Join(req.App, req.Name)
	if err != nil {
		_ = c.Reject(rtmp.CodePublishBadName, err.Error())
		return err
	}
	log := s.log.With("protocol", "rtmp", "stream", path, "remote", remote)
	pub, err := s.hub.PublishContext(ctx, path, hub.ClientInfo{Protocol: "rtmp", RemoteAddr: remote, Query: req.Query})
	if err != nil {
		_ = c.Reject(rtmpRefusal(path, err))
		log.Warn("publish refused", "err", err)
		return err
	}
	defer pub.Close()
	if err := c.AcceptPublish(); err != nil {
		return err
	}
	// A replaced or kicked publisher, or a stopping server, unblocks the read.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	go func() {
		select {
		case <-pub.Done():
			if !errors.Is(pub.Err(), hub.ErrStreamClosed) {
				c.Close()
			}
		case <-ctx.Done():
		}
	}()
	started := time.Now()
	log.Info("publishing", "app", req.App, "type", req.PublishType, "encoder", req.FlashVer)
	var (
		demux    flv.Demuxer
		lastWarn time.Time
	)
	for {
		// Borrowed: the demuxer copies each frame's payload once.
		m, err := c.ReadMessageBorrowed()
		if err != nil {
			stats := demux.Stats()
			attrs := []any{"duration", time.Since(started).Round(time.Millisecond), "frames", stats.Frames, "invalid", stats.Invalid, "before_sequence_header", stats.NoSequenceHeader}
			if errors.Is(err, io.EOF) || ctx.Err() != nil || pub.Err() != nil && !errors.Is(pub.Err(), hub.ErrStreamClosed) {
				log.Info("publisher stopped", append(attrs, "reason", reason(err, pub))...)
				return nil
			}
			log.Warn("publisher connection failed", append(attrs, "err", err)...)
			return err
		}
		var ev flv.Event
		switch m.Type {
		case rtmp.MsgVideo:
			ev, err = demux.Video(m.Timestamp, m.Payload)
		case rtmp.MsgAudio:
			ev, err = demux.Audio(m.Timestamp, m.Payload)
		case rtmp.MsgDataAMF0:
			err = demux.Script(m.Payload)
		}
		if err != nil {
			// Per-message problems are the publisher's; keep the stream going.
			if time.Since(lastWarn) > 10*time.Second {
				lastWarn = time.Now()
				log.Warn("unusable message from publisher", "type", m.Type, "err", err)
			}
			continue
		}
		if ev.TracksChanged {
			if err := pub.SetTracks(demux.Tracks()); err != nil {
				return err
			}
			log.Info("tracks", "tracks", describeTracks(demux.Tracks()))
		}
		if ev.Frame != nil {
			if err := pub.WriteFrame(ev.Frame); err != nil {
				log.Info("publisher stopped", "reason", err.Error())
				return nil
			}
		}
	}
}

// rtmpRefusal is the onStatus code and description refusing a publisher:
// NetStream.Publish.Unauthorized for missing or bad credentials,
// NetStream.Publish.BadName with "forbidden: …" for credentials or a
// protocol that the app does not allow, and BadName for anything else.
func rtmpRefusal(path string, err error) (code, description string) {
	switch {
	case errors.Is(err, auth.ErrUnauthorized):
		return rtmp.CodePublishUnauthorized, err.Error() + " (publishing " + path + ")"
	case auth.IsRefusal(err):
		return rtmp.CodePublishBadName, err.Error() + " (publishing " + path + ")"
	}
	return rtmp.CodePublishBadName, "cannot publish " + path + ": " + err.Error()
}

func reason(err error, pub *hub.Publisher) string {
	if perr := pub.Err(); perr != nil && !errors.Is(perr, hub.ErrStreamClosed) {
		return perr.Error()
	}
	return err.Error()
}

// describeTracks renders tracks for a log line, e.g. "h264 1280x720 High 3.1, aac 48000Hz 2ch".
func describeTracks(tracks []*media.Track) string {
	parts := make([]string, 0, len(tracks))
	for _, t := range tracks {
		switch {
		case t.IsVideo():
			parts = append(parts, fmt.Sprintf("%s %dx%d %s %s", t.Codec, t.Width, t.Height, t.Profile, t.Level))
		case t.IsAudio():
			parts = append(parts, fmt.Sprintf("%s %dHz %dch", t.Codec, t.SampleRate, t.Channels))
		default:
			parts = append(parts, t.Codec.String())
		}
	}
	return strings.Join(parts, ", ")
}
