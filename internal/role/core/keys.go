package core

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"

	"github.com/quasipaa/quasipaa/internal/auth"
	"github.com/quasipaa/quasipaa/internal/config"
	"github.com/quasipaa/quasipaa/internal/relay"
)

// keyNameKey is the context key of the API key's name.
type keyNameKey struct{}

// KeyName returns the name of the API key that authorised the request of
// ctx, or "" when the API is open.
func KeyName(ctx context.Context) string {
	s, _ := ctx.Value(keyNameKey{}).(string)
	return s
}

// publicPaths answer without a key.
var publicPaths = map[string]bool{"/api/v1/openapi.json": true}

// RequireKeys guards the requests under /api/v1/ with the bearer keys:
// "Authorization: Bearer KEY" is required (401 unauthorized otherwise), a
// read key may only GET and HEAD (403 forbidden otherwise), an admin key
// may do anything. With no keys, next is returned as is (an open API).
// Requests outside /api/v1/ and /api/v1/openapi.json pass through. The
// name of the key is logged for every request that is not GET or HEAD,
// and is given to handlers (KeyName).
//
// With or without keys, an API path with an empty, "." or ".." segment
// (raw or percent-encoded) is refused with 400 bad_request, before
// ServeMux would redirect it to its cleaned form: a DELETE never lands on
// another resource than the one written.
//
// With TrustCluster(secret), a request signed by another node with the
// cluster secret (relay.Sign: a forwarded API request) is let through as
// admin without a key, its KeyName "node:ID"; a request whose signature
// does not verify still needs a key.
func RequireKeys(keys []config.APIKey, log *slog.Logger, next http.Handler, opts ...KeysOption) http.Handler {
	var o keysOptions
	for _, f := range opts {
		f(&o)
	}
	if len(keys) == 0 {
		return canonicalPaths(next)
	}
	if log == nil {
		log = slog.Default()
	}
	// Keys are compared by their SHA-256 in constant time, so neither the
	// comparison nor the key's length leaks through timing.
	type entry struct {
		sum   [sha256.Size]byte
		name  string
		scope string
	}
	entries := make([]entry, len(keys))
	for i, k := range keys {
		entries[i] = entry{sum: sha256.Sum256([]byte(k.Key)), name: k.Name, scope: k.Scope}
	}
	return canonicalPaths(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isAPI(r.URL.Path) || publicPaths[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		if node, ok := o.signedBy(r); ok {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				log.Info("API admin request", "key", "node:"+node, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyNameKey{}, "node:"+node)))
			return
		}
		token, ok := auth.BearerToken(r.Header.Get("Authorization"))
		if !ok {
			unauthorized(w, "an API key is required: Authorization: Bearer KEY")
			return
		}
		sum := sha256.Sum256([]byte(token))
		found := -1
		for i := range entries {
			if subtle.ConstantTimeCompare(sum[:], entries[i].sum[:]) == 1 {
				found = i
			}
		}
		if found < 0 {
			unauthorized(w, "unknown API key")
			return
		}
		e := entries[found]
		readOnly := r.Method == http.MethodGet || r.Method == http.MethodHead
		if !readOnly && e.scope != config.ScopeAdmin {
			WriteError(w, http.StatusForbidden, "forbidden", "the key "+e.name+" has the read scope: only GET and HEAD are allowed")
			return
		}
		if !readOnly {
			log.Info("API admin request", "key", e.name, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyNameKey{}, e.name)))
	}))
}

// KeysOption configures RequireKeys.
type KeysOption func(*keysOptions)

type keysOptions struct {
	secret string
}

// TrustCluster lets the requests signed with the cluster secret (by
// another node, see relay.Sign) through RequireKeys as admin. An empty
// secret trusts nobody.
func TrustCluster(secret string) KeysOption {
	return func(o *keysOptions) { o.secret = secret }
}

// signedBy returns the node that signed r when r carries a signature that
// verifies with the cluster secret.
func (o keysOptions) signedBy(r *http.Request) (string, bool) {
	if o.secret == "" || r.Header.Get(relay.HeaderSignature) == "" {
		return "", false
	}
	node, err := relay.Verify(r, o.secret, relay.DefaultMaxSkew)
	return node, err == nil
}

func isAPI(p string) bool { return strings.HasPrefix(p, "/api/v1/") || p == "/api/v1" }

// canonicalPaths refuses API paths with an empty, "." or ".." segment.
func canonicalPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isAPI(r.URL.Path) {
			rest := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/v1/"), "/")
			for _, seg := range strings.Split(rest, "/") {
				if seg == "" && rest != "" || seg == "." || seg == ".." {
					WriteError(w, http.StatusBadRequest, "bad_request", "the URL path has an empty, '.' or '..' segment")
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

func unauthorized(w http.ResponseWriter, message string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="quasipaa"`)
	WriteError(w, http.StatusUnauthorized, "unauthorized", message)
}
