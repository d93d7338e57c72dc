package webrtc

import (
	"bytes"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/codec/h264"
	"github.com/quasipaa/quasipaa/internal/media"
)

const mtuPayload = DefaultMTU - rtpHeaderSize

// shuffle reorders neighbours and duplicates some packets, as a network may.
func shuffle(pkts [][]byte) [][]byte {
	out := make([][]byte, 0, len(pkts)+len(pkts)/11)
	for i := 0; i < len(pkts); i++ {
		if i%7 == 3 && i+1 < len(pkts) {
			out = append(out, pkts[i+1], pkts[i])
			i++
			continue
		}
		out = append(out, pkts[i])
		if i%11 == 5 {
			out = append(out, pkts[i])
		}
	}
	return out
}

// depacketizeAll pushes packets 1 ms apart and flushes.
func depacketizeAll(t testing.TB, d *Depacketizer, pkts [][]byte) *collector {
	t.Helper()
	var c collector
	now := time.Unix(1_700_000_000, 0)
	for i, p := range pkts {
		require.NoError(t, d.Push(p, now.Add(time.Duration(i)*time.Millisecond), c.emit))
	}
	d.Flush(c.emit)
	return &c
}

// checkFrames compares what came out with the source frames.
func checkFrames(t *testing.T, src testStream, got *collector, expected func(*media.Frame) []byte) {
	t.Helper()
	require.Len(t, got.frames, len(src.frames))
	base := src.frames[0].PTS
	var lastDTS time.Duration
	for i, f := range got.frames {
		s := src.frames[i]
		require.Equal(t, expected(s), f.Payload, "frame %d payload", i)
		assert.Equal(t, s.Key, f.Key, "frame %d key", i)
		assert.Equal(t, s.PTS-base, f.PTS, "frame %d PTS", i)
		assert.GreaterOrEqual(t, f.DTS, lastDTS, "frame %d DTS goes back", i)
		assert.GreaterOrEqual(t, f.PTS, time.Duration(0))
		lastDTS = f.DTS
		require.NotNil(t, got.tracks[i])
	}
}

func TestPacketSizes(t *testing.T) {
	s := readFLVVideo(t)
	for _, f := range s.frames {
		run := AppendPackets(nil, s.track, f, 0)
		n, markers := 0, 0
		for p, m, rest := NextPacket(run); p != nil; p, m, rest = NextPacket(rest) {
			require.LessOrEqual(t, len(p), mtuPayload)
			n++
			if m {
				markers++
			}
		}
		require.Positive(t, n)
		require.Equal(t, 1, markers, "one marker per frame")
		last := run
		for p, m, rest := NextPacket(run); p != nil; p, m, rest = NextPacket(rest) {
			if len(rest) == 0 {
				require.True(t, m, "the marker is on the last packet")
			}
			last = rest
		}
		require.Empty(t, last)
	}
}

func TestRoundTripH264(t *testing.T) {
	s := readFLVVideo(t)
	// Sequence numbers and timestamps wrap during the stream.
	w := rtpWriter{seq: 65000, ssrc: 0x1234, base: 1<<32 - 90000}
	var pkts [][]byte
	for _, f := range s.frames {
		pkts = append(pkts, w.packets(t, AppendPackets(nil, s.track, f, 0), f.PTS, VideoClockRate)...)
	}
	d, err := NewDepacketizer(DepacketizerOptions{Codec: media.CodecH264})
	require.NoError(t, err)
	got := depacketizeAll(t, d, shuffle(pkts))
	checkFrames(t, s, got, func(f *media.Frame) []byte { return expectedH264(t, s.track, f) })
	tr := got.tracks[0]
	assert.Equal(t, 1280, tr.Width)
	assert.Equal(t, 720, tr.Height)
	assert.Equal(t, s.track.Profile, tr.Profile)
	want, err := h264.ParseConfigRecord(s.track.Config)
	require.NoError(t, err)
	have, err := h264.ParseConfigRecord(tr.Config)
	require.NoError(t, err)
	assert.Equal(t, want.SPS, have.SPS)
	assert.Equal(t, want.PPS, have.PPS)
	st := d.Stats()
	assert.Zero(t, st.Lost)
	assert.Zero(t, st.Dropped)
}

