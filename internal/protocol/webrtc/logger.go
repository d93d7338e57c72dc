package webrtc

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// slogFactory routes pion's logs to slog. Pion's Info is internal detail and
// its Warn mostly one client's session life (about five lines per session:
// pings before candidate pairs, streams closed at teardown), so both are
// logged at Debug; its Error at Warn, since our sessions log their own
// failures with the client's address. Trace is dropped.
type slogFactory struct{ log *slog.Logger }

// NewLogger returns the logger of a pion component.
func (f slogFactory) NewLogger(scope string) logging.LeveledLogger {
	return slogLogger{log: f.log.With("pion", scope)}
}

// slogLogger implements pion's LeveledLogger over slog.
type slogLogger struct{ log *slog.Logger }

func (l slogLogger) emit(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

func (l slogLogger) emitf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (slogLogger) Trace(string)          {}
func (slogLogger) Tracef(string, ...any) {}
func (l slogLogger) Debug(msg string)    { l.emit(slog.LevelDebug, msg) }
func (l slogLogger) Debugf(format string, args ...any) {
	l.emitf(slog.LevelDebug, format, args...)
}
func (l slogLogger) Info(msg string) { l.emit(slog.LevelDebug, msg) }
func (l slogLogger) Infof(format string, args ...any) {
	l.emitf(slog.LevelDebug, format, args...)
}
func (l slogLogger) Warn(msg string) { l.emit(slog.LevelDebug, msg) }
func (l slogLogger) Warnf(format string, args ...any) {
	l.emitf(slog.LevelDebug, format, args...)
}
func (l slogLogger) Error(msg string) { l.emit(slog.LevelWarn, msg) }
func (l slogLogger) Errorf(format string, args ...any) {
	l.emitf(slog.LevelWarn, format, args...)
}
