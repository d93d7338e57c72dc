package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	pwebrtc "github.com/pion/webrtc/v4"

	"github.com/quasipaa/quasipaa/internal/codec/h264"
)

// A WHIP publisher sends the file's H.264 video (no audio: FLV files carry
// AAC, WebRTC wants Opus) over WebRTC, paced like the RTMP publisher, each
// frame one RTP timestamp (its PTS at 90 kHz) packetized by pion's H.264
// payloader (single NAL units, STAP-A, FU-A) in packets of at most whipMTU
// bytes. Keyframes get the parameter sets of the file's sequence header.
// It does not answer keyframe requests (PLI): the file's GOP is what it is.

// whipMTU bounds the RTP packets of a WHIP publisher, as browsers do.
const whipMTU = 1200

// isWHIPURL reports whether a publish URL is a WHIP endpoint: http(s)://…/whip.
func isWHIPURL(raw string) bool {
	u, err := url.Parse(strings.ReplaceAll(raw, Placeholder, "1"))
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && strings.HasSuffix(u.Path, "/whip")
}

// publishWHIP publishes the file's video over WHIP until ctx ends, then
// DELETEs the session.
func (p *publisher) publishWHIP(ctx context.Context, f *flvFile, timeout time.Duration) error {
	if f.avcC == nil {
		return errors.New("publish: WHIP publishing needs a file of legacy AVC (H.264) video")
	}
	rec, err := h264.ParseConfigRecord(f.avcC)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	var params []byte // Annex B SPS and PPS
	for _, n := range append(append([][]byte{}, rec.SPS...), rec.PPS...) {
		params = append(append(params, 0, 0, 0, 1), n...)
	}

	track, err := pwebrtc.NewTrackLocalStaticRTP(pwebrtc.RTPCodecCapability{
		MimeType: pwebrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f",
	}, "video", "quasipaa-bench")
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	pc, err := p.wc.api.NewPeerConnection(pwebrtc.Configuration{Certificates: p.wc.certs, BundlePolicy: pwebrtc.BundlePolicyMaxBundle})
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	var rtcp sync.WaitGroup
	location := ""
	defer func() {
		if location != "" {
			_ = deleteSession(p.wc.hc, location)
		}
		_ = pc.GracefulClose()
		rtcp.Wait()
	}()
	tr, err := pc.AddTransceiverFromTrack(track, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	// RTCP is read so that pion's interceptors see it (NACKs are answered
	// by retransmissions); the reader ends when the connection closes.
	rtcp.Add(1)
	go func() {
		defer rtcp.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := tr.Sender().Read(buf); err != nil {
				return
			}
		}
	}()
	connected, failed := make(chan struct{}), make(chan struct{})
	var connOnce, failOnce sync.Once
	pc.OnConnectionStateChange(func(s pwebrtc.PeerConnectionState) {
		switch s {
		case pwebrtc.PeerConnectionStateConnected:
			connOnce.Do(func() { close(connected) })
		case pwebrtc.PeerConnectionStateFailed, pwebrtc.PeerConnectionStateClosed:
			failOnce.Do(func() { close(failed) })
		}
	})

	deadline := time.NewTimer(timeout)
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
	answer, loc, _, err := postOffer(ctx, p.wc.hc, p.url, pc.LocalDescription().SDP, timeout)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	location = loc
	if err := pc.SetRemoteDescription(pwebrtc.SessionDescription{Type: pwebrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("connect: answer: %w", err)
	}
	select {
	case <-connected:
	case <-failed:
		return errors.New("connect: peer connection failed")
	case <-deadline.C:
		return errors.New("connect: ICE/DTLS not connected in time")
	case <-ctx.Done():
		return ctx.Err()
	}
	p.published = time.Now()

	var (
		payloader codecs.H264Payloader
		pkt       rtp.Packet
		frame     []byte
		seq       = uint16(rand.Uint32())
		tsBase    = rand.Uint32()
	)
	return p.pace(ctx, f, func(t *fileTag, ts uint64) (int, error) {
		select {
		case <-failed:
			return 0, errors.New("peer connection failed")
		default:
		}
		if !t.video {
			return 0, nil // audio and headers: not sent over WHIP
		}
		frame = annexB(frame[:0], t.body, f.lengthSize, t.key, params)
		payloads := payloader.Payload(whipMTU-12, frame)
		n := 0
		for i, pl := range payloads {
			pkt.Header = rtp.Header{
				Version:        2,
				Marker:         i == len(payloads)-1,
				SequenceNumber: seq,
				Timestamp:      tsBase + uint32(int64(ts)+int64(t.cto))*90,
			}
			pkt.Payload = pl
			seq++
			if err := track.WriteRTP(&pkt); err != nil {
				return n, err
			}
			n += len(pl)
		}
		return n, nil
	})
}

// annexB appends the NAL units of a legacy AVC video body (AVCC, with
// lengths of lengthSize bytes) to dst with start codes, after params on a
// keyframe that carries no parameter sets of its own.
func annexB(dst, body []byte, lengthSize int, key bool, params []byte) []byte {
	if len(body) < 5 {
		return dst
	}
	nalus := body[5:]
	if key {
		inBand := false
		for b := nalus; len(b) >= lengthSize; {
			n := 0
			for _, c := range b[:lengthSize] {
				n = n<<8 | int(c)
			}
			b = b[lengthSize:]
			if n <= 0 || n > len(b) {
				break
			}
			inBand = inBand || b[0]&0x1f == 7
			b = b[n:]
		}
		if !inBand {
			dst = append(dst, params...)
		}
	}
	for b := nalus; len(b) >= lengthSize; {
		n := 0
		for _, c := range b[:lengthSize] {
			n = n<<8 | int(c)
		}
		b = b[lengthSize:]
		if n <= 0 || n > len(b) {
			break
		}
		dst = append(append(dst, 0, 0, 0, 1), b[:n]...)
		b = b[n:]
	}
	return dst
}
