package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/quasipaa/quasipaa/internal/config"
)

const testVersion = "v9.9.9-clitest"

// binPath is the quasipaa binary built once by TestMain.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "quasipaa-cli-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "quasipaa")
	if runtime.GOOS == "windows" {
		binPath += ".exe"
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	build := exec.Command(goTool, "build", "-ldflags", "-X main.version="+testVersion, "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building quasipaa:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cleanEnv is the test's environment without any QUASIPAA_ variable, plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, config.EnvPrefix) {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

type result struct {
	code           int
	stdout, stderr string
}

// quasipaa runs the binary to completion (30 s at most).
func quasipaa(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("quasipaa %v did not exit; stderr:\n%s", args, stderr.String())
	}
	return result{cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()}
}

func TestVersion(t *testing.T) {
	r := quasipaa(t, cleanEnv(), "version")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, testVersion)
	assert.Contains(t, r.stdout, runtime.Version())
}

func TestConfigDefault(t *testing.T) {
	r := quasipaa(t, cleanEnv(), "config", "default")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, config.DefaultYAML(), r.stdout)
	var m map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(r.stdout), &m))
	assert.Equal(t, ":1935", m["rtmp"].(map[string]any)["listen"])
	assert.Equal(t, "refuse", m["hub"].(map[string]any)["conflict"])
	assert.Equal(t, []any{}, m["apps"])

	// What it prints is a valid config file that loads as the defaults.
	p := filepath.Join(t.TempDir(), "q.yaml")
	require.NoError(t, os.WriteFile(p, []byte(r.stdout), 0o644))
	c, err := config.Load(p, nil)
	require.NoError(t, err)
	assert.Equal(t, config.Default(), c)
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--no-such-flag"},
		{"serve", "--no-such-flag"},
		{"serve", "extra-arg"},
		{"frobnicate"},
		{"help"},
		{"config"},
		{"config", "nope"},
		{"version", "x"},
	} {
		r := quasipaa(t, cleanEnv(), args...)
		assert.Equal(t, 2, r.code, "%v", args)
		assert.Contains(t, r.stderr, "Usage:", "%v", args)
		assert.Empty(t, r.stdout, "%v", args)
	}
}

func TestBadConfigFileExits1NamingTheKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(p, []byte("hub:\n  queue_sise: 64\n"), 0o644))

	r := quasipaa(t, cleanEnv(), "serve", "--config", p)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "hub.queue_sise: unknown key")

	// The same file named by QUASIPAA_CONFIG, with no subcommand.
	r = quasipaa(t, cleanEnv(config.EnvConfigFile+"="+p))
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "hub.queue_sise: unknown key")

	// An invalid value from the environment.
	r = quasipaa(t, cleanEnv("QUASIPAA_HUB_QUEUE_SIZE=abc"), "serve")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "hub.queue_size")
	assert.Contains(t, r.stderr, `invalid integer "abc"`)

	// A missing file.
	r = quasipaa(t, cleanEnv(), "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "missing.yaml")
}

// lineWatcher collects a process's stderr and lets a test wait for a line.
type lineWatcher struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	more chan struct{}
}

func watchStderr(cmd *exec.Cmd) *lineWatcher {
	w := &lineWatcher{more: make(chan struct{}, 1)}
	cmd.Stderr = w
	return w
}

// Write is called by os/exec with the process's stderr.
func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf.Write(p)
	w.mu.Unlock()
	select {
	case w.more <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *lineWatcher) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func (w *lineWatcher) waitFor(t *testing.T, substr string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for !strings.Contains(w.text(), substr) {
		select {
		case <-w.more:
		case <-deadline:
			t.Fatalf("no %q in stderr within %s; stderr:\n%s", substr, timeout, w.text())
		}
	}
}

func TestServeStopsOnSIGTERM(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs POSIX signals")
	}
	cmd := exec.Command(binPath, "serve")
	cmd.Dir = t.TempDir()
	cmd.Env = cleanEnv(
		"QUASIPAA_RTMP_LISTEN=127.0.0.1:0",
		"QUASIPAA_HTTP_LISTEN=127.0.0.1:0",
		"QUASIPAA_WEBRTC_UDP_LISTEN=127.0.0.1:0",
		"QUASIPAA_WEBRTC_TCP_LISTEN=127.0.0.1:0",
		"QUASIPAA_TURN_LISTEN=127.0.0.1:0",
		"QUASIPAA_STORAGE_DIR="+t.TempDir(),
	)
	w := watchStderr(cmd)
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})

	w.waitFor(t, "quasipaa starting", 20*time.Second)

	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	w.waitFor(t, reloadMessage, 5*time.Second)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-done:
		done <- err // for Cleanup
		require.NoError(t, err, "stderr:\n%s", w.text())
		assert.Equal(t, 0, cmd.ProcessState.ExitCode())
	case <-time.After(5 * time.Second):
		t.Fatalf("still running 5s after SIGTERM; stderr:\n%s", w.text())
	}
}
