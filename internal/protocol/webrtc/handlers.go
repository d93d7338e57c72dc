package webrtc

import (
	"bytes"
	"encoding/binary"

	"github.com/pion/rtp/codecs"

	"github.com/quasipaa/quasipaa/internal/codec/av1"
	"github.com/quasipaa/quasipaa/internal/codec/h264"
	"github.com/quasipaa/quasipaa/internal/codec/h265"
	"github.com/quasipaa/quasipaa/internal/codec/vp9"
	"github.com/quasipaa/quasipaa/internal/media"
)

// h264Handler depacketizes RFC 6184 (packetization-mode 1: single NAL units,
// STAP-A, FU-A) into length-prefixed NAL units.
type h264Handler struct{ fuStart int }

func (h *h264Handler) reset()         { h.fuStart = -1 }
func (h *h264Handler) complete() bool { return h.fuStart < 0 }

func (h *h264Handler) append(dst, p []byte, _ bool) ([]byte, error) {
	if len(p) < 1 {
		return dst, errShortPayload
	}
	switch t := p[0] & 0x1F; {
	case t >= 1 && t <= 23:
		if h.fuStart >= 0 {
			return dst, errFragmentOrder
		}
		return appendNALU(dst, p), nil
	case t == 24: // STAP-A
		if h.fuStart >= 0 {
			return dst, errFragmentOrder
		}
		for pos := 1; pos < len(p); {
			if pos+2 > len(p) {
				return dst, errShortPayload
			}
			n := int(binary.BigEndian.Uint16(p[pos:]))
			pos += 2
			if n == 0 || pos+n > len(p) {
				return dst, errShortPayload
			}
			dst = appendNALU(dst, p[pos:pos+n])
			pos += n
		}
		return dst, nil
	case t == 28: // FU-A
		if len(p) < 3 {
			return dst, errShortPayload
		}
		fu := p[1]
		if fu&0x80 != 0 {
			if h.fuStart >= 0 {
				return dst, errFragmentOrder
			}
			h.fuStart = len(dst)
			dst = append(dst, 0, 0, 0, 0, p[0]&0xE0|fu&0x1F)
		} else if h.fuStart < 0 {
			return dst, errFragmentOrder
		}
		dst = append(dst, p[2:]...)
		if fu&0x40 != 0 {
			putLength(dst, h.fuStart)
			h.fuStart = -1
		}
		return dst, nil
	}
	return dst, errUnsupported
}

func (*h264Handler) keyframe(frame []byte) bool { return h264.IsKeyframe(frame) }

func (*h264Handler) track(frame []byte, cur *media.Track) (*media.Track, error) {
	sps, pps := h264.ParameterSets(frame)
	if len(sps) == 0 || len(pps) == 0 {
		return cur, nil
	}
	t, err := h264.TrackFromParameterSets(sps, pps)
	if err != nil {
		return cur, err
	}
	if cur != nil && bytes.Equal(cur.Config, t.Config) {
		return cur, nil
	}
	return t, nil
}

// h265Handler depacketizes RFC 7798 (single NAL units, aggregation packets,
// fragmentation units; no DONL) into length-prefixed NAL units.
type h265Handler struct{ fuStart int }

func (h *h265Handler) reset()         { h.fuStart = -1 }
func (h *h265Handler) complete() bool { return h.fuStart < 0 }

func (h *h265Handler) append(dst, p []byte, _ bool) ([]byte, error) {
	if len(p) < 3 {
		return dst, errShortPayload
	}
	switch t := p[0] >> 1 & 0x3F; {
	case t < 48:
		if h.fuStart >= 0 {
			return dst, errFragmentOrder
		}
		return appendNALU(dst, p), nil
	case t == 48: // aggregation packet
		if h.fuStart >= 0 {
			return dst, errFragmentOrder
		}
		for pos := 2; pos < len(p); {
			if pos+2 > len(p) {
				return dst, errShortPayload
			}
			n := int(binary.BigEndian.Uint16(p[pos:]))
			pos += 2
			if n < 2 || pos+n > len(p) {
				return dst, errShortPayload
			}
			dst = appendNALU(dst, p[pos:pos+n])
			pos += n
		}
		return dst, nil
	case t == 49: // fragmentation unit
		fu := p[2]
		if fu&0x80 != 0 {
			if h.fuStart >= 0 {
				return dst, errFragmentOrder
			}
			h.fuStart = len(dst)
			dst = append(dst, 0, 0, 0, 0, p[0]&0x81|(fu&0x3F)<<1, p[1])
		} else if h.fuStart < 0 {
			return dst, errFragmentOrder
		}
		dst = append(dst, p[3:]...)
		if fu&0x40 != 0 {
			putLength(dst, h.fuStart)
			h.fuStart = -1
		}
		return dst, nil
	}
	return dst, errUnsupported
}

func (*h265Handler) keyframe(frame []byte) bool { return h265.IsKeyframe(frame) }

