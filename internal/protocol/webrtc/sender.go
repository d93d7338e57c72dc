package webrtc

import (
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	pwebrtc "github.com/pion/webrtc/v4"
)

// TrackSender is a pion TrackLocal bound to one PeerConnection that sends
// packet runs (see AppendPackets): the payloads are shared by every viewer
// and the sender only writes its own RTP header. Its sequence numbers stay
// contiguous whatever frames were skipped upstream (so receivers do not see
// loss when the hub skips a slow viewer to a keyframe), and its timestamps
// are the frames' PTS in the clock rate plus a random offset.
//
// WriteRun is for one goroutine; Bind and Unbind come from pion's.
type TrackSender struct {
	codec        pwebrtc.RTPCodecCapability
	id, streamID string

	binding atomic.Pointer[senderBinding]

	// Owned by the writing goroutine.
	hdr    rtp.Header
	seq    uint16
	tsBase uint32
}

type senderBinding struct {
	ssrc   uint32
	pt     uint8
	writer pwebrtc.TrackLocalWriter
}

// NewTrackSender returns a sender of one codec.
func NewTrackSender(codec pwebrtc.RTPCodecCapability, id, streamID string) *TrackSender {
	return &TrackSender{codec: codec, id: id, streamID: streamID, seq: uint16(rand.Uint32()), tsBase: rand.Uint32()}
}

// Bind is called by pion once negotiation picked the payload type.
func (s *TrackSender) Bind(ctx pwebrtc.TrackLocalContext) (pwebrtc.RTPCodecParameters, error) {
	codec, ok := matchCodec(s.codec, ctx.CodecParameters())
	if !ok {
		return pwebrtc.RTPCodecParameters{}, pwebrtc.ErrUnsupportedCodec
	}
	s.binding.Store(&senderBinding{ssrc: uint32(ctx.SSRC()), pt: uint8(codec.PayloadType), writer: ctx.WriteStream()})
	return codec, nil
}

// matchCodec picks the negotiated format for c: same MIME type and, for H.264
// and VP9, the same profile when offered; else the first of the MIME type.
func matchCodec(c pwebrtc.RTPCodecCapability, negotiated []pwebrtc.RTPCodecParameters) (pwebrtc.RTPCodecParameters, bool) {
	var fallback *pwebrtc.RTPCodecParameters
	for i := range negotiated {
		n := &negotiated[i]
		if !strings.EqualFold(n.MimeType, c.MimeType) {
			continue
		}
		switch strings.ToLower(c.MimeType) {
		case "video/h264":
			if fmtpParam(n.SDPFmtpLine, "packetization-mode") != "1" {
				continue
			}
			want, got := fmtpParam(c.SDPFmtpLine, "profile-level-id"), fmtpParam(n.SDPFmtpLine, "profile-level-id")
			if len(want) >= 2 && len(got) >= 2 && strings.EqualFold(want[:2], got[:2]) {
				return *n, true
			}
		case "video/vp9":
			want, got := fmtpParam(c.SDPFmtpLine, "profile-id"), fmtpParam(n.SDPFmtpLine, "profile-id")
			if got == "" {
				got = "0"
			}
			if want == got {
				return *n, true
			}
		default:
			return *n, true
		}
		if fallback == nil {
			fallback = n
		}
	}
	if fallback != nil {
		return *fallback, true
	}
	return pwebrtc.RTPCodecParameters{}, false
}

// fmtpParam returns the value of key in an fmtp line.
func fmtpParam(line, key string) string {
	for _, kv := range strings.Split(line, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

// Unbind is called by pion when the track stops.
func (s *TrackSender) Unbind(pwebrtc.TrackLocalContext) error {
	s.binding.Store(nil)
	return nil
}

// ID is the track id.
func (s *TrackSender) ID() string { return s.id }

// RID is empty: no simulcast.
func (s *TrackSender) RID() string { return "" }

// StreamID is the media stream id the track belongs to.
func (s *TrackSender) StreamID() string { return s.streamID }

// Kind is audio or video, from the codec.
func (s *TrackSender) Kind() pwebrtc.RTPCodecType {
	if strings.HasPrefix(strings.ToLower(s.codec.MimeType), "audio/") {
		return pwebrtc.RTPCodecTypeAudio
	}
	return pwebrtc.RTPCodecTypeVideo
}

// Codec returns the format the sender was made for.
func (s *TrackSender) Codec() pwebrtc.RTPCodecCapability { return s.codec }

// Bound reports whether pion bound the sender to a negotiated format.
func (s *TrackSender) Bound() bool { return s.binding.Load() != nil }

// WriteRun sends the packets of a run with the RTP timestamp of pts, and
// returns the bytes sent (headers included). Before the sender is bound it
// sends nothing. It does not allocate.
func (s *TrackSender) WriteRun(run []byte, pts time.Duration) (int, error) {
	b := s.binding.Load()
	if b == nil {
		return 0, nil
	}
	ts := s.tsBase + RTPTimestamp(int64(pts), s.codec.ClockRate)
	total := 0
	for payload, marker, rest := NextPacket(run); payload != nil; payload, marker, rest = NextPacket(rest) {
		s.hdr = rtp.Header{
			Version:        2,
			Marker:         marker,
			PayloadType:    b.pt,
			SequenceNumber: s.seq,
			Timestamp:      ts,
			SSRC:           b.ssrc,
			Extensions:     s.hdr.Extensions[:0],
		}
		s.seq++
		n, err := b.writer.WriteRTP(&s.hdr, payload)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
