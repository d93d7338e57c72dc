package bitio

import (
	"errors"
	"testing"
)

func TestReadBits(t *testing.T) {
	r := NewReader([]byte{0b1010_1100, 0b0101_0011, 0xFF})
	for _, c := range []struct {
		n    int
		want uint64
	}{{1, 1}, {3, 0b010}, {6, 0b1100_01}, {6, 0b01_0011}, {8, 0xFF}} {
		got, err := r.ReadBits(c.n)
		if err != nil || got != c.want {
			t.Fatalf("ReadBits(%d) = %b, %v; want %b", c.n, got, err, c.want)
		}
	}
	if _, err := r.ReadBits(1); !errors.Is(err, ErrTruncated) {
		t.Fatalf("read past end: err = %v", err)
	}
}

func TestExpGolomb(t *testing.T) {
	// ue: 1 -> 0, 010 -> 1, 011 -> 2, 00100 -> 3; se of 00101 (ue 4) -> -2, 011 (ue 2) -> -1
	w := Writer{}
	for _, bits := range []string{"1", "010", "011", "00100", "00101", "011"} {
		for _, c := range bits {
			w.WriteBits(uint64(c-'0'), 1)
		}
	}
	r := NewReader(w.Bytes())
	for _, want := range []uint32{0, 1, 2, 3} {
		got, err := r.ReadUE()
		if err != nil || got != want {
			t.Fatalf("ReadUE = %d, %v; want %d", got, err, want)
		}
	}
	for _, want := range []int32{-2, -1} {
		got, err := r.ReadSE()
		if err != nil || got != want {
			t.Fatalf("ReadSE = %d, %v; want %d", got, err, want)
		}
	}
	// 40 zero bits: not a valid 32-bit code.
	r = NewReader(make([]byte, 5))
	if _, err := r.ReadUE(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ReadUE on zeros: err = %v", err)
	}
}

func TestUVLC(t *testing.T) {
	w := Writer{}
	w.WriteBits(0b00101, 5) // 2 zeros, then 01 -> 1 + 3 = 4
	r := NewReader(w.Bytes())
	if v, err := r.ReadUVLC(); err != nil || v != 4 {
		t.Fatalf("ReadUVLC = %d, %v; want 4", v, err)
	}
}

func TestWriterRoundTrip(t *testing.T) {
	w := Writer{}
	w.WriteBits(0x1F, 5)
	w.WriteFlag(true)
	w.WriteBits(0xABCDEF, 24)
	r := NewReader(w.Bytes())
	a, _ := r.ReadBits(5)
	b, _ := r.ReadFlag()
	c, _ := r.ReadBits(24)
	if a != 0x1F || !b || c != 0xABCDEF {
		t.Fatalf("got %x %v %x", a, b, c)
	}
	if len(w.Bytes()) != 4 {
		t.Fatalf("len = %d, want 4", len(w.Bytes()))
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte{0x00, 0x01, 0xFF}, uint8(7))
	f.Fuzz(func(t *testing.T, b []byte, n uint8) {
		r := NewReader(b)
		for r.BitsLeft() > 0 {
			switch n % 4 {
			case 0:
				_, _ = r.ReadUE()
			case 1:
				_, _ = r.ReadSE()
			case 2:
				_, _ = r.ReadUVLC()
			case 3:
				_, _ = r.ReadBits(int(n % 65))
			}
			n = n*31 + 7
			if r.BitsLeft() < 0 {
				t.Fatalf("BitsLeft < 0")
			}
		}
	})
}
