package auth

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/quasipaa/quasipaa/internal/config"
)

// Error classes of a refusal: every refusal error of this package wraps
// exactly one of them, which decides the answer each protocol gives.
var (
	// ErrUnauthorized is the class of missing, malformed or expired credentials (HTTP 401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden is the class of valid credentials that do not allow the request (HTTP 403).
	ErrForbidden = errors.New("forbidden")
	// ErrUnavailable is the class of refusals for capacity or an unreachable decider (HTTP 503).
	ErrUnavailable = errors.New("unavailable")
)

// Token errors of Verify.
var (
	// ErrTokenMissing means no token was given.
	ErrTokenMissing = fmt.Errorf("%w: token missing", ErrUnauthorized)
	// ErrTokenInvalid means the token is malformed, badly signed or uses a refused algorithm.
	ErrTokenInvalid = fmt.Errorf("%w: token invalid", ErrUnauthorized)
	// ErrTokenExpired means the token's exp has passed (or its nbf is to come).
	ErrTokenExpired = fmt.Errorf("%w: token expired", ErrUnauthorized)
	// ErrTokenScope means the token is valid but not for this path, action or client IP.
	ErrTokenScope = fmt.Errorf("%w: token not valid for this request", ErrForbidden)
)

// MaxTokenLen is the longest token Verify looks at; longer ones are invalid.
const MaxTokenLen = 8192

// Leeway is the clock skew tolerated on exp, nbf and iat.
const Leeway = 5 * time.Second

// Token actions (claim "action").
const (
	ActionPublish = "publish"
	ActionPlay    = "play"
)

// Claims are the claims of a publish/play token.
type Claims struct {
	// Path is a stream path pattern (config.MatchPath): "live/cam1", "live/*", "live/**".
	Path string `json:"path"`
	// Action is "publish" or "play".
	Action string `json:"action"`
	// IP, when set, is the only client IP the token is valid from.
	IP string `json:"ip,omitempty"`
	jwt.RegisteredClaims
}

// Verifier checks publish/play tokens signed with HS256 (a shared secret) or
// RS256 (an RSA public key, or the keys of a JWKS file chosen by kid). It is
// safe for concurrent use.
type Verifier struct {
	secret []byte
	pubKey *rsa.PublicKey
	jwks   map[string]*rsa.PublicKey
	now    func() time.Time
}

// NewVerifier returns a verifier for the keys of cfg (auth.jwt_secret,
// auth.jwt_public_key, auth.jwks_file). Errors name the key at fault. A
// verifier without any key refuses every token.
func NewVerifier(cfg config.Auth) (*Verifier, error) {
	v := &Verifier{now: time.Now}
	if cfg.JWTSecret != "" {
		v.secret = []byte(cfg.JWTSecret)
	}
	if cfg.JWTPublicKey != "" {
		b, err := os.ReadFile(cfg.JWTPublicKey)
		if err != nil {
			return nil, fmt.Errorf("auth.jwt_public_key: %w", err)
		}
		if v.pubKey, err = ParseRSAPublicKeyPEM(b); err != nil {
			return nil, fmt.Errorf("auth.jwt_public_key: %s: %w", cfg.JWTPublicKey, err)
		}
	}
	if cfg.JWKSFile != "" {
		b, err := os.ReadFile(cfg.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("auth.jwks_file: %w", err)
		}
		if v.jwks, err = ParseJWKS(b); err != nil {
			return nil, fmt.Errorf("auth.jwks_file: %s: %w", cfg.JWKSFile, err)
		}
	}
	return v, nil
}

// HasKeys reports whether the verifier can accept any token at all.
func (v *Verifier) HasKeys() bool {
	return len(v.secret) > 0 || v.pubKey != nil || len(v.jwks) > 0
}

// ParseRSAPublicKeyPEM reads the first PEM block of b as an RSA public key
// ("PUBLIC KEY" in PKIX form or "RSA PUBLIC KEY" in PKCS #1 form).
func ParseRSAPublicKeyPEM(b []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("not an RSA key (%T)", k)
		}
		return rk, nil
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a public key", block.Type)
	}
}

