package webrtc

import (
	"encoding/binary"
	"slices"

	"github.com/pion/rtp/codecs"

	"github.com/quasipaa/quasipaa/internal/codec/h264"
	"github.com/quasipaa/quasipaa/internal/codec/h265"
	"github.com/quasipaa/quasipaa/internal/codec/vp9"
	"github.com/quasipaa/quasipaa/internal/media"
)

// DefaultMTU is the size of the RTP packets sent (header included), small
// enough for any path once SRTP and UDP/IP headers are added.
const DefaultMTU = 1200

// rtpHeaderSize is the size of the RTP headers Quasipaa sends (no CSRC, no extension).
const rtpHeaderSize = 12

// A packet run is the RTP payloads of one frame, built once per stream and
// shared by every viewer, each of which only adds its own RTP header. Each
// packet is a 3-byte prefix, then the payload:
//
//	length uint16 big-endian (of the payload)
//	flags  uint8: bit 0 is the RTP marker bit
const runPrefix = 3

// NextPacket splits the first packet off a packet run built by
// AppendPackets. It returns a nil payload at the end of the run (or on a
// malformed run).
func NextPacket(run []byte) (payload []byte, marker bool, rest []byte) {
	if len(run) < runPrefix {
		return nil, false, nil
	}
	n := int(binary.BigEndian.Uint16(run))
	if runPrefix+n > len(run) {
		return nil, false, nil
	}
	return run[runPrefix : runPrefix+n], run[2]&1 != 0, run[runPrefix+n:]
}

// packetWriter appends packets to a run.
type packetWriter struct {
	dst  []byte
	last int // offset of the last packet's prefix, -1 when none
	max  int // largest payload
}

func (w *packetWriter) begin() int {
	w.last = len(w.dst)
	w.dst = append(w.dst, 0, 0, 0)
	return w.last
}

func (w *packetWriter) end(start int) {
	binary.BigEndian.PutUint16(w.dst[start:], uint16(len(w.dst)-start-runPrefix))
}

func (w *packetWriter) packet(prefix, data []byte) {
	s := w.begin()
	w.dst = append(w.dst, prefix...)
	w.dst = append(w.dst, data...)
	w.end(s)
}

// finish sets the marker bit on the frame's last packet.
func (w *packetWriter) finish(marker bool) []byte {
	if marker && w.last >= 0 {
		w.dst[w.last+2] |= 1
	}
	return w.dst
}

// AppendPackets appends frame f of track t, packetized for RTP with packets
// of at most mtu bytes (0: DefaultMTU), to dst as a packet run, and returns
// the extended buffer. The RTP timestamp of every packet is the frame's PTS
// (see RTPTimestamp); the marker bit ends each video frame. H.264 and H.265
// keyframes are preceded by their parameter sets from the track when the
// frame lacks them. A codec WebRTC cannot carry, or a malformed frame,
// appends what could be packetized (possibly nothing).
func AppendPackets(dst []byte, t *media.Track, f *media.Frame, mtu int) []byte {
	if mtu <= 0 {
		mtu = DefaultMTU
	}
	w := packetWriter{dst: dst, last: -1, max: mtu - rtpHeaderSize}
	if w.max < 16 {
		return dst
	}
	// One allocation: the payload, a prefix and a few header bytes per
	// packet, and the parameter sets a keyframe may get.
	size := len(f.Payload) + (len(f.Payload)/(w.max-8)+8)*(runPrefix+8)
	if f.Key {
		size += len(t.Config) + 64
	}
	w.dst = slices.Grow(w.dst, size)
	switch t.Codec {
	case media.CodecH264:
		appendH264(&w, t, f)
	case media.CodecH265:
		appendH265(&w, t, f)
	case media.CodecVP8:
		appendVP8(&w, f.Payload)
	case media.CodecVP9:
		appendVP9(&w, f.Payload)
	case media.CodecAV1:
		for _, p := range (&codecs.AV1Payloader{}).Payload(uint16(w.max), f.Payload) {
			w.packet(nil, p)
		}
	case media.CodecOpus:
		if len(f.Payload) > 0 && len(f.Payload) <= w.max {
			w.packet(nil, f.Payload)
		}
		return w.dst
	default:
		return dst
	}
	return w.finish(true)
}

