package metrics

import (
	"errors"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/quasipaa/quasipaa/internal/hub"
)

// Reasons of quasipaa_client_disconnects_total.
const (
	// DisconnectNormal: the client or its stream ended (hub.ErrStreamClosed,
	// hub.ErrHubClosed at shutdown, or no error).
	DisconnectNormal = "normal"
	// DisconnectSlowReader: the reader fell behind too often (hub.ErrSlowReader).
	DisconnectSlowReader = "slow_reader"
	// DisconnectKicked: removed on request (hub.ErrKicked).
	DisconnectKicked = "kicked"
	// DisconnectReplaced: a newer publisher took the path over (hub.ErrPublisherReplaced).
	DisconnectReplaced = "replaced"
	// DisconnectError: any other error.
	DisconnectError = "error"
)

// Reasons of quasipaa_auth_refusals_total. Any other value is exported as ReasonOther.
const (
	// ReasonNoCredential: the app needs a token and none was given.
	ReasonNoCredential = "no_credential"
	// ReasonBadCredential: the token is malformed or its signature is wrong.
	ReasonBadCredential = "bad_credential"
	// ReasonExpired: the token expired or is not valid yet.
	ReasonExpired = "expired"
	// ReasonForbidden: a valid token that does not grant this action on this path.
	ReasonForbidden = "forbidden"
	// ReasonProtocol: the app does not allow this protocol for this action.
	ReasonProtocol = "protocol"
	// ReasonWebhookDenied: the auth webhook answered no.
	ReasonWebhookDenied = "webhook_denied"
	// ReasonWebhookError: the auth webhook failed or timed out (which refuses).
	ReasonWebhookError = "webhook_error"
	// ReasonMaxPublishers: the app's max_publishers limit is reached.
	ReasonMaxPublishers = "max_publishers"
	// ReasonMaxViewers: the app's max_viewers limit is reached.
	ReasonMaxViewers = "max_viewers"
	// ReasonMaxBitrate: the publisher exceeds the app's max_bitrate.
	ReasonMaxBitrate = "max_bitrate"
	// ReasonRateLimited: the client address made too many refused attempts (auth.fail_limit).
	ReasonRateLimited = "rate_limited"
	// ReasonUnknownApp: the path names no configured app.
	ReasonUnknownApp = "unknown_app"
	// ReasonOther: anything else.
	ReasonOther = "other"
)

// Webhook events of quasipaa_webhooks_total (the config keys of auth.webhook).
const (
	// WebhookOnPublish is the question asked before a publisher is accepted.
	WebhookOnPublish = "on_publish"
	// WebhookOnPlay is the question asked before a viewer is accepted.
	WebhookOnPlay = "on_play"
	// WebhookOnUnpublish tells that a publisher stopped.
	WebhookOnUnpublish = "on_unpublish"
	// WebhookOnStop tells that a viewer stopped.
	WebhookOnStop = "on_stop"
	// WebhookOnRecordSegment tells that a recorded segment was stored.
	WebhookOnRecordSegment = "on_record_segment"
)

// Webhook outcomes of quasipaa_webhooks_total. Any other value is exported as ReasonOther.
const (
	// OutcomeOK: the endpoint answered 2xx.
	OutcomeOK = "ok"
	// OutcomeDenied: the endpoint answered with a refusal (non-2xx to a publish/play question).
	OutcomeDenied = "denied"
	// OutcomeError: the call failed (connection error, 5xx to a notification).
	OutcomeError = "error"
	// OutcomeTimeout: the call did not finish within auth.webhook.timeout.
	OutcomeTimeout = "timeout"
)

var (
	authReasons = set(ReasonNoCredential, ReasonBadCredential, ReasonExpired, ReasonForbidden, ReasonProtocol,
		ReasonWebhookDenied, ReasonWebhookError, ReasonMaxPublishers, ReasonMaxViewers, ReasonMaxBitrate,
		ReasonRateLimited, ReasonUnknownApp, ReasonOther)
	webhookEvents   = set(WebhookOnPublish, WebhookOnPlay, WebhookOnUnpublish, WebhookOnStop, WebhookOnRecordSegment)
	webhookOutcomes = set(OutcomeOK, OutcomeDenied, OutcomeError, OutcomeTimeout)
	actions         = set(string(hub.ActionPublish), string(hub.ActionPlay))
)

func set(values ...string) map[string]bool {
	m := make(map[string]bool, len(values))
	for _, v := range values {
		m[v] = true
	}
	return m
}

// oneOf returns v when it is in known, ReasonOther otherwise.
func oneOf(known map[string]bool, v string) string {
	if known[v] {
		return v
	}
	return ReasonOther
}

// disconnectReason maps why a client left to a reason label.
func disconnectReason(err error) string {
	switch {
	case err == nil, errors.Is(err, hub.ErrStreamClosed), errors.Is(err, hub.ErrHubClosed):
		return DisconnectNormal
	case errors.Is(err, hub.ErrSlowReader):
		return DisconnectSlowReader
	case errors.Is(err, hub.ErrKicked):
		return DisconnectKicked
	case errors.Is(err, hub.ErrPublisherReplaced):
		return DisconnectReplaced
	default:
		return DisconnectError
	}
}

// maxLabelValues bounds the distinct values a free-form label (protocol,
// relay state, job kind) may take; later newcomers are exported as "other".
const maxLabelValues = 32

// maxLabelLen bounds the length of a free-form label value.
const maxLabelLen = 32

// boundedLabel keeps a free-form label to a bounded set of short, simple values.
type boundedLabel struct {
	mu       sync.Mutex
	seen     map[string]bool
	admitted int // values admitted as given (not "other" nor "unknown")
}

// value returns v if it is a short token of [a-z0-9_-] starting with a
// letter (so never an address) and the set has room
// (or already holds it), ReasonOther otherwise; "" is "unknown".
func (b *boundedLabel) value(v string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen[v] {
		return v
	}
	if b.seen == nil {
		b.seen = make(map[string]bool)
	}
	switch {
	case v == "":
		v = "unknown"
	case len(v) > maxLabelLen || !isToken(v) || b.admitted >= maxLabelValues:
		v = ReasonOther
	default:
		b.admitted++
	}
	b.seen[v] = true
	return v
}

func isToken(v string) bool {
	if v[0] < 'a' || v[0] > 'z' {
		return false
	}
	for i := 1; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// values returns the values seen so far.
func (b *boundedLabel) values() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.seen))
	for v := range b.seen {
		out = append(out, v)
	}
	return out
}

// validUTF8 makes s a valid Prometheus label value.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
