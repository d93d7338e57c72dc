package webrtc

import (
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/quasipaa/quasipaa/internal/codec/h264"
	"github.com/quasipaa/quasipaa/internal/codec/h265"
	"github.com/quasipaa/quasipaa/internal/media"
)

// The fuzzers feed a Depacketizer with packets described by the input, a
// sequence of chunks:
//
//	control uint8: bit 0 marker, bits 1-3 sequence number step - 1 (so
//	               reordering and loss happen), bits 4-7 timestamp step
//	length  uint8
//	payload [length]byte
//
// and check that whatever comes out keeps the media model's invariants.

func encodeChunks(pkts []rtp.Packet) []byte {
	var out []byte
	var lastTS uint32
	for i, p := range pkts {
		c := byte(0)
		if p.Marker {
			c |= 1
		}
		if i > 0 && p.Timestamp != lastTS {
			c |= 1 << 4
		}
		lastTS = p.Timestamp
		n := min(len(p.Payload), 255)
		out = append(out, c, byte(n))
		out = append(out, p.Payload[:n]...)
	}
	return out
}

// seedPackets packetizes frames with AppendPackets, with a small MTU so
// that seeds stay short but fragment.
func seedPackets(t *media.Track, frames []*media.Frame) []rtp.Packet {
	var pkts []rtp.Packet
	for i, f := range frames {
		run := AppendPackets(nil, t, f, 200)
		for p, m, rest := NextPacket(run); p != nil; p, m, rest = NextPacket(rest) {
			pkts = append(pkts, rtp.Packet{Header: rtp.Header{Timestamp: uint32(i * 3000), Marker: m}, Payload: p})
		}
	}
	return pkts
}

func fuzzDepacketizer(f *testing.F, codec media.Codec, seeds [][]byte, check func(t *testing.T, payload []byte)) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := NewDepacketizer(DepacketizerOptions{Codec: codec, OnKeyframeNeeded: func() {}})
		if err != nil {
			t.Fatal(err)
		}
		var (
			seq     uint16 = 65500
			ts      uint32 = 1<<32 - 5000
			now            = time.Unix(1_700_000_000, 0)
			lastDTS time.Duration
		)
		emit := func(fr *media.Frame, tr *media.Track) {
			if tr == nil {
				t.Fatal("frame without track")
			}
			if fr.DTS < lastDTS {
				t.Fatalf("DTS went back: %v after %v", fr.DTS, lastDTS)
			}
			if len(fr.Payload) == 0 {
				t.Fatal("empty frame")
			}
			lastDTS = fr.DTS
			check(t, fr.Payload)
		}
		for len(data) >= 2 {
			c, n := data[0], int(data[1])
			data = data[2:]
			n = min(n, len(data))
			payload := data[:n]
			data = data[n:]
			seq += uint16(c>>1&7) + 1
			ts += uint32(c>>4) * 1500
			now = now.Add(5 * time.Millisecond)
			p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, SSRC: 1, Marker: c&1 != 0}, Payload: payload}
			buf, _ := p.Marshal()
			_ = d.Push(buf, now, emit)
		}
		d.Flush(emit)
	})
}

func noCheck(*testing.T, []byte) {}

func FuzzDepacketizeH264(f *testing.F) {
	s := readFLVVideo(f)
	fuzzDepacketizer(f, media.CodecH264, [][]byte{
		encodeChunks(seedPackets(s.track, s.frames[:3])),
		{1, 3, 0x67, 0x42, 0x00},
		{0, 4, 0x7C, 0x85, 1, 2, 1, 3, 0x7C, 0x45, 3},
		{1, 7, 0x78, 0, 2, 0x67, 0x42, 0, 9},
	}, func(t *testing.T, p []byte) {
		if err := h264.ForEachNALU(p, func([]byte) bool { return true }); err != nil {
			t.Fatalf("frame is not length-prefixed NAL units: %v", err)
		}
	})
}

