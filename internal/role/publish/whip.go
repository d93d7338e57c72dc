package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/pion/rtcp"
	pwebrtc "github.com/pion/webrtc/v4"

	"github.com/quasipaa/quasipaa/internal/auth"
	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/media"
	"github.com/quasipaa/quasipaa/internal/protocol/webrtc"
)

// AudioTranscoder converts a WHIP publisher's Opus audio to AAC, for the
// outputs that cannot carry Opus (RTMP, FLV, MPEG-TS HLS).
type AudioTranscoder interface {
	// ToAAC starts converting an Opus track. The conversion ends with ctx
	// or its Close.
	ToAAC(ctx context.Context, opus *media.Track) (AudioConversion, error)
}

// AudioConversion is one running Opus to AAC conversion.
type AudioConversion interface {
	// Track is the AAC track produced, known from the start.
	Track() *media.Track
	// Write hands over one Opus frame (the conversion must not modify it).
	// It must not block for long: a conversion that falls behind drops.
	// It is never called concurrently with itself or Close.
	Write(f *media.Frame) error
	// Frames delivers the AAC frames, timestamped on the timeline of the
	// Opus frames written; it is closed when the conversion ends.
	Frames() <-chan *media.Frame
	// Close stops the conversion; Frames is closed soon after.
	Close() error
}

// ICEServer is a STUN or TURN server advertised to WebRTC clients.
type ICEServer = webrtc.ICEServer

// WHIPOptions configure WHIP ingest. Zero values take the documented defaults.
type WHIPOptions struct {
	// ICEServers returns the ICE servers advertised to a client in Link
	// headers (nil: none).
	ICEServers func(r *http.Request) []ICEServer
	// Sessions bounds the WHIP plus WHEP sessions of the node (nil: unlimited).
	Sessions *webrtc.Limiter
	// Transcoder, when set, converts the Opus audio to AAC, published as a
	// third track (nil: the stream carries Opus only).
	Transcoder AudioTranscoder
	// CORSOrigin, when set, allows browsers of that origin to publish.
	CORSOrigin string
	// TrackWait is how long the session waits, from its first frame, for
	// every track its offer announced before publishing the ones it has
	// (default 2 s).
	TrackWait time.Duration
}

// WHIP serves WebRTC ingest (RFC 9725) on /{app}/{stream}/whip.
type WHIP struct {
	hub  *hub.Hub
	eng  *webrtc.Engine
	opts WHIPOptions
	log  *slog.Logger
	ep   *webrtc.Endpoint
}

// NewWHIP returns the WHIP ingest over h, its sessions on eng.
func NewWHIP(h *hub.Hub, eng *webrtc.Engine, opts WHIPOptions, log *slog.Logger) *WHIP {
	if opts.TrackWait <= 0 {
		opts.TrackWait = 2 * time.Second
	}
	w := &WHIP{hub: h, eng: eng, opts: opts, log: log.With("protocol", "whip")}
	w.ep = webrtc.NewEndpoint(webrtc.EndpointOptions{
		Name:       "whip",
		ICEServers: opts.ICEServers,
		Sessions:   opts.Sessions,
		CORSOrigin: opts.CORSOrigin,
		Logger:     w.log,
	}, w.start)
	return w
}

// IsWHIPPath reports whether a URL path is a WHIP endpoint
// (/{app}/{stream}/whip) or session (/{app}/{stream}/whip/{id}).
func IsWHIPPath(p string) bool {
	_, _, ok := webrtc.ParsePath(p, "whip")
	return ok
}

// ServeHTTP handles every method on the WHIP URLs.
func (w *WHIP) ServeHTTP(rw http.ResponseWriter, r *http.Request) { w.ep.ServeHTTP(rw, r) }

// Sessions returns the number of live WHIP sessions.
func (w *WHIP) Sessions() int { return w.ep.Len() }

// Close ends every WHIP session and waits for them.
func (w *WHIP) Close() { w.ep.Close() }

var (
	ingestVideo = []media.Codec{media.CodecH264, media.CodecH265, media.CodecVP8, media.CodecVP9, media.CodecAV1}
	ingestAudio = []media.Codec{media.CodecOpus}
)

// accepts reports whether a section offers one of codecs.
func accepts(m *webrtc.OfferMedia, codecs []media.Codec) bool {
	for _, c := range codecs {
		if m.Accepts(c) {
			return true
		}
	}
	return false
}

