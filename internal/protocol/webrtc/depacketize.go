package webrtc

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/quasipaa/quasipaa/internal/codec/opus"
	"github.com/quasipaa/quasipaa/internal/media"
)

// DepacketizerOptions configure a Depacketizer.
type DepacketizerOptions struct {
	// Codec is the codec of the RTP stream.
	Codec media.Codec
	// ClockRate is the RTP clock rate (default: the codec's, see ClockRate).
	ClockRate uint32
	// MaxDelay is how long a missing packet is waited for (reordered or
	// retransmitted after a NACK) before it counts as lost: the latency the
	// jitter buffer may add (default 200 ms for video, 60 ms for audio).
	MaxDelay time.Duration
	// Epoch is the wall-clock instant of stream time 0: the first frame is
	// placed at its arrival time after Epoch, which keeps the tracks of a
	// session in step. Zero places the first frame at 0.
	Epoch time.Time
	// OnKeyframeNeeded is called, at most once per KeyframeInterval, while
	// the video cannot go on without a keyframe (start, loss, bad data): the
	// caller sends a PLI. It is called from Push.
	OnKeyframeNeeded func()
	// KeyframeInterval is the minimum time between two OnKeyframeNeeded
	// calls (default 1 s).
	KeyframeInterval time.Duration
}

// DepacketizerStats count what a Depacketizer saw.
type DepacketizerStats struct {
	Packets uint64 // RTP packets pushed
	Invalid uint64 // packets that did not parse as RTP
	Lost    uint64 // sequence numbers never received
	Late    uint64 // packets that arrived after their gap was given up
	Frames  uint64 // frames emitted
	Dropped uint64 // frames dropped: incomplete, malformed, or waiting for a keyframe
	Resets  uint64 // SSRC changes and timestamp jumps
}

// Depacketizer turns the RTP packets of one received track into media
// frames: it reorders them (a jitter buffer of bounded latency), reassembles
// each frame from its packets, drops frames damaged by loss, waits for a
// keyframe after a loss (asking for one), and describes the track from the
// parameters found in band (SPS/PPS, sequence header, keyframe header).
//
// Frames get DTS = PTS from the RTP timestamp, unwrapped and converted with
// the clock rate, relative to the first packet. It is not safe for
// concurrent use.
type Depacketizer struct {
	opts  DepacketizerOptions
	video bool
	h     payloadHandler
	jb    *jitterBuffer
	track *media.Track
	stats DepacketizerStats

	ssrc     uint32
	haveSSRC bool

	// Timestamp unwrapping: ext is the unwrapped timestamp of the last
	// packet; origin is the ext at stream time base.
	tsInit    bool
	lastTS    uint32
	ext       int64
	origin    int64
	base      time.Duration
	lastTime  time.Duration
	lastDTS   time.Duration
	frameGap  time.Duration
	haveFrame bool

	// The frame being assembled.
	cur struct {
		active  bool
		ts      uint32
		time    time.Duration
		arrival time.Time
		broken  bool
		data    []byte
	}

	needKey     bool
	lastRequest time.Time

	emit func(*media.Frame, *media.Track)
}

// maxJump is the largest timestamp change between two frames taken as
// continuous; a larger one (an encoder restart) rebases the timeline.
const maxJump = 10 * time.Second

