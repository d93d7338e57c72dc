// Package auth holds the credential schemes of the server. TURNCredentials
// implements the time-limited TURN credentials of coturn's use-auth-secret
// mode (the "TURN REST API" draft): any holder of the shared secret can mint
// them, and a TURN server holding the same secret checks them without a
// database.
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // HMAC-SHA1 is what the coturn scheme specifies.
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// ErrExpired reports a TURN username whose expiry time has passed.
var ErrExpired = errors.New("turn credentials expired")

// ErrMalformed reports a TURN username that is not "expiry:user".
var ErrMalformed = errors.New("turn username malformed")

// MaxUsernameLen is the longest TURN username Check accepts, the limit of the
// STUN USERNAME attribute (RFC 8489 section 14.3).
const MaxUsernameLen = 513

// DefaultTURNCredentialTTL is the validity NewTURNCredentials uses for a ttl <= 0.
const DefaultTURNCredentialTTL = time.Hour

// maxExpiryDigits bounds the expiry field: 11 digits reach year 5138.
const maxExpiryDigits = 11

// TURNCredentials mints and checks coturn-style time-limited credentials (use-auth-secret):
// username "expiry:user" (expiry = Unix seconds), password = base64(HMAC-SHA1(secret, username)).
// It is safe for concurrent use.
type TURNCredentials struct {
	secret []byte
	ttl    time.Duration
}

// NewTURNCredentials returns credentials keyed by secret and minted valid for
// ttl. An empty secret is replaced by RandomSecret() (so only this process can
// mint), a ttl <= 0 by DefaultTURNCredentialTTL. secret is copied.
func NewTURNCredentials(secret []byte, ttl time.Duration) *TURNCredentials {
	if len(secret) == 0 {
		secret = RandomSecret()
	}
	if ttl <= 0 {
		ttl = DefaultTURNCredentialTTL
	}
	return &TURNCredentials{secret: append([]byte(nil), secret...), ttl: ttl}
}

// TTL returns how long minted credentials stay valid.
func (c *TURNCredentials) TTL() time.Duration { return c.ttl }

// Mint returns a username and password for user valid until expires (now plus
// the TTL, truncated to the second). user may be empty or contain ':'.
func (c *TURNCredentials) Mint(user string, now time.Time) (username, password string, expires time.Time) {
	exp := now.Add(c.ttl).Unix()
	username = strconv.FormatInt(exp, 10) + ":" + user
	return username, c.password(username), time.Unix(exp, 0)
}

// Check parses username as "expiry:user" and, when it is well formed and not
// expired at now, returns the password it must be used with and its user part.
// The credentials are valid up to and including the expiry second. Errors are
// ErrMalformed or ErrExpired.
func (c *TURNCredentials) Check(username string, now time.Time) (password string, user string, err error) {
	exp, user, err := parse(username)
	if err != nil {
		return "", "", err
	}
	if now.Unix() > exp {
		return "", "", ErrExpired
	}
	return c.password(username), user, nil
}

// Password is Check without the expiry check: it returns the password of a
// well-formed username even once expired, for requests that only keep up
// what an unexpired username started. The error is ErrMalformed.
func (c *TURNCredentials) Password(username string) (password string, user string, err error) {
	_, user, err = parse(username)
	if err != nil {
		return "", "", err
	}
	return c.password(username), user, nil
}

// parse splits "expiry:user", with expiry in decimal digits only.
func parse(username string) (expiry int64, user string, err error) {
	if len(username) > MaxUsernameLen {
		return 0, "", ErrMalformed
	}
	expStr, user, ok := strings.Cut(username, ":")
	if !ok || expStr == "" || len(expStr) > maxExpiryDigits {
		return 0, "", ErrMalformed
	}
	for i := 0; i < len(expStr); i++ {
		if expStr[i] < '0' || expStr[i] > '9' {
			return 0, "", ErrMalformed
		}
	}
	expiry, err = strconv.ParseInt(expStr, 10, 64)
	if err != nil {
		return 0, "", ErrMalformed
	}
	return expiry, user, nil
}

func (c *TURNCredentials) password(username string) string {
	mac := hmac.New(sha1.New, c.secret)
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// RandomSecret returns a new secret of 32 random bytes written as 43
// characters of unpadded base64url, so it can also be pasted into a config
// file or coturn's static-auth-secret as is.
func RandomSecret() []byte {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand.Read never returns an error on supported platforms.
		panic("auth: crypto/rand: " + err.Error())
	}
	out := make([]byte, base64.RawURLEncoding.EncodedLen(len(b)))
	base64.RawURLEncoding.Encode(out, b[:])
	return out
}
