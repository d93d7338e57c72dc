package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/quasipaa/quasipaa/internal/config"
	"github.com/quasipaa/quasipaa/internal/record"
	"github.com/quasipaa/quasipaa/internal/storage"
)

// recording is the node's storage and what records into it.
type recording struct {
	store storage.Store
	sink  record.Sink    // store itself, or the spool in front of S3
	spool *storage.Spool // nil on local disk
	fs    *storage.FS    // the local store, when storage is local
}

// openStorage opens the configured store: S3 with a local spool under
// storage.dir/spool when storage.s3.endpoint is set, else storage.dir. It
// returns nil when nothing is recorded and no local store exists yet, so a
// plain live server leaves no directory behind.
func openStorage(ctx context.Context, cfg *config.Config) (*recording, error) {
	records := false
	for _, a := range cfg.Apps {
		records = records || a.Record
	}
	if cfg.Storage.S3.Endpoint != "" {
		s3cfg := cfg.Storage.S3
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		s3, err := storage.NewS3(cctx, storage.S3Config{
			Endpoint: s3cfg.Endpoint, Bucket: s3cfg.Bucket, AccessKey: s3cfg.AccessKey, SecretKey: s3cfg.SecretKey,
			Region: s3cfg.Region, UseSSL: s3cfg.UseSSL, PathStyle: s3cfg.PathStyle,
		})
		if err != nil {
			return nil, fmt.Errorf("storage.s3.endpoint: %w", err)
		}
		spool, err := storage.NewSpool(filepath.Join(cfg.Storage.Dir, "spool"), s3, storage.SpoolOptions{MinBackoff: time.Second, MaxBackoff: 10 * time.Second, ScanInterval: 5 * time.Second})
		if err != nil {
			return nil, fmt.Errorf("storage.dir: spool: %w", err)
		}
		return &recording{store: s3, sink: spool, spool: spool}, nil
	}
	if !records {
		if _, err := os.Stat(cfg.Storage.Dir); err != nil {
			return nil, nil
		}
	}
	fs, err := storage.NewFS(cfg.Storage.Dir)
	if err != nil {
		return nil, fmt.Errorf("storage.dir: %w", err)
	}
	return &recording{store: fs, sink: fs, fs: fs}, nil
}

// close releases local directories; call it once nothing uses the store.
func (r *recording) close() {
	if r.spool != nil {
		r.spool.Close()
	}
	if r.fs != nil {
		r.fs.Close()
	}
}

// recordPolicy maps the apps entries to the recorder's policy.
func recordPolicy(policy func(string) (config.App, bool)) record.PolicyFunc {
	return func(path string) (record.Policy, bool) {
		a, ok := policy(path)
		if !ok || !a.Record {
			return record.Policy{}, false
		}
		return record.Policy{SegmentDuration: a.RecordSegment}, true
	}
}

// janitorInterval sweeps at a tenth of the shortest retention, within 1m..1h.
func janitorInterval(cfg *config.Config) (time.Duration, bool) {
	shortest := time.Duration(0)
	for _, a := range cfg.Apps {
		if a.Record && a.Retention > 0 && (shortest == 0 || a.Retention < shortest) {
			shortest = a.Retention
		}
	}
	if shortest == 0 {
		return 0, false
	}
	return min(max(shortest/10, 10*time.Second), time.Hour), true
}

// runRecording starts the spool uploader and the retention janitor; they
// stop with ctx and the returned wait function waits for them.
func (r *recording) run(ctx context.Context, cfg *config.Config, policy func(string) (config.App, bool), log *slog.Logger) (wait func()) {
	done := make(chan struct{}, 2)
	n := 0
	if r.spool != nil {
		n++
		go func() { _ = r.spool.Run(ctx); done <- struct{}{} }()
	}
	if every, ok := janitorInterval(cfg); ok {
		n++
		j := record.NewJanitor(r.store, func(path string) time.Duration {
			if a, ok := policy(path); ok && a.Record {
				return a.Retention
			}
			return 0
		}, every, log)
		go func() { _ = j.Run(ctx); done <- struct{}{} }()
	}
	return func() {
		for range n {
			<-done
		}
	}
}
