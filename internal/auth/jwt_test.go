package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/config"
)

const testSecret = "0123456789abcdef-secret"

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func testRSAKey(t testing.TB) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	return rsaKey
}

func pubPEM(t testing.TB, k *rsa.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(k)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func writeFile(t *testing.T, name string, b []byte) string {
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return p
}

func claims(path, action string, exp time.Duration) Claims {
	now := time.Now()
	return Claims{Path: path, Action: action, RegisteredClaims: jwt.RegisteredClaims{
		IssuedAt: jwt.NewNumericDate(now.Add(-time.Minute)), ExpiresAt: jwt.NewNumericDate(now.Add(exp)),
	}}
}

func sign(t testing.TB, method jwt.SigningMethod, key any, c jwt.Claims, kid string) string {
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

func hsVerifier(t testing.TB) *Verifier {
	v, err := NewVerifier(config.Auth{JWTSecret: testSecret})
	require.NoError(t, err)
	return v
}

func TestVerifyHS256(t *testing.T) {
	v := hsVerifier(t)
	good := sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims("secure/*", ActionPublish, time.Hour), "")
	require.NoError(t, v.Verify(good, ActionPublish, "secure/cam1", "127.0.0.1"))

	for name, tc := range map[string]struct {
		token, action, path, ip string
		want                    error
	}{
		"missing":        {"", ActionPublish, "secure/cam1", "127.0.0.1", ErrTokenMissing},
		"wrong action":   {good, ActionPlay, "secure/cam1", "127.0.0.1", ErrTokenScope},
		"wrong path":     {good, ActionPublish, "other/cam1", "127.0.0.1", ErrTokenScope},
		"deeper path":    {good, ActionPublish, "secure/a/b", "127.0.0.1", ErrTokenScope},
		"expired":        {sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims("secure/*", ActionPublish, -time.Minute), ""), ActionPublish, "secure/cam1", "", ErrTokenExpired},
		"bad signature":  {sign(t, jwt.SigningMethodHS256, []byte("another secret"), claims("secure/*", ActionPublish, time.Hour), ""), ActionPublish, "secure/cam1", "", ErrTokenInvalid},
		"tampered":       {good[:len(good)-3] + "AAA", ActionPublish, "secure/cam1", "", ErrTokenInvalid},
		"malformed":      {"not.a.token", ActionPublish, "secure/cam1", "", ErrTokenInvalid},
		"garbage":        {"%%%", ActionPublish, "secure/cam1", "", ErrTokenInvalid},
		"too long":       {strings.Repeat("a", MaxTokenLen+1), ActionPublish, "secure/cam1", "", ErrTokenInvalid},
		"no exp":         {sign(t, jwt.SigningMethodHS256, []byte(testSecret), Claims{Path: "secure/*", Action: ActionPublish}, ""), ActionPublish, "secure/cam1", "", ErrTokenInvalid},
		"not yet valid":  {sign(t, jwt.SigningMethodHS256, []byte(testSecret), withNBF(claims("secure/*", ActionPublish, time.Hour), time.Hour), ""), ActionPublish, "secure/cam1", "", ErrTokenExpired},
		"alg none":       {sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims("secure/*", ActionPublish, time.Hour), ""), ActionPublish, "secure/cam1", "", ErrTokenInvalid},
		"HS512 refused":  {sign(t, jwt.SigningMethodHS512, []byte(testSecret), claims("secure/*", ActionPublish, time.Hour), ""), ActionPublish, "secure/cam1", "", ErrTokenInvalid},
		"RS256 no key":   {sign(t, jwt.SigningMethodRS256, testRSAKey(t), claims("secure/*", ActionPublish, time.Hour), ""), ActionPublish, "secure/cam1", "", ErrTokenInvalid},
		"empty path":     {sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims("", ActionPublish, time.Hour), ""), ActionPublish, "secure/cam1", "", ErrTokenScope},
		"action missing": {sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims("secure/*", "", time.Hour), ""), ActionPublish, "secure/cam1", "", ErrTokenScope},
	} {
		t.Run(name, func(t *testing.T) {
			err := v.Verify(tc.token, tc.action, tc.path, tc.ip)
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func withNBF(c Claims, d time.Duration) Claims {
	c.NotBefore = jwt.NewNumericDate(time.Now().Add(d))
	return c
}

func TestVerifyIP(t *testing.T) {
	v := hsVerifier(t)
	c := claims("live/**", ActionPlay, time.Hour)
	c.IP = "10.1.2.3"
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), c, "")
	require.NoError(t, v.Verify(tok, ActionPlay, "live/a/b", "10.1.2.3"))
	require.ErrorIs(t, v.Verify(tok, ActionPlay, "live/a/b", "10.1.2.4"), ErrTokenScope)
	require.ErrorIs(t, v.Verify(tok, ActionPlay, "live/a/b", ""), ErrTokenScope)
	c.IP = "::ffff:10.1.2.3"
	tok = sign(t, jwt.SigningMethodHS256, []byte(testSecret), c, "")
	require.NoError(t, v.Verify(tok, ActionPlay, "live/a/b", "10.1.2.3"), "IPv4-mapped form is the same IP")
}

func TestErrorClasses(t *testing.T) {
	for _, e := range []error{ErrTokenMissing, ErrTokenInvalid, ErrTokenExpired} {
		require.ErrorIs(t, e, ErrUnauthorized)
		s, code := HTTPStatus(e)
		require.Equal(t, 401, s)
		require.Equal(t, "unauthorized", code)
	}
	for _, e := range []error{ErrTokenScope, ErrWebhookDenied, ErrProtocolNotAllowed} {
		s, _ := HTTPStatus(e)
		require.Equal(t, 403, s, e)
	}
	s, _ := HTTPStatus(ErrRateLimited)
	require.Equal(t, 429, s)
	for _, e := range []error{ErrWebhookUnavailable, ErrTooManyPublishers, ErrTooManyViewers} {
		s, _ := HTTPStatus(e)
		require.Equal(t, 503, s, e)
	}
	s, code := HTTPStatus(errors.New("other"))
	require.Equal(t, 0, s)
	require.Empty(t, code)
}

func TestVerifyRS256PublicKey(t *testing.T) {
	k := testRSAKey(t)
	pemBytes := pubPEM(t, &k.PublicKey)
	v, err := NewVerifier(config.Auth{JWTPublicKey: writeFile(t, "pub.pem", pemBytes)})
	require.NoError(t, err)
	require.True(t, v.HasKeys())
	good := sign(t, jwt.SigningMethodRS256, k, claims("live/cam", ActionPlay, time.Hour), "")
	require.NoError(t, v.Verify(good, ActionPlay, "live/cam", ""))

	// Key confusion: an HS256 token keyed with the public key's PEM text
	// (or DER) must not pass as an RS256 one.
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	for _, key := range [][]byte{pemBytes, der} {
		forged := sign(t, jwt.SigningMethodHS256, key, claims("live/cam", ActionPlay, time.Hour), "")
		require.ErrorIs(t, v.Verify(forged, ActionPlay, "live/cam", ""), ErrTokenInvalid)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	bad := sign(t, jwt.SigningMethodRS256, other, claims("live/cam", ActionPlay, time.Hour), "")
	require.ErrorIs(t, v.Verify(bad, ActionPlay, "live/cam", ""), ErrTokenInvalid)
}

func jwks(t *testing.T, keys map[string]*rsa.PublicKey) []byte {
	type key struct {
		Kty string `json:"kty"`
		Kid string `json:"kid"`
		N   string `json:"n"`
		E   string `json:"e"`
	}
	var set struct {
		Keys []any `json:"keys"`
	}
	set.Keys = append(set.Keys, map[string]string{"kty": "EC", "kid": "ec", "crv": "P-256"}) // skipped
	for kid, k := range keys {
		set.Keys = append(set.Keys, key{Kty: "RSA", Kid: kid, N: base64.RawURLEncoding.EncodeToString(k.N.Bytes()), E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes())})
	}
	b, err := json.Marshal(set)
	require.NoError(t, err)
	return b
}

func TestVerifyJWKS(t *testing.T) {
	k := testRSAKey(t)
	v, err := NewVerifier(config.Auth{JWKSFile: writeFile(t, "jwks.json", jwks(t, map[string]*rsa.PublicKey{"k1": &k.PublicKey}))})
	require.NoError(t, err)
	require.NoError(t, v.Verify(sign(t, jwt.SigningMethodRS256, k, claims("live/*", ActionPublish, time.Hour), "k1"), ActionPublish, "live/x", ""))
	// Without kid the only key is used; an unknown kid is refused.
	require.NoError(t, v.Verify(sign(t, jwt.SigningMethodRS256, k, claims("live/*", ActionPublish, time.Hour), ""), ActionPublish, "live/x", ""))
	require.ErrorIs(t, v.Verify(sign(t, jwt.SigningMethodRS256, k, claims("live/*", ActionPublish, time.Hour), "k2"), ActionPublish, "live/x", ""), ErrTokenInvalid)
	// HS256 is not accepted without a secret, whatever the key material.
	require.ErrorIs(t, v.Verify(sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims("live/*", ActionPublish, time.Hour), "k1"), ActionPublish, "live/x", ""), ErrTokenInvalid)
}

