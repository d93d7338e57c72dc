package auth

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLimiter(t *testing.T) {
	l := NewLimiter(3, time.Minute, 0)
	now := time.Unix(1000, 0)
	for i := range 3 {
		require.True(t, l.Allow("1.1.1.1", now), "attempt %d", i)
		l.Fail("1.1.1.1", now)
	}
	require.False(t, l.Allow("1.1.1.1", now.Add(30*time.Second)))
	require.True(t, l.Allow("2.2.2.2", now), "other IPs are not affected")
	require.True(t, l.Allow("1.1.1.1", now.Add(time.Minute)), "the window passed")
	l.Fail("1.1.1.1", now.Add(time.Minute))
	require.True(t, l.Allow("1.1.1.1", now.Add(time.Minute)), "a new window starts from zero")

	off := NewLimiter(0, time.Minute, 0)
	for range 100 {
		off.Fail("1.1.1.1", now)
	}
	require.True(t, off.Allow("1.1.1.1", now))
	require.Zero(t, off.Len())
	var nilLimiter *Limiter
	require.True(t, nilLimiter.Allow("x", now))
	nilLimiter.Fail("x", now)
}

func TestLimiterBoundedMemory(t *testing.T) {
	l := NewLimiter(2, time.Minute, 100)
	now := time.Unix(1000, 0)
	for i := range 10_000 {
		l.Fail("10.0."+strconv.Itoa(i/256)+"."+strconv.Itoa(i%256), now.Add(time.Duration(i)*time.Millisecond))
	}
	require.LessOrEqual(t, l.Len(), 100)
	// Expired entries are swept first.
	l.Fail("9.9.9.9", now.Add(time.Hour))
	require.Equal(t, 1, l.Len())
}

func BenchmarkLimiterFailNewIPs(b *testing.B) {
	l := NewLimiter(10, time.Minute, 1000)
	now := time.Unix(1000, 0)
	i := 0
	for b.Loop() {
		i++
		l.Fail(strconv.Itoa(i), now)
	}
}
