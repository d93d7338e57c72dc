// Package logging builds the process logger (log/slog) from the log section
// of the configuration.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/quasipaa/quasipaa/internal/config"
)

// New returns a logger writing to w in cfg.Format ("text" or "json") that
// drops records below cfg.Level ("debug", "info", "warn" or "error").
func New(cfg config.Log, w io.Writer) (*slog.Logger, error) {
	level, err := ParseLevel(cfg.Level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(cfg.Format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf(`log.format: must be "text" or "json", got %q`, cfg.Format)
	}
}

// ParseLevel maps "debug", "info", "warn" or "error" (any case) to its slog level.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf(`log.level: must be "debug", "info", "warn" or "error", got %q`, s)
}
