package rtmp

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
)

const (
	rtmpVersion   = 3
	handshakeSize = 1536
	digestLen     = 32
)

// The Flash handshake keys: a public text prefix plus a fixed 32-byte tail.
var (
	keyTail = []byte{
		0xf0, 0xee, 0xc2, 0x4a, 0x80, 0x68, 0xbe, 0xe8, 0x2e, 0x00, 0xd0, 0xd1,
		0x02, 0x9e, 0x7e, 0x57, 0x6e, 0xec, 0x5d, 0x2d, 0x29, 0x80, 0x6f, 0xab,
		0x93, 0xb8, 0xe6, 0x36, 0xcf, 0xeb, 0x31, 0xae,
	}
	// genuineFPKey is "Genuine Adobe Flash Player 001" + tail (62 bytes); the
	// client signs C1 with its first 30 bytes.
	genuineFPKey = append([]byte("Genuine Adobe Flash Player 001"), keyTail...)
	// genuineFMSKey is "Genuine Adobe Flash Media Server 001" + tail (68
	// bytes); the server signs S1 with its first 36 bytes.
	genuineFMSKey = append([]byte("Genuine Adobe Flash Media Server 001"), keyTail...)
)

// serverVersion is the version field of a complex-handshake S1 (FMS 3.5.1.1).
var serverVersion = [4]byte{0x04, 0x05, 0x00, 0x01}

func hmacSHA256(key []byte, parts ...[]byte) []byte {
	h := hmac.New(sha256.New, key)
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// digestPos returns where the 32-byte digest sits in a 1536-byte C1/S1 whose
// digest block starts at base (8 for scheme 1, 772 for scheme 0).
func digestPos(p []byte, base int) int {
	sum := int(p[base]) + int(p[base+1]) + int(p[base+2]) + int(p[base+3])
	return sum%728 + base + 4
}

// imprintDigest computes the digest of p (all bytes except the digest itself)
// with key.
func imprintDigest(p []byte, pos int, key []byte) []byte {
	return hmacSHA256(key, p[:pos], p[pos+digestLen:])
}

// findDigest returns the position of a valid client digest in c1, trying
// both schemes, or -1.
func findDigest(c1 []byte, key []byte) int {
	for _, base := range [...]int{772, 8} {
		pos := digestPos(c1, base)
		if hmac.Equal(imprintDigest(c1, pos, key), c1[pos:pos+digestLen]) {
			return pos
		}
	}
	return -1
}

func fillRandom(b []byte) {
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, rand.Uint64())
		b = b[8:]
	}
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
}

// serverResponse validates C0C1 (1537 bytes) and returns S0S1S2 (3073 bytes).
// A C1 with a non-zero version field and a valid Flash digest gets the
// matching complex S1/S2 (digests Flash-era clients and ffmpeg's player
// verify); anything else gets the simple handshake.
func serverResponse(c0c1 []byte, epoch uint32) ([]byte, bool, error) {
	if len(c0c1) != 1+handshakeSize {
		return nil, false, fmt.Errorf("%w: C0C1 of %d bytes", ErrHandshake, len(c0c1))
	}
	if c0c1[0] != rtmpVersion {
		return nil, false, fmt.Errorf("%w: version %d (RTMPE/unknown not supported)", ErrHandshake, c0c1[0])
	}
	c1 := c0c1[1:]
	out := make([]byte, 1+2*handshakeSize)
	out[0] = rtmpVersion
	s1 := out[1 : 1+handshakeSize]
	s2 := out[1+handshakeSize:]

	if binary.BigEndian.Uint32(c1[4:8]) != 0 {
		if pos := findDigest(c1, genuineFPKey[:30]); pos >= 0 {
			clientDigest := c1[pos : pos+digestLen]
			base := 8
			if pos >= 772+4 {
				base = 772
			}
			binary.BigEndian.PutUint32(s1[0:4], epoch)
			copy(s1[4:8], serverVersion[:])
			fillRandom(s1[8:])
			spos := digestPos(s1, base)
			copy(s1[spos:], imprintDigest(s1, spos, genuineFMSKey[:36]))

			fillRandom(s2)
			key := hmacSHA256(genuineFMSKey, clientDigest)
			copy(s2[handshakeSize-digestLen:], hmacSHA256(key, s2[:handshakeSize-digestLen]))
			return out, true, nil
		}
	}
	// Simple handshake: S1 = time, zero, random; S2 echoes C1.
	binary.BigEndian.PutUint32(s1[0:4], epoch)
	fillRandom(s1[8:])
	copy(s2, c1)
	return out, false, nil
}

// serverHandshake performs the server side of the handshake. Deadlines are
// the caller's business.
func serverHandshake(br *bufio.Reader, w io.Writer, epoch uint32) (complexHS bool, err error) {
	c0c1 := make([]byte, 1+handshakeSize)
	if _, err := io.ReadFull(br, c0c1[:1]); err != nil {
		return false, fmt.Errorf("%w: reading C0: %w", ErrHandshake, err)
	}
	if c0c1[0] != rtmpVersion {
		return false, fmt.Errorf("%w: version %d (RTMPE/unknown not supported)", ErrHandshake, c0c1[0])
	}
	if _, err := io.ReadFull(br, c0c1[1:]); err != nil {
		return false, fmt.Errorf("%w: reading C1: %w", ErrHandshake, err)
	}
	resp, complexHS, err := serverResponse(c0c1, epoch)
	if err != nil {
		return false, err
	}
	if _, err := w.Write(resp); err != nil {
		return false, fmt.Errorf("%w: writing S0S1S2: %w", ErrHandshake, err)
	}
	// C2 is not checked: clients fill it inconsistently.
	if _, err := br.Discard(handshakeSize); err != nil {
		return false, fmt.Errorf("%w: reading C2: %w", ErrHandshake, err)
	}
	return complexHS, nil
}

// clientHandshake performs a simple-handshake client side: C0C1, then all of
// S0S1S2, then C2 (reading S2 before writing C2 never deadlocks on
// unbuffered transports).
func clientHandshake(br *bufio.Reader, w io.Writer, epoch uint32) error {
	c0c1 := make([]byte, 1+handshakeSize)
	c0c1[0] = rtmpVersion
	binary.BigEndian.PutUint32(c0c1[1:5], epoch)
	fillRandom(c0c1[9:])
	if _, err := w.Write(c0c1); err != nil {
		return fmt.Errorf("%w: writing C0C1: %w", ErrHandshake, err)
	}
	s := make([]byte, 1+2*handshakeSize)
	if _, err := io.ReadFull(br, s); err != nil {
		return fmt.Errorf("%w: reading S0S1S2: %w", ErrHandshake, err)
	}
	if s[0] != rtmpVersion {
		return fmt.Errorf("%w: server version %d", ErrHandshake, s[0])
	}
	// C2 echoes S1.
	if _, err := w.Write(s[1 : 1+handshakeSize]); err != nil {
		return fmt.Errorf("%w: writing C2: %w", ErrHandshake, err)
	}
	return nil
}
