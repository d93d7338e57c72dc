package rtmp

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// flashC0C1 builds a C0C1 the way Flash Player and ffmpeg do: non-zero
// version and a digest signed with the player key in the block at base.
func flashC0C1(base int, seed byte) []byte {
	b := make([]byte, 1+handshakeSize)
	b[0] = rtmpVersion
	c1 := b[1:]
	for i := range c1 {
		c1[i] = byte(i)*13 + seed
	}
	copy(c1[4:8], []byte{9, 0, 124, 2})
	pos := digestPos(c1, base)
	copy(c1[pos:], imprintDigest(c1, pos, genuineFPKey[:30]))
	return b
}

func TestSimpleHandshake(t *testing.T) {
	c0c1 := make([]byte, 1+handshakeSize)
	c0c1[0] = 3
	fillRandom(c0c1[9:])
	out, complexHS, err := serverResponse(c0c1, 42)
	require.NoError(t, err)
	assert.False(t, complexHS)
	require.Len(t, out, 1+2*handshakeSize)
	assert.Equal(t, byte(3), out[0])
	s1 := out[1 : 1+handshakeSize]
	assert.Equal(t, uint32(42), binary.BigEndian.Uint32(s1))
	assert.Equal(t, []byte{0, 0, 0, 0}, s1[4:8], "simple S1 has a zero version")
	assert.Equal(t, c0c1[1:], out[1+handshakeSize:], "S2 echoes C1")
}

func TestComplexHandshake(t *testing.T) {
	for _, base := range []int{8, 772} {
		c0c1 := flashC0C1(base, byte(base))
		c1 := c0c1[1:]
		cpos := findDigest(c1, genuineFPKey[:30])
		require.GreaterOrEqual(t, cpos, 0)
		out, complexHS, err := serverResponse(c0c1, 0)
		require.NoError(t, err)
		assert.True(t, complexHS, "scheme base %d", base)
		s1 := out[1 : 1+handshakeSize]
		s2 := out[1+handshakeSize:]
		assert.NotEqual(t, []byte{0, 0, 0, 0}, s1[4:8])

		// Validate S1 as ffmpeg's player does: digest with the server key,
		// found at 772 or 8.
		spos := findDigest(s1, genuineFMSKey[:36])
		require.GreaterOrEqual(t, spos, 0, "S1 digest not found")
		// Validate S2: signed with HMAC(serverKey, clientDigest).
		key := hmacSHA256(genuineFMSKey, c1[cpos:cpos+digestLen])
		sig := hmacSHA256(key, s2[:handshakeSize-digestLen])
		assert.True(t, hmac.Equal(sig, s2[handshakeSize-digestLen:]), "S2 signature")
	}
}

func TestComplexHandshakeBadDigestFallsBack(t *testing.T) {
	c0c1 := flashC0C1(772, 1)
	c0c1[1+1000] ^= 0xff // corrupt
	c0c1[1+100] ^= 0xff
	out, complexHS, err := serverResponse(c0c1, 0)
	require.NoError(t, err)
	assert.False(t, complexHS)
	assert.Equal(t, c0c1[1:], out[1+handshakeSize:])
}

func TestHandshakeErrors(t *testing.T) {
	_, _, err := serverResponse([]byte{3, 1, 2}, 0)
	assert.ErrorIs(t, err, ErrHandshake)
	bad := make([]byte, 1+handshakeSize)
	bad[0] = 6
	_, _, err = serverResponse(bad, 0)
	assert.ErrorIs(t, err, ErrHandshake)

	var w bytes.Buffer
	_, err = serverHandshake(bufio.NewReader(bytes.NewReader(nil)), &w, 0)
	assert.ErrorIs(t, err, ErrHandshake)
	_, err = serverHandshake(bufio.NewReader(bytes.NewReader([]byte{3, 0, 0})), &w, 0)
	assert.ErrorIs(t, err, ErrHandshake)
	// C0C1 complete, C2 missing
	good := append([]byte{3}, make([]byte, handshakeSize)...)
	_, err = serverHandshake(bufio.NewReader(bytes.NewReader(good)), &w, 0)
	assert.ErrorIs(t, err, ErrHandshake)
	// full
	full := append(good, make([]byte, handshakeSize)...)
	_, err = serverHandshake(bufio.NewReader(bytes.NewReader(full)), &w, 0)
	assert.NoError(t, err)
}

func FuzzHandshakeC0C1(f *testing.F) {
	f.Add(flashC0C1(8, 0))
	f.Add(flashC0C1(772, 5))
	simple := make([]byte, 1+handshakeSize)
	simple[0] = 3
	f.Add(simple)
	f.Add([]byte{3, 0, 0, 0})
	f.Add([]byte{6})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, complexHS, err := serverResponse(b, 1)
		if err != nil {
			return
		}
		if len(out) != 1+2*handshakeSize {
			t.Fatalf("response of %d bytes", len(out))
		}
		if !complexHS && !bytes.Equal(out[1+handshakeSize:], b[1:]) {
			t.Fatal("simple S2 does not echo C1")
		}
		// The streaming form must agree and never hang on any input.
		var w bytes.Buffer
		_, _ = serverHandshake(bufio.NewReader(bytes.NewReader(b)), &w, 1)
	})
}
