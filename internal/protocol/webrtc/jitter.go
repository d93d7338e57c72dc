package webrtc

import (
	"sync"
	"time"

	"github.com/pion/rtp"
)

// maxPacketSize bounds a received RTP packet (pion's receive MTU is 1460).
const maxPacketSize = 1500

// bufferedPacket is one received RTP packet held by the jitter buffer; pkt
// aliases buf.
type bufferedPacket struct {
	buf     []byte
	pkt     rtp.Packet
	arrival time.Time
}

var packetPool = sync.Pool{New: func() any { return &bufferedPacket{buf: make([]byte, 0, maxPacketSize)} }}

// newBufferedPacket copies raw into a pooled packet and parses it.
func newBufferedPacket(raw []byte, arrival time.Time) (*bufferedPacket, error) {
	p := packetPool.Get().(*bufferedPacket)
	p.buf = append(p.buf[:0], raw...)
	p.arrival = arrival
	if err := p.pkt.Unmarshal(p.buf); err != nil {
		p.release()
		return nil, err
	}
	return p, nil
}

func (p *bufferedPacket) release() {
	p.pkt = rtp.Packet{}
	if cap(p.buf) > 4*maxPacketSize {
		return
	}
	packetPool.Put(p)
}

// jitterBuffer puts the packets of one RTP stream back in sequence number
// order. A missing packet is waited for at most maxDelay (time for a
// reordered or retransmitted one to arrive), or until half the buffer is
// full, then counted as lost. Latency is bounded by maxDelay.
type jitterBuffer struct {
	slots    []*bufferedPacket
	mask     uint16
	next     uint16 // sequence number of the next packet to release
	count    int
	started  bool
	lossNext bool      // a gap precedes the next released packet
	gapSince time.Time // when the current gap at next was first seen
	maxDelay time.Duration

	lost, late, dups uint64
}

func newJitterBuffer(size int, maxDelay time.Duration) *jitterBuffer {
	n := 16
	for n < size && n < 1<<15 {
		n <<= 1
	}
	return &jitterBuffer{slots: make([]*bufferedPacket, n), mask: uint16(n - 1), maxDelay: maxDelay}
}

// push inserts p and releases, in order, every packet that is ready. The
// release callback owns the packet only during the call.
func (j *jitterBuffer) push(p *bufferedPacket, release func(p *bufferedPacket, lost bool)) {
	seq := p.pkt.SequenceNumber
	if !j.started {
		j.started, j.next = true, seq
	}
	diff := int(int16(seq - j.next))
	switch {
	case diff < -len(j.slots):
		// Far behind what was released: the sender restarted its numbering.
		j.flush(release)
		j.started, j.next, j.lossNext = true, seq, true
	case diff < 0:
		j.late++
		p.release()
		return
	case diff >= len(j.slots):
		// Far ahead: everything in between is lost.
		j.flush(release)
		j.next, j.lossNext = seq, true
		j.lost += uint64(diff)
	}
	slot := &j.slots[seq&j.mask]
	if *slot != nil {
		j.dups++
		p.release()
		return
	}
	*slot = p
	j.count++
	j.drain(p.arrival, release)
}

// drain releases the packets that are ready at now.
func (j *jitterBuffer) drain(now time.Time, release func(p *bufferedPacket, lost bool)) {
	for j.count > 0 {
		slot := &j.slots[j.next&j.mask]
		if p := *slot; p != nil {
			*slot = nil
			j.count--
			j.next++
			lost := j.lossNext
			j.lossNext, j.gapSince = false, time.Time{}
			release(p, lost)
			p.release()
			continue
		}
		if j.gapSince.IsZero() {
			j.gapSince = now
		}
		if now.Sub(j.gapSince) < j.maxDelay && j.count < len(j.slots)/2 {
			return
		}
		// Give up on the gap: skip to the next packet held.
		for j.slots[j.next&j.mask] == nil {
			j.next++
			j.lost++
		}
		j.lossNext, j.gapSince = true, time.Time{}
	}
}

// flush releases everything held, in order, marking the gaps.
func (j *jitterBuffer) flush(release func(p *bufferedPacket, lost bool)) {
	for j.count > 0 {
		slot := &j.slots[j.next&j.mask]
		if p := *slot; p != nil {
			*slot = nil
			j.count--
			lost := j.lossNext
			j.lossNext = false
			release(p, lost)
			p.release()
		} else {
			j.lossNext = true
			j.lost++
		}
		j.next++
	}
	j.gapSince = time.Time{}
}

// reset drops everything held and forgets the sequence numbering.
func (j *jitterBuffer) reset() {
	for i, p := range j.slots {
		if p != nil {
			p.release()
			j.slots[i] = nil
		}
	}
	j.count, j.started, j.lossNext, j.gapSince = 0, false, false, time.Time{}
}
