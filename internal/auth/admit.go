package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quasipaa/quasipaa/internal/config"
	"github.com/quasipaa/quasipaa/internal/hub"
)

// Refusals of Admit besides the token, webhook and rate-limit errors.
var (
	// ErrProtocolNotAllowed means the app's publish_protocols or play_protocols leave the protocol out.
	ErrProtocolNotAllowed = fmt.Errorf("%w: protocol not allowed for this app", ErrForbidden)
	// ErrTooManyPublishers means the app's max_publishers streams are live on this node.
	ErrTooManyPublishers = fmt.Errorf("%w: too many publishers for this app", ErrUnavailable)
	// ErrTooManyViewers means the stream has its max_viewers viewers on this node.
	ErrTooManyViewers = fmt.Errorf("%w: too many viewers for this stream", ErrUnavailable)
	// ErrHLSNotAdmitted means an HLS media file was asked by a client whose
	// playlist request was not admitted lately (apps with auth webhook).
	ErrHLSNotAdmitted = fmt.Errorf("%w: request the playlist first", ErrUnauthorized)
)

// HTTPStatus maps a refusal of this package to an HTTP status and a short
// machine-readable code; other errors give 0 and "".
func HTTPStatus(err error) (int, string) {
	switch {
	case err == nil:
		return 0, ""
	case errors.Is(err, ErrRateLimited):
		return http.StatusTooManyRequests, "rate_limited"
	case errors.Is(err, ErrWebhookUnavailable):
		return http.StatusServiceUnavailable, "auth_unavailable"
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable, "limit_reached"
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized, "unauthorized"
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, "forbidden"
	}
	return 0, ""
}

// IsRefusal reports whether err is a refusal of this package.
func IsRefusal(err error) bool {
	return errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrForbidden) || errors.Is(err, ErrUnavailable)
}

// reasonOf is the short reason of a refusal, for logs and metrics.
func reasonOf(err error) string {
	for _, r := range []struct {
		err    error
		reason string
	}{
		{ErrTokenMissing, "token_missing"}, {ErrTokenInvalid, "token_invalid"}, {ErrTokenExpired, "token_expired"},
		{ErrTokenScope, "token_scope"}, {ErrProtocolNotAllowed, "protocol_not_allowed"},
		{ErrWebhookDenied, "webhook_denied"}, {ErrWebhookUnavailable, "webhook_unavailable"},
		{ErrRateLimited, "rate_limited"}, {ErrTooManyPublishers, "max_publishers"},
		{ErrTooManyViewers, "max_viewers"}, {ErrHLSNotAdmitted, "hls_not_admitted"},
	} {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "other"
}

// Policy returns the app policy of a stream path (config.Config.AppFor, or
// its run-time editable equivalent); it is asked at every decision.
type Policy func(path string) (config.App, bool)

// Streams is what the Admitter reads of the hub.
type Streams interface {
	Streams() []hub.StreamInfo
	Stream(path string) (hub.StreamInfo, bool)
}

// AdmitterOptions configure an Admitter.
type AdmitterOptions struct {
	// Policy gives each path's app (required).
	Policy Policy
	// Verifier checks tokens for apps with auth token; nil refuses them all.
	Verifier *Verifier
	// Webhooks asks on_publish/on_play for apps with auth webhook and sends
	// the on_unpublish/on_stop notifications; nil refuses webhook apps.
	Webhooks *Webhooks
	// Limiter refuses client IPs that failed too often; nil never does.
	Limiter *Limiter
	// Node is this node's name in webhook bodies.
	Node string
	// Logger receives one warning per refusal (default slog.Default()).
	Logger *slog.Logger
	// Refused, when set, is called for each refusal, e.g. to count it.
	Refused func(action, protocol, reason string)
}

// hlsAdmitTTL is how long an admitted HLS playlist request of a webhook app
// admits the same client's next requests of the stream without asking again.
const hlsAdmitTTL = 30 * time.Second

// maxHLSAdmitted bounds the remembered HLS admissions.
const maxHLSAdmitted = 65536

// Admitter decides who may publish and play: per-app protocol allow-lists,
// auth none/token/webhook, max_publishers, max_viewers and the failure rate
// limiter. Its Admit and OnLeave plug into hub.Options. It is safe for
// concurrent use.
type Admitter struct {
	o       AdmitterOptions
	log     *slog.Logger
	streams atomic.Pointer[Streams]
	now     func() time.Time

	mu       sync.Mutex
	hlsUntil map[string]time.Time
}

// NewAdmitter returns an Admitter; Bind must give it the hub before the
// max_* limits can be counted.
func NewAdmitter(o AdmitterOptions) *Admitter {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Admitter{o: o, log: o.Logger, now: time.Now, hlsUntil: make(map[string]time.Time)}
}

// Bind gives the admitter the hub whose streams it counts.
func (a *Admitter) Bind(s Streams) { a.streams.Store(&s) }

// hub returns the bound hub, nil before Bind.
func (a *Admitter) hub() Streams {
	if p := a.streams.Load(); p != nil {
		return *p
	}
	return nil
}

// ClientIP returns the IP part of a remote address ("1.2.3.4:5678" → "1.2.3.4").
func ClientIP(remoteAddr string) string {
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return host
	}
	return remoteAddr
}

