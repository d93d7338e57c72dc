package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	pwebrtc "github.com/pion/webrtc/v4"
)

// WHEP players are pion PeerConnections that receive H.264 video and Opus
// audio, negotiate like a browser (non-trickle: the offer is POSTed once
// its candidates are gathered; NACKs, RTCP receiver reports and
// transport-wide congestion control feedback), read every RTP packet of
// both tracks, and DELETE their session at the end. Nothing is decoded.

// whepSocketBuffer is the receive buffer asked for each player's UDP socket
// (bounded by net.core.rmem_max), so that a keyframe's burst of packets
// fits while the player's goroutine waits for a core.
const whepSocketBuffer = 1 << 20

// whepReadBuffer holds one RTP packet (pion's receive MTU is 1460 bytes).
const whepReadBuffer = 1600

// whepDeleteTimeout bounds the DELETE of a session at the end of the run.
const whepDeleteTimeout = 5 * time.Second

// whepClient is what the WHEP players of a run share: one pion API (codecs,
// interceptors, ICE settings), one DTLS certificate, one HTTP client.
type whepClient struct {
	api   *pwebrtc.API
	certs []pwebrtc.Certificate
	hc    *http.Client
	tr    *http.Transport
}

// newWHEPClient prepares the WHEP players of a run that play urls. Each
// player gathers one host candidate, on the local address that routes to
// the servers (so one UDP socket per player).
func newWHEPClient(urls []string, players int, timeout time.Duration) (*whepClient, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("whep: %w", err)
	}
	cert, err := pwebrtc.GenerateCertificate(key)
	if err != nil {
		return nil, fmt.Errorf("whep: %w", err)
	}
	var se pwebrtc.SettingEngine
	se.LoggerFactory = &logging.DefaultLoggerFactory{Writer: io.Discard}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	networks := []pwebrtc.NetworkType{pwebrtc.NetworkTypeUDP4, pwebrtc.NetworkTypeUDP6}
	if ips := localIPsFor(urls); len(ips) > 0 {
		se.SetIPFilter(func(ip net.IP) bool { return slices.ContainsFunc(ips, ip.Equal) })
		networks = networks[:0]
		for _, ip := range ips {
			nt := pwebrtc.NetworkTypeUDP6
			if ip.To4() != nil {
				nt = pwebrtc.NetworkTypeUDP4
			}
			if !slices.Contains(networks, nt) {
				networks = append(networks, nt)
			}
		}
	}
	se.SetNetworkTypes(networks)
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, fmt.Errorf("whep: %w", err)
	}
	se.SetNet(bufferedNet{n})

	m := &pwebrtc.MediaEngine{}
	for _, c := range []struct {
		pt      pwebrtc.PayloadType
		profile string
	}{{102, "42001f"}, {106, "42e01f"}, {127, "4d001f"}, {112, "64001f"}} {
		if err := m.RegisterCodec(pwebrtc.RTPCodecParameters{
			RTPCodecCapability: pwebrtc.RTPCodecCapability{
				MimeType: pwebrtc.MimeTypeH264, ClockRate: 90000,
				SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + c.profile,
			},
			PayloadType: c.pt,
		}, pwebrtc.RTPCodecTypeVideo); err != nil {
			return nil, fmt.Errorf("whep: %w", err)
		}
	}
	if err := m.RegisterCodec(pwebrtc.RTPCodecParameters{
		RTPCodecCapability: pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType:        111,
	}, pwebrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("whep: %w", err)
	}
	reg := &interceptor.Registry{}
	if err := pwebrtc.ConfigureNack(m, reg); err != nil {
		return nil, fmt.Errorf("whep: %w", err)
	}
	if err := pwebrtc.ConfigureRTCPReports(reg); err != nil {
		return nil, fmt.Errorf("whep: %w", err)
	}
	if err := pwebrtc.ConfigureTWCCSender(m, reg); err != nil {
		return nil, fmt.Errorf("whep: %w", err)
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: min(players, 256) + 16,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: timeout,
		DisableCompression:  true,
	}
	return &whepClient{
		api:   pwebrtc.NewAPI(pwebrtc.WithSettingEngine(se), pwebrtc.WithMediaEngine(m), pwebrtc.WithInterceptorRegistry(reg)),
		certs: []pwebrtc.Certificate{*cert},
		hc:    &http.Client{Transport: tr},
		tr:    tr,
	}, nil
}