// TestDepacketizePionH264 feeds what pion's own packetizer (STAP-A for the
// parameter sets) sends, as browsers and libdatachannel do.
func TestDepacketizePionH264(t *testing.T) {
	s := readFLVVideo(t)
	w := rtpWriter{seq: 1, ssrc: 7}
	var pay codecs.H264Payloader
	var pkts [][]byte
	for _, f := range s.frames {
		var annexB []byte
		if f.Key && !h264.HasParameterSets(f.Payload) {
			rec, err := h264.ParseConfigRecord(s.track.Config)
			require.NoError(t, err)
			for _, n := range append(append([][]byte{}, rec.SPS...), rec.PPS...) {
				annexB = append(append(annexB, 0, 0, 0, 1), n...)
			}
		}
		annexB, err := h264.AVCCToAnnexB(annexB, f.Payload)
		require.NoError(t, err)
		pkts = append(pkts, w.payloads(t, pay.Payload(mtuPayload, annexB), f.PTS, VideoClockRate, true)...)
	}
	d, err := NewDepacketizer(DepacketizerOptions{Codec: media.CodecH264})
	require.NoError(t, err)
	got := depacketizeAll(t, d, pkts)
	checkFrames(t, s, got, func(f *media.Frame) []byte { return expectedH264(t, s.track, f) })
}

// TestPacketizeForPion has pion's depacketizer read what AppendPackets writes.
func TestPacketizeForPion(t *testing.T) {
	s := readFLVVideo(t)
	for _, f := range s.frames {
		var (
			d   codecs.H264Packet
			out []byte
		)
		d.IsAVC = true
		run := AppendPackets(nil, s.track, f, 0)
		for p, _, rest := NextPacket(run); p != nil; p, _, rest = NextPacket(rest) {
			b, err := d.Unmarshal(p)
			require.NoError(t, err)
			out = append(out, b...)
		}
		require.Equal(t, expectedH264(t, s.track, f), out)
	}
}

func TestH264Loss(t *testing.T) {
	s := readFLVVideo(t)
	w := rtpWriter{seq: 100, ssrc: 9}
	var (
		pkts    [][]byte
		dropped = -1
	)
	for i, f := range s.frames {
		p := w.packets(t, AppendPackets(nil, s.track, f, 0), f.PTS, VideoClockRate)
		if i == 5 && !f.Key {
			dropped = i
			p = p[:len(p)-1] // lose the frame's last packet
		}
		pkts = append(pkts, p...)
	}
	require.Equal(t, 5, dropped)
	requests := 0
	d, err := NewDepacketizer(DepacketizerOptions{Codec: media.CodecH264, OnKeyframeNeeded: func() { requests++ }})
	require.NoError(t, err)
	got := depacketizeAll(t, d, pkts)
	var want []*media.Frame
	waiting := false
	for i, f := range s.frames {
		if i == dropped {
			waiting = true
		}
		if waiting && f.Key {
			waiting = false
		}
		if !waiting {
			want = append(want, f)
		}
	}
	require.Len(t, got.frames, len(want))
	for i, f := range got.frames {
		require.Equal(t, expectedH264(t, s.track, want[i]), f.Payload)
	}
	assert.Positive(t, requests, "a keyframe was asked for")
	assert.Equal(t, uint64(1), d.Stats().Lost)
}