func (*h265Handler) track(frame []byte, cur *media.Track) (*media.Track, error) {
	vps, sps, pps := h265.ParameterSets(frame)
	if len(vps) == 0 || len(sps) == 0 || len(pps) == 0 {
		return cur, nil
	}
	t, err := h265.TrackFromParameterSets(vps, sps, pps)
	if err != nil {
		return cur, err
	}
	if cur != nil && bytes.Equal(cur.Config, t.Config) {
		return cur, nil
	}
	return t, nil
}

// vp8Handler depacketizes RFC 7741.
type vp8Handler struct{ pkt codecs.VP8Packet }

func (*vp8Handler) reset()         {}
func (*vp8Handler) complete() bool { return true }

func (h *vp8Handler) append(dst, p []byte, first bool) ([]byte, error) {
	payload, err := h.pkt.Unmarshal(p)
	if err != nil {
		return dst, err
	}
	if first && (h.pkt.S != 1 || h.pkt.PID != 0) {
		return dst, errFrameStart
	}
	return append(dst, payload...), nil
}

// keyframe reads the VP8 frame tag: a clear P bit is a key frame (RFC 6386 9.1).
func (*vp8Handler) keyframe(frame []byte) bool { return len(frame) > 0 && frame[0]&1 == 0 }

func (*vp8Handler) track(frame []byte, cur *media.Track) (*media.Track, error) {
	w, h, ok := VP8KeyframeSize(frame)
	if !ok {
		return cur, errShortPayload
	}
	if cur != nil && cur.Width == w && cur.Height == h {
		return cur, nil
	}
	return &media.Track{Codec: media.CodecVP8, Width: w, Height: h}, nil
}

// VP8KeyframeSize reads the picture size of a VP8 key frame (RFC 6386 9.1).
func VP8KeyframeSize(frame []byte) (width, height int, ok bool) {
	if len(frame) < 10 || frame[0]&1 != 0 || frame[3] != 0x9d || frame[4] != 0x01 || frame[5] != 0x2a {
		return 0, 0, false
	}
	width = int(binary.LittleEndian.Uint16(frame[6:]) & 0x3FFF)
	height = int(binary.LittleEndian.Uint16(frame[8:]) & 0x3FFF)
	return width, height, width > 0 && height > 0
}

// vp9Handler depacketizes the VP9 RTP payload format (RFC 9628). Only the
// base spatial layer is kept: the packets of higher layers are skipped.
type vp9Handler struct {
	pkt   codecs.VP9Packet
	ended bool
}

func (h *vp9Handler) reset()         { h.ended = false }
func (h *vp9Handler) complete() bool { return h.ended }

func (h *vp9Handler) append(dst, p []byte, first bool) ([]byte, error) {
	payload, err := h.pkt.Unmarshal(p)
	if err != nil {
		return dst, err
	}
	if h.pkt.L && h.pkt.SID > 0 {
		return dst, nil
	}
	if first && !h.pkt.B || !first && h.pkt.B && len(dst) > 0 {
		return dst, errFrameStart
	}
	h.ended = h.pkt.E
	return append(dst, payload...), nil
}

func (*vp9Handler) keyframe(frame []byte) bool { return vp9.IsKeyframe(frame) }

func (*vp9Handler) track(frame []byte, cur *media.Track) (*media.Track, error) {
	t, err := vp9.TrackFromKeyframe(frame)
	if err != nil {
		return cur, err
	}
	if cur != nil && cur.Width == t.Width && cur.Height == t.Height && bytes.Equal(cur.Config, t.Config) {
		return cur, nil
	}
	return t, nil
}

// av1Handler depacketizes the AV1 RTP payload format with pion's
// depacketizer, which writes OBUs with their size fields and drops temporal
// delimiters: the canonical low-overhead form.
type av1Handler struct {
	d     codecs.AV1Depacketizer
	ended bool
}

func (h *av1Handler) reset()         { h.d = codecs.AV1Depacketizer{}; h.ended = true }
func (h *av1Handler) complete() bool { return h.ended }

func (h *av1Handler) append(dst, p []byte, first bool) ([]byte, error) {
	if first && len(p) > 0 && p[0]&0x80 != 0 {
		return dst, errFrameStart // Z: continues an OBU of a lost packet
	}
	obus, err := h.d.Unmarshal(p)
	if err != nil {
		return dst, err
	}
	h.ended = !h.d.Y
	return append(dst, obus...), nil
}

func (*av1Handler) keyframe(frame []byte) bool { return av1.IsKeyframe(frame) }

func (*av1Handler) track(frame []byte, cur *media.Track) (*media.Track, error) {
	if av1.SequenceHeaderOBU(frame) == nil {
		return cur, nil
	}
	t, err := av1.TrackFromSequenceHeader(frame)
	if err != nil {
		return cur, err
	}
	if cur != nil && bytes.Equal(cur.Config, t.Config) {
		return cur, nil
	}
	return t, nil
}
