package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/quasipaa/quasipaa/internal/auth"
	"github.com/quasipaa/quasipaa/internal/config"
	"github.com/quasipaa/quasipaa/internal/protocol/webrtc"
	"github.com/quasipaa/quasipaa/internal/turn"
)

// turnService is the built-in STUN/TURN server and the credentials it
// hands to WebRTC clients.
type turnService struct {
	cfg    config.TURN
	server *turn.Server
	creds  *auth.TURNCredentials
}

// newTURN prepares the TURN server of turn.*; nil when turn.listen is empty.
func newTURN(cfg config.TURN, log *slog.Logger) (*turnService, error) {
	if cfg.Listen == "" {
		return nil, nil
	}
	var secret []byte
	if cfg.Secret != "" {
		secret = []byte(cfg.Secret)
	}
	creds := auth.NewTURNCredentials(secret, cfg.CredentialTTL)
	var relayIP net.IP
	if cfg.RelayIP != "" {
		relayIP = net.ParseIP(cfg.RelayIP)
	}
	srv, err := turn.New(turn.Options{
		Listen:                cfg.Listen,
		TLSListen:             cfg.TLSListen,
		TLSCert:               cfg.TLSCert,
		TLSKey:                cfg.TLSKey,
		Realm:                 cfg.Realm,
		Credentials:           creds,
		RelayIP:               relayIP,
		RelayPortMin:          cfg.RelayPortMin,
		RelayPortMax:          cfg.RelayPortMax,
		MaxAllocationsPerUser: cfg.MaxAllocationsPerUser,
		AllowPrivatePeers:     cfg.AllowPrivatePeers,
		Logger:                log,
	})
	if err != nil {
		return nil, fmt.Errorf("turn: %w", err)
	}
	return &turnService{cfg: cfg, server: srv, creds: creds}, nil
}

// start binds the TURN sockets and logs their addresses.
func (t *turnService) start(ctx context.Context, log *slog.Logger) error {
	if err := t.server.Start(ctx); err != nil {
		return fmt.Errorf("turn.listen: %w", err)
	}
	log.Info("listening", "protocol", "turn-udp", "addr", t.server.UDPAddr().String())
	log.Info("listening", "protocol", "turn-tcp", "addr", t.server.TCPAddr().String())
	if a := t.server.TLSAddr(); a != nil {
		log.Info("listening", "protocol", "turn-tls", "addr", a.String())
	}
	return nil
}

// iceServers returns the STUN and TURN servers advertised to a WHIP or WHEP
// client, with fresh credentials: at turn.public_host, or the host the
// client reached the HTTP server at.
func (t *turnService) iceServers(r *http.Request) []webrtc.ICEServer {
	if t == nil {
		return nil
	}
	host := t.cfg.PublicHost
	if host == "" {
		host = r.Host
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			host = h
		}
	}
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]" // IPv6 literal
	}
	port := func(a net.Addr) string {
		switch v := a.(type) {
		case *net.UDPAddr:
			return strconv.Itoa(v.Port)
		case *net.TCPAddr:
			return strconv.Itoa(v.Port)
		}
		return ""
	}
	user, pass, _ := t.creds.Mint("webrtc", time.Now())
	stun := webrtc.ICEServer{URLs: []string{"stun:" + host + ":" + port(t.server.UDPAddr())}}
	relay := webrtc.ICEServer{
		URLs: []string{
			"turn:" + host + ":" + port(t.server.UDPAddr()) + "?transport=udp",
			"turn:" + host + ":" + port(t.server.TCPAddr()) + "?transport=tcp",
		},
		Username:   user,
		Credential: pass,
	}
	if a := t.server.TLSAddr(); a != nil {
		relay.URLs = append(relay.URLs, "turns:"+host+":"+port(a)+"?transport=tcp")
	}
	return []webrtc.ICEServer{stun, relay}
}
