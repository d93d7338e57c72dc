package e2e

// A minimal W3C WebDriver client (https://www.w3.org/TR/webdriver2/) for
// headless Chromium driven by chromedriver: plain net/http and encoding/json.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// browser is one headless Chromium session behind its own chromedriver.
type browser struct {
	t         *testing.T
	base      string // http://127.0.0.1:PORT of chromedriver
	session   string
	dir       string // private to this browser; on its processes' command lines
	driver    *exec.Cmd
	exited    chan struct{}
	logPath   string // chromedriver's log
	artefacts string
	client    *http.Client
	closed    bool
}

// browserFlags are the Chromium flags every test browser gets, besides
// --user-data-dir.
var browserFlags = []string{
	"--no-sandbox",
	"--headless=new",
	"--disable-background-networking",
	"--use-fake-device-for-media-stream",
	"--use-fake-ui-for-media-stream",
	"--autoplay-policy=no-user-gesture-required",
	// Chromium leaves loopback addresses out of ICE unless told otherwise.
	"--allow-loopback-in-peer-connection",
	"--disable-dev-shm-usage",
	"--no-first-run",
	"--no-default-browser-check",
	"--window-size=1280,900",
}

// startBrowser starts chromedriver on a free loopback port and opens a
// Chromium session; everything is ended by PID when the test ends. Without
// chromium or chromedriver the test is skipped (failed when CI=true).
func startBrowser(t *testing.T, extraFlags ...string) *browser {
	t.Helper()
	requireTools(t, "chromium", "chromedriver")
	chromium, _ := exec.LookPath("chromium")
	driverPath, _ := exec.LookPath("chromedriver")

	dir := t.TempDir()
	port := freeTCPPort(t)
	b := &browser{
		t:         t,
		dir:       dir,
		base:      "http://127.0.0.1:" + strconv.Itoa(port),
		exited:    make(chan struct{}),
		logPath:   filepath.Join(dir, "chromedriver.log"),
		artefacts: artefactsDir(t),
		client:    &http.Client{},
	}
	b.driver = exec.Command(driverPath, "--port="+strconv.Itoa(port), "--log-path="+b.logPath)
	// Chromium keeps nothing outside dir: its profile, and its crash
	// handler's database, which names dir on its command line.
	b.driver.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_CACHE_HOME="+filepath.Join(dir, "cache"))
	// Its own process group: chromedriver, Chromium and Chromium's helpers
	// are ended together with kill(-pgid).
	b.driver.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &syncBuffer{}
	b.driver.Stdout, b.driver.Stderr = out, out
	if err := b.driver.Start(); err != nil {
		t.Fatalf("start chromedriver: %v", err)
	}
	go func() { _ = b.driver.Wait(); close(b.exited) }()
	t.Cleanup(b.close)

	deadline := time.Now().Add(20 * time.Second)
	for {
		var st struct {
			Ready bool `json:"ready"`
		}
		if err := b.call(http.MethodGet, "/status", nil, &st, 2*time.Second); err == nil && st.Ready {
			break
		}
		select {
		case <-b.exited:
			t.Fatalf("chromedriver exited before it was ready: %s\n%s", out.String(), b.driverLog())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromedriver not ready within 20 s: %s\n%s", out.String(), b.driverLog())
		}
		time.Sleep(100 * time.Millisecond)
	}

	args := append(append([]string{}, browserFlags...), "--user-data-dir="+filepath.Join(dir, "profile"))
	args = append(args, extraFlags...)
	caps := map[string]any{
		"capabilities": map[string]any{
			"alwaysMatch": map[string]any{
				"browserName":      "chrome",
				"pageLoadStrategy": "normal",
				"timeouts":         map[string]int{"script": 30_000, "pageLoad": 30_000, "implicit": 0},
				"goog:chromeOptions": map[string]any{
					"binary": chromium,
					"args":   args,
				},
				"goog:loggingPrefs": map[string]string{"browser": "ALL"},
			},
		},
	}
	var created struct {
		SessionID    string         `json:"sessionId"`
		Capabilities map[string]any `json:"capabilities"`
	}
	if err := b.call(http.MethodPost, "/session", caps, &created, 60*time.Second); err != nil {
		t.Fatalf("new WebDriver session: %v\n%s", err, b.driverLog())
	}
	b.session = created.SessionID
	t.Logf("browser: %v %v, chromedriver pid %d", created.Capabilities["browserName"], created.Capabilities["browserVersion"], b.driver.Process.Pid)
	return b
}

