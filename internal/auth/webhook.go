package auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/quasipaa/quasipaa/internal/config"
)

// Webhook errors of Ask; both refuse the client.
var (
	// ErrWebhookDenied means the endpoint answered with a non-2xx status.
	ErrWebhookDenied = fmt.Errorf("%w: denied by webhook", ErrForbidden)
	// ErrWebhookUnavailable means the endpoint could not be asked: not
	// configured, unreachable, or no answer within the timeout.
	ErrWebhookUnavailable = fmt.Errorf("%w: webhook unavailable", ErrUnavailable)
)

// Webhook events, the X-Quasipaa-Event header of every call.
const (
	EventPublish       = "on_publish"
	EventPlay          = "on_play"
	EventUnpublish     = "on_unpublish"
	EventStop          = "on_stop"
	EventRecordSegment = "on_record_segment"
)

// Headers of every webhook call.
const (
	HeaderSignature = "X-Quasipaa-Signature"
	HeaderEvent     = "X-Quasipaa-Event"
)

// Defaults of WebhookOptions.
const (
	DefaultWebhookQueue   = 1024
	DefaultWebhookBackoff = 500 * time.Millisecond
	maxWebhookBackoff     = 30 * time.Second
	maxWebhookAnswer      = 64 << 10
)

// WebhookOptions tune a Webhooks client; zero values take the defaults.
type WebhookOptions struct {
	// QueueSize bounds the notifications waiting to be sent (default 1024);
	// more are dropped, counted and logged.
	QueueSize int
	// Backoff is the wait before the first retry, doubled at each retry
	// (default 500 ms, at most 30 s).
	Backoff time.Duration
	// Client sends the calls (default: a client without redirects).
	Client *http.Client
	// Logger receives the failures (default slog.Default()).
	Logger *slog.Logger
	// Observe, when set, is told the outcome of every call (each attempt of
	// a notification): "ok", "denied" (a non-2xx answer to a question),
	// "error" or "timeout" — e.g. to count them.
	Observe func(event, outcome string)
}

// Webhooks calls the HTTP endpoints of auth.webhook.*: Ask for the
// on_publish/on_play questions, Notify for the notifications that Run sends.
// Every body is signed when a secret is set. It is safe for concurrent use.
type Webhooks struct {
	cfg       config.Webhook
	client    *http.Client
	log       *slog.Logger
	backoff   time.Duration
	queue     chan notification
	dropped   atomic.Uint64
	failed    atomic.Uint64
	pending   atomic.Int64
	onOutcome func(event, outcome string)
}

type notification struct {
	event, url string
	body       []byte
}

// NewWebhooks returns a client for the endpoints of cfg.
func NewWebhooks(cfg config.Webhook, opts WebhookOptions) *Webhooks {
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultWebhookQueue
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultWebhookBackoff
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Client == nil {
		opts.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	return &Webhooks{cfg: cfg, client: opts.Client, log: opts.Logger, backoff: opts.Backoff, queue: make(chan notification, opts.QueueSize), onOutcome: opts.Observe}
}

// url returns the endpoint of event, "" when none is configured.
func (w *Webhooks) url(event string) string {
	switch event {
	case EventPublish:
		return w.cfg.OnPublish
	case EventPlay:
		return w.cfg.OnPlay
	case EventUnpublish:
		return w.cfg.OnUnpublish
	case EventStop:
		return w.cfg.OnStop
	case EventRecordSegment:
		return w.cfg.OnRecordSegment
	}
	return ""
}

// Sign returns the X-Quasipaa-Signature value of body: "sha256=" and the hex
// HMAC-SHA256 of body keyed by secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// CheckSignature reports whether header is the signature of body by secret,
// in constant time.
func CheckSignature(secret, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

// post sends one call and returns its status.
func (w *Webhooks) post(ctx context.Context, event, url string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderEvent, event)
	if w.cfg.Secret != "" {
		req.Header.Set(HeaderSignature, Sign([]byte(w.cfg.Secret), body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxWebhookAnswer))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Ask asks the endpoint of event (EventPublish or EventPlay) whether body's
// client may proceed: a 2xx answer allows; another status is
// ErrWebhookDenied; no endpoint, a connection failure or no answer within
// the timeout is ErrWebhookUnavailable.
func (w *Webhooks) Ask(ctx context.Context, event string, body any) error {
	url := w.url(event)
	if url == "" {
		return fmt.Errorf("%w: auth.webhook.%s is not set", ErrWebhookUnavailable, event)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrWebhookUnavailable, err)
	}
	status, err := w.post(ctx, event, url, b)
	w.observe(event, status, err, "denied")
	switch {
	case err != nil:
		return fmt.Errorf("%w: %v", ErrWebhookUnavailable, err)
	case status < 200 || status > 299:
		return fmt.Errorf("%w: %s answered %d", ErrWebhookDenied, event, status)
	}
	return nil
}

// Notify queues body for the endpoint of event (EventUnpublish, EventStop
// or EventRecordSegment), if one is configured. It never blocks: when the
// queue is full the notification is dropped, counted and logged.
func (w *Webhooks) Notify(event string, body any) {
	url := w.url(event)
	if url == "" {
		return
	}
	b, err := json.Marshal(body)
	if err != nil {
		w.log.Warn("webhook notification not encodable", "event", event, "err", err)
		return
	}
	w.pending.Add(1)
	select {
	case w.queue <- notification{event: event, url: url, body: b}:
	default:
		w.pending.Add(-1)
		n := w.dropped.Add(1)
		w.log.Warn("webhook queue full, notification dropped", "event", event, "dropped_total", n)
	}
}

// Dropped returns how many notifications were dropped on a full queue.
func (w *Webhooks) Dropped() uint64 { return w.dropped.Load() }

// Pending returns how many notifications are queued or being sent.
func (w *Webhooks) Pending() int { return int(w.pending.Load()) }

// Failed returns how many notifications were given up after every retry.
func (w *Webhooks) Failed() uint64 { return w.failed.Load() }

// Run sends the queued notifications until ctx ends, one at a time, each
// retried up to the configured retries with a doubling backoff.
func (w *Webhooks) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-w.queue:
			w.deliver(ctx, n)
		}
	}
}

func (w *Webhooks) deliver(ctx context.Context, n notification) {
	defer w.pending.Add(-1)
	wait := w.backoff
	var last error
	for attempt := 0; attempt <= w.cfg.Retries; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			wait = min(2*wait, maxWebhookBackoff)
		}
		status, err := w.post(ctx, n.event, n.url, n.body)
		w.observe(n.event, status, err, "error")
		if err == nil && status >= 200 && status <= 299 {
			return
		}
		if err == nil {
			err = fmt.Errorf("answered %d", status)
		}
		last = err
		if ctx.Err() != nil {
			return
		}
	}
	w.failed.Add(1)
	w.log.Warn("webhook notification failed", "event", n.event, "url", n.url, "attempts", w.cfg.Retries+1, "err", last)
}

// observe reports a call's outcome to WebhookOptions.Observe; refused is the
// outcome of a non-2xx answer.
func (w *Webhooks) observe(event string, status int, err error, refused string) {
	if w.onOutcome == nil {
		return
	}
	var ne net.Error
	outcome := "ok"
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		outcome = "timeout"
	case err != nil:
		outcome = "error"
	case status < 200 || status > 299:
		outcome = refused
	}
	w.onOutcome(event, outcome)
}

// errString is err's text, "" for nil.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
