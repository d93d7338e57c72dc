package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/auth"
	"github.com/quasipaa/quasipaa/internal/config"
	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/record"
)

func TestAdmissionWiring(t *testing.T) {
	type got struct {
		event, sig string
		body       []byte
	}
	calls := make(chan got, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		calls <- got{r.Header.Get(auth.HeaderEvent), r.Header.Get(auth.HeaderSignature), b}
	}))
	defer srv.Close()
	cfg := config.Default()
	cfg.Auth.JWTSecret = "wiring-secret"
	cfg.Auth.Webhook.OnRecordSegment = srv.URL
	cfg.Auth.Webhook.OnUnpublish = srv.URL
	cfg.Auth.Webhook.Secret = "sig"
	cfg.Apps = []config.App{{Match: "secure/*", Auth: config.AuthToken}}
	adm, err := newAdmission(cfg, cfg.AppFor, admissionCounts{}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	h := hub.New(hub.Options{Admit: adm.admit, OnLeave: adm.onLeave})
	defer h.Close()
	adm.bind(h)
	stop := adm.start()

	_, err = h.PublishContext(context.Background(), "secure/cam", hub.ClientInfo{Protocol: "rtmp", RemoteAddr: "127.0.0.1:1"})
	require.ErrorIs(t, err, auth.ErrTokenMissing)
	tok, err := auth.Mint([]byte("wiring-secret"), auth.Claims{Path: "secure/cam", Action: "publish"}, time.Minute)
	require.NoError(t, err)
	pub, err := h.PublishContext(context.Background(), "secure/cam", hub.ClientInfo{Protocol: "rtmp", RemoteAddr: "127.0.0.1:1", Query: "token=" + tok})
	require.NoError(t, err)

	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	adm.segment(record.Segment{Path: "secure/cam", Start: start, Duration: 4 * time.Second, Size: 1234, Run: start})
	c := <-calls
	require.Equal(t, auth.EventRecordSegment, c.event)
	require.True(t, auth.CheckSignature([]byte("sig"), c.body, c.sig))
	var seg map[string]any
	require.NoError(t, json.Unmarshal(c.body, &seg))
	require.Equal(t, "secure/cam", seg["path"])
	require.Equal(t, record.Segment{Path: "secure/cam", Start: start, Duration: 4 * time.Second, Run: start}.Key(), seg["key"])
	require.Equal(t, "2026-01-02T03:04:05Z", seg["start"])
	require.EqualValues(t, 4, seg["duration_seconds"])
	require.EqualValues(t, 1234, seg["size"])

	// The last notifications are sent before stop returns.
	pub.Close()
	stop()
	c = <-calls
	require.Equal(t, auth.EventUnpublish, c.event)
}

func TestAdmissionKeyErrors(t *testing.T) {
	cfg := config.Default()
	cfg.Auth.JWKSFile = "/nonexistent/jwks.json"
	_, err := newAdmission(cfg, cfg.AppFor, admissionCounts{}, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "auth.jwks_file")
}