func (w *WHIP) start(ctx context.Context, req *webrtc.Request) (webrtc.Session, string, error) {
	video, audio := req.Offer.Section("video", true), req.Offer.Section("audio", true)
	if video != nil && !accepts(video, ingestVideo) {
		return nil, "", webrtc.Errorf(http.StatusNotAcceptable, "unsupported_codec", "no video codec Quasipaa ingests in the offer (offered: %s; accepted: H264, H265, VP8, VP9, AV1)", video.CodecNames())
	}
	if audio != nil && !accepts(audio, ingestAudio) {
		return nil, "", webrtc.Errorf(http.StatusNotAcceptable, "unsupported_codec", "no audio codec Quasipaa ingests in the offer (offered: %s; accepted: opus)", audio.CodecNames())
	}
	if video == nil && audio == nil {
		return nil, "", webrtc.Errorf(http.StatusBadRequest, "nothing_to_publish", "the offer sends neither audio nor video")
	}
	r := req.HTTP
	credential, _ := auth.BearerToken(r.Header.Get("Authorization"))
	pub, err := w.hub.PublishContext(ctx, req.Path, hub.ClientInfo{Protocol: "whip", RemoteAddr: r.RemoteAddr, Query: r.URL.RawQuery, Credential: credential})
	switch {
	case errors.Is(err, hub.ErrStreamBusy):
		return nil, "", webrtc.Errorf(http.StatusConflict, "stream_busy", "%s is already being published", req.Path)
	case errors.Is(err, hub.ErrHubClosed):
		return nil, "", webrtc.Errorf(http.StatusServiceUnavailable, "shutting_down", "the server is shutting down")
	case auth.IsRefusal(err):
		status, code := auth.HTTPStatus(err)
		return nil, "", webrtc.Errorf(status, code, "cannot publish %s: %v", req.Path, err)
	case err != nil:
		return nil, "", webrtc.Errorf(http.StatusServiceUnavailable, "publish_refused", "cannot publish %s: %v", req.Path, err)
	}
	s := &whipSession{
		w:           w,
		req:         req,
		pub:         pub,
		log:         w.log.With("stream", req.Path, "session", req.ID, "remote", r.RemoteAddr),
		expectVideo: video != nil,
		expectAudio: audio != nil,
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
		connected:   make(chan struct{}),
		failed:      make(chan struct{}),
		media:       make(chan struct{}),
		idxVideo:    -1,
		idxOpus:     -1,
		idxAAC:      -1,
		since:       time.Now(),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	answer, err := s.negotiate(ctx)
	if err != nil {
		if s.pc != nil {
			_ = s.pc.Close()
		}
		s.cancel()
		pub.Close()
		return nil, "", err
	}
	s.unregister = w.eng.RegisterKeyframeSource(req.Path, s.requestKeyframe)
	go s.run()
	return s, answer, nil
}

// whipSession is one WebRTC publisher.
type whipSession struct {
	w   *WHIP
	req *webrtc.Request
	pc  *pwebrtc.PeerConnection
	pub *hub.Publisher
	log *slog.Logger

	ctx    context.Context // the session's lifetime, for the conversion
	cancel context.CancelFunc

	expectVideo, expectAudio bool
	since                    time.Time
	unregister               func()

	stopOnce   sync.Once
	stop       chan struct{} // Close was called
	done       chan struct{} // cleanup finished
	connOnce   sync.Once
	connected  chan struct{}
	failOnce   sync.Once
	failed     chan struct{}
	failReason string
	mediaOnce  sync.Once
	media      chan struct{} // the first frame arrived

	wg sync.WaitGroup // track readers and the AAC writer

	mu           sync.Mutex
	closing      bool
	readingVideo bool
	readingAudio bool
	epoch        time.Time
	videoSSRC    uint32
	lastPLI      time.Time
	video        *media.Track
	opus         *media.Track
	aac          *media.Track
	conv         AudioConversion
	published    bool
	changed      bool
	pending      []pendingFrame
	idxVideo     int
	idxOpus      int
	idxAAC       int
	writeErr     error
	videoStats   *webrtc.DepacketizerStats
	convFailed   bool
}

type pendingFrame struct {
	video bool
	f     *media.Frame
}

// maxPending bounds the frames held while waiting for the tracks.
const maxPending = 2000

// PeerConnection returns the session's connection.
func (s *whipSession) PeerConnection() *pwebrtc.PeerConnection { return s.pc }

// Close ends the session and waits for its cleanup.
func (s *whipSession) Close() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}

// fail ends the session for reason; failReason is read after failed is closed.
func (s *whipSession) fail(reason string) {
	s.failOnce.Do(func() {
		s.failReason = reason
		close(s.failed)
	})
}