// TokenOf returns the token of a client: its bearer credential, else the
// "token" parameter of its query.
func TokenOf(info hub.ClientInfo) string {
	if info.Credential != "" {
		return info.Credential
	}
	return QueryToken(info.Query)
}

// QueryToken returns the "token" parameter of a raw query string, "" when absent.
func QueryToken(rawQuery string) string {
	v, _ := url.ParseQuery(rawQuery) // a malformed pair elsewhere does not hide the token
	return v.Get("token")
}

// HookBody is the JSON body of every webhook call about a client.
type HookBody struct {
	// Action is "publish" or "play".
	Action string `json:"action"`
	// Path is the stream path, App and Stream its first segment and the rest.
	Path   string `json:"path"`
	App    string `json:"app"`
	Stream string `json:"stream"`
	// Protocol is the client's protocol (rtmp, whip, flv, ws-flv, hls, whep…).
	Protocol string `json:"protocol"`
	ClientIP string `json:"client_ip"`
	// ClientID is the hub's ID of the client; empty in on_publish and on_play,
	// asked before the client is attached.
	ClientID string `json:"client_id"`
	// Query is the raw query string the client connected with.
	Query string `json:"query"`
	Node  string `json:"node"`
	// DurationSeconds, Bytes and Reason are set in on_unpublish and on_stop.
	DurationSeconds float64 `json:"duration_seconds,omitempty"`
	Bytes           uint64  `json:"bytes,omitempty"`
	Reason          string  `json:"reason,omitempty"`
}

func (a *Admitter) body(action hub.Action, path string, info hub.ClientInfo) HookBody {
	app, stream, _ := strings.Cut(path, "/")
	return HookBody{
		Action: string(action), Path: path, App: app, Stream: stream, Protocol: info.Protocol,
		ClientIP: ClientIP(info.RemoteAddr), ClientID: info.ID, Query: info.Query, Node: a.o.Node,
	}
}

// Admit decides whether the client info may do action on path; it has the
// signature of hub.Options.Admit. Refusals wrap ErrUnauthorized,
// ErrForbidden or ErrUnavailable (see HTTPStatus) and are logged.
func (a *Admitter) Admit(ctx context.Context, action hub.Action, path string, info hub.ClientInfo) error {
	app, ok := a.o.Policy(path)
	if !ok {
		return nil
	}
	return a.admit(ctx, app, action, path, info)
}

// admit decides with the app of path already looked up, and logs a refusal.
func (a *Admitter) admit(ctx context.Context, app config.App, action hub.Action, path string, info hub.ClientInfo) error {
	err := a.decide(ctx, app, action, path, info)
	if err != nil {
		a.refuse(action, path, info, err)
	}
	return err
}

func (a *Admitter) refuse(action hub.Action, path string, info hub.ClientInfo, err error) {
	reason := reasonOf(err)
	a.log.Warn("refused", "action", string(action), "stream", path, "protocol", info.Protocol,
		"remote", info.RemoteAddr, "reason", reason, "err", err)
	if a.o.Refused != nil {
		a.o.Refused(string(action), info.Protocol, reason)
	}
}

func (a *Admitter) decide(ctx context.Context, app config.App, action hub.Action, path string, info hub.ClientInfo) error {
	allowed := app.PlayProtocols
	if action == hub.ActionPublish {
		allowed = app.PublishProtocols
	}
	if !config.AllowsProtocol(allowed, info.Protocol) {
		return fmt.Errorf("%w: %s may not %s %s", ErrProtocolNotAllowed, info.Protocol, action, path)
	}
	if err := a.authorise(ctx, app, action, path, info); err != nil {
		return err
	}
	return a.checkLimits(app, action, path, info)
}

// authorise runs the app's auth mode, behind the failure limiter.
func (a *Admitter) authorise(ctx context.Context, app config.App, action hub.Action, path string, info hub.ClientInfo) error {
	if app.Auth == "" || app.Auth == config.AuthNone {
		return nil
	}
	ip := ClientIP(info.RemoteAddr)
	if !a.o.Limiter.Allow(ip, a.now()) {
		return ErrRateLimited
	}
	var err error
	switch app.Auth {
	case config.AuthToken:
		if a.o.Verifier == nil {
			err = fmt.Errorf("%w: no token key is configured (auth.jwt_secret, auth.jwt_public_key or auth.jwks_file)", ErrTokenInvalid)
		} else {
			err = a.o.Verifier.Verify(TokenOf(info), string(action), path, ip)
		}
	case config.AuthWebhook:
		event := EventPlay
		if action == hub.ActionPublish {
			event = EventPublish
		}
		if a.o.Webhooks == nil {
			err = fmt.Errorf("%w: no webhook client", ErrWebhookUnavailable)
		} else {
			err = a.o.Webhooks.Ask(ctx, event, a.body(action, path, info))
		}
	default:
		err = fmt.Errorf("%w: unknown auth mode %q", ErrForbidden, app.Auth)
	}
	// A credential that was checked and refused counts; an unreachable
	// webhook is not the client's failure.
	if err != nil && (errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrForbidden)) {
		a.o.Limiter.Fail(ip, a.now())
	}
	return err
}