// TestDepacketizerTimeline covers SSRC changes (an encoder restart) and
// timestamp jumps: the timeline continues and the video waits for a keyframe.
func TestDepacketizerTimeline(t *testing.T) {
	s := readFLVVideo(t)
	d, err := NewDepacketizer(DepacketizerOptions{Codec: media.CodecH264})
	require.NoError(t, err)
	var c collector
	now := time.Unix(1_700_000_000, 0)
	w := rtpWriter{seq: 10, ssrc: 1, base: 5000}
	push := func(f *media.Frame) {
		for _, p := range w.packets(t, AppendPackets(nil, s.track, f, 0), f.PTS, VideoClockRate) {
			now = now.Add(time.Millisecond)
			require.NoError(t, d.Push(p, now, c.emit))
		}
	}
	for _, f := range s.frames[:10] {
		push(f)
	}
	n := len(c.frames)
	last := c.frames[n-1].PTS
	// New SSRC, new numbering, timestamps far away.
	w = rtpWriter{seq: 40000, ssrc: 2, base: 123456789}
	for _, f := range s.frames {
		push(f)
	}
	d.Flush(c.emit)
	require.Greater(t, len(c.frames), n)
	assert.True(t, c.frames[n].Key)
	assert.Greater(t, c.frames[n].PTS, last)
	assert.Less(t, c.frames[n].PTS-last, time.Second)
	// A timestamp jump of an hour on the same SSRC is rebased too.
	w.base += 3600 * VideoClockRate
	m := len(c.frames)
	for _, f := range s.frames {
		push(f)
	}
	d.Flush(c.emit)
	require.Greater(t, len(c.frames), m)
	assert.Less(t, c.frames[m].PTS-c.frames[m-1].PTS, time.Second)
	assert.Equal(t, uint64(2), d.Stats().Resets)
}

func TestRoundTripOpus(t *testing.T) {
	d, err := NewDepacketizer(DepacketizerOptions{Codec: media.CodecOpus, Epoch: time.Unix(1_700_000_000, 0).Add(-time.Second)})
	require.NoError(t, err)
	tr := d.Track()
	require.NotNil(t, tr)
	assert.Equal(t, 2, tr.Channels)
	assert.Equal(t, 48000, tr.SampleRate)
	w := rtpWriter{seq: 65530, ssrc: 3, base: 1<<32 - 960*2}
	var (
		pkts [][]byte
		src  []*media.Frame
	)
	for i := range 50 {
		pts := time.Duration(i) * 20 * time.Millisecond
		f := &media.Frame{PTS: pts, DTS: pts, Key: true, Payload: []byte{0xF8, 0xFF, 0xFE, byte(i)}}
		src = append(src, f)
		pkts = append(pkts, w.packets(t, AppendPackets(nil, tr, f, 0), pts, OpusClockRate)...)
	}
	got := depacketizeAll(t, d, shuffle(pkts))
	require.Len(t, got.frames, len(src))
	for i, f := range got.frames {
		assert.Equal(t, src[i].Payload, f.Payload)
		// The epoch puts the first frame at its arrival, 1 s after it.
		assert.Equal(t, time.Second+src[i].PTS, f.PTS)
	}
}

type codecCase struct {
	name  string
	codec media.Codec
	read  func(t testing.TB) testStream
	// pion's packetizer and depacketizer of the format.
	payloader   func() rtp.Payloader
	depacketize func() rtp.Depacketizer
	// canonical turns pion's depacketized output into the canonical form.
	canonical func([]byte) []byte
}