func TestNewVerifierErrorsNameTheKey(t *testing.T) {
	_, err := NewVerifier(config.Auth{JWKSFile: "/nonexistent/jwks.json"})
	require.ErrorContains(t, err, "auth.jwks_file: ")
	_, err = NewVerifier(config.Auth{JWKSFile: writeFile(t, "bad.json", []byte(`{"keys":[{"kty":"RSA","n":"!!","e":"AQAB"}]}`))})
	require.ErrorContains(t, err, "auth.jwks_file: ")
	require.ErrorContains(t, err, "keys[0].n")
	_, err = NewVerifier(config.Auth{JWKSFile: writeFile(t, "empty.json", []byte(`{"keys":[]}`))})
	require.ErrorContains(t, err, "no RSA signing key")
	_, err = NewVerifier(config.Auth{JWTPublicKey: "/nonexistent/pub.pem"})
	require.ErrorContains(t, err, "auth.jwt_public_key: ")
	_, err = NewVerifier(config.Auth{JWTPublicKey: writeFile(t, "x.pem", []byte("not pem"))})
	require.ErrorContains(t, err, "auth.jwt_public_key: ")
	v, err := NewVerifier(config.Auth{})
	require.NoError(t, err)
	require.False(t, v.HasKeys())
}

func TestMint(t *testing.T) {
	tok, err := Mint([]byte(testSecret), Claims{Path: "live/cam1", Action: ActionPublish, IP: "1.2.3.4"}, time.Hour)
	require.NoError(t, err)
	v := hsVerifier(t)
	require.NoError(t, v.Verify(tok, ActionPublish, "live/cam1", "1.2.3.4"))
	c, err := v.Parse(tok)
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(time.Hour), c.ExpiresAt.Time, 2*time.Second)
	for _, bad := range []struct {
		secret string
		c      Claims
		ttl    time.Duration
		want   string
	}{
		{"", Claims{Path: "a/b", Action: ActionPlay}, time.Hour, "empty secret"},
		{"s", Claims{Path: "a/b", Action: "read"}, time.Hour, "action"},
		{"s", Claims{Path: "", Action: ActionPlay}, time.Hour, "empty path"},
		{"s", Claims{Path: "a/b", Action: ActionPlay}, 0, "ttl"},
		{"s", Claims{Path: "a/b", Action: ActionPlay, IP: "nope"}, time.Hour, "ip"},
	} {
		_, err := Mint([]byte(bad.secret), bad.c, bad.ttl)
		require.ErrorContains(t, err, bad.want)
	}
}

