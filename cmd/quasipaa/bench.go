package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/quasipaa/quasipaa/internal/bench"
)

const benchUsage = `Usage: quasipaa bench -url URL [flags]

Load-tests a live-streaming server (Quasipaa or any other): many players
play a stream over RTMP, HTTP-FLV, WebSocket-FLV, (LL-)HLS or WebRTC (WHEP),
optional publishers push an FLV file, and a summary tells what the players
received.
Exits with 1 if any player or publisher failed. Reference: docs/bench.md.

Flags:
`

// urlList is a flag that may be repeated or given comma-separated values.
type urlList []string

func (l *urlList) String() string { return strings.Join(*l, ",") }

func (l *urlList) Set(v string) error {
	for _, u := range strings.Split(v, ",") {
		if u = strings.TrimSpace(u); u != "" {
			*l = append(*l, u)
		}
	}
	return nil
}

// runBench runs the load generator with the command line args; the summary
// goes to stdout, progress lines to stderr.
func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	return benchMain(ctx, args, stdout, os.Stderr)
}

func benchMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var urls urlList
	fs.Var(&urls, "url", "stream to play: rtmp://host:port/app/stream, http://host:port/app/stream.flv, ws://host:port/app/stream.flv,\nhttp://host:port/app/stream/index.m3u8 (HLS) or http://host:port/app/stream/whep (WHEP);\nrepeat it or separate with commas to mix protocols (players take them in turn);\n"+bench.Placeholder+" is replaced by the stream number 1..publishers (default: the -publish-url)")
	protocol := fs.String("protocol", "", "play every -url with this protocol: rtmp, flv, ws-flv, hls or whep (default: from each URL;\nwith hls, http://host:port/app/stream gets /index.m3u8 appended, with whep /whep)")
	players := fs.Int("players", bench.DefaultPlayers, "number of concurrent players")
	duration := fs.Duration("duration", bench.DefaultDuration, "length of the whole run; everything stops after it")
	ramp := fs.Duration("ramp", bench.DefaultRamp, "spread the players' connection starts evenly over this time")
	timeout := fs.Duration("timeout", bench.DefaultTimeout, "limit for connecting, and for a connection staying silent")
	publishFile := fs.String("publish", "", "FLV file to publish over RTMP (or WHIP) in real time, looping, while the players play")
	publishers := fs.Int("publishers", 1, "number of publishers of the -publish file (each on its own stream)")
	publishURL := fs.String("publish-url", "", "where to publish: rtmp://host:port/app/stream, or http://host:port/app/stream/whip to publish\nthe file's video over WHIP; with "+bench.Placeholder+" for several publishers (default: the -url when it is rtmp)")
	asJSON := fs.Bool("json", false, "print the summary as JSON on stdout (the text summary then goes to stderr)")
	progress := fs.Duration("progress", bench.DefaultProgress, "interval of the progress line on stderr; 0 disables it")
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stderr, benchUsage)
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			return nil
		}
		return fmt.Errorf("bench: %w (see quasipaa bench -h)", err)
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("bench: unexpected argument %q (see quasipaa bench -h)", fs.Arg(0))
	}

	var proto bench.Protocol
	if *protocol != "" {
		p, err := bench.ParseProtocol(*protocol)
		if err != nil {
			return fmt.Errorf("bench: -protocol: %w (see quasipaa bench -h)", err)
		}
		proto = p
	}
	cfg := bench.Config{
		Protocol:    proto,
		URLs:        urls,
		Players:     *players,
		Duration:    *duration,
		Ramp:        *ramp,
		Timeout:     *timeout,
		PublishFile: *publishFile,
		PublishURL:  *publishURL,
		Progress:    *progress,
		ProgressOut: stderr,
	}
	if cfg.PublishFile != "" {
		cfg.Publishers = *publishers
		if cfg.PublishURL == "" && len(urls) == 1 && strings.HasPrefix(urls[0], "rtmp://") {
			cfg.PublishURL = urls[0]
		}
		if len(cfg.URLs) == 0 && cfg.PublishURL != "" && (proto == "" || proto == bench.RTMP) {
			cfg.URLs = []string{cfg.PublishURL}
		}
	}
	if len(cfg.URLs) == 0 && cfg.Players > 0 {
		return errors.New("bench: -url is required (see quasipaa bench -h)")
	}

	report, err := bench.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	text := stdout
	if *asJSON {
		text = stderr
	}
	if err := bench.WriteText(text, &report.Summary); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(&report.Summary); err != nil {
			return err
		}
	}
	if !report.OK() {
		msg := fmt.Sprintf("%d of %d players failed", report.Summary.Failed, report.Summary.Players)
		if p := report.Publishers; p != nil && p.Failed > 0 {
			msg += fmt.Sprintf(", %d of %d publishers failed", p.Failed, p.Publishers)
		}
		return errors.New("bench: " + msg)
	}
	return nil
}