// freeTCPPort asks the kernel for a free loopback port; chromedriver cannot
// report the port it picked itself.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// artefactsDir is where screenshots go: $E2E_ARTEFACTS/<test name>, or a
// temporary directory that disappears with the test. (Not a QUASIPAA_*
// variable: the server refuses those it does not know, and startServer
// hands it the whole environment.)
func artefactsDir(t *testing.T) string {
	root := os.Getenv("E2E_ARTEFACTS")
	if root == "" {
		return t.TempDir()
	}
	dir := filepath.Join(root, regexp.MustCompile(`[^A-Za-z0-9._-]+`).ReplaceAllString(t.Name(), "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artefacts dir: %v", err)
	}
	return dir
}

// webdriverError is an error answer of the WebDriver protocol.
type webdriverError struct {
	Status  int
	Code    string `json:"error"`
	Message string `json:"message"`
}

func (e *webdriverError) Error() string {
	msg, _, _ := strings.Cut(e.Message, "\n  (Session info")
	return fmt.Sprintf("webdriver %d %s: %s", e.Status, e.Code, msg)
}

// call sends one WebDriver command and decodes its "value" into out.
func (b *browser) call(method, path string, in, out any, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		buf, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("%s %s: %d %q: %w", method, path, resp.StatusCode, tail(string(raw), 500), err)
	}
	if resp.StatusCode != http.StatusOK {
		we := &webdriverError{Status: resp.StatusCode}
		_ = json.Unmarshal(env.Value, we)
		return we
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(env.Value, out)
}

func (b *browser) sessionCall(method, path string, in, out any, timeout time.Duration) error {
	return b.call(method, "/session/"+b.session+path, in, out, timeout)
}

// open navigates to url and waits for the page to load.
func (b *browser) open(url string) {
	b.t.Helper()
	if err := b.sessionCall(http.MethodPost, "/url", map[string]string{"url": url}, nil, 40*time.Second); err != nil {
		b.t.Fatalf("open %s: %v", url, err)
	}
}

// execSync runs script as the body of a function (WebDriver "Execute
// Script"; arguments are in arguments[]) and decodes what it returns.
func (b *browser) execSync(out any, script string, args ...any) error {
	if args == nil {
		args = []any{}
	}
	return b.sessionCall(http.MethodPost, "/execute/sync", map[string]any{"script": script, "args": args}, out, 40*time.Second)
}

// execAsync runs script as the body of a function whose last argument is
// the callback that ends it (WebDriver "Execute Async Script"), bounded by
// the session's 30 s script timeout.
func (b *browser) execAsync(out any, script string, args ...any) error {
	if args == nil {
		args = []any{}
	}
	return b.sessionCall(http.MethodPost, "/execute/async", map[string]any{"script": script, "args": args}, out, 40*time.Second)
}

// evalScript wraps an expression so that a Promise is awaited and a thrown
// error comes back as {err}.
const evalScript = `const done = arguments[arguments.length - 1];
Promise.resolve().then(() => (%s)).then(
  (v) => done({ ok: v === undefined ? null : v }),
  (e) => done({ err: String((e && e.stack) || e) }));`

