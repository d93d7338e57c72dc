package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWHEPURLs(t *testing.T) {
	p, err := ProtocolOf("http://127.0.0.1:8080/live/cam1/whep")
	require.NoError(t, err)
	assert.Equal(t, WHEP, p)
	p, err = ProtocolOf("https://example.com/live/cam1/whep")
	require.NoError(t, err)
	assert.Equal(t, WHEP, p)
	for _, in := range []string{
		"http://h:1/live/cam1",
		"http://h:1/live/cam1/",
		"http://h:1/live/cam1.flv",
		"http://h:1/live/cam1/index.m3u8",
		"http://h:1/live/cam1/whep",
	} {
		proto, u, err := playerURL(in, WHEP)
		require.NoError(t, err, in)
		assert.Equal(t, WHEP, proto)
		assert.Equal(t, "http://h:1/live/cam1/whep", u, in)
	}
	_, u, err := playerURL("http://h:1/live/cam1?token=x", WHEP)
	require.NoError(t, err)
	assert.Equal(t, "http://h:1/live/cam1/whep?token=x", u)
	_, _, err = playerURL("rtmp://h/live/cam1", WHEP)
	assert.ErrorContains(t, err, "protocol whep needs a http:// URL")
	got, err := ParseProtocol("whep")
	require.NoError(t, err)
	assert.Equal(t, WHEP, got)
}

// rtpPacket builds an RTP packet, with a one-byte header extension as pion
// adds (transport-wide sequence number) and optional padding.
func rtpPacket(seq uint16, ts uint32, marker bool, payload []byte, pad int) []byte {
	b := []byte{0x80 | 0x10, 96, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}
	if pad > 0 {
		b[0] |= 0x20
	}
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	b = append(b, 0xbe, 0xde, 0, 1, 0x10, 0x12, 0x34, 0) // extension: one word
	b = append(b, payload...)
	for i := range pad {
		if i == pad-1 {
			b = append(b, byte(pad))
		} else {
			b = append(b, 0)
		}
	}
	return b
}

func TestParseRTP(t *testing.T) {
	m, seq, ts, payload, ok := parseRTP(rtpPacket(65535, 0xfffffff0, true, []byte{1, 2, 3}, 4))
	require.True(t, ok)
	assert.True(t, m)
	assert.EqualValues(t, 65535, seq)
	assert.EqualValues(t, 0xfffffff0, ts)
	assert.Equal(t, []byte{1, 2, 3}, payload)
	_, _, _, _, ok = parseRTP([]byte{0x80, 96, 0})
	assert.False(t, ok)
	_, _, _, _, ok = parseRTP(rtpPacket(1, 1, false, nil, 0)[:13]) // extension cut
	assert.False(t, ok)
}

func TestSeqTracker(t *testing.T) {
	var s seqTracker
	add := func(seq uint16) (int64, bool) { return s.add(seq) }
	gap, newest := add(65530)
	assert.True(t, newest)
	assert.Zero(t, gap)
	for seq := uint16(65531); seq != 5; seq++ { // across the wrap
		gap, newest = add(seq)
		assert.True(t, newest)
		assert.Zero(t, gap)
	}
	gap, newest = add(8) // 5, 6, 7 missing
	assert.True(t, newest)
	assert.EqualValues(t, 3, gap)
	assert.EqualValues(t, 3, s.lost())
	_, newest = add(6) // retransmitted
	assert.False(t, newest)
	_, newest = add(6) // and again
	assert.False(t, newest)
	assert.EqualValues(t, 2, s.lost())
	assert.EqualValues(t, 1, s.late)
	assert.EqualValues(t, 1, s.dups)
	assert.EqualValues(t, 65536-65530+9, s.expected())
	// A recent number received again is a duplicate.
	for seq := uint16(9); seq < 300; seq++ {
		add(seq)
	}
	_, newest = add(299)
	assert.False(t, newest)
	assert.EqualValues(t, 2, s.dups)
	assert.EqualValues(t, 2, s.lost())
}

