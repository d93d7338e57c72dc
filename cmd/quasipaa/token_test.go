package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/auth"
	"github.com/quasipaa/quasipaa/internal/config"
)

func runTokenCmd(t *testing.T, environ []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"token"}, args...), environ, &out, &errb)
	return code, out.String(), errb.String()
}

func TestTokenCommand(t *testing.T) {
	const secret = "a-secret-of-the-cli-test"
	verifier, err := auth.NewVerifier(config.Auth{JWTSecret: secret})
	require.NoError(t, err)

	code, out, errOut := runTokenCmd(t, nil, "--path", "live/*", "--action", "publish", "--ttl", "10m", "--secret", secret)
	require.Equal(t, 0, code, errOut)
	tok := strings.TrimSpace(out)
	require.NoError(t, verifier.Verify(tok, "publish", "live/cam1", "10.0.0.1"))
	require.ErrorIs(t, verifier.Verify(tok, "play", "live/cam1", ""), auth.ErrTokenScope)
	c, err := verifier.Parse(tok)
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(10*time.Minute), c.ExpiresAt.Time, 2*time.Second)

	// The secret from the environment, and an IP restriction.
	code, out, errOut = runTokenCmd(t, []string{"QUASIPAA_AUTH_JWT_SECRET=" + secret}, "--path", "live/cam1", "--action", "play", "--ip", "10.0.0.9")
	require.Equal(t, 0, code, errOut)
	tok = strings.TrimSpace(out)
	require.NoError(t, verifier.Verify(tok, "play", "live/cam1", "10.0.0.9"))
	require.ErrorIs(t, verifier.Verify(tok, "play", "live/cam1", "10.0.0.8"), auth.ErrTokenScope)

	// The secret from a config file.
	file := filepath.Join(t.TempDir(), "q.yaml")
	require.NoError(t, os.WriteFile(file, []byte("auth:\n  jwt_secret: "+secret+"\n"), 0o600))
	code, out, errOut = runTokenCmd(t, nil, "--path", "live/**", "--action", "play", "--config", file)
	require.Equal(t, 0, code, errOut)
	require.NoError(t, verifier.Verify(strings.TrimSpace(out), "play", "live/a/b", ""))
}

func TestTokenCommandErrorsNameTheFlag(t *testing.T) {
	cfgNoSecret := filepath.Join(t.TempDir(), "q.yaml")
	require.NoError(t, os.WriteFile(cfgNoSecret, []byte("rtmp:\n  listen: \":1935\"\n"), 0o600))
	for _, tc := range []struct {
		args    []string
		environ []string
		want    string
	}{
		{[]string{"--action", "play", "--secret", "s"}, nil, "--path"},
		{[]string{"--path", "/live/x", "--action", "play", "--secret", "s"}, nil, "--path"},
		{[]string{"--path", "live/x", "--action", "read", "--secret", "s"}, nil, "--action"},
		{[]string{"--path", "live/x", "--action", "play", "--ttl", "-1h", "--secret", "s"}, nil, "--ttl"},
		{[]string{"--path", "live/x", "--action", "play", "--ttl", "soon", "--secret", "s"}, nil, "-ttl"},
		{[]string{"--path", "live/x", "--action", "play", "--ip", "nope", "--secret", "s"}, nil, "--ip"},
		{[]string{"--path", "live/x", "--action", "play"}, nil, "--secret"},
		{[]string{"--path", "live/x", "--action", "play", "--config", "/nonexistent.yaml"}, nil, "--config"},
		{[]string{"--path", "live/x", "--action", "play", "--config", cfgNoSecret}, nil, "auth.jwt_secret"},
		{[]string{"--path", "live/x", "--action", "play", "--secret", "s", "extra"}, nil, "unexpected argument"},
	} {
		code, out, errOut := runTokenCmd(t, tc.environ, tc.args...)
		require.Equal(t, 2, code, "%v", tc.args)
		require.Empty(t, out)
		require.Contains(t, errOut, tc.want, "%v", tc.args)
	}
	code, _, errOut := runTokenCmd(t, nil, "-h")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "Usage: quasipaa token")
	require.Contains(t, errOut, "-action")
}