func (s *whipSession) negotiate(ctx context.Context) (string, error) {
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
			s.fail("ICE or DTLS failed (peer unreachable or gone)")
		case pwebrtc.PeerConnectionStateClosed:
			s.fail("connection closed")
		}
	})
	pc.OnTrack(s.onTrack)
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
	return pc.LocalDescription().SDP, nil
}

// run waits for the session's end and cleans up.
func (s *whipSession) run() {
	reason := "ended"
	defer func() { s.cleanup(reason) }()
	handshake := time.NewTimer(s.w.eng.HandshakeTimeout())
	defer handshake.Stop()
	var trackWait <-chan time.Time
	connected, mediaStarted := s.connected, s.media
	for {
		select {
		case <-s.stop:
			reason = "session deleted"
			return
		case <-s.pub.Done():
			reason = s.pub.Err().Error()
			return
		case <-s.failed:
			reason = s.failReason
			return
		case <-handshake.C:
			reason = "ICE/DTLS handshake timed out"
			return
		case <-connected:
			connected = nil
			handshake.Stop()
			s.log.Info("publisher connected", "after", time.Since(s.since).Round(time.Millisecond))
		case <-mediaStarted:
			mediaStarted = nil
			t := time.NewTimer(s.w.opts.TrackWait)
			defer t.Stop()
			trackWait = t.C
		case <-trackWait:
			trackWait = nil
			s.mu.Lock()
			if !s.published {
				s.publishLocked()
			}
			s.mu.Unlock()
		}
	}
}

func (s *whipSession) cleanup(reason string) {
	s.mu.Lock()
	s.closing = true
	conv := s.conv
	s.mu.Unlock()
	s.unregister()
	_ = s.pc.Close()
	if conv != nil {
		_ = conv.Close()
	}
	s.cancel()
	s.wg.Wait()
	s.pub.Close()
	s.mu.Lock()
	videoStats := s.videoStats
	s.mu.Unlock()
	attrs := []any{"reason", reason, "duration", time.Since(s.since).Round(time.Millisecond)}
	if st := videoStats; st != nil {
		attrs = append(attrs, "video_frames", st.Frames, "video_dropped", st.Dropped, "packets_lost", st.Lost)
	}
	s.log.Info("publisher stopped", attrs...)
	s.req.Ended()
	close(s.done)
}

// onTrack reads one received track until the connection closes.
func (s *whipSession) onTrack(track *pwebrtc.TrackRemote, _ *pwebrtc.RTPReceiver) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	if s.epoch.IsZero() {
		s.epoch = time.Now()
	}
	epoch := s.epoch
	s.mu.Unlock()
	defer s.wg.Done()

	params := track.Codec()
	codec := webrtc.CodecFromMime(params.MimeType)
	isVideo := track.Kind() == pwebrtc.RTPCodecTypeVideo
	if codec == media.CodecUnknown || codec.IsVideo() != isVideo {
		s.log.Warn("ignoring a track in an unsupported codec", "codec", params.MimeType)
		return
	}
	// One video and one audio track per stream: further ones are ignored.
	s.mu.Lock()
	taken := isVideo && s.readingVideo || !isVideo && s.readingAudio
	if isVideo {
		s.readingVideo = true
	} else {
		s.readingAudio = true
	}
	s.mu.Unlock()
	if taken {
		s.log.Warn("ignoring an extra track", "kind", track.Kind().String(), "codec", params.MimeType)
		return
	}
	opts := webrtc.DepacketizerOptions{Codec: codec, ClockRate: params.ClockRate, Epoch: epoch}
	if isVideo {
		ssrc := uint32(track.SSRC())
		s.mu.Lock()
		s.videoSSRC = ssrc
		s.mu.Unlock()
		opts.OnKeyframeNeeded = func() { s.sendPLI(ssrc) }
	}
	d, err := webrtc.NewDepacketizer(opts)
	if err != nil {
		s.log.Warn("ignoring a track", "codec", params.MimeType, "err", err)
		return
	}
	s.readTrack(track, d, isVideo)
	if isVideo {
		st := d.Stats()
		s.mu.Lock()
		s.videoStats = &st
		s.mu.Unlock()
	}
}

func (s *whipSession) readTrack(track *pwebrtc.TrackRemote, d *webrtc.Depacketizer, isVideo bool) {
	emit := func(f *media.Frame, t *media.Track) { s.onFrame(isVideo, f, t) }
	buf := make([]byte, 1500)
	for {
		n, _, err := track.Read(buf)
		if err != nil {
			return
		}
		_ = d.Push(buf[:n], time.Now(), emit)
	}
}

func (s *whipSession) sendPLI(ssrc uint32) {
	s.mu.Lock()
	s.lastPLI = time.Now()
	s.mu.Unlock()
	_ = s.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
}