func (c *whepClient) close() { c.tr.CloseIdleConnections() }

// bufferedNet is the system network with larger UDP receive buffers.
type bufferedNet struct{ *stdnet.Net }

// ListenUDP listens and asks for a receive buffer of whepSocketBuffer bytes.
func (n bufferedNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err == nil {
		_ = c.SetReadBuffer(whepSocketBuffer)
	}
	return c, err
}

// localIPsFor returns the local addresses that route to the hosts of urls,
// or nil when one cannot be told (then candidates are gathered on every
// address).
func localIPsFor(urls []string) []net.IP {
	var out []net.IP
	for _, raw := range urls {
		u, err := url.Parse(strings.ReplaceAll(raw, Placeholder, "1"))
		if err != nil {
			return nil
		}
		ips, err := net.LookupIP(u.Hostname())
		if err != nil || len(ips) == 0 {
			return nil
		}
		for _, ip := range ips {
			// Connecting a UDP socket sends nothing: it only picks the route.
			c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: ip, Port: 9})
			if err != nil {
				return nil
			}
			local := c.LocalAddr().(*net.UDPAddr).IP
			_ = c.Close()
			if !slices.ContainsFunc(out, local.Equal) {
				out = append(out, local)
			}
		}
	}
	return out
}

// whepStats are what one WHEP player measured.
type whepStats struct {
	signal    time.Duration // POST of the offer to the answer
	signaled  bool
	video     videoRx
	audio     audioRx
	deleted   bool  // the session was DELETEd (200)
	deleteErr error // why the DELETE failed
}

// whepSession is one WHEP player's PeerConnection and its track readers.
type whepSession struct {
	p        *player
	st       *whepStats
	location string // the session URL

	connected, failed, ended chan struct{}
	connOnce, failOnce       sync.Once
	endOnce                  sync.Once
	connectedAt              atomic.Int64 // unix ns

	mu         sync.Mutex
	closing    bool
	haveVideo  bool
	haveAudio  bool
	readers    sync.WaitGroup
	failReason string
}

// playWHEP plays over WHEP: a PeerConnection receiving video and audio,
// its offer POSTed once gathered, until ctx ends; then the session is
// DELETEd. Track readers are pion's OnTrack goroutines, waited for.
func (p *player) playWHEP(ctx context.Context, timeout time.Duration) error {
	st := &whepStats{}
	p.rtc = st
	st.video.sent = p.sent
	s := &whepSession{p: p, st: st, connected: make(chan struct{}), failed: make(chan struct{}), ended: make(chan struct{})}
	pc, err := p.wc.api.NewPeerConnection(pwebrtc.Configuration{Certificates: p.wc.certs, BundlePolicy: pwebrtc.BundlePolicyMaxBundle})
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer s.close(pc)
	for _, k := range []pwebrtc.RTPCodecType{pwebrtc.RTPCodecTypeVideo, pwebrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return fmt.Errorf("connect: %w", err)
		}
	}
	pc.OnConnectionStateChange(func(state pwebrtc.PeerConnectionState) {
		switch state {
		case pwebrtc.PeerConnectionStateConnected:
			s.connOnce.Do(func() {
				s.connectedAt.Store(time.Now().UnixNano())
				close(s.connected)
			})
		case pwebrtc.PeerConnectionStateFailed, pwebrtc.PeerConnectionStateClosed:
			s.failOnce.Do(func() {
				s.mu.Lock()
				s.failReason = "peer connection " + state.String()
				s.mu.Unlock()
				close(s.failed)
			})
		}
	})
	pc.OnTrack(s.onTrack)

	deadline := time.NewTimer(time.Until(p.started.Add(timeout)))
	defer deadline.Stop()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	gathered := pwebrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	select {
	case <-gathered:
	case <-deadline.C:
		return errors.New("connect: ICE candidate gathering timed out")
	case <-ctx.Done():
		return ctx.Err()
	}
	answer, err := s.post(ctx, pc.LocalDescription().SDP, timeout)
	if err != nil {
		return err
	}
	if err := pc.SetRemoteDescription(pwebrtc.SessionDescription{Type: pwebrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("connect: answer: %w", err)
	}
	select {
	case <-s.connected:
	case <-s.failed:
		return fmt.Errorf("connect: %s", s.reason())
	case <-deadline.C:
		return errors.New("connect: ICE/DTLS not connected in time")
	case <-ctx.Done():
		return ctx.Err()
	}
	p.setPlaying()

	// Play until the run ends; silence for timeout fails the player.
	tick := time.NewTicker(max(timeout/4, 50*time.Millisecond))
	defer tick.Stop()
	lastBytes, lastChange := uint64(0), time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.failed:
			return errors.New(s.reason())
		case <-s.ended:
			return io.EOF
		case now := <-tick.C:
			if b := p.c.bytes.Load(); b != lastBytes {
				lastBytes, lastChange = b, now
			} else if now.Sub(lastChange) >= timeout {
				return fmt.Errorf("no media for %s", timeout)
			}
		}
	}
}

