package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"
)

// SpoolOptions tunes a Spool; zero values take the defaults.
type SpoolOptions struct {
	// MinBackoff is the wait after a first failed upload (default 500ms).
	MinBackoff time.Duration
	// MaxBackoff caps the doubling wait between retries (default 30s).
	MaxBackoff time.Duration
	// ScanInterval is how often the spool directory is rescanned when
	// nothing was added (default 5s); Add wakes the uploader at once.
	ScanInterval time.Duration
	// Logger receives upload failures and retries (default slog.Default()).
	Logger *slog.Logger
}

// Spool uploads completed files from a local spool directory to a Store:
// a file leaves the spool only after the Store has accepted it, so an
// unreachable Store delays uploads but loses nothing, and files left by a
// previous run are uploaded when Run starts.
type Spool struct {
	local  *FS
	remote Store
	opts   SpoolOptions
	log    *slog.Logger
	kick   chan struct{}
}

// NewSpool keeps pending files under dir (created if needed) and uploads
// them to remote. Call Run to start uploading.
func NewSpool(dir string, remote Store, opts SpoolOptions) (*Spool, error) {
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 500 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = opts.MinBackoff
	}
	if opts.ScanInterval <= 0 {
		opts.ScanInterval = 5 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	local, err := NewFS(dir)
	if err != nil {
		return nil, err
	}
	return &Spool{local: local, remote: remote, opts: opts, log: log.With("component", "spool"), kick: make(chan struct{}, 1)}, nil
}

// Close releases the spool directory; call it after Run has returned.
func (s *Spool) Close() error { return s.local.Close() }

// Put stores a completed object in the spool (durably, see FS.Put) and
// wakes the uploader; it is the Store-like entry point of the spool.
func (s *Spool) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := s.local.Put(ctx, key, r, size); err != nil {
		return err
	}
	s.wake()
	return nil
}

// AddFile copies the completed file at path into the spool under key
// (durably, see FS.Put), then removes path.
func (s *Spool) AddFile(ctx context.Context, path, key string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("storage: spool add %q: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("storage: spool add %q: %w", path, err)
	}
	if err := s.local.Put(ctx, key, f, fi.Size()); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("storage: spool add %q: stored, but removing the source: %w", path, err)
	}
	s.wake()
	return nil
}

// Pending returns the keys still waiting for upload, sorted.
func (s *Spool) Pending(ctx context.Context) ([]string, error) {
	infos, err := s.local.List(ctx, "")
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(infos))
	for i, o := range infos {
		keys[i] = o.Key
	}
	return keys, nil
}

func (s *Spool) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run uploads pending files in key order until ctx is done, retrying each
// failed upload with capped exponential backoff; a file that keeps failing
// holds back the ones after it. It returns ctx's error.
func (s *Spool) Run(ctx context.Context) error {
	for {
		keys, err := s.Pending(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error("scan failed", "err", err)
		}
		for _, key := range keys {
			if err := s.uploadWithRetry(ctx, key); err != nil {
				return err
			}
		}
		timer := time.NewTimer(s.opts.ScanInterval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-s.kick:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// uploadWithRetry uploads key until it succeeds; it returns only ctx's error.
func (s *Spool) uploadWithRetry(ctx context.Context, key string) error {
	for attempt := 1; ; attempt++ {
		err := s.upload(ctx, key)
		if err == nil || errors.Is(err, ErrNotFound) {
			if attempt > 1 {
				s.log.Info("upload succeeded after retries", "key", key, "attempts", attempt)
			}
			return nil // uploaded, or no longer in the spool
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := Backoff(s.opts.MinBackoff, s.opts.MaxBackoff, attempt)
		s.log.Warn("upload failed; will retry", "key", key, "attempt", attempt, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// upload copies one spool file to the remote store, then deletes it locally.
func (s *Spool) upload(ctx context.Context, key string) error {
	info, err := s.local.Stat(ctx, key)
	if err != nil {
		return err
	}
	rc, err := s.local.Get(ctx, key, 0, -1)
	if err != nil {
		return err
	}
	err = s.remote.Put(ctx, key, rc, info.Size)
	rc.Close()
	if err != nil {
		return fmt.Errorf("storage: spool upload %q: %w", key, err)
	}
	// A key added again while it was uploading is left for the next scan.
	if now, err := s.local.Stat(ctx, key); err != nil || now.Size != info.Size || !now.ModTime.Equal(info.ModTime) {
		return nil
	}
	if err := s.local.Delete(ctx, key); err != nil && !errors.Is(err, ErrNotFound) {
		// Uploaded; the next scan uploads it again (idempotent) and retries the delete.
		return fmt.Errorf("storage: spool remove %q after upload: %w", key, err)
	}
	return nil
}

// Backoff returns the wait before retry number attempt (1-based):
// min·2^(attempt-1), capped at max, with ±20% jitter (never above max).
func Backoff(minWait, maxWait time.Duration, attempt int) time.Duration {
	d := minWait
	for i := 1; i < attempt && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	jitter := time.Duration(float64(d) * (rand.Float64()*0.4 - 0.2))
	return min(d+jitter, maxWait)
}