// viewerProtocols are the readers that count as viewers for max_viewers:
// HLS is served from one internal reader, recording and relays are not viewers.
var viewerProtocols = map[string]bool{"rtmp": true, "flv": true, "ws-flv": true, "whep": true, "srt": true}

func (a *Admitter) checkLimits(app config.App, action hub.Action, path string, info hub.ClientInfo) error {
	h := a.hub()
	if h == nil {
		return nil
	}
	switch {
	case action == hub.ActionPublish && app.MaxPublishers > 0:
		n := 0
		for _, s := range h.Streams() {
			if s.Path == path || s.Publisher == nil {
				continue // a publisher resuming its own stream does not count twice
			}
			if other, ok := a.o.Policy(s.Path); ok && other.Match == app.Match {
				n++
			}
		}
		if n >= app.MaxPublishers {
			return fmt.Errorf("%w: %d of %d", ErrTooManyPublishers, n, app.MaxPublishers)
		}
	case action == hub.ActionPlay && app.MaxViewers > 0 && viewerProtocols[info.Protocol]:
		s, ok := h.Stream(path)
		if !ok {
			return nil
		}
		n := 0
		for protocol, count := range s.Viewers {
			if viewerProtocols[protocol] {
				n += count
			}
		}
		if n >= app.MaxViewers {
			return fmt.Errorf("%w: %d of %d", ErrTooManyViewers, n, app.MaxViewers)
		}
	}
	return nil
}

// OnLeave sends on_unpublish or on_stop for a client that left; it has the
// signature of hub.Options.OnLeave and never blocks.
func (a *Admitter) OnLeave(ev hub.Event) {
	if a.o.Webhooks == nil {
		return
	}
	event := EventStop
	if ev.Action == hub.ActionPublish {
		event = EventUnpublish
	}
	b := a.body(ev.Action, ev.Path, ev.Client)
	b.DurationSeconds = ev.Duration.Seconds()
	b.Bytes = ev.Bytes
	b.Reason = errString(ev.Err)
	a.o.Webhooks.Notify(event, b)
}

// AdmitHLS decides a request for file (a playlist, segment, part or init
// file) of the HLS stream at path. Nothing is counted as a hub reader. With
// auth token every request carries the token (on the URL: the HLS role
// adds it to every URI of the playlists it serves) and is admitted by it; with auth webhook the playlist
// request asks on_play and admits the client's next requests of the stream
// for 30 s. It returns the token that must be added to the URIs of a
// served playlist, "" when none.
func (a *Admitter) AdmitHLS(ctx context.Context, path, file string, info hub.ClientInfo) (string, error) {
	app, ok := a.o.Policy(path)
	if !ok {
		return "", nil
	}
	switch app.Auth {
	case config.AuthToken:
		if err := a.admit(ctx, app, hub.ActionPlay, path, info); err != nil {
			return "", err
		}
		return TokenOf(info), nil
	case config.AuthWebhook:
		key := ClientIP(info.RemoteAddr) + "\x00" + path
		now := a.now()
		a.mu.Lock()
		until, seen := a.hlsUntil[key]
		a.mu.Unlock()
		if seen && now.Before(until) && config.AllowsProtocol(app.PlayProtocols, info.Protocol) {
			return "", nil
		}
		if !strings.HasSuffix(file, ".m3u8") {
			err := ErrHLSNotAdmitted
			a.refuse(hub.ActionPlay, path, info, err)
			return "", err
		}
		if err := a.admit(ctx, app, hub.ActionPlay, path, info); err != nil {
			return "", err
		}
		a.rememberHLS(key, now)
		return "", nil
	default:
		return "", a.admit(ctx, app, hub.ActionPlay, path, info)
	}
}

func (a *Admitter) rememberHLS(key string, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.hlsUntil) >= maxHLSAdmitted {
		for k, t := range a.hlsUntil {
			if !now.Before(t) {
				delete(a.hlsUntil, k)
			}
		}
		if len(a.hlsUntil) >= maxHLSAdmitted {
			return // full of live admissions: the next request asks again
		}
	}
	a.hlsUntil[key] = now.Add(hlsAdmitTTL)
}
