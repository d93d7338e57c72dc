package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/quasipaa/quasipaa/internal/auth"
	"github.com/quasipaa/quasipaa/internal/config"
)

const tokenUsage = `Usage: quasipaa token --path PATTERN --action publish|play [--ttl 1h] [--ip ADDR]
                      [--secret S | --config FILE]

Prints an HS256 token allowing --action on the stream paths matching --path
("live/cam1", "live/*", "live/**"), valid for --ttl, optionally only from
--ip. The secret is --secret, else $QUASIPAA_AUTH_JWT_SECRET, else
auth.jwt_secret of --config (or of $QUASIPAA_CONFIG). Reference: docs/auth.md.

Flags:
`

// runToken runs "quasipaa token" and returns the exit code.
func runToken(args, environ []string, stdout, stderr io.Writer) int {
	tok, err := mintToken(args, environ)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stderr, tokenUsage)
		fs := tokenFlags(new(tokenOptions))
		fs.SetOutput(stderr)
		fs.PrintDefaults()
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "quasipaa token: %v\n", err)
		return 2
	}
	fmt.Fprintln(stdout, tok)
	return 0
}

type tokenOptions struct {
	path, action, ip, secret, config string
	ttl                              time.Duration
}

func tokenFlags(o *tokenOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.path, "path", "", "stream path pattern the token allows (required)")
	fs.StringVar(&o.action, "action", "", "publish or play (required)")
	fs.DurationVar(&o.ttl, "ttl", time.Hour, "validity of the token")
	fs.StringVar(&o.ip, "ip", "", "the only client IP the token is valid from (default: any)")
	fs.StringVar(&o.secret, "secret", "", "HS256 secret (default: $QUASIPAA_AUTH_JWT_SECRET, else auth.jwt_secret of --config)")
	fs.StringVar(&o.config, "config", "", "config file to read auth.jwt_secret from (default: $QUASIPAA_CONFIG)")
	return fs
}

// mintToken parses the command line and returns the token; errors name the flag.
func mintToken(args, environ []string) (string, error) {
	var o tokenOptions
	fs := tokenFlags(&o)
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() != 0 {
		return "", fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case o.path == "":
		return "", errors.New("--path is required (e.g. --path live/cam1)")
	case strings.HasPrefix(o.path, "/"):
		return "", fmt.Errorf("--path: %q must not start with '/' (e.g. live/cam1)", o.path)
	case o.action != auth.ActionPublish && o.action != auth.ActionPlay:
		return "", fmt.Errorf(`--action: must be "publish" or "play", got %q`, o.action)
	case o.ttl <= 0:
		return "", fmt.Errorf("--ttl: must be positive, got %s", o.ttl)
	}
	secret := o.secret
	if secret == "" && o.config == "" {
		secret = lookupEnv(environ, "QUASIPAA_AUTH_JWT_SECRET")
	}
	if secret == "" {
		path := o.config
		if path == "" {
			path = lookupEnv(environ, config.EnvConfigFile)
		}
		if path == "" {
			return "", errors.New("--secret: no secret (give --secret, set QUASIPAA_AUTH_JWT_SECRET, or --config a file with auth.jwt_secret)")
		}
		cfg, err := config.Load(path, environ)
		if err != nil {
			return "", fmt.Errorf("--config: %w", err)
		}
		if secret = cfg.Auth.JWTSecret; secret == "" {
			return "", fmt.Errorf("--config: %s sets no auth.jwt_secret", path)
		}
	}
	if o.ip != "" && net.ParseIP(o.ip) == nil {
		return "", fmt.Errorf("--ip: %q is not an IP address", o.ip)
	}
	return auth.Mint([]byte(secret), auth.Claims{Path: o.path, Action: o.action, IP: o.ip}, o.ttl)
}