func TestH264Payload(t *testing.T) {
	idr, vcl, fu, _, _ := h264Payload([]byte{0x65, 1, 2, 3})
	assert.True(t, idr)
	assert.Equal(t, 4, vcl)
	assert.False(t, fu)
	idr, vcl, _, _, _ = h264Payload([]byte{0x67, 1, 2}) // SPS
	assert.False(t, idr)
	assert.Zero(t, vcl)
	idr, vcl, fu, start, end := h264Payload([]byte{0x7c, 0x85, 1, 2, 3}) // FU-A start of an IDR slice
	assert.True(t, idr)
	assert.Equal(t, 4, vcl)
	assert.True(t, fu)
	assert.True(t, start)
	assert.False(t, end)
	idr, vcl, _, start, end = h264Payload([]byte{0x5c, 0x41, 1, 2}) // FU-A end of a non-IDR slice
	assert.False(t, idr)
	assert.Equal(t, 2, vcl)
	assert.False(t, start)
	assert.True(t, end)
	// STAP-A: SPS (3 bytes) and an IDR slice (2 bytes).
	idr, vcl, _, _, _ = h264Payload([]byte{0x18, 0, 3, 0x67, 1, 2, 0, 2, 0x65, 9})
	assert.True(t, idr)
	assert.Equal(t, 2, vcl)
}

func TestVideoFrameInfo(t *testing.T) {
	// AVC NALU, keyframe, CTO -33 ms, an SEI of 3 bytes and an IDR slice of 5.
	body := []byte{0x17, 1, 0xff, 0xff, 0xdf, 0, 0, 0, 3, 0x06, 1, 2, 0, 0, 0, 5, 0x65, 1, 2, 3, 4}
	cto, key, vcl := videoFrameInfo(body, 4)
	assert.EqualValues(t, -33, cto)
	assert.True(t, key)
	assert.EqualValues(t, 5, vcl)
	cto, key, vcl = videoFrameInfo([]byte{0x27, 1, 0, 0, 66, 0, 2, 0x41, 7}, 2)
	assert.EqualValues(t, 66, cto)
	assert.False(t, key)
	assert.EqualValues(t, 2, vcl)
	_, key, vcl = videoFrameInfo([]byte{0x91, 'h', 'v', 'c', '1', 0, 0, 0}, 4) // Enhanced RTMP: no slices measured
	assert.True(t, key)
	assert.Zero(t, vcl)
}

func TestSendLog(t *testing.T) {
	l := newSendLog()
	t0 := time.Now()
	// 200 frames at 30 fps, a keyframe every 30, B-frames: decoding order
	// I P B B (PTS 0, 100, 33, 66) ...; slices of 1000 + frame number bytes.
	for i := range sendLogSize + 200 {
		gop, k := i/4, i%4
		pts := int64(gop*133) + []int64{0, 100, 33, 66}[k]
		l.add(sentFrame{dts: int64(i * 33), pts: pts, sent: t0.Add(time.Duration(i) * 33 * time.Millisecond), key: i%32 == 0, vcl: uint32(1000 + i)})
	}
	last := sendLogSize + 199
	f, ok := l.lookup(int64((last/4)*133) + 66)
	require.True(t, ok)
	assert.EqualValues(t, last*33, f.dts)
	_, ok = l.lookup(100) // forgotten
	assert.False(t, ok)

	at := func(i int) time.Time { return t0.Add(time.Duration(i)*33*time.Millisecond + time.Millisecond) }
	k := last - last%32 // the latest keyframe
	f, bySize, ok := l.findKey(uint32(1000+k), at(last))
	require.True(t, ok)
	assert.True(t, bySize)
	assert.EqualValues(t, k*33, f.dts)
	f, bySize, ok = l.findKey(uint32(1000+k-32), at(last)) // the one before, by its size
	require.True(t, ok)
	assert.True(t, bySize)
	assert.EqualValues(t, (k-32)*33, f.dts)
	f, bySize, ok = l.findKey(7, at(k+3)) // unknown size: the latest sent by then
	require.True(t, ok)
	assert.False(t, bySize)
	assert.EqualValues(t, k*33, f.dts)
	_, _, ok = l.findKey(7, t0.Add(-time.Hour))
	assert.False(t, ok)
}

