package auth

import (
	"context"
	"log/slog"
	"time"

	"github.com/quasipaa/quasipaa/internal/hub"
)

// Defaults of BitrateGuard.
const (
	// DefaultBitrateInterval is how often the guard looks at the streams.
	DefaultBitrateInterval = time.Second
	// DefaultBitrateStrikes is how many consecutive looks above the limit kick a publisher.
	DefaultBitrateStrikes = 5
)

// KickHub is what BitrateGuard reads and acts on: a *hub.Hub.
type KickHub interface {
	Streams() []hub.StreamInfo
	Kick(path, id string) error
}

// BitrateGuard disconnects publishers whose ingress bit rate stays above
// their app's max_bitrate for DefaultBitrateStrikes consecutive checks.
type BitrateGuard struct {
	hub      KickHub
	policy   Policy
	log      *slog.Logger
	interval time.Duration
	strikes  int
	// over counts consecutive checks above the limit, by path and publisher ID.
	over map[string]strike
}

type strike struct {
	id string
	n  int
}

// NewBitrateGuard returns a guard over h with the apps of policy.
func NewBitrateGuard(h KickHub, policy Policy, log *slog.Logger) *BitrateGuard {
	if log == nil {
		log = slog.Default()
	}
	return &BitrateGuard{hub: h, policy: policy, log: log, interval: DefaultBitrateInterval, strikes: DefaultBitrateStrikes, over: make(map[string]strike)}
}

// Run checks the streams every second until ctx ends.
func (g *BitrateGuard) Run(ctx context.Context) {
	t := time.NewTicker(g.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.Check()
		}
	}
}

// Check looks at every stream once and kicks the publishers that were above
// their limit at this and the previous checks; it returns the paths kicked.
// Run calls it; it is not safe for concurrent use.
func (g *BitrateGuard) Check() []string {
	var kicked []string
	seen := make(map[string]bool, len(g.over))
	for _, s := range g.hub.Streams() {
		if s.Publisher == nil {
			continue
		}
		app, ok := g.policy(s.Path)
		if !ok || app.MaxBitrate <= 0 || s.IngressBitrate <= int64(app.MaxBitrate) {
			continue
		}
		seen[s.Path] = true
		st := g.over[s.Path]
		if st.id != s.Publisher.ID {
			st = strike{id: s.Publisher.ID}
		}
		st.n++
		g.over[s.Path] = st
		if st.n < g.strikes {
			continue
		}
		delete(g.over, s.Path)
		g.log.Warn("publisher over max_bitrate, disconnected", "stream", s.Path, "protocol", s.Publisher.Protocol,
			"remote", s.Publisher.RemoteAddr, "bitrate", s.IngressBitrate, "max_bitrate", app.MaxBitrate, "seconds", g.strikes)
		if err := g.hub.Kick(s.Path, s.Publisher.ID); err != nil {
			g.log.Warn("kick failed", "stream", s.Path, "err", err)
			continue
		}
		kicked = append(kicked, s.Path)
	}
	for p := range g.over {
		if !seen[p] {
			delete(g.over, p)
		}
	}
	return kicked
}