// requestKeyframe is called on behalf of viewers (a WHEP viewer joining).
func (s *whipSession) requestKeyframe() {
	s.mu.Lock()
	ssrc, last := s.videoSSRC, s.lastPLI
	s.mu.Unlock()
	if ssrc == 0 || time.Since(last) < 500*time.Millisecond {
		return
	}
	s.sendPLI(ssrc)
}

// onFrame takes a frame from a track reader.
func (s *whipSession) onFrame(video bool, f *media.Frame, t *media.Track) {
	s.mediaOnce.Do(func() { close(s.media) })
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || s.writeErr != nil {
		return
	}
	if video {
		if t != s.video {
			s.video, s.changed = t, true
		}
	} else if s.opus == nil {
		s.opus, s.changed = t, true
	}
	if !s.published {
		if video && f.Key {
			// Start at this keyframe: drop the video before it, and audio
			// more than a moment older (the tracks' readers race).
			kept := s.pending[:0]
			for _, p := range s.pending {
				if !p.video && p.f.DTS >= f.DTS-200*time.Millisecond {
					kept = append(kept, p)
				}
			}
			clear(s.pending[len(kept):])
			s.pending = kept
		}
		if len(s.pending) == maxPending {
			copy(s.pending, s.pending[1:])
			s.pending = s.pending[:maxPending-1]
		}
		s.pending = append(s.pending, pendingFrame{video: video, f: f})
		if (!s.expectVideo || s.video != nil) && (!s.expectAudio || s.opus != nil) {
			s.publishLocked()
		}
		return
	}
	if s.changed {
		if err := s.setTracksLocked(); err != nil {
			return
		}
	}
	s.writeLocked(video, f)
}

// publishLocked announces the tracks known and writes what was held.
func (s *whipSession) publishLocked() {
	if s.video == nil && s.opus == nil {
		return
	}
	if err := s.setTracksLocked(); err != nil {
		return
	}
	s.published = true
	s.log.Info("publishing", "tracks", describeTracks(s.tracksLocked()))
	for _, p := range s.pending {
		s.writeLocked(p.video, p.f)
	}
	s.pending = nil
}

func (s *whipSession) tracksLocked() []*media.Track {
	var tracks []*media.Track
	s.idxVideo, s.idxOpus, s.idxAAC = -1, -1, -1
	if s.video != nil {
		s.idxVideo = len(tracks)
		tracks = append(tracks, s.video)
	}
	if s.opus != nil {
		s.idxOpus = len(tracks)
		tracks = append(tracks, s.opus)
	}
	if s.aac != nil {
		s.idxAAC = len(tracks)
		tracks = append(tracks, s.aac)
	}
	return tracks
}

// setTracksLocked starts the AAC conversion once Opus is known, and
// announces the current tracks.
func (s *whipSession) setTracksLocked() error {
	if s.opus != nil && s.conv == nil && !s.convFailed && s.w.opts.Transcoder != nil {
		conv, err := s.w.opts.Transcoder.ToAAC(s.ctx, s.opus)
		if err != nil {
			s.log.Warn("Opus to AAC conversion unavailable, publishing Opus only", "err", err)
			s.convFailed = true
		} else {
			s.conv, s.aac = conv, conv.Track()
			s.wg.Add(1)
			go s.writeAAC(conv)
		}
	}
	s.changed = false
	if err := s.pub.SetTracks(s.tracksLocked()); err != nil {
		s.writeErr = err
		s.fail("publisher stopped: " + err.Error())
		return err
	}
	return nil
}

func (s *whipSession) writeLocked(video bool, f *media.Frame) {
	if video {
		f.Track = s.idxVideo
	} else {
		f.Track = s.idxOpus
		if s.conv != nil {
			c := *f // the hub rebases the timestamps of what it is given
			if err := s.conv.Write(&c); err != nil {
				s.log.Debug("Opus to AAC conversion dropped a frame", "err", err)
			}
		}
	}
	if f.Track < 0 {
		return
	}
	if err := s.pub.WriteFrame(f); err != nil {
		s.writeErr = err
		s.fail("publisher stopped: " + err.Error())
	}
}

// writeAAC publishes the frames of the AAC conversion.
func (s *whipSession) writeAAC(conv AudioConversion) {
	defer s.wg.Done()
	for f := range conv.Frames() {
		s.mu.Lock()
		if s.published && !s.closing && s.writeErr == nil && s.idxAAC >= 0 {
			f.Track = s.idxAAC
			if err := s.pub.WriteFrame(f); err != nil {
				s.writeErr = err
				s.fail("publisher stopped: " + err.Error())
			}
		}
		s.mu.Unlock()
	}
}
