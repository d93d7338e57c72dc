package record

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/quasipaa/quasipaa/internal/storage"
)

// RetentionFunc returns how long the recordings of path are kept; 0 keeps
// them forever.
type RetentionFunc func(path string) time.Duration

// Janitor deletes recorded segments older than their retention.
type Janitor struct {
	store     storage.Store
	retention RetentionFunc
	interval  time.Duration
	log       *slog.Logger
	now       func() time.Time
}

// NewJanitor returns a janitor that sweeps store every interval.
func NewJanitor(store storage.Store, retention RetentionFunc, interval time.Duration, log *slog.Logger) *Janitor {
	return &Janitor{store: store, retention: retention, interval: interval, log: log.With("component", "retention"), now: time.Now}
}

// Run sweeps at once and then every interval until ctx is done.
func (j *Janitor) Run(ctx context.Context) error {
	t := time.NewTicker(j.interval)
	defer t.Stop()
	for {
		if n, err := j.Sweep(ctx); err != nil && ctx.Err() == nil {
			j.log.Warn("retention sweep failed", "err", err, "deleted", n)
		} else if n > 0 {
			j.log.Info("retention sweep", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Sweep deletes every expired segment once and returns how many it deleted.
func (j *Janitor) Sweep(ctx context.Context) (int, error) {
	infos, err := j.store.List(ctx, Prefix+"/")
	if err != nil {
		return 0, err
	}
	now := j.now()
	n := 0
	for _, o := range infos {
		path, ok := pathOfKey(o.Key)
		if !ok {
			continue
		}
		keep := j.retention(path)
		if keep <= 0 {
			continue
		}
		seg, err := ParseKey(path, o.Key)
		if err != nil || now.Sub(seg.End()) <= keep {
			continue
		}
		if err := j.store.Delete(ctx, o.Key); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return n, err
		}
		n++
	}
	return n, nil
}

// pathOfKey extracts the stream path from a segment key
// "recordings/{path}/{day}/{name}".
func pathOfKey(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, Prefix+"/")
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return "", false
	}
	j := strings.LastIndexByte(rest[:i], '/')
	if j <= 0 {
		return "", false
	}
	return rest[:j], true
}
