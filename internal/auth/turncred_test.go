package auth

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the scheme under test
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The vector below was computed outside Go, with both:
//
//	echo -n "1700000000:alice" | openssl dgst -sha1 -hmac "quasipaa-test-secret" -binary | base64
//	python3 -c 'import hmac,hashlib,base64; print(base64.b64encode(hmac.new(b"quasipaa-test-secret", b"1700000000:alice", hashlib.sha1).digest()).decode())'
//
// which both print TP7YHq852shdUe5uWm7+WicN7tU=
const (
	vecSecret   = "quasipaa-test-secret"
	vecUsername = "1700000000:alice"
	vecPassword = "TP7YHq852shdUe5uWm7+WicN7tU="
)

func TestKnownVector(t *testing.T) {
	c := NewTURNCredentials([]byte(vecSecret), time.Hour)

	// Mint at expiry - TTL gives exactly the vector's username.
	username, password, expires := c.Mint("alice", time.Unix(1700000000, 0).Add(-time.Hour))
	assert.Equal(t, vecUsername, username)
	assert.Equal(t, vecPassword, password)
	assert.Equal(t, time.Unix(1700000000, 0), expires)

	password, user, err := c.Check(vecUsername, time.Unix(1699999999, 0))
	require.NoError(t, err)
	assert.Equal(t, vecPassword, password)
	assert.Equal(t, "alice", user)
}

func TestExpiry(t *testing.T) {
	c := NewTURNCredentials([]byte(vecSecret), time.Minute)
	now := time.Unix(1_800_000_000, 500_000_000)
	username, password, expires := c.Mint("bob", now)
	assert.Equal(t, "1800000060:bob", username)
	assert.Equal(t, time.Unix(1_800_000_060, 0), expires)

	for _, tc := range []struct {
		at      time.Time
		wantErr error
	}{
		{now, nil},
		{expires, nil}, // valid through the expiry second
		{expires.Add(999 * time.Millisecond), nil},         // same second
		{expires.Add(time.Second), ErrExpired},             // next second
		{now.Add(-24 * time.Hour), nil},                    // clock skew the other way is fine
		{time.Unix(1_900_000_000, 0), ErrExpired},          // long after
		{time.Unix(0, 0).Add(-time.Hour), nil},             // before the epoch
		{expires.Add(time.Hour + time.Second), ErrExpired}, // after
	} {
		got, user, err := c.Check(username, tc.at)
		pw, pwUser, pwErr := c.Password(username)
		require.NoError(t, pwErr, "Password ignores expiry")
		assert.Equal(t, password, pw)
		assert.Equal(t, "bob", pwUser)
		if tc.wantErr != nil {
			assert.ErrorIs(t, err, tc.wantErr, "at %v", tc.at)
			assert.Empty(t, got)
			assert.Empty(t, user)
			continue
		}
		require.NoError(t, err, "at %v", tc.at)
		assert.Equal(t, password, got)
		assert.Equal(t, "bob", user)
	}
}

func TestUserParts(t *testing.T) {
	c := NewTURNCredentials([]byte("s"), time.Hour)
	now := time.Unix(1_000_000, 0)
	for _, user := range []string{"", "a", "a:b:c", "ünïcode", strings.Repeat("x", 400)} {
		username, password, _ := c.Mint(user, now)
		got, gotUser, err := c.Check(username, now)
		require.NoError(t, err, user)
		assert.Equal(t, password, got)
		assert.Equal(t, user, gotUser)
	}
}

func TestMalformed(t *testing.T) {
	c := NewTURNCredentials([]byte("s"), time.Hour)
	now := time.Unix(1_000_000, 0)
	for _, u := range []string{
		"",
		"alice",
		"2000000",                // bare timestamp: no user separator
		":alice",                 // empty expiry
		"-2000000:alice",         // sign
		"+2000000:alice",         // sign
		" 2000000:alice",         // space
		"2000000 :alice",         // space
		"0x1e8480:alice",         // hex
		"2e6:alice",              // float
		"alice:2000000",          // user:expiry order (coturn's fallback) is not accepted
		"999999999999:alice",     // 12 digits
		"99999999999999999999:a", // overflows int64
		"2000000:" + strings.Repeat("x", MaxUsernameLen),
	} {
		_, _, err := c.Check(u, now)
		assert.ErrorIs(t, err, ErrMalformed, "%q", u)
		_, _, err = c.Password(u)
		assert.ErrorIs(t, err, ErrMalformed, "%q", u)
	}
}

