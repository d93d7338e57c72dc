// Command quasipaa is the Quasipaa live-streaming server. With no arguments
// it runs every role in one process on the embedded defaults.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"github.com/quasipaa/quasipaa/internal/config"
	"github.com/quasipaa/quasipaa/internal/logging"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usage = `Quasipaa: a distributed live-streaming server.

Usage:
  quasipaa [serve] [--config FILE]  run the server (all roles in one process by default)
           [--roles publish,exchange,pull,core] [--redis redis://HOST:6379/0]
           [--node-id ID] [--advertise HOST]
                                    run as one node of a cluster (docs/cluster.md)
  quasipaa version                  print the version
  quasipaa config default           print the default config file, every key commented
  quasipaa bench [flags]            load-test a running server
  quasipaa token --path P --action publish|play [--ttl 1h] [--ip IP]
                                    print a publish/play token (docs/auth.md)
  quasipaa help                     show this help

Without --config the file named by QUASIPAA_CONFIG is read, if set; without
either, the embedded defaults are used. Every key can be overridden from the
environment as QUASIPAA_<SECTION>_<KEY>, e.g. QUASIPAA_RTMP_LISTEN=:1935.
Reference: docs/config.md.
`

// reloadMessage is logged on SIGHUP.
const reloadMessage = "reload is not supported yet; restart to apply config changes"

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// run executes one command line and returns the process exit code:
// 0 success, 1 runtime or configuration error, 2 usage error.
func run(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return serve(nil, environ, stderr)
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return serve(rest, environ, stderr)
	case "version":
		if len(rest) != 0 {
			return usageError(stderr, "version takes no arguments")
		}
		fmt.Fprintf(stdout, "quasipaa %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "config":
		if len(rest) != 1 || rest[0] != "default" {
			return usageError(stderr, `config: the only subcommand is "config default"`)
		}
		fmt.Fprint(stdout, config.DefaultYAML())
		return 0
	case "bench":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := runBench(ctx, rest, stdout); err != nil {
			fmt.Fprintf(stderr, "quasipaa: %v\n", err)
			return 1
		}
		return 0
	case "token":
		return runToken(rest, environ, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stderr, usage)
		return 2
	default:
		if strings.HasPrefix(cmd, "-") {
			return serve(args, environ, stderr) // "quasipaa --config x" means serve
		}
		return usageError(stderr, fmt.Sprintf("unknown command %q", cmd))
	}
}

func usageError(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "quasipaa: %s\n\n%s", msg, usage)
	return 2
}

// serve loads the configuration and runs the server until SIGINT or SIGTERM.
func serve(args, environ []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configPath := fs.String("config", "", "YAML config file (default: $QUASIPAA_CONFIG, else embedded defaults)")
	// The cluster flags are shorthands for cluster.* keys; they win over the
	// file and the environment.
	clusterFlags := map[string]*string{
		"QUASIPAA_CLUSTER_ROLES":     fs.String("roles", "", "roles of this node, comma-separated: publish,exchange,pull,core (cluster.roles)"),
		"QUASIPAA_CLUSTER_REDIS":     fs.String("redis", "", "Redis URL of the cluster registry (cluster.redis)"),
		"QUASIPAA_CLUSTER_NODE_ID":   fs.String("node-id", "", "name of this node in the cluster (cluster.node_id)"),
		"QUASIPAA_CLUSTER_ADVERTISE": fs.String("advertise", "", "host or IP other nodes and clients reach this node at (cluster.advertise)"),
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stderr, usage)
			return 2
		}
		return usageError(stderr, err.Error())
	}
	if fs.NArg() != 0 {
		return usageError(stderr, fmt.Sprintf("serve: unexpected argument %q", fs.Arg(0)))
	}
	path := *configPath
	if path == "" {
		path = lookupEnv(environ, config.EnvConfigFile)
	}

	for env, v := range clusterFlags {
		if *v != "" {
			environ = append(environ[:len(environ):len(environ)], env+"="+*v)
		}
	}
	cfg, err := config.Load(path, environ)
	if err != nil {
		fmt.Fprintf(stderr, "quasipaa: %v\n", err)
		return 1
	}
	log, err := logging.New(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "quasipaa: %v\n", err)
		return 1
	}

	// SIGHUP is registered before anything is logged, so a supervisor that
	// waits for the first log line can send it safely.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The watcher logs SIGHUP, and on the first SIGINT/SIGTERM restores the
	// default handlers so that a second one kills the process at once.
	done := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Add(1)
	go func() {
		defer watcher.Done()
		ctxDone := ctx.Done()
		shuttingDown := func() {
			stop()
			log.Info("shutting down; send the signal again to force", "cause", context.Cause(ctx))
			ctxDone = nil
		}
		for {
			select {
			case <-hup:
				log.Warn(reloadMessage)
			case <-ctxDone:
				shuttingDown()
			case <-done:
				if ctxDone != nil && ctx.Err() != nil {
					shuttingDown()
				}
				return
			}
		}
	}()

	source := path
	if source == "" {
		source = "embedded defaults"
	}
	rtmp := cfg.RTMP.Listen
	if rtmp == "" {
		rtmp = "disabled"
	}
	log.Info("quasipaa starting", "version", version, "config", source,
		"rtmp", rtmp, "http", cfg.HTTP.Listen, "storage", cfg.Storage.Dir)
	err = runServe(ctx, cfg, log)
	close(done)
	watcher.Wait()
	if err != nil {
		log.Error("quasipaa failed", "err", err)
		return 1
	}
	log.Info("quasipaa stopped")
	return 0
}

// lookupEnv returns the value of name in environ (os.Environ form), or "".
func lookupEnv(environ []string, name string) string {
	value := ""
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			value = v
		}
	}
	return value
}
