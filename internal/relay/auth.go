// Package relay carries live streams between Quasipaa nodes: a Server that
// serves the streams of the local hub over the relay protocol
// (internal/protocol/relay), Upstreams that pull the streams a node lacks
// from the node publishing them, and the cluster-secret authentication that
// every internal HTTP endpoint shares. docs/relay.md describes the protocol.
package relay

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Headers of a request signed with the cluster secret.
const (
	// HeaderNode names the node making the request.
	HeaderNode = "X-Quasipaa-Node"
	// HeaderTime is the request's time, in unix seconds.
	HeaderTime = "X-Quasipaa-Time"
	// HeaderSignature is hex(HMAC-SHA256(secret, method\npath\nnode\ntime)).
	HeaderSignature = "X-Quasipaa-Signature"
)

// DefaultMaxSkew is how far a request's time may be from the server's clock.
const DefaultMaxSkew = 60 * time.Second

// ErrUnauthorized is wrapped by every authentication failure.
var ErrUnauthorized = errors.New("relay: unauthorized")

// signature computes the hex signature of a request.
func signature(secret, method, path, query, node, ts string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(method + "\n" + path + "\n" + query + "\n" + node + "\n" + ts))
	return hex.EncodeToString(m.Sum(nil))
}

// Sign sets the authentication headers of req for node with the cluster
// secret. The path and the raw query string are signed, so a captured
// request cannot be replayed with another query.
func Sign(req *http.Request, secret, node string) {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set(HeaderNode, node)
	req.Header.Set(HeaderTime, ts)
	req.Header.Set(HeaderSignature, signature(secret, req.Method, req.URL.Path, req.URL.RawQuery, node, ts))
}

// Verify checks the authentication headers of req and returns the node that
// signed it. Errors wrap ErrUnauthorized. An empty secret refuses every
// request: a node without a cluster secret serves nobody.
func Verify(req *http.Request, secret string, maxSkew time.Duration) (node string, err error) {
	if secret == "" {
		return "", fmt.Errorf("%w: no cluster secret configured", ErrUnauthorized)
	}
	node = req.Header.Get(HeaderNode)
	ts := req.Header.Get(HeaderTime)
	sig := req.Header.Get(HeaderSignature)
	if node == "" || ts == "" || sig == "" {
		return "", fmt.Errorf("%w: missing %s, %s or %s", ErrUnauthorized, HeaderNode, HeaderTime, HeaderSignature)
	}
	sec, perr := strconv.ParseInt(ts, 10, 64)
	if perr != nil {
		return "", fmt.Errorf("%w: bad %s", ErrUnauthorized, HeaderTime)
	}
	if maxSkew <= 0 {
		maxSkew = DefaultMaxSkew
	}
	skew := time.Since(time.Unix(sec, 0))
	if skew > maxSkew || skew < -maxSkew {
		return "", fmt.Errorf("%w: request time off by %s", ErrUnauthorized, skew.Round(time.Second))
	}
	want := signature(secret, req.Method, req.URL.Path, req.URL.RawQuery, node, ts)
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return "", fmt.Errorf("%w: bad signature", ErrUnauthorized)
	}
	return node, nil
}

type nodeKey struct{}

// NodeFromContext returns the node RequireSecret authenticated.
func NodeFromContext(ctx context.Context) (string, bool) {
	n, ok := ctx.Value(nodeKey{}).(string)
	return n, ok
}

// RequireSecret lets through only requests signed with secret (within
// DefaultMaxSkew), with the signing node in the request's context
// (NodeFromContext); others get 401 and the API's error body
// {"error":{"code":"unauthorized","message":...}}.
func RequireSecret(secret string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		node, err := Verify(r, secret, DefaultMaxSkew)
		if err != nil {
			writeError(w, http.StatusUnauthorized, "unauthorized", err.Error())
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), nodeKey{}, node)))
	})
}

// writeError writes the API's error body.
func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message = code, message
	_ = json.NewEncoder(w).Encode(body)
}