func TestSecretAndTTL(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	a := NewTURNCredentials([]byte("one"), 0)
	assert.Equal(t, DefaultTURNCredentialTTL, a.TTL())
	b := NewTURNCredentials([]byte("two"), time.Hour)
	ua, pa, _ := a.Mint("u", now)
	ub, pb, _ := b.Mint("u", now)
	assert.Equal(t, ua, ub)
	assert.NotEqual(t, pa, pb, "different secrets, different passwords")

	// The secret is copied.
	secret := []byte("mutable")
	c := NewTURNCredentials(secret, time.Hour)
	_, before, _ := c.Mint("u", now)
	secret[0] = 'X'
	_, after, _ := c.Mint("u", now)
	assert.Equal(t, before, after)

	// An empty secret is a random one, never the empty HMAC key.
	e1 := NewTURNCredentials(nil, time.Hour)
	e2 := NewTURNCredentials([]byte{}, time.Hour)
	_, p1, _ := e1.Mint("u", now)
	_, p2, _ := e2.Mint("u", now)
	_, pEmpty, _ := (&TURNCredentials{ttl: time.Hour}).Mint("u", now)
	assert.NotEqual(t, p1, p2)
	assert.NotEqual(t, pEmpty, p1)
}

func TestRandomSecret(t *testing.T) {
	a, b := RandomSecret(), RandomSecret()
	assert.Len(t, a, 43)
	assert.NotEqual(t, a, b)
	raw, err := base64.RawURLEncoding.DecodeString(string(a))
	require.NoError(t, err)
	assert.Len(t, raw, 32)
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		vecUsername, "", ":", "1:", ":1", "0:", "1700000000", "1700000000:",
		"1700000000:a:b", "-1:a", "+1:a", "99999999999:a", "999999999999:a",
		"00000000001:x", "１２３:x", "1\x00:x", "1700000000:\xff\xfe",
	} {
		f.Add(s, int64(1_600_000_000))
	}
	c := NewTURNCredentials([]byte(vecSecret), time.Hour)
	f.Fuzz(func(t *testing.T, username string, nowUnix int64) {
		password, user, err := c.Check(username, time.Unix(nowUnix, 0))
		pw, pwUser, pwErr := c.Password(username)
		if (pwErr == nil) != (err == nil || errors.Is(err, ErrExpired)) {
			t.Fatalf("Check(%q) = %v but Password = %v", username, err, pwErr)
		}
		if err == nil && (pw != password || pwUser != user) {
			t.Fatalf("Check(%q) and Password disagree", username)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrExpired) {
				t.Fatalf("Check(%q): unexpected error %v", username, err)
			}
			if password != "" || user != "" {
				t.Fatalf("Check(%q) failed but returned %q, %q", username, password, user)
			}
			return
		}
		// Accepted: digits, ':', user; not expired; password is the HMAC.
		expStr, rest, ok := strings.Cut(username, ":")
		if !ok || rest != user || len(username) > MaxUsernameLen {
			t.Fatalf("Check(%q) accepted with user %q", username, user)
		}
		exp, perr := strconv.ParseUint(expStr, 10, 63)
		if perr != nil || strings.ContainsAny(expStr, "+-_") {
			t.Fatalf("Check(%q) accepted expiry %q", username, expStr)
		}
		if int64(exp) < nowUnix {
			t.Fatalf("Check(%q) accepted at %d, after expiry", username, nowUnix)
		}
		mac := hmac.New(sha1.New, []byte(vecSecret))
		mac.Write([]byte(username))
		if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); password != want {
			t.Fatalf("Check(%q) password %q, want %q", username, password, want)
		}
	})
}
