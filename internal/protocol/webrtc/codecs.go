package webrtc

import (
	"fmt"
	"strings"

	pwebrtc "github.com/pion/webrtc/v4"

	"github.com/quasipaa/quasipaa/internal/codec/h264"
	"github.com/quasipaa/quasipaa/internal/codec/vp9"
	"github.com/quasipaa/quasipaa/internal/media"
)

// Clock rates of the RTP payload formats Quasipaa speaks.
const (
	VideoClockRate = 90000
	OpusClockRate  = 48000
)

var videoFeedback = []pwebrtc.RTCPFeedback{
	{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"},
}

// codecTable is every payload format the engine negotiates, with the payload
// types offered when Quasipaa is the offerer (it never is for WHIP/WHEP, but
// pion wants them) and the RTX payload type of each video format.
var codecTable = []struct {
	mime, fmtp string
	pt, rtx    uint8
}{
	{pwebrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", 106, 107},
	{pwebrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f", 102, 103},
	{pwebrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f", 127, 125},
	{pwebrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032", 112, 113},
	{pwebrtc.MimeTypeVP8, "", 96, 97},
	{pwebrtc.MimeTypeVP9, "profile-id=0", 98, 99},
	{pwebrtc.MimeTypeVP9, "profile-id=2", 100, 101},
	{pwebrtc.MimeTypeAV1, "", 45, 46},
	{pwebrtc.MimeTypeH265, "", 116, 117},
}

// registerCodecs fills m with Opus and every video format of codecTable.
func registerCodecs(m *pwebrtc.MediaEngine) error {
	if err := m.RegisterCodec(pwebrtc.RTPCodecParameters{
		RTPCodecCapability: OpusCapability(),
		PayloadType:        111,
	}, pwebrtc.RTPCodecTypeAudio); err != nil {
		return err
	}
	for _, c := range codecTable {
		if err := m.RegisterCodec(pwebrtc.RTPCodecParameters{
			RTPCodecCapability: pwebrtc.RTPCodecCapability{MimeType: c.mime, ClockRate: VideoClockRate, SDPFmtpLine: c.fmtp, RTCPFeedback: videoFeedback},
			PayloadType:        pwebrtc.PayloadType(c.pt),
		}, pwebrtc.RTPCodecTypeVideo); err != nil {
			return err
		}
		if err := m.RegisterCodec(pwebrtc.RTPCodecParameters{
			RTPCodecCapability: pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeRTX, ClockRate: VideoClockRate, SDPFmtpLine: fmt.Sprintf("apt=%d", c.pt)},
			PayloadType:        pwebrtc.PayloadType(c.rtx),
		}, pwebrtc.RTPCodecTypeVideo); err != nil {
			return err
		}
	}
	return nil
}

// OpusCapability is the Opus format Quasipaa sends and receives: 48 kHz
// stereo with in-band FEC.
func OpusCapability() pwebrtc.RTPCodecCapability {
	return pwebrtc.RTPCodecCapability{
		MimeType:    pwebrtc.MimeTypeOpus,
		ClockRate:   OpusClockRate,
		Channels:    2,
		SDPFmtpLine: "minptime=10;useinbandfec=1;stereo=1;sprop-stereo=1",
	}
}

// CodecFromMime maps an RTP MIME type ("video/H264") to the media model's
// codec, or CodecUnknown.
func CodecFromMime(mime string) media.Codec {
	switch strings.ToLower(mime) {
	case strings.ToLower(pwebrtc.MimeTypeH264):
		return media.CodecH264
	case strings.ToLower(pwebrtc.MimeTypeH265):
		return media.CodecH265
	case strings.ToLower(pwebrtc.MimeTypeVP8):
		return media.CodecVP8
	case strings.ToLower(pwebrtc.MimeTypeVP9):
		return media.CodecVP9
	case strings.ToLower(pwebrtc.MimeTypeAV1):
		return media.CodecAV1
	case strings.ToLower(pwebrtc.MimeTypeOpus):
		return media.CodecOpus
	}
	return media.CodecUnknown
}

// MimeOf returns the RTP MIME type of a codec, or "" when WebRTC cannot carry it.
func MimeOf(c media.Codec) string {
	switch c {
	case media.CodecH264:
		return pwebrtc.MimeTypeH264
	case media.CodecH265:
		return pwebrtc.MimeTypeH265
	case media.CodecVP8:
		return pwebrtc.MimeTypeVP8
	case media.CodecVP9:
		return pwebrtc.MimeTypeVP9
	case media.CodecAV1:
		return pwebrtc.MimeTypeAV1
	case media.CodecOpus:
		return pwebrtc.MimeTypeOpus
	}
	return ""
}

// CanCarry reports whether WebRTC playback can carry a codec.
func CanCarry(c media.Codec) bool { return MimeOf(c) != "" }

// ClockRate returns the RTP clock rate of a codec.
func ClockRate(c media.Codec) uint32 {
	if c == media.CodecOpus {
		return OpusClockRate
	}
	return VideoClockRate
}

// Capability returns the RTP format a track is sent in: its MIME type, clock
// rate and, for H.264 and VP9, the fmtp naming its profile so that pion binds
// the payload type the browser offered for that profile.
func Capability(t *media.Track) (pwebrtc.RTPCodecCapability, error) {
	mime := MimeOf(t.Codec)
	if mime == "" {
		return pwebrtc.RTPCodecCapability{}, fmt.Errorf("webrtc: codec %s cannot be sent over WebRTC", t.Codec)
	}
	if t.Codec == media.CodecOpus {
		return OpusCapability(), nil
	}
	c := pwebrtc.RTPCodecCapability{MimeType: mime, ClockRate: VideoClockRate, RTCPFeedback: videoFeedback}
	switch t.Codec {
	case media.CodecH264:
		plid := "42e01f"
		if rec, err := h264.ParseConfigRecord(t.Config); err == nil {
			plid = fmt.Sprintf("%02x%02x%02x", rec.ProfileIndication, rec.ProfileCompatibility, rec.LevelIndication)
		}
		c.SDPFmtpLine = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + plid
	case media.CodecVP9:
		c.SDPFmtpLine = "profile-id=0"
		if rec, err := vp9.ParseConfigRecord(t.Config); err == nil && rec.Profile != 0 {
			c.SDPFmtpLine = fmt.Sprintf("profile-id=%d", rec.Profile)
		}
	}
	return c, nil
}
