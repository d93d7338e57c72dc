package bench

import (
	"encoding/binary"
	"time"
)

// This file accounts the RTP packets a WHEP player receives: sequence
// numbers (loss, reordering, duplicates), H.264 frames (assembly by marker
// bit and timestamp, keyframes, completeness) and each frame's latency from
// the publisher's send log. Nothing is decoded and nothing is allocated per
// packet.

// parseRTP reads an RTP packet's marker bit, sequence number and timestamp,
// and returns its payload (after CSRCs and header extension, without
// padding); ok is false for a malformed packet.
func parseRTP(b []byte) (marker bool, seq uint16, ts uint32, payload []byte, ok bool) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return false, 0, 0, nil, false
	}
	off := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		if len(b) < off+4 {
			return false, 0, 0, nil, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	}
	end := len(b)
	if b[0]&0x20 != 0 {
		end -= int(b[end-1])
	}
	if off > end {
		return false, 0, 0, nil, false
	}
	return b[1]&0x80 != 0, binary.BigEndian.Uint16(b[2:]), binary.BigEndian.Uint32(b[4:]), b[off:end], true
}

// seqWindow is how many recent sequence numbers a seqTracker remembers, to
// tell a late packet (reordered or retransmitted) from a duplicate.
const seqWindow = 256

// seqTracker counts the packets of one RTP stream by sequence number, like
// an RTCP receiver report: expected is the extended highest sequence number
// minus the first plus one, lost is expected minus received.
type seqTracker struct {
	started  bool
	first    int64 // extended sequence numbers
	highest  int64
	received uint64 // distinct packets
	late     uint64 // packets older than the highest, received after it
	dups     uint64
	seen     [seqWindow / 64]uint64 // bit e % seqWindow for the last seqWindow numbers
}

func (s *seqTracker) bit(e int64) (word int, mask uint64) {
	i := int(uint64(e) % seqWindow)
	return i / 64, 1 << (i % 64)
}

// add accounts one packet. newest reports that it is the highest sequence
// number so far, gap how many numbers it skipped; an older packet (late or
// duplicate) only counts for loss.
func (s *seqTracker) add(seq uint16) (gap int64, newest bool) {
	if !s.started {
		s.started = true
		s.first, s.highest, s.received = int64(seq), int64(seq), 1
		w, m := s.bit(int64(seq))
		s.seen[w] |= m
		return 0, true
	}
	ext := s.highest + int64(int16(seq-uint16(s.highest)))
	if ext > s.highest {
		for e := s.highest + 1; e < ext && e <= s.highest+seqWindow; e++ {
			w, m := s.bit(e)
			s.seen[w] &^= m
		}
		gap = ext - s.highest - 1
		s.highest = ext
		w, m := s.bit(ext)
		s.seen[w] |= m
		s.received++
		return gap, true
	}
	if s.highest-ext >= seqWindow {
		s.late++ // too old to tell from a duplicate: taken as late
		s.received++
		s.first = min(s.first, ext)
		return 0, false
	}
	w, m := s.bit(ext)
	if s.seen[w]&m != 0 {
		s.dups++
		return 0, false
	}
	s.seen[w] |= m
	s.late++
	s.received++
	s.first = min(s.first, ext)
	return 0, false
}

// expected is the number of packets the sequence numbers span.
func (s *seqTracker) expected() uint64 {
	if !s.started {
		return 0
	}
	return uint64(s.highest - s.first + 1)
}

// lost is expected minus received (never negative).
func (s *seqTracker) lost() uint64 {
	if e := s.expected(); e > s.received {
		return e - s.received
	}
	return 0
}

// h264Payload tells, for one RTP payload of H.264 (RFC 6184: single NAL
// unit, STAP-A or FU-A), whether it carries an IDR slice, how many bytes of
// slice NAL units (types 1 to 5, NAL header included) it carries, and for
// FU-A its start and end bits.
func h264Payload(p []byte) (idr bool, vcl int, fu, start, end bool) {
	if len(p) == 0 {
		return false, 0, false, false, false
	}
	switch t := p[0] & 0x1f; {
	case t >= 1 && t <= 5:
		return t == 5, len(p), false, false, false
	case t == 24: // STAP-A
		for q := p[1:]; len(q) >= 3; {
			n := int(q[0])<<8 | int(q[1])
			q = q[2:]
			if n == 0 || n > len(q) {
				break
			}
			if nt := q[0] & 0x1f; nt >= 1 && nt <= 5 {
				vcl += n
				idr = idr || nt == 5
			}
			q = q[n:]
		}
		return idr, vcl, false, false, false
	case t == 28: // FU-A
		if len(p) < 2 {
			return false, 0, true, false, false
		}
		start, end = p[1]&0x80 != 0, p[1]&0x40 != 0
		if nt := p[1] & 0x1f; nt >= 1 && nt <= 5 {
			vcl = len(p) - 2
			if start {
				vcl++ // the NAL header the fragments share
			}
			idr = nt == 5
		}
		return idr, vcl, true, start, end
	}
	return false, 0, false, false, false
}

