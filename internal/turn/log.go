package turn

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/pion/logging"
)

// LevelTrace is the slog level of pion/turn's own debug and trace messages
// (one or more per packet), below slog.LevelDebug so that a debug log is not
// flooded by them.
const LevelTrace = slog.LevelDebug - 4

// pionLoggerFactory routes pion's logs to slog. pion reports mostly
// client-triggered conditions (malformed packets, denied permissions) at its
// info, warn and error levels, so they are logged at debug: a client must not
// be able to fill the server log. Its debug and trace go to LevelTrace.
type pionLoggerFactory struct{ log *slog.Logger }

func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (p pionLogger) emit(level slog.Level, msg string) {
	if ctx := context.Background(); p.log.Enabled(ctx, level) {
		p.log.Log(ctx, level, "turn: "+msg)
	}
}

func (p pionLogger) emitf(level slog.Level, format string, args ...any) {
	if ctx := context.Background(); p.log.Enabled(ctx, level) {
		p.log.Log(ctx, level, "turn: "+fmt.Sprintf(format, args...))
	}
}

func (p pionLogger) Trace(msg string)                  { p.emit(LevelTrace, msg) }
func (p pionLogger) Tracef(format string, args ...any) { p.emitf(LevelTrace, format, args...) }
func (p pionLogger) Debug(msg string)                  { p.emit(LevelTrace, msg) }
func (p pionLogger) Debugf(format string, args ...any) { p.emitf(LevelTrace, format, args...) }
func (p pionLogger) Info(msg string)                   { p.emit(slog.LevelDebug, msg) }
func (p pionLogger) Infof(format string, args ...any)  { p.emitf(slog.LevelDebug, format, args...) }
func (p pionLogger) Warn(msg string)                   { p.emit(slog.LevelDebug, msg) }
func (p pionLogger) Warnf(format string, args ...any)  { p.emitf(slog.LevelDebug, format, args...) }
func (p pionLogger) Error(msg string)                  { p.emit(slog.LevelDebug, msg) }
func (p pionLogger) Errorf(format string, args ...any) { p.emitf(slog.LevelDebug, format, args...) }

// refusalWarnInterval is the least time between two warn logs of refusals of
// one reason; the refusals in between are logged at debug only and counted in
// the next warn.
const refusalWarnInterval = 10 * time.Second

// warnLimiter lets one warn log through per refusalWarnInterval.
type warnLimiter struct {
	mu         sync.Mutex
	next       time.Time
	suppressed uint64
}

// allow reports whether a warn may be logged at now and, if so, how many were
// suppressed since the last one.
func (l *warnLimiter) allow(now time.Time) (bool, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.next) {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.suppressed = 0
	l.next = now.Add(refusalWarnInterval)
	return true, n
}

// reason is why a request was refused, as counted in Stats.
type reason int

const (
	reasonAuth reason = iota
	reasonQuota
	reasonPeer
	numReasons
)

func (r reason) String() string {
	return [...]string{"auth", "quota", "peer"}[r]
}

// refuse counts a refusal and logs it: at debug always, at warn rate-limited.
func (s *Server) refuse(r reason, client net.Addr, why string, attrs ...any) {
	s.refused[r].Add(1)
	base := []any{"reason", r.String(), "client", addrString(client), "why", why}
	s.log.Debug("turn: refused", append(base, attrs...)...)
	if ok, suppressed := s.warn[r].allow(time.Now()); ok {
		s.log.Warn("turn: refusing requests", append(append(base, attrs...), "suppressed", suppressed)...)
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// clip shortens client-supplied strings for logs.
func clip(s string) string {
	const maxLen = 80
	if len(s) <= maxLen {
		return s
	}
	return s[:maxLen] + "…"
}