// NewDepacketizer returns a depacketizer for one RTP stream.
func NewDepacketizer(opts DepacketizerOptions) (*Depacketizer, error) {
	h, err := newPayloadHandler(opts.Codec)
	if err != nil {
		return nil, err
	}
	if opts.ClockRate == 0 {
		opts.ClockRate = ClockRate(opts.Codec)
	}
	video := opts.Codec.IsVideo()
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 60 * time.Millisecond
		if video {
			opts.MaxDelay = 200 * time.Millisecond
		}
	}
	if opts.KeyframeInterval <= 0 {
		opts.KeyframeInterval = time.Second
	}
	size := 64
	if video {
		size = 512
	}
	d := &Depacketizer{opts: opts, video: video, h: h, jb: newJitterBuffer(size, opts.MaxDelay), needKey: video}
	if opts.Codec == media.CodecOpus {
		head, err := opus.BuildHead(2, 0, OpusClockRate)
		if err != nil {
			return nil, err
		}
		if d.track, err = opus.TrackFromHead(head); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Track returns the track as last described in band, or nil while unknown
// (video before its first keyframe with parameters).
func (d *Depacketizer) Track() *media.Track { return d.track }

// Stats returns the depacketizer's counters.
func (d *Depacketizer) Stats() DepacketizerStats {
	s := d.stats
	s.Lost, s.Late = d.jb.lost, d.jb.late
	return s
}

// Push takes one RTP packet as received (raw is copied) and calls emit with
// every frame it completes and the track the frame belongs to; a new track
// pointer means the parameters changed. The frame is the caller's. Push
// returns an error only when raw is not an RTP packet.
func (d *Depacketizer) Push(raw []byte, now time.Time, emit func(*media.Frame, *media.Track)) error {
	d.stats.Packets++
	if len(raw) > maxPacketSize*4 {
		d.stats.Invalid++
		return errors.New("webrtc: RTP packet too large")
	}
	p, err := newBufferedPacket(raw, now)
	if err != nil {
		d.stats.Invalid++
		return err
	}
	d.emit = emit
	defer func() { d.emit = nil }()
	if !d.haveSSRC || p.pkt.SSRC != d.ssrc {
		if d.haveSSRC {
			// A new stream from the same sender (encoder restart): drain the
			// old one and continue the timeline.
			d.jb.flush(d.onPacket)
			d.finish()
			d.jb.reset()
			d.rebase()
		}
		d.ssrc, d.haveSSRC = p.pkt.SSRC, true
	}
	d.jb.push(p, d.onPacket)
	return nil
}

// Flush completes what is buffered, giving up on every gap (the stream ended).
func (d *Depacketizer) Flush(emit func(*media.Frame, *media.Track)) {
	d.emit = emit
	d.jb.flush(d.onPacket)
	d.finish()
	d.emit = nil
}

// rebase makes the next packet continue the timeline one frame after the last.
func (d *Depacketizer) rebase() {
	d.stats.Resets++
	d.tsInit = false
	if d.haveFrame {
		d.base = d.lastTime + d.frameGap
	}
	if d.video {
		d.needKey = true
	}
}

// timeOf unwraps an RTP timestamp into stream time.
func (d *Depacketizer) timeOf(ts uint32, arrival time.Time) time.Duration {
	if !d.tsInit {
		d.tsInit, d.lastTS, d.ext, d.origin = true, ts, 0, 0
		if !d.haveFrame && !d.opts.Epoch.IsZero() {
			d.base = max(arrival.Sub(d.opts.Epoch), 0)
		}
		return d.base
	}
	d.ext += int64(int32(ts - d.lastTS))
	d.lastTS = ts
	return d.base + ticksToDuration(d.ext-d.origin, d.opts.ClockRate)
}

// ticksToDuration converts clock ticks without overflowing for long streams.
func ticksToDuration(ticks int64, clock uint32) time.Duration {
	c := int64(clock)
	return time.Duration(ticks/c)*time.Second + time.Duration(ticks%c)*time.Second/time.Duration(c)
}

// onPacket takes the packets in order from the jitter buffer.
func (d *Depacketizer) onPacket(p *bufferedPacket, lost bool) {
	pkt := &p.pkt
	if lost {
		if d.cur.active {
			d.cur.broken = true
		}
		if d.video {
			d.needKey = true
		}
	}
	if d.cur.active && pkt.Timestamp != d.cur.ts {
		d.finish()
	}
	if len(pkt.Payload) == 0 {
		return // padding (bandwidth probing)
	}
	if !d.cur.active {
		t := d.timeOf(pkt.Timestamp, p.arrival)
		if d.haveFrame && (t-d.lastTime > maxJump || d.lastTime-t > maxJump) {
			d.rebase()
			t = d.timeOf(pkt.Timestamp, p.arrival)
		}
		d.cur.active, d.cur.ts, d.cur.time, d.cur.arrival, d.cur.broken = true, pkt.Timestamp, t, p.arrival, false
		d.cur.data = d.cur.data[:0]
		d.h.reset()
		var err error
		if d.cur.data, err = d.h.append(d.cur.data, pkt.Payload, true); err != nil {
			d.cur.broken = true
		}
	} else if !d.cur.broken {
		var err error
		if d.cur.data, err = d.h.append(d.cur.data, pkt.Payload, false); err != nil {
			d.cur.broken = true
		}
	}
	if !d.video || pkt.Marker {
		d.finish()
	}
}

// finish completes the frame being assembled.
func (d *Depacketizer) finish() {
	if !d.cur.active {
		return
	}
	d.cur.active = false
	t := d.cur.time
	if d.haveFrame && t != d.lastTime {
		if gap := t - d.lastTime; gap > 0 && gap < time.Second {
			d.frameGap = gap
		}
	}
	if !d.haveFrame {
		d.frameGap = 20 * time.Millisecond
	}
	d.haveFrame, d.lastTime = true, t
	data := d.cur.data
	if d.cur.broken || !d.h.complete() || len(data) == 0 {
		d.drop()
		return
	}
	if d.video {
		key := d.h.keyframe(data)
		if key {
			track, err := d.h.track(data, d.track)
			if err == nil && track != nil {
				d.track = track
			}
		}
		if d.track == nil || d.needKey && !key {
			d.drop()
			return
		}
		if key {
			d.needKey = false
		}
		d.deliver(data, t, key)
		return
	}
	d.deliver(data, t, true)
}

func (d *Depacketizer) drop() {
	d.stats.Dropped++
	if d.video {
		d.needKey = true
		d.requestKeyframe()
	}
}

func (d *Depacketizer) requestKeyframe() {
	now := d.cur.arrival
	if d.opts.OnKeyframeNeeded == nil || !d.lastRequest.IsZero() && now.Sub(d.lastRequest) < d.opts.KeyframeInterval {
		return
	}
	d.lastRequest = now
	d.opts.OnKeyframeNeeded()
}

func (d *Depacketizer) deliver(data []byte, pts time.Duration, key bool) {
	// DTS never goes back: B-frames (which WebRTC senders do not use) keep
	// their PTS and get the previous DTS.
	dts := max(pts, d.lastDTS)
	d.lastDTS = dts
	d.stats.Frames++
	if d.emit != nil {
		d.emit(&media.Frame{DTS: dts, PTS: pts, Key: key, Payload: bytes.Clone(data), Ingest: d.cur.arrival}, d.track)
	}
}

// payloadHandler reassembles one codec's frames from RTP payloads and reads
// what the frames tell about the track.
type payloadHandler interface {
	// reset forgets any partial state; called at the start of each frame.
	reset()
	// append adds one RTP payload of the frame to dst in the canonical
	// form; first marks the frame's first packet.
	append(dst, payload []byte, first bool) ([]byte, error)
	// complete reports whether the frame assembled ends cleanly.
	complete() bool
	// keyframe reports whether a frame is a random access point.
	keyframe(frame []byte) bool
	// track describes the track from a keyframe; it returns cur when nothing
	// changed, and nil when the keyframe lacks the parameters.
	track(frame []byte, cur *media.Track) (*media.Track, error)
}

func newPayloadHandler(c media.Codec) (payloadHandler, error) {
	switch c {
	case media.CodecH264:
		return &h264Handler{fuStart: -1}, nil
	case media.CodecH265:
		return &h265Handler{fuStart: -1}, nil
	case media.CodecVP8:
		return &vp8Handler{}, nil
	case media.CodecVP9:
		return &vp9Handler{}, nil
	case media.CodecAV1:
		return &av1Handler{}, nil
	case media.CodecOpus:
		return opusHandler{}, nil
	}
	return nil, fmt.Errorf("webrtc: no depacketizer for codec %s", c)
}

// Errors of the payload handlers.
var (
	errShortPayload  = errors.New("webrtc: RTP payload too short")
	errFragmentOrder = errors.New("webrtc: fragment out of order")
	errUnsupported   = errors.New("webrtc: unsupported RTP payload structure")
	errFrameStart    = errors.New("webrtc: frame does not start at its first packet")
)

// appendNALU appends a NAL unit with its 4-byte length.
func appendNALU(dst, nalu []byte) []byte {
	n := len(nalu)
	dst = append(dst, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	return append(dst, nalu...)
}

// putLength writes the 4-byte length of the NAL unit started at start.
func putLength(dst []byte, start int) {
	n := len(dst) - start - 4
	dst[start], dst[start+1], dst[start+2], dst[start+3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
}

type opusHandler struct{}

func (opusHandler) reset()               {}
func (opusHandler) complete() bool       { return true }
func (opusHandler) keyframe([]byte) bool { return true }
func (opusHandler) append(dst, payload []byte, _ bool) ([]byte, error) {
	return append(dst, payload...), nil
}
func (opusHandler) track(_ []byte, cur *media.Track) (*media.Track, error) { return cur, nil }