// tryEval evaluates a JavaScript expression in the page, awaiting it when it
// is a Promise, and decodes its value into out (when out is not nil).
func (b *browser) tryEval(out any, expr string) error {
	var res struct {
		OK  json.RawMessage `json:"ok"`
		Err *string         `json:"err"`
	}
	if err := b.execAsync(&res, fmt.Sprintf(evalScript, expr)); err != nil {
		return err
	}
	if res.Err != nil {
		return fmt.Errorf("javascript: %s", *res.Err)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(res.OK, out)
}

// eval evaluates a JavaScript expression (a Promise is awaited) and returns
// its value as encoding/json decodes it into an any.
func (b *browser) eval(expr string) any {
	b.t.Helper()
	var v any
	if err := b.tryEval(&v, expr); err != nil {
		b.t.Fatalf("eval %s: %v", expr, err)
	}
	return v
}

// evalInto evaluates a JavaScript expression (a Promise is awaited) into out.
func (b *browser) evalInto(out any, expr string) {
	b.t.Helper()
	if err := b.tryEval(out, expr); err != nil {
		b.t.Fatalf("eval %s: %v", expr, err)
	}
}

// waitFor polls a JavaScript predicate (a Promise is awaited) until it is
// truthy and returns its value; after timeout it saves a screenshot, logs
// the browser console and fails the test.
func (b *browser) waitFor(predicate string, timeout time.Duration) any {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	var last any
	var lastErr error
	for {
		var v any
		lastErr = b.tryEval(&v, predicate)
		if lastErr == nil {
			last = v
			if truthy(v) {
				return v
			}
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	b.screenshot("timeout")
	b.logConsole()
	b.t.Fatalf("waited %s for %s: last value %v, last error %v", timeout, predicate, last, lastErr)
	return nil
}

// truthy is JavaScript's truthiness for a JSON-decoded value.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0
	case string:
		return x != ""
	}
	return true
}

// screenshot saves a PNG of the viewport as name.png in the artefacts
// directory, logs and returns its path ("" when it failed).
func (b *browser) screenshot(name string) string {
	b.t.Helper()
	var data string
	if err := b.sessionCall(http.MethodGet, "/screenshot", nil, &data, 30*time.Second); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	png, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(b.artefacts, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	b.t.Logf("screenshot: %s", path)
	return path
}

// consoleLogs returns the browser console messages logged since the last
// call (chromedriver's log endpoint; empty when it is not available).
func (b *browser) consoleLogs() []string {
	var entries []struct {
		Level   string `json:"level"`
		Message string `json:"message"`
	}
	if err := b.sessionCall(http.MethodPost, "/se/log", map[string]string{"type": "browser"}, &entries, 10*time.Second); err != nil {
		return nil
	}
	lines := make([]string, 0, len(entries))
	for _, e := range entries {
		lines = append(lines, e.Level+" "+e.Message)
	}
	return lines
}

// logConsole logs the browser console messages not logged yet.
func (b *browser) logConsole() {
	b.t.Helper()
	if lines := b.consoleLogs(); len(lines) > 0 {
		b.t.Logf("browser console:\n%s", strings.Join(lines, "\n"))
	}
}

func (b *browser) driverLog() string {
	raw, err := os.ReadFile(b.logPath)
	if err != nil {
		return ""
	}
	return "chromedriver log: " + tail(string(raw), 3000)
}

// close ends the session, then chromedriver's process group and any
// descendant that left it, by PID.
func (b *browser) close() {
	if b.closed {
		return
	}
	b.closed = true
	if b.t.Failed() && b.session != "" {
		b.logConsole()
	}
	// Processes to end, found before chromedriver goes and they are
	// re-parented.
	pids := descendants(b.driver.Process.Pid)
	if b.session != "" {
		if err := b.sessionCall(http.MethodDelete, "", nil, nil, 15*time.Second); err != nil {
			b.t.Logf("delete WebDriver session: %v", err)
		}
	}
	pgid := b.driver.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(5 * time.Second):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	for _, p := range pids {
		// The start time tells a leftover from a new process with a reused PID.
		if st, ok := readStat(p.pid); ok && st.start == p.start && st.state != "Z" {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
	select {
	case <-b.exited:
	case <-time.After(5 * time.Second):
		b.t.Errorf("chromedriver (pid %d) did not exit", pgid)
	}
	// Chromium's crash handler detaches (parent 1, its own process group)
	// and ends by itself once Chromium is gone; it is known by b.dir on its
	// command line. Give it 3 s, then end it by PID.
	for wait := 0; ; wait++ {
		left := processesNaming(b.dir)
		if len(left) == 0 {
			return
		}
		if wait == 30 {
			for _, p := range left {
				if st, ok := readStat(p.pid); ok && st.start == p.start {
					_ = syscall.Kill(p.pid, syscall.SIGKILL)
				}
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// processesNaming lists the live processes whose command line contains s.
func processesNaming(s string) []procStat {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []procStat
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !bytes.Contains(cmdline, []byte(s)) {
			continue
		}
		if st, ok := readStat(pid); ok && st.state != "Z" {
			out = append(out, st)
		}
	}
	return out
}

// procStat is what close needs from /proc/PID/stat.
type procStat struct {
	pid, ppid int
	state     string
	start     string // start time in clock ticks since boot
}

// readStat reads /proc/PID/stat; the command name may hold spaces and
// parentheses, so fields are counted from its closing parenthesis.
func readStat(pid int) (procStat, bool) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return procStat{}, false
	}
	// After the name: state(3) ppid(4) … starttime(22).
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 20 {
		return procStat{}, false
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, false
	}
	return procStat{pid: pid, ppid: ppid, state: f[0], start: f[19]}, true
}

// descendants lists every process below pid, from /proc.
func descendants(pid int) []procStat {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]procStat{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(p); ok {
			children[st.ppid] = append(children[st.ppid], st)
		}
	}
	var out []procStat
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out
}
