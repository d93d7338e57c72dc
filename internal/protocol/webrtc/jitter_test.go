package webrtc

import (
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type released struct {
	seq  uint16
	lost bool
}

func jbPush(t *testing.T, j *jitterBuffer, seq uint16, at time.Time, out *[]released) {
	t.Helper()
	b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq}, Payload: []byte{1}}).Marshal()
	require.NoError(t, err)
	p, err := newBufferedPacket(b, at)
	require.NoError(t, err)
	j.push(p, func(p *bufferedPacket, lost bool) {
		*out = append(*out, released{p.pkt.SequenceNumber, lost})
	})
}

func seqs(r []released) []uint16 {
	out := make([]uint16, len(r))
	for i, x := range r {
		out[i] = x.seq
	}
	return out
}

func TestJitterBufferReorders(t *testing.T) {
	j := newJitterBuffer(64, 100*time.Millisecond)
	var out []released
	t0 := time.Unix(0, 0)
	for i, s := range []uint16{65534, 0, 65535, 1, 3, 3, 2, 0} {
		jbPush(t, j, s, t0.Add(time.Duration(i)*time.Millisecond), &out)
	}
	assert.Equal(t, []uint16{65534, 65535, 0, 1, 2, 3}, seqs(out))
	for _, r := range out {
		assert.False(t, r.lost)
	}
	assert.Equal(t, uint64(1), j.dups)
	assert.Equal(t, uint64(1), j.late)
}

func TestJitterBufferGivesUpOnGap(t *testing.T) {
	j := newJitterBuffer(64, 100*time.Millisecond)
	var out []released
	t0 := time.Unix(0, 0)
	jbPush(t, j, 10, t0, &out)
	jbPush(t, j, 12, t0.Add(10*time.Millisecond), &out)
	jbPush(t, j, 13, t0.Add(50*time.Millisecond), &out)
	assert.Equal(t, []uint16{10}, seqs(out), "waits for 11")
	jbPush(t, j, 14, t0.Add(111*time.Millisecond), &out)
	assert.Equal(t, []released{{10, false}, {12, true}, {13, false}, {14, false}}, out)
	assert.Equal(t, uint64(1), j.lost)
	// 11 arriving now is late.
	jbPush(t, j, 11, t0.Add(120*time.Millisecond), &out)
	assert.Len(t, out, 4)
	assert.Equal(t, uint64(1), j.late)
}

func TestJitterBufferBoundsHeldPackets(t *testing.T) {
	j := newJitterBuffer(16, time.Hour)
	var out []released
	t0 := time.Unix(0, 0)
	jbPush(t, j, 0, t0, &out)
	for s := uint16(2); s < 12; s++ {
		jbPush(t, j, s, t0, &out)
	}
	// Half the buffer held: the gap at 1 is given up without waiting.
	require.NotEmpty(t, out)
	assert.Equal(t, released{2, true}, out[1])
}

func TestJitterBufferJumps(t *testing.T) {
	j := newJitterBuffer(16, time.Hour)
	var out []released
	t0 := time.Unix(0, 0)
	jbPush(t, j, 100, t0, &out)
	jbPush(t, j, 102, t0, &out)
	jbPush(t, j, 5000, t0, &out) // far ahead: what is held goes, then 5000
	assert.Equal(t, []released{{100, false}, {102, true}, {5000, true}}, out)
	out = nil
	jbPush(t, j, 20, t0, &out) // far behind: a restart
	assert.Equal(t, []released{{20, true}}, out)
	out = nil
	jbPush(t, j, 21, t0, &out)
	assert.Equal(t, []released{{21, false}}, out)
}