// appendH264 writes single NAL unit packets and FU-A fragments (RFC 6184,
// packetization-mode 1), leaving access unit delimiters and filler out.
func appendH264(w *packetWriter, t *media.Track, f *media.Frame) {
	if f.Key && !h264.HasParameterSets(f.Payload) {
		if rec, err := h264.ParseConfigRecord(t.Config); err == nil {
			for _, ps := range [][][]byte{rec.SPS, rec.PPS} {
				for _, n := range ps {
					h264NALU(w, n)
				}
			}
		}
	}
	for nalu, rest, err := h264.NextNALU(f.Payload); nalu != nil && err == nil; nalu, rest, err = h264.NextNALU(rest) {
		switch h264.TypeOf(nalu) {
		case h264.NALUTypeAUD, h264.NALUTypeFillerData:
			continue
		}
		h264NALU(w, nalu)
	}
}

func h264NALU(w *packetWriter, nalu []byte) {
	if len(nalu) <= w.max {
		w.packet(nil, nalu)
		return
	}
	indicator := nalu[0]&0xE0 | 28
	typ := nalu[0] & 0x1F
	data := nalu[1:]
	for first := true; len(data) > 0; first = false {
		n := min(len(data), w.max-2)
		hdr := typ
		if first {
			hdr |= 0x80
		}
		if n == len(data) {
			hdr |= 0x40
		}
		w.packet([]byte{indicator, hdr}, data[:n])
		data = data[n:]
	}
}

// appendH265 writes single NAL unit packets and fragmentation units (RFC 7798).
func appendH265(w *packetWriter, t *media.Track, f *media.Frame) {
	if f.Key && !h265.HasParameterSets(f.Payload) {
		if rec, err := h265.ParseConfigRecord(t.Config); err == nil {
			for _, ps := range [][][]byte{rec.VPS, rec.SPS, rec.PPS} {
				for _, n := range ps {
					h265NALU(w, n)
				}
			}
		}
	}
	for nalu, rest, err := h265.NextNALU(f.Payload); nalu != nil && err == nil; nalu, rest, err = h265.NextNALU(rest) {
		if len(nalu) < 2 {
			continue
		}
		switch h265.TypeOf(nalu) {
		case h265.NALUTypeAUD, h265.NALUTypeFD:
			continue
		}
		h265NALU(w, nalu)
	}
}

func h265NALU(w *packetWriter, nalu []byte) {
	if len(nalu) <= w.max {
		w.packet(nil, nalu)
		return
	}
	h0, h1 := nalu[0]&0x81|49<<1, nalu[1]
	typ := nalu[0] >> 1 & 0x3F
	data := nalu[2:]
	for first := true; len(data) > 0; first = false {
		n := min(len(data), w.max-3)
		fu := typ
		if first {
			fu |= 0x80
		}
		if n == len(data) {
			fu |= 0x40
		}
		w.packet([]byte{h0, h1, fu}, data[:n])
		data = data[n:]
	}
}

// appendVP8 writes the frame with a one-byte payload descriptor (RFC 7741):
// S set on the first packet, no picture ID (receivers then order frames by
// sequence number, which every viewer keeps contiguous).
func appendVP8(w *packetWriter, frame []byte) {
	desc := byte(0x10)
	for len(frame) > 0 {
		n := min(len(frame), w.max-1)
		w.packet([]byte{desc}, frame[:n])
		frame = frame[n:]
		desc = 0
	}
}

// appendVP9 writes the frame in non-flexible mode without picture ID (RFC
// 9628): B and E mark the frame's first and last packets, P its inter
// prediction, and the first packet of a keyframe carries the scalability
// structure with the picture size.
func appendVP9(w *packetWriter, frame []byte) {
	var ss []byte
	key := vp9.IsKeyframe(frame)
	if key {
		if k, err := vp9.ParseKeyframe(frame); err == nil {
			ss = []byte{0x10, byte(k.Width >> 8), byte(k.Width), byte(k.Height >> 8), byte(k.Height)}
		}
	}
	for first := true; len(frame) > 0; first = false {
		desc := byte(0)
		if !key {
			desc |= 0x40
		}
		hdr := []byte{0}
		if first {
			desc |= 0x08
			if ss != nil {
				desc |= 0x02
				hdr = append(hdr, ss...)
			}
		}
		n := min(len(frame), w.max-len(hdr))
		if n == len(frame) {
			desc |= 0x04
		}
		hdr[0] = desc
		w.packet(hdr, frame[:n])
		frame = frame[n:]
	}
}

// RTPTimestamp converts a presentation time to RTP clock ticks, exactly
// (never accumulated), wrapping at 2^32.
func RTPTimestamp(pts int64, clock uint32) uint32 {
	const second = int64(1e9)
	c := int64(clock)
	s, r := pts/second, pts%second
	return uint32(s*c + r*c/second)
}