func BenchmarkVerifyHS256(b *testing.B) {
	v := hsVerifier(b)
	tok := sign(b, jwt.SigningMethodHS256, []byte(testSecret), claims("live/*", ActionPlay, time.Hour), "")
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(tok, ActionPlay, "live/cam", "127.0.0.1"); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzVerify feeds token strings: Verify must never panic, and a token it
// accepts must have been signed with the secret.
func FuzzVerify(f *testing.F) {
	v := hsVerifier(f)
	f.Add(sign(f, jwt.SigningMethodHS256, []byte(testSecret), claims("live/*", ActionPlay, 100*365*24*time.Hour), ""))
	f.Add("eyJhbGciOiJub25lIn0.eyJwYXRoIjoibGl2ZS8qIn0.")
	f.Add("")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, token string) {
		err := v.Verify(token, ActionPlay, "live/cam", "127.0.0.1")
		if err == nil {
			// Re-check the signature by hand: header.payload signed HS256.
			parts := strings.Split(token, ".")
			if len(parts) != 3 {
				t.Fatalf("accepted a token without three parts: %q", token)
			}
			sig, derr := base64.RawURLEncoding.DecodeString(parts[2])
			if derr != nil {
				t.Fatalf("accepted a token with an undecodable signature: %q", token)
			}
			if err := jwt.SigningMethodHS256.Verify(parts[0]+"."+parts[1], sig, []byte(testSecret)); err != nil {
				t.Fatalf("accepted a token not signed with the secret: %q", token)
			}
			return
		}
		if !errors.Is(err, ErrUnauthorized) && !errors.Is(err, ErrForbidden) {
			t.Fatalf("error outside the classes: %v", err)
		}
	})
}