// ParseJWKS returns the RSA keys of a JSON Web Key Set by kid; keys of
// other types are skipped. A set without any RSA key is an error.
func ParseJWKS(b []byte) (map[string]*rsa.PublicKey, error) {
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Use string `json:"use"`
			N   string `json:"n"`
			E   string `json:"e"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("not a JSON Web Key Set: %w", err)
	}
	keys := make(map[string]*rsa.PublicKey)
	for i, k := range set.Keys {
		if k.Kty != "RSA" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		n, err := base64.RawURLEncoding.DecodeString(k.N)
		if err != nil || len(n) == 0 {
			return nil, fmt.Errorf("keys[%d].n: not base64url", i)
		}
		e, err := base64.RawURLEncoding.DecodeString(k.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return nil, fmt.Errorf("keys[%d].e: not a base64url exponent", i)
		}
		exp := int(new(big.Int).SetBytes(e).Int64())
		if exp < 3 || len(n) < 256 {
			return nil, fmt.Errorf("keys[%d]: RSA key too weak (at least 2048 bits)", i)
		}
		if _, dup := keys[k.Kid]; dup {
			return nil, fmt.Errorf("keys[%d]: kid %q listed twice", i, k.Kid)
		}
		keys[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
	}
	if len(keys) == 0 {
		return nil, errors.New("no RSA signing key")
	}
	return keys, nil
}

// key picks the verification key of t: the secret for HS256, an RSA key
// for RS256. An HS256 token is never checked against an RSA key.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	switch t.Method.Alg() {
	case jwt.SigningMethodHS256.Alg():
		if len(v.secret) == 0 {
			return nil, errors.New("HS256 tokens are not accepted (no auth.jwt_secret)")
		}
		return v.secret, nil
	case jwt.SigningMethodRS256.Alg():
		kid, _ := t.Header["kid"].(string)
		if k, ok := v.jwks[kid]; ok && kid != "" {
			return k, nil
		}
		if v.pubKey != nil {
			return v.pubKey, nil
		}
		if kid == "" && len(v.jwks) == 1 {
			for _, k := range v.jwks {
				return k, nil
			}
		}
		return nil, fmt.Errorf("no RSA key for kid %q", kid)
	}
	return nil, fmt.Errorf("algorithm %q not accepted", t.Method.Alg())
}

// Parse checks the signature and the time claims of token and returns its
// claims, without looking at path, action or IP. Errors wrap ErrTokenMissing,
// ErrTokenInvalid or ErrTokenExpired.
func (v *Verifier) Parse(token string) (*Claims, error) {
	if token == "" {
		return nil, ErrTokenMissing
	}
	if len(token) > MaxTokenLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrTokenInvalid, MaxTokenLen)
	}
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, v.key,
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg(), jwt.SigningMethodRS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(v.now),
	)
	switch {
	case err == nil:
		return &c, nil
	case errors.Is(err, jwt.ErrTokenExpired), errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return nil, fmt.Errorf("%w: %v", ErrTokenExpired, err)
	default:
		return nil, fmt.Errorf("%w: %v", ErrTokenInvalid, err)
	}
}

// Verify checks that token is validly signed, current, and allows action
// ("publish" or "play") on path from clientIP. Errors wrap ErrTokenMissing,
// ErrTokenInvalid, ErrTokenExpired or ErrTokenScope.
func (v *Verifier) Verify(token, action, path, clientIP string) error {
	c, err := v.Parse(token)
	if err != nil {
		return err
	}
	if c.Action != action {
		return fmt.Errorf("%w: action is %q, not %q", ErrTokenScope, c.Action, action)
	}
	if c.Path == "" || !config.MatchPath(c.Path, path) {
		return fmt.Errorf("%w: path %q does not match %q", ErrTokenScope, c.Path, path)
	}
	if c.IP != "" {
		want, got := net.ParseIP(c.IP), net.ParseIP(clientIP)
		if want == nil || got == nil || !want.Equal(got) {
			return fmt.Errorf("%w: client IP %s is not %s", ErrTokenScope, clientIP, c.IP)
		}
	}
	return nil
}

// Mint signs c with HS256 and secret, valid for ttl from now (it sets iat
// and exp). It is what `quasipaa token` runs.
func Mint(secret []byte, c Claims, ttl time.Duration) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("empty secret")
	}
	if ttl <= 0 {
		return "", fmt.Errorf("ttl must be positive, got %s", ttl)
	}
	if c.Action != ActionPublish && c.Action != ActionPlay {
		return "", fmt.Errorf(`action must be "publish" or "play", got %q`, c.Action)
	}
	if c.Path == "" {
		return "", errors.New("empty path")
	}
	if c.IP != "" && net.ParseIP(c.IP) == nil {
		return "", fmt.Errorf("ip %q is not an IP address", c.IP)
	}
	now := time.Now()
	c.IssuedAt = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}