func FuzzDepacketizeH265(f *testing.F) {
	fuzzDepacketizer(f, media.CodecH265, [][]byte{
		{1, 4, 0x40, 0x01, 0x0c, 0x01},
		{0, 5, 0x62, 0x01, 0x93, 1, 2, 1, 5, 0x62, 0x01, 0x53, 3, 4},
		{1, 9, 0x60, 0x01, 0, 3, 0x40, 0x01, 0x0c, 0, 0},
	}, func(t *testing.T, p []byte) {
		if err := h265.ForEachNALU(p, func([]byte) bool { return true }); err != nil {
			t.Fatalf("frame is not length-prefixed NAL units: %v", err)
		}
	})
}

func FuzzDepacketizeVP8(f *testing.F) {
	key := []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00, 0x00, 0x00}
	fuzzDepacketizer(f, media.CodecVP8, [][]byte{
		append([]byte{1, byte(len(key))}, key...),
		{0, 3, 0x90, 0x80, 0x01, 1, 2, 0x00, 0x05},
	}, noCheck)
}

func FuzzDepacketizeVP9(f *testing.F) {
	fuzzDepacketizer(f, media.CodecVP9, [][]byte{
		{1, 6, 0x0e, 0x10, 0x01, 0x40, 0x00, 0xf0},
		{0, 4, 0x88, 0x12, 0x82, 0x49, 1, 3, 0x44, 0x83, 0x42},
		{1, 5, 0xac, 0x00, 0x01, 0x02, 0x03},
	}, noCheck)
}

func FuzzDepacketizeAV1(f *testing.F) {
	fuzzDepacketizer(f, media.CodecAV1, [][]byte{
		{1, 5, 0x18, 0x0a, 0x00, 0x00, 0x00},
		{0, 4, 0x50, 0x32, 0x01, 0x02, 1, 3, 0x90, 0x03, 0x04},
		{1, 6, 0x08, 0x04, 0x32, 0x00, 0x01, 0x02},
	}, noCheck)
}

func FuzzDepacketizeOpus(f *testing.F) {
	fuzzDepacketizer(f, media.CodecOpus, [][]byte{
		{0, 3, 0xF8, 0xFF, 0xFE, 0x10, 3, 0xF8, 0xFF, 0xFE},
	}, noCheck)
}

// FuzzDepacketizeRaw feeds whole datagrams, RTP header included.
func FuzzDepacketizeRaw(f *testing.F) {
	h := rtp.Header{Version: 2, Marker: true, SequenceNumber: 1, Timestamp: 10, SSRC: 1}
	_ = h.SetExtension(1, []byte{1})
	p, _ := (&rtp.Packet{Header: h, Payload: []byte{0x65, 1, 2}}).Marshal()
	f.Add(p)
	f.Add([]byte{0x80, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range []media.Codec{media.CodecH264, media.CodecH265, media.CodecVP8, media.CodecVP9, media.CodecAV1, media.CodecOpus} {
			d, _ := NewDepacketizer(DepacketizerOptions{Codec: c})
			emit := func(*media.Frame, *media.Track) {}
			_ = d.Push(data, time.Unix(0, 0), emit)
			_ = d.Push(data, time.Unix(1, 0), emit)
			d.Flush(emit)
		}
	})
}

func FuzzParseOffer(f *testing.F) {
	f.Add([]byte(browserOffer))
	f.Add([]byte("v=0\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := ParseOffer(data)
		if err != nil {
			return
		}
		for i := range o.Media {
			_ = o.Media[i].Accepts(media.CodecH264)
			_ = o.Media[i].CodecNames()
		}
	})
}

func FuzzParseSDPFrag(f *testing.F) {
	f.Add([]byte("a=ice-ufrag:a\r\na=ice-pwd:b\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 udp 1 192.0.2.1 1 typ host\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseSDPFrag(data)
	})
}
