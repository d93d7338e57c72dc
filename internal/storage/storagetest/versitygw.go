package storagetest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/quasipaa/quasipaa/internal/storage"
)

// VersityGW is a versitygw S3 server run by a test, serving a temporary
// directory on a loopback port.
type VersityGW struct {
	// Config reaches the server; its Bucket is "quasipaa" and CreateBucket is set.
	Config storage.S3Config

	t    testing.TB
	bin  string
	dir  string
	addr string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// versityBin finds versitygw on PATH or in $(go env GOPATH)/bin.
func versityBin() string {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	for p := range strings.SplitSeq(gopath, string(os.PathListSeparator)) {
		if p == "" {
			continue
		}
		bin := filepath.Join(p, "bin", "versitygw")
		if fi, err := os.Stat(bin); err == nil && !fi.IsDir() {
			return bin
		}
	}
	return ""
}

// StartVersityGW starts versitygw and stops it when the test ends. Without
// the binary the test is skipped, or fails when CI=true. Install it with
// scripts/deps.sh.
func StartVersityGW(t testing.TB) *VersityGW {
	t.Helper()
	bin := versityBin()
	if bin == "" {
		msg := "versitygw not found on PATH or in $(go env GOPATH)/bin; run scripts/deps.sh"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	g := &VersityGW{t: t, bin: bin, dir: dir, addr: freeAddr(t)}
	g.Config = storage.S3Config{
		Endpoint:     g.addr,
		Bucket:       "quasipaa",
		AccessKey:    "quasipaa-test",
		SecretKey:    "quasipaa-test-secret",
		Region:       "us-east-1",
		PathStyle:    true,
		CreateBucket: true,
	}
	g.Start()
	t.Cleanup(g.Stop)
	return g
}

// Start launches the server (again, after Stop) on the same address and
// directory, and waits until it accepts connections.
func (g *VersityGW) Start() {
	g.t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cmd != nil {
		return
	}
	cmd := exec.Command(g.bin,
		"--access", g.Config.AccessKey, "--secret", g.Config.SecretKey,
		"--region", g.Config.Region, "--port", g.addr, "--quiet",
		"posix", g.dir)
	logf, err := os.Create(filepath.Join(g.t.TempDir(), "versitygw.log"))
	if err != nil {
		g.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		g.t.Fatalf("start versitygw: %v", err)
	}
	logf.Close()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	g.cmd, g.exited = cmd, exited
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", g.addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(logf.Name())
			g.cmd = nil
			g.t.Fatalf("versitygw exited at start: %s", b)
		default:
		}
		if time.Now().After(deadline) {
			g.stopLocked()
			g.t.Fatalf("versitygw did not listen on %s within 15s", g.addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the server (by its PID) and waits for it to exit; the stored
// objects stay for a later Start.
func (g *VersityGW) Stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopLocked()
}

func (g *VersityGW) stopLocked() {
	if g.cmd == nil {
		return
	}
	_ = g.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-g.exited: // reaped by the goroutine started in Start
	case <-time.After(10 * time.Second):
		g.t.Errorf("versitygw (pid %d) did not exit after SIGKILL", g.cmd.Process.Pid)
	}
	g.cmd = nil
}

// NewStore returns a Store on a new bucket of this server, so each caller
// starts empty.
func (g *VersityGW) NewStore(t testing.TB) *storage.S3 {
	t.Helper()
	cfg := g.Config
	cfg.Bucket = fmt.Sprintf("test-%d", bucketSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s, err := storage.NewS3(ctx, cfg)
	if err != nil {
		t.Fatalf("NewS3: %v", err)
	}
	return s
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

var bucketSeq atomic.Int64
