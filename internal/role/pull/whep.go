package pull

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	pwebrtc "github.com/pion/webrtc/v4"

	"github.com/quasipaa/quasipaa/internal/auth"
	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/media"
	"github.com/quasipaa/quasipaa/internal/protocol/webrtc"
)

// OpusSource supplies Opus audio for streams that carry none (their AAC
// converted), so that WHEP viewers get sound.
type OpusSource interface {
	// Acquire starts (or joins) the Opus audio of a stream.
	Acquire(path string) (OpusFeed, error)
}

// OpusFeed is one viewer's Opus audio of a stream.
type OpusFeed interface {
	// Track is the Opus track.
	Track() *media.Track
	// Next returns the next frame, timestamped on the stream's timeline,
	// waiting for it; it fails once the feed ended or ctx is done.
	Next(ctx context.Context) (*media.Frame, error)
	// Release gives the feed up.
	Release()
}

// WHEPOptions configure WHEP playback. Zero values take the documented defaults.
type WHEPOptions struct {
	// ICEServers returns the ICE servers advertised to a client in Link
	// headers (nil: none).
	ICEServers func(r *http.Request) []webrtc.ICEServer
	// Sessions bounds the WHIP plus WHEP sessions of the node (nil: unlimited).
	Sessions *webrtc.Limiter
	// Opus, when set, supplies audio for streams without an Opus track (nil:
	// such streams play without sound).
	Opus OpusSource
	// CORSOrigin, when set, allows browsers of that origin to play.
	CORSOrigin string
	// MaxStartAge is how old the cached keyframe a viewer starts with may
	// be; an older one is skipped and the viewer waits for the next keyframe
	// (asked from a WebRTC publisher), since WebRTC players play what they
	// receive at once and would lag by the keyframe's age (default 500 ms).
	MaxStartAge time.Duration
	// TrackWait is how long a viewer of a stream whose tracks are not known
	// yet waits for them before being refused (default 3 s).
	TrackWait time.Duration
}

// WHEP serves WebRTC playback on /{app}/{stream}/whep.
type WHEP struct {
	hub  *hub.Hub
	eng  *webrtc.Engine
	opts WHEPOptions
	log  *slog.Logger
	ep   *webrtc.Endpoint
}

// NewWHEP returns the WHEP playback of h, its sessions on eng.
func NewWHEP(h *hub.Hub, eng *webrtc.Engine, opts WHEPOptions, log *slog.Logger) *WHEP {
	if opts.MaxStartAge <= 0 {
		opts.MaxStartAge = 500 * time.Millisecond
	}
	if opts.TrackWait <= 0 {
		opts.TrackWait = 3 * time.Second
	}
	w := &WHEP{hub: h, eng: eng, opts: opts, log: log.With("protocol", "whep")}
	w.ep = webrtc.NewEndpoint(webrtc.EndpointOptions{
		Name:       "whep",
		ICEServers: opts.ICEServers,
		Sessions:   opts.Sessions,
		CORSOrigin: opts.CORSOrigin,
		Logger:     w.log,
	}, w.start)
	return w
}

// IsWHEPPath reports whether a URL path is a WHEP endpoint
// (/{app}/{stream}/whep) or session (/{app}/{stream}/whep/{id}).
func IsWHEPPath(p string) bool {
	_, _, ok := webrtc.ParsePath(p, "whep")
	return ok
}

// ServeHTTP handles every method on the WHEP URLs.
func (w *WHEP) ServeHTTP(rw http.ResponseWriter, r *http.Request) { w.ep.ServeHTTP(rw, r) }

// Sessions returns the number of live WHEP sessions.
func (w *WHEP) Sessions() int { return w.ep.Len() }

// Close ends every WHEP session and waits for them.
func (w *WHEP) Close() { w.ep.Close() }

// formatWebRTC caches each frame's RTP payloads, shared by every WHEP viewer.
var formatWebRTC = hub.NewFormat("webrtc-rtp")

// rtpSerializer packetizes frames once per stream for every WHEP viewer.
type rtpSerializer struct{}

func (rtpSerializer) Format() hub.Format                              { return formatWebRTC }
func (rtpSerializer) AppendPrefix(dst []byte, _ *hub.TrackSet) []byte { return dst }
func (rtpSerializer) AppendHeader(dst []byte, _ *hub.TrackSet) []byte { return dst }

func (rtpSerializer) AppendFrame(dst []byte, e *hub.Entry) []byte {
	t := e.Track()
	if t == nil || !webrtc.CanCarry(t.Codec) {
		return dst
	}
	return webrtc.AppendPackets(dst, t, e.Frame, webrtc.DefaultMTU)
}

var whepRTP rtpSerializer

