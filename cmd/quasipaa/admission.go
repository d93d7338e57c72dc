package main

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/quasipaa/quasipaa/internal/auth"
	"github.com/quasipaa/quasipaa/internal/config"
	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/metrics"
	"github.com/quasipaa/quasipaa/internal/record"
)

// admissionDrain is how long stopping waits for queued webhook
// notifications (the last on_unpublish and on_stop) to be sent.
const admissionDrain = 2 * time.Second

// admission is the publish/play authorisation of a node: the token
// verifier, the webhook client, the failure limiter, the admitter the hub
// asks, and the bit-rate guard. Its goroutines run between start and the
// function start returns.
type admission struct {
	admitter *auth.Admitter
	hooks    *auth.Webhooks
	policy   auth.Policy
	log      *slog.Logger
	guard    *auth.BitrateGuard // set by bind
}

// newAdmission builds the authorisation of cfg; policy gives each stream
// path's app and is asked at every decision (apps may change at run time).
// Errors name the config key at fault.
// counts receives each refusal and each webhook call's outcome (metrics);
// its funcs may be nil.
func newAdmission(cfg *config.Config, policy func(string) (config.App, bool), counts admissionCounts, log *slog.Logger) (*admission, error) {
	verifier, err := auth.NewVerifier(cfg.Auth)
	if err != nil {
		return nil, err
	}
	node := cfg.Cluster.NodeID
	if node == "" {
		node, _ = os.Hostname()
	}
	hooks := auth.NewWebhooks(cfg.Auth.Webhook, auth.WebhookOptions{Logger: log, Observe: counts.webhook})
	a := &admission{hooks: hooks, policy: policy, log: log}
	a.admitter = auth.NewAdmitter(auth.AdmitterOptions{
		Policy:   policy,
		Verifier: verifier,
		Webhooks: hooks,
		Limiter:  auth.NewLimiter(cfg.Auth.FailLimit, cfg.Auth.FailWindow, 0),
		Node:     node,
		Logger:   log.With("component", "auth"),
		Refused:  counts.refused,
	})
	for _, app := range cfg.Apps {
		switch {
		case app.Auth == config.AuthToken && !verifier.HasKeys():
			log.Warn("apps entry uses auth token but no key is set (auth.jwt_secret, auth.jwt_public_key or auth.jwks_file): every client will be refused", "match", app.Match)
		case app.Auth == config.AuthWebhook && (cfg.Auth.Webhook.OnPublish == "" || cfg.Auth.Webhook.OnPlay == ""):
			log.Warn("apps entry uses auth webhook but auth.webhook.on_publish or on_play is not set: those clients will be refused", "match", app.Match)
		}
	}
	return a, nil
}

// admissionCounts are the counters the admission reports to.
type admissionCounts struct {
	refused func(action, protocol, reason string)
	webhook func(event, outcome string)
}

// admit is hub.Options.Admit.
func (a *admission) admit(ctx context.Context, action hub.Action, path string, info hub.ClientInfo) error {
	return a.admitter.Admit(ctx, action, path, info)
}

// onLeave is hub.Options.OnLeave.
func (a *admission) onLeave(ev hub.Event) { a.admitter.OnLeave(ev) }

// bind gives the admission the hub it counts streams of and guards.
func (a *admission) bind(h *hub.Hub) {
	a.admitter.Bind(h)
	a.guard = auth.NewBitrateGuard(h, a.policy, a.log.With("component", "auth"))
}

// segmentBody is the on_record_segment notification.
type segmentBody struct {
	Path            string    `json:"path"`
	Key             string    `json:"key"`
	Start           time.Time `json:"start"`
	DurationSeconds float64   `json:"duration_seconds"`
	Size            int64     `json:"size"`
}

// segment is the recorder's segment hook: it sends on_record_segment.
func (a *admission) segment(seg record.Segment) {
	a.hooks.Notify(auth.EventRecordSegment, segmentBody{
		Path: seg.Path, Key: seg.Key(), Start: seg.Start.UTC(), DurationSeconds: seg.Duration.Seconds(), Size: seg.Size,
	})
}

// start runs the webhook sender and the bit-rate guard until the returned
// function is called, which first lets the queued notifications go (for
// at most admissionDrain) and then stops and waits for both.
func (a *admission) start() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a.hooks.Run(ctx) }()
	if a.guard != nil {
		wg.Add(1)
		go func() { defer wg.Done(); a.guard.Run(ctx) }()
	}
	return func() {
		deadline := time.Now().Add(admissionDrain)
		for a.hooks.Pending() > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		wg.Wait()
	}
}

// metricReasons maps the admitter's refusal reasons to the bounded reason
// labels of quasipaa_auth_refusals_total (docs/metrics.md).
var metricReasons = map[string]string{
	"token_missing":        metrics.ReasonNoCredential,
	"token_invalid":        metrics.ReasonBadCredential,
	"token_expired":        metrics.ReasonExpired,
	"token_scope":          metrics.ReasonForbidden,
	"hls_not_admitted":     metrics.ReasonForbidden,
	"protocol_not_allowed": metrics.ReasonProtocol,
	"webhook_denied":       metrics.ReasonWebhookDenied,
	"webhook_unavailable":  metrics.ReasonWebhookError,
	"rate_limited":         metrics.ReasonRateLimited,
	"max_publishers":       metrics.ReasonMaxPublishers,
	"max_viewers":          metrics.ReasonMaxViewers,
}

// metricReason returns the metrics label of an admitter refusal reason.
func metricReason(reason string) string {
	if r, ok := metricReasons[reason]; ok {
		return r
	}
	return metrics.ReasonOther
}