// TestVideoRx feeds a WHEP player's video accounting with the packets of
// frames with B-frames, a lost packet and an RTP timestamp wrap, and checks
// frames, drops (from the publisher's DTS) and latencies.
func TestVideoRx(t *testing.T) {
	l := newSendLog()
	t0 := time.Now()
	var v videoRx
	v.sent = l
	v.liveSince = t0.Add(100 * time.Millisecond) // the first 4 frames are the backlog
	var a accounting
	now := t0
	nowFn := func() time.Time { return now }
	const offset = int64(0xffffffff) - 90*500 // wraps after PTS 500 ms
	seq := uint16(100)
	type frame struct {
		dts, pts int64
		key      bool
	}
	// GOPs of 12 frames at 30 fps in decoding order, with B-frames: the
	// display index of each, PTS = display index × 33 ms + 33 ms.
	var frames []frame
	for gop := range 4 {
		base := int64(gop * 12 * 33)
		for k, d := range []int64{0, 3, 1, 2, 6, 4, 5, 9, 7, 8, 11, 10} {
			frames = append(frames, frame{base + int64(k)*33, base + d*33 + 33, k == 0})
		}
	}
	sendTime := func(f frame) time.Time { return t0.Add(time.Duration(f.dts) * time.Millisecond) }
	for _, f := range frames {
		vcl := uint32(0)
		if f.key {
			vcl = 1 + 2*1198 + 10 // the slice's header byte and fragments, see the packets below
		}
		l.add(sentFrame{dts: f.dts, pts: f.pts, sent: sendTime(f), key: f.key, vcl: vcl})
	}
	send := func(b []byte) { v.packet(b, &a, nowFn) }
	for i, f := range frames {
		ts := uint32(offset + 90*f.pts)
		now = sendTime(f).Add(20 * time.Millisecond)
		if f.key {
			send(rtpPacket(seq, ts, false, []byte{0x67, 1, 2}, 0)) // SPS
			seq++
			send(rtpPacket(seq, ts, false, append([]byte{0x7c, 0x85}, bytes.Repeat([]byte{1}, 1198)...), 0))
			seq++
			send(rtpPacket(seq, ts, false, append([]byte{0x7c, 0x05}, bytes.Repeat([]byte{1}, 1198)...), 0))
			seq++
			send(rtpPacket(seq, ts, true, append([]byte{0x7c, 0x45}, bytes.Repeat([]byte{1}, 10)...), 0))
			seq++
			continue
		}
		if i == 20 { // its only packet is lost: a frame missing in the timeline
			seq++
			continue
		}
		send(rtpPacket(seq, ts, true, []byte{0x41, 1, 2, 3}, 0))
		seq++
	}
	a.finish(now)
	assert.True(t, v.started)
	assert.True(t, v.mapped)
	assert.True(t, v.bySize)
	assert.Zero(t, v.unmatched)
	assert.EqualValues(t, len(frames)-1, a.videoFrames)
	assert.EqualValues(t, 1, a.dropped)
	assert.EqualValues(t, 1, v.seq.lost())
	assert.Zero(t, a.discont)
	assert.EqualValues(t, 33, a.interval)
	assert.Zero(t, v.incomplete) // the lost packet was a whole frame
	require.Len(t, v.backlog, 4)
	require.Len(t, v.latencies, len(frames)-1-4)
	for _, d := range append(v.latencies, v.backlog...) {
		assert.Equal(t, 20*time.Millisecond, d)
	}
	assert.Equal(t, 20*time.Millisecond, v.first)
}