// tracksOf waits until the stream on path has tracks.
func (w *WHEP) tracksOf(ctx context.Context, path string) ([]*media.Track, error) {
	deadline := time.Now().Add(w.opts.TrackWait)
	// A stream published on another node of the cluster is relayed here first.
	if err := w.hub.Ensure(ctx, path); err != nil && !errors.Is(err, hub.ErrStreamNotFound) {
		w.log.Warn("whep: cannot bring the stream here", "stream", path, "err", err)
	}
	for {
		info, ok := w.hub.Stream(path)
		if !ok {
			return nil, webrtc.Errorf(http.StatusNotFound, "stream_not_found", "no live stream at path %s", path)
		}
		if len(info.Tracks) > 0 {
			return info.Tracks, nil
		}
		if time.Now().After(deadline) {
			return nil, webrtc.Errorf(http.StatusServiceUnavailable, "no_tracks", "the stream %s has no tracks yet", path)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// errBFrames refuses WebRTC playback of a stream with B-frames.
func errBFrames(path string) error {
	return webrtc.Errorf(http.StatusUnprocessableEntity, "b_frames", "the stream %s has B-frames, which WebRTC players cannot decode; publish it without B-frames (x264: -bf 0 or -tune zerolatency) or play it over HLS, FLV or RTMP", path)
}

func (w *WHEP) start(ctx context.Context, req *webrtc.Request) (webrtc.Session, string, error) {
	tracks, err := w.tracksOf(ctx, req.Path)
	if err != nil {
		return nil, "", err
	}
	if info, ok := w.hub.Stream(req.Path); ok && info.BFrames {
		return nil, "", errBFrames(req.Path)
	}
	vIdx, aIdx := media.PickTracks(tracks, webrtc.CanCarry, media.CodecOpus)
	videoSec, audioSec := req.Offer.Section("video", false), req.Offer.Section("audio", false)
	var video, audio *media.Track
	if vIdx >= 0 && videoSec != nil {
		video = tracks[vIdx]
		if !videoSec.Accepts(video.Codec) {
			return nil, "", webrtc.Errorf(http.StatusNotAcceptable, "unsupported_codec", "the stream's video is %s but the offer accepts only %s", webrtc.MimeOf(video.Codec), videoSec.CodecNames())
		}
	}
	hasAudio := false
	for _, t := range tracks {
		hasAudio = hasAudio || t.IsAudio()
	}
	var feed OpusFeed
	if audioSec != nil && audioSec.Accepts(media.CodecOpus) {
		switch {
		case aIdx >= 0:
			audio = tracks[aIdx]
		case hasAudio && w.opts.Opus != nil:
			if feed, err = w.opts.Opus.Acquire(req.Path); err != nil {
				w.log.Warn("no Opus audio for the viewer", "stream", req.Path, "err", err)
				feed = nil
			} else {
				audio = feed.Track()
			}
		}
	}
	if video == nil && audio == nil {
		return nil, "", webrtc.Errorf(http.StatusNotAcceptable, "nothing_to_play", "nothing the offer can receive: the stream carries %s", describeCodecs(tracks))
	}
	r := req.HTTP
	credential, _ := auth.BearerToken(r.Header.Get("Authorization"))
	reader, err := w.hub.SubscribeContext(ctx, req.Path, hub.ClientInfo{Protocol: "whep", RemoteAddr: r.RemoteAddr, Query: r.URL.RawQuery, Credential: credential})
	if err != nil {
		if feed != nil {
			feed.Release()
		}
		if errors.Is(err, hub.ErrStreamNotFound) {
			return nil, "", webrtc.Errorf(http.StatusNotFound, "stream_not_found", "no live stream at path %s", req.Path)
		}
		if status, code := auth.HTTPStatus(err); status != 0 {
			return nil, "", webrtc.Errorf(status, code, "cannot play %s: %v", req.Path, err)
		}
		return nil, "", webrtc.Errorf(http.StatusServiceUnavailable, "play_refused", "cannot play %s: %v", req.Path, err)
	}
	s := &whepSession{
		w:         w,
		req:       req,
		reader:    reader,
		feed:      feed,
		log:       w.log.With("stream", req.Path, "session", req.ID, "remote", r.RemoteAddr),
		done:      make(chan struct{}),
		connected: make(chan struct{}),
		since:     time.Now(),
		vIdx:      -1,
		aIdx:      -1,
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	answer, err := s.negotiate(ctx, video, audio)
	if err != nil {
		if s.pc != nil {
			_ = s.pc.Close()
		}
		s.cancel()
		reader.Close()
		if feed != nil {
			feed.Release()
		}
		return nil, "", err
	}
	s.log.Info("viewer joined", "video", codecName(video), "audio", codecName(audio))
	go s.run()
	return s, answer, nil
}

func codecName(t *media.Track) string {
	if t == nil {
		return "none"
	}
	return t.Codec.String()
}

func describeCodecs(tracks []*media.Track) string {
	s := ""
	for i, t := range tracks {
		if i > 0 {
			s += ", "
		}
		s += t.Codec.String()
	}
	return s
}

// whepSession is one WebRTC viewer: one writer goroutine (run) reading the
// hub, one RTCP reader per sent track, and one goroutine for a separate
// Opus feed when there is one.
type whepSession struct {
	w      *WHEP
	req    *webrtc.Request
	pc     *pwebrtc.PeerConnection
	reader *hub.Reader
	feed   OpusFeed
	log    *slog.Logger
	since  time.Time

	video, audio *webrtc.TrackSender
	videoCodec   media.Codec

	ctx    context.Context
	cancel context.CancelFunc

	done     chan struct{}
	connOnce sync.Once
	// connected is closed once ICE and DTLS are up.
	connected  chan struct{}
	failReason atomic.Pointer[string]

	wg sync.WaitGroup // RTCP readers and the feed writer

	// Owned by run.
	ts         *hub.TrackSet
	vIdx, aIdx int
	started    atomic.Bool
	skipped    int
}

// PeerConnection returns the session's connection.
func (s *whepSession) PeerConnection() *pwebrtc.PeerConnection { return s.pc }

// Close ends the session and waits for its cleanup.
func (s *whepSession) Close() {
	s.fail("session deleted")
	<-s.done
}

// fail ends the session for reason; the first reason is kept.
func (s *whepSession) fail(reason string) {
	s.failReason.CompareAndSwap(nil, &reason)
	s.cancel()
}

func (s *whepSession) endReason() string {
	if r := s.failReason.Load(); r != nil {
		return *r
	}
	return "ended"
}

func (s *whepSession) negotiate(ctx context.Context, video, audio *media.Track) (string, error) {
	pc, err := s.w.eng.NewPeerConnection(nil)
	if err != nil {
		return "", fmt.Errorf("creating the peer connection: %w", err)
	}
	s.pc = pc
	pc.OnConnectionStateChange(func(st pwebrtc.PeerConnectionState) {
		switch st {
		case pwebrtc.PeerConnectionStateConnected:
			s.connOnce.Do(func() { close(s.connected) })
		case pwebrtc.PeerConnectionStateFailed:
			s.fail("ICE or DTLS failed (viewer unreachable or gone)")
		case pwebrtc.PeerConnectionStateClosed:
			s.fail("connection closed")
		}
	})
	var senders []*pwebrtc.RTPSender
	for _, t := range []*media.Track{video, audio} {
		if t == nil {
			continue
		}
		c, err := webrtc.Capability(t)
		if err != nil {
			return "", err
		}
		ts := webrtc.NewTrackSender(c, t.Codec.String(), "quasipaa")
		sender, err := pc.AddTrack(ts)
		if err != nil {
			return "", fmt.Errorf("adding the %s track: %w", t.Codec, err)
		}
		senders = append(senders, sender)
		if t.IsVideo() {
			s.video, s.videoCodec = ts, t.Codec
		} else {
			s.audio = ts
		}
	}
	if err := pc.SetRemoteDescription(pwebrtc.SessionDescription{Type: pwebrtc.SDPTypeOffer, SDP: s.req.Offer.SDP}); err != nil {
		return "", webrtc.Errorf(http.StatusBadRequest, "bad_sdp", "offer rejected: %v", err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", webrtc.Errorf(http.StatusBadRequest, "bad_sdp", "cannot answer the offer: %v", err)
	}
	gathered := pwebrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return "", fmt.Errorf("setting the answer: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", ctx.Err()
	case <-time.After(5 * time.Second):
		return "", errors.New("ICE candidate gathering timed out")
	}
	for _, sender := range senders {
		s.wg.Add(1)
		go s.readRTCP(sender)
	}
	return pc.LocalDescription().SDP, nil
}

// readRTCP reads a sender's RTCP, which runs pion's interceptors (NACK
// retransmissions, reports). A keyframe request is passed on to a WebRTC
// publisher; other publishers' keyframes come on their own.
func (s *whepSession) readRTCP(sender *pwebrtc.RTPSender) {
	defer s.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, _, err := sender.Read(buf)
		if err != nil {
			return
		}
		if wantsKeyframe(buf[:n]) {
			s.w.eng.RequestKeyframe(s.req.Path)
		}
	}
}

// wantsKeyframe reports whether a compound RTCP packet holds a PLI or a FIR.
func wantsKeyframe(b []byte) bool {
	for len(b) >= 4 {
		pt, format := b[1], b[0]&0x1F
		if pt == 206 && (format == 1 || format == 4) {
			return true
		}
		n := (int(b[2])<<8 | int(b[3]) + 1) * 4
		if n > len(b) {
			return false
		}
		b = b[n:]
	}
	return false
}

// run waits for the connection, then sends the stream until the end.
func (s *whepSession) run() {
	reason := "ended"
	defer func() { s.cleanup(reason) }()
	handshake := time.NewTimer(s.w.eng.HandshakeTimeout())
	defer handshake.Stop()
	select {
	case <-s.connected:
	case <-handshake.C:
		s.fail("ICE/DTLS handshake timed out")
	case <-s.ctx.Done():
	}
	if s.ctx.Err() != nil {
		reason = s.endReason()
		return
	}
	s.log.Info("viewer connected", "after", time.Since(s.since).Round(time.Millisecond))
	if s.feed != nil {
		s.wg.Add(1)
		go s.writeFeed()
	}
	if s.video != nil {
		s.w.eng.RequestKeyframe(s.req.Path)
	} else {
		s.started.Store(true)
	}
	var entries []*hub.Entry
	for {
		var err error
		entries, err = s.reader.Next(s.ctx, entries[:0])
		for _, e := range entries {
			if serr := s.send(e); serr != nil {
				s.fail(serr.Error())
				break
			}
		}
		clear(entries)
		if err != nil {
			s.fail(endReason(err))
		}
		if s.ctx.Err() != nil {
			reason = s.endReason()
			return
		}
	}
}

func endReason(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "session ended"
	case hub.IsNormalEnd(err):
		return "stream ended: " + err.Error()
	}
	return err.Error()
}

// send writes one hub entry to the viewer.
func (s *whepSession) send(e *hub.Entry) error {
	if e.Tracks != s.ts {
		s.ts = e.Tracks
		v, a := media.PickTracks(s.ts.Tracks, webrtc.CanCarry, media.CodecOpus)
		s.vIdx, s.aIdx = -1, -1
		if s.video != nil && v >= 0 {
			if c := s.ts.Tracks[v].Codec; c != s.videoCodec {
				return fmt.Errorf("the stream's video codec changed from %s to %s", s.videoCodec, c)
			}
			s.vIdx = v
		}
		if s.audio != nil && s.feed == nil && a >= 0 {
			s.aIdx = a
		}
	}
	f := e.Frame
	switch f.Track {
	case s.vIdx:
		if !s.started.Load() {
			if !f.Key || !f.Ingest.IsZero() && time.Since(f.Ingest) > s.w.opts.MaxStartAge {
				s.skipped++
				return nil
			}
			s.started.Store(true)

		}
		if f.PTS != f.DTS {
			// Browsers' WebRTC decoders cannot reorder: B-frames would
			// play as keyframes only. End the session; the next request
			// is refused with the reason.
			s.log.Warn("WHEP viewer disconnected: the stream has B-frames, which WebRTC cannot play; publish without B-frames (x264: -bf 0 or -tune zerolatency)")
			return errBFrames(s.req.Path)
		}
		n, err := s.video.WriteRun(e.Bytes(whepRTP), f.PTS)
		s.reader.AddBytesOut(n)
		return err
	case s.aIdx:
		if !s.started.Load() {
			return nil
		}
		n, err := s.audio.WriteRun(e.Bytes(whepRTP), f.PTS)
		s.reader.AddBytesOut(n)
		return err
	}
	return nil
}

// writeFeed sends the Opus feed's frames, packetized per viewer (the feed
// is the viewer's own).
func (s *whepSession) writeFeed() {
	defer s.wg.Done()
	t := s.feed.Track()
	var run []byte
	for {
		f, err := s.feed.Next(s.ctx)
		if err != nil {
			return
		}
		if !s.started.Load() {
			continue
		}
		run = webrtc.AppendPackets(run[:0], t, f, webrtc.DefaultMTU)
		n, err := s.audio.WriteRun(run, f.PTS)
		s.reader.AddBytesOut(n)
		if err != nil {
			s.fail(err.Error())
			return
		}
	}
}

func (s *whepSession) cleanup(reason string) {
	s.cancel()
	s.reader.Close()
	_ = s.pc.Close()
	s.wg.Wait()
	if s.feed != nil {
		s.feed.Release()
	}
	s.log.Info("viewer left", "reason", reason, "duration", time.Since(s.since).Round(time.Millisecond), "dropped_frames", s.reader.Dropped(), "skipped_to_start", s.skipped)
	s.req.Ended()
	close(s.done)
}