var otherCodecs = []codecCase{
	{
		name: "vp8", codec: media.CodecVP8,
		read: func(t testing.TB) testStream {
			return readIVF(t, encode(t, "v.ivf", "-c:v", "libvpx", "-b:v", "300k"), media.CodecVP8)
		},
		payloader:   func() rtp.Payloader { return &codecs.VP8Payloader{EnablePictureID: true} },
		depacketize: func() rtp.Depacketizer { return &codecs.VP8Packet{} },
	},
	{
		name: "vp9", codec: media.CodecVP9,
		read: func(t testing.TB) testStream {
			return readIVF(t, encode(t, "v.ivf", "-c:v", "libvpx-vp9", "-b:v", "300k", "-deadline", "realtime", "-cpu-used", "8"), media.CodecVP9)
		},
		payloader:   func() rtp.Payloader { return &codecs.VP9Payloader{} },
		depacketize: func() rtp.Depacketizer { return &codecs.VP9Packet{} },
	},
	{
		name: "av1", codec: media.CodecAV1,
		read: func(t testing.TB) testStream {
			return readIVF(t, encode(t, "v.ivf", "-c:v", "libaom-av1", "-b:v", "300k", "-cpu-used", "8", "-usage", "realtime"), media.CodecAV1)
		},
		payloader:   func() rtp.Payloader { return &codecs.AV1Payloader{} },
		depacketize: func() rtp.Depacketizer { return &codecs.AV1Depacketizer{} },
	},
	{
		name: "h265", codec: media.CodecH265,
		read:        readHEVC,
		payloader:   func() rtp.Payloader { return &codecs.H265Payloader{} },
		depacketize: func() rtp.Depacketizer { return &codecs.H265Depacketizer{} },
		canonical: func(annexB []byte) []byte {
			out, _ := h264.AnnexBToAVCC(nil, annexB)
			return out
		},
	},
}

// TestRoundTripCodecs sends VP8, VP9, AV1 and H.265 encoded by ffmpeg
// through AppendPackets and the Depacketizer, through pion's packetizer and
// the Depacketizer, and through AppendPackets and pion's depacketizer.
func TestRoundTripCodecs(t *testing.T) {
	for _, cc := range otherCodecs {
		t.Run(cc.name, func(t *testing.T) {
			s := cc.read(t)
			same := func(f *media.Frame) []byte { return f.Payload }

			// Ours to ours, reordered and duplicated.
			w := rtpWriter{seq: 65000, ssrc: 5, base: 1<<32 - 1000}
			var pkts [][]byte
			for _, f := range s.frames {
				run := AppendPackets(nil, s.track, f, 0)
				for p, _, rest := NextPacket(run); p != nil; p, _, rest = NextPacket(rest) {
					require.LessOrEqual(t, len(p), mtuPayload)
				}
				pkts = append(pkts, w.packets(t, run, f.PTS, VideoClockRate)...)
			}
			d, err := NewDepacketizer(DepacketizerOptions{Codec: cc.codec})
			require.NoError(t, err)
			got := depacketizeAll(t, d, shuffle(pkts))
			checkFrames(t, s, got, same)
			tr := got.tracks[0]
			assert.Equal(t, 320, tr.Width)
			assert.Equal(t, 240, tr.Height)

			// pion's packetizer to ours.
			w = rtpWriter{seq: 1, ssrc: 6}
			pay := cc.payloader()
			pkts = nil
			for _, f := range s.frames {
				in := f.Payload
				if cc.codec == media.CodecH265 {
					in, err = h264.AVCCToAnnexB(nil, f.Payload)
					require.NoError(t, err)
				}
				pkts = append(pkts, w.payloads(t, pay.Payload(mtuPayload, in), f.PTS, VideoClockRate, true)...)
			}
			d, err = NewDepacketizer(DepacketizerOptions{Codec: cc.codec})
			require.NoError(t, err)
			checkFrames(t, s, depacketizeAll(t, d, pkts), same)

			// Ours to pion's depacketizer.
			for i, f := range s.frames {
				dp := cc.depacketize()
				var out []byte
				run := AppendPackets(nil, s.track, f, 0)
				for p, _, rest := NextPacket(run); p != nil; p, _, rest = NextPacket(rest) {
					b, err := dp.Unmarshal(p)
					require.NoError(t, err, "frame %d", i)
					out = append(out, b...)
				}
				if cc.canonical != nil {
					out = cc.canonical(out)
				}
				require.True(t, bytes.Equal(f.Payload, out), "frame %d differs after pion's depacketizer", i)
			}
		})
	}
}