func TestVideoRxIncompleteFrames(t *testing.T) {
	var v videoRx
	var a accounting
	now := time.Now()
	nowFn := func() time.Time { return now }
	send := func(b []byte) { v.packet(b, &a, nowFn) }
	// Keyframe, complete.
	send(rtpPacket(1, 0, false, []byte{0x7c, 0x85, 1}, 0))
	send(rtpPacket(2, 0, true, []byte{0x7c, 0x45, 1}, 0))
	// A frame whose middle fragment is lost.
	send(rtpPacket(3, 3000, false, []byte{0x5c, 0x81, 1}, 0))
	send(rtpPacket(5, 3000, true, []byte{0x5c, 0x41, 1}, 0))
	// A frame whose marker packet is lost, then one whose first fragment is.
	send(rtpPacket(6, 6000, false, []byte{0x5c, 0x81, 1}, 0))
	send(rtpPacket(8, 9000, false, []byte{0x5c, 0x01, 1}, 0))
	send(rtpPacket(9, 9000, true, []byte{0x5c, 0x41, 1}, 0))
	// Complete again.
	send(rtpPacket(10, 12000, true, []byte{0x41, 1}, 0))
	assert.EqualValues(t, 3, v.incomplete)
	assert.EqualValues(t, 2, a.videoFrames)
	assert.EqualValues(t, 2, v.seq.lost())
	assert.EqualValues(t, 7*3+2, v.bytes)
}

// TestRunWHEPRefused plays a WHEP endpoint that refuses the offer: every
// player fails with the server's error code, and nothing is left running.
func TestRunWHEPRefused(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.Header.Get("Content-Type") == "application/sdp" {
			body, _ := io.ReadAll(r.Body)
			if bytes.Contains(body, []byte("m=video")) && bytes.Contains(body, []byte("H264")) && bytes.Contains(body, []byte("opus")) {
				posts.Add(1)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":{"code":"stream_not_found","message":"no live stream"}}`)
	}))
	defer srv.Close()
	r, err := Run(context.Background(), Config{URLs: []string{srv.URL + "/live/x/whep"}, Players: 3, Duration: time.Second, Ramp: 0})
	require.NoError(t, err)
	assert.Equal(t, 3, r.Failed)
	assert.EqualValues(t, 3, posts.Load())
	require.Len(t, r.Errors, 1)
	assert.Equal(t, ErrorCount{Error: "connect: HTTP 404 Not Found (stream_not_found)", Count: 3}, r.Errors[0])
	require.NotNil(t, r.WebRTC)
	assert.Equal(t, 3, r.WebRTC.Players)
	assert.Zero(t, r.WebRTC.Deleted)
	var text bytes.Buffer
	require.NoError(t, WriteText(&text, &r.Summary))
	assert.Contains(t, text.String(), "latency     - (measured with the bench's own publisher")
}

func TestWHIPPublishURL(t *testing.T) {
	assert.True(t, isWHIPURL("http://127.0.0.1:8080/live/cam1/whip"))
	assert.True(t, isWHIPURL("https://h/live/s{i}/whip"))
	assert.False(t, isWHIPURL("http://h/live/cam1/whep"))
	assert.False(t, isWHIPURL("rtmp://h/live/whip"))
	cfg := Config{Publishers: 1, PublishFile: "x.flv", PublishURL: "http://h/live/cam1", Duration: time.Second}
	assert.ErrorContains(t, cfg.validate(), "or http://host:port/app/stream/whip")
	cfg.PublishURL = "http://h/live/cam1/whip"
	assert.NoError(t, cfg.validate())
}

func TestAnnexB(t *testing.T) {
	params := []byte{0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2}
	// Keyframe without parameter sets: they come first.
	body := []byte{0x17, 1, 0, 0, 0, 0, 3, 0x65, 1, 2}
	assert.Equal(t, append(append([]byte{}, params...), 0, 0, 0, 1, 0x65, 1, 2), annexB(nil, body, 2, true, params))
	// Keyframe with its own.
	body = []byte{0x17, 1, 0, 0, 0, 0, 2, 0x67, 9, 0, 2, 0x65, 1}
	assert.Equal(t, []byte{0, 0, 0, 1, 0x67, 9, 0, 0, 0, 1, 0x65, 1}, annexB(nil, body, 2, true, params))
	// Inter frame.
	body = []byte{0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41}
	assert.Equal(t, []byte{0, 0, 0, 1, 0x41}, annexB(nil, body, 4, false, params))
}