func (s *whepSession) reason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failReason
}

// post sends the offer and returns the answer.
func (s *whepSession) post(ctx context.Context, offer string, timeout time.Duration) (string, error) {
	answer, location, rtt, err := postOffer(ctx, s.p.wc.hc, s.p.url, offer, timeout)
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	s.st.signal, s.st.signaled, s.location = rtt, true, location
	return answer, nil
}

// postOffer POSTs an SDP offer to a WHIP or WHEP endpoint and returns the
// answer, the session URL and the request's round trip.
func postOffer(ctx context.Context, hc *http.Client, endpoint, offer string, timeout time.Duration) (answer, location string, rtt time.Duration, err error) {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodPost, endpoint, strings.NewReader(offer))
	if err != nil {
		return "", "", 0, err
	}
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Accept", "application/sdp")
	req.Header.Set("User-Agent", "quasipaa-bench")
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return "", "", 0, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	if err != nil {
		return "", "", 0, err
	}
	if resp.StatusCode != http.StatusCreated {
		msg := "HTTP " + resp.Status
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
			msg += " (" + e.Error.Code + ")"
		}
		return "", "", 0, errors.New(msg)
	}
	rtt = time.Since(start)
	if loc := resp.Header.Get("Location"); loc != "" {
		if u, err := req.URL.Parse(loc); err == nil {
			location = u.String()
		}
	}
	return string(body), location, rtt, nil
}

// deleteSession ends a WHIP or WHEP session.
func deleteSession(hc *http.Client, location string) error {
	ctx, cancel := context.WithTimeout(context.Background(), whepDeleteTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, location, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the session URL, so that equal failures group
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %s", resp.Status)
	}
	return nil
}

// onTrack reads a remote track until the PeerConnection closes; pion runs
// it in a goroutine of its own, which close waits for.
func (s *whepSession) onTrack(tr *pwebrtc.TrackRemote, _ *pwebrtc.RTPReceiver) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	video := tr.Kind() == pwebrtc.RTPCodecTypeVideo
	// A second track of a kind (never sent by Quasipaa) is read and ignored.
	extra := video && s.haveVideo || !video && s.haveAudio
	switch {
	case extra:
	case video:
		s.haveVideo = true
	default:
		s.haveAudio = true
	}
	s.readers.Add(1)
	s.mu.Unlock()
	defer s.readers.Done()

	if video && !extra {
		// Media flows once connected: the connection time is known.
		if at := s.connectedAt.Load(); at != 0 {
			s.st.video.liveSince = time.Unix(0, at)
		}
	}
	buf := make([]byte, whepReadBuffer)
	a := &s.p.accounting
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			s.endOnce.Do(func() { close(s.ended) })
			return
		}
		switch {
		case extra:
		case video:
			s.st.video.packet(buf[:n], a, time.Now)
		default:
			s.st.audio.packet(buf[:n], a)
		}
	}
}

// close DELETEs the session, closes the PeerConnection, waits for the
// track readers and settles the player's totals.
func (s *whepSession) close(pc *pwebrtc.PeerConnection) {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	if s.location != "" {
		s.delete()
	}
	_ = pc.GracefulClose()
	s.readers.Wait()
	p, st := s.p, s.st
	p.audioFrames = st.audio.frames
	p.bytes = st.video.bytes + st.audio.bytes
}

// delete ends the session on the server.
func (s *whepSession) delete() {
	if err := deleteSession(s.p.wc.hc, s.location); err != nil {
		s.st.deleteErr = err
		return
	}
	s.st.deleted = true
}