// videoRx assembles the H.264 frames of a WHEP player's video track from
// its RTP packets, in arrival order, and accounts them: complete frames go
// to the player's accounting (frames, drops, stalls, startup), with the
// publisher's DTS when the send log knows the frame, and their latency is
// recorded. It runs on the video track's goroutine.
type videoRx struct {
	seq     seqTracker
	packets uint64
	invalid uint64
	bytes   uint64

	// The frame being assembled.
	active bool
	ts     uint32
	broken bool // a packet of it is missing or out of place
	key    bool
	vcl    int
	inFU   bool // inside a fragmented NAL unit

	// RTP timestamp unwrapping.
	tsInit  bool
	lastTS  uint32
	extTS   int64
	firstTS int64

	started    bool // a complete keyframe was received
	incomplete uint64
	beforeKey  uint64 // complete frames received before the first keyframe

	// The mapping of RTP timestamps to the publisher's PTS (ms): RTP
	// timestamp = offset + 90 × PTS.
	sent      *sendLog
	mapped    bool
	bySize    bool
	offset    int64
	unmatched uint64
	lastDTS   uint32
	first     time.Duration // latency of the first keyframe
	// liveSince is when the player connected: frames the publisher sent
	// before are the backlog the server starts a player with (from its
	// cached keyframe), the others are live.
	liveSince time.Time
	latencies []time.Duration // live frames
	backlog   []time.Duration // backlog frames
}

// packet accounts one received RTP packet (the raw packet, header
// included); nowFn tells the time a frame completes.
func (v *videoRx) packet(b []byte, a *accounting, nowFn func() time.Time) {
	marker, seq, ts, payload, ok := parseRTP(b)
	if !ok {
		v.invalid++
		return
	}
	v.packets++
	v.bytes += uint64(len(payload))
	a.c.bytes.Add(uint64(len(payload)))
	gap, newest := v.seq.add(seq)
	if !newest {
		return // late (retransmitted or reordered) or duplicate: loss accounting only
	}
	if v.active && ts != v.ts {
		v.finish(false, a, nowFn) // its last packet (marker) never came
	}
	// Packets missing between two frames are taken as whole frames lost
	// (the timeline shows them); a frame that misses the start of a NAL
	// unit, or a packet after its first, is incomplete.
	if !v.active {
		v.active, v.ts, v.broken, v.key, v.vcl, v.inFU = true, ts, false, false, 0, false
	} else if gap > 0 {
		v.broken = true
	}
	idr, vcl, fu, start, end := h264Payload(payload)
	switch {
	case fu && start:
		v.broken = v.broken || v.inFU
		v.inFU = !end
	case fu:
		v.broken = v.broken || !v.inFU
		v.inFU = !end
	default:
		v.broken = v.broken || v.inFU
		v.inFU = false
	}
	v.key = v.key || idr
	v.vcl += vcl
	if marker {
		v.finish(true, a, nowFn)
	}
}

// unwrap extends an RTP timestamp (frames come in decoding order, each
// within 2^31 ticks of the previous one).
func (v *videoRx) unwrap(ts uint32) int64 {
	if !v.tsInit {
		v.tsInit, v.lastTS, v.extTS, v.firstTS = true, ts, int64(ts), int64(ts)
		return v.extTS
	}
	v.extTS += int64(int32(ts - v.lastTS))
	v.lastTS = ts
	return v.extTS
}

// finish ends the frame being assembled; marker tells whether its last
// packet came.
func (v *videoRx) finish(marker bool, a *accounting, nowFn func() time.Time) {
	v.active = false
	ext := v.unwrap(v.ts)
	if !marker || v.broken || v.inFU {
		v.incomplete++
		return
	}
	now := nowFn()
	if !v.started {
		if !v.key {
			v.beforeKey++
			return
		}
		v.started = true
		if v.sent != nil {
			if f, bySize, ok := v.sent.findKey(uint32(v.vcl), now); ok {
				v.mapped, v.bySize, v.offset = true, bySize, ext-90*f.pts
				v.first = now.Sub(f.sent)
			}
		}
	}
	dts := uint32((ext - v.firstTS) / 90) // the PTS, without a send log
	if v.mapped {
		dts = v.lastDTS
		if f, ok := v.sent.lookup(floorDiv(ext-v.offset+45, 90)); ok {
			dts = uint32(f.dts)
			if f.sent.Before(v.liveSince) {
				v.backlog = append(v.backlog, now.Sub(f.sent))
			} else {
				v.latencies = append(v.latencies, now.Sub(f.sent))
			}
		} else {
			v.unmatched++
		}
		v.lastDTS = dts
	}
	a.videoFrame(dts, now)
}

// floorDiv divides rounding towards minus infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// audioRx accounts a WHEP player's audio (Opus) packets: one frame each.
type audioRx struct {
	seq     seqTracker
	packets uint64
	invalid uint64
	bytes   uint64
	frames  uint64
}

func (r *audioRx) packet(b []byte, a *accounting) {
	_, seq, _, payload, ok := parseRTP(b)
	if !ok {
		r.invalid++
		return
	}
	r.packets++
	r.bytes += uint64(len(payload))
	a.c.bytes.Add(uint64(len(payload)))
	if _, newest := r.seq.add(seq); newest && len(payload) > 0 {
		r.frames++
		a.c.audio.Store(r.frames)
	}
}
