package transcode

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/quasipaa/quasipaa/internal/media"
)

// stderrLines is how many of ffmpeg's last stderr lines are kept.
const stderrLines = 16

// ffmpegTranscoder is the Transcoder NewFFmpeg returns: one ffmpeg process
// at a time, fed on stdin and read on stdout, restarted when it dies.
//
// Goroutines: supervise (for the transcoder's life) and, per process,
// feed, watch, readOutput and readStderr, all waited for by run.
type ffmpegTranscoder struct {
	opts FFmpegOptions
	log  *slog.Logger
	path string
	conv *conversion
	in   *media.Track

	queue     chan *media.Frame
	out       chan Output
	closing   chan struct{}
	closeOnce sync.Once
	done      chan struct{}
	stopCtx   func() bool

	track atomic.Pointer[media.Track]
	pid   atomic.Int64

	tailMu sync.Mutex
	tail   []string

	framesIn, framesOut   atomic.Uint64
	droppedIn, droppedOut atomic.Uint64
	restarts, reanchors   atomic.Uint64

	// Owned by the output goroutine of the running process; processes run
	// one after the other.
	haveLast bool
	lastEnd  time.Duration
}

// process is one run of ffmpeg.
type process struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stdout  io.ReadCloser
	stderr  io.ReadCloser
	tl      *timeline
	started time.Time
	// exited is closed once the process was waited for.
	exited chan struct{}
	// Unix nanoseconds of the first and last frame fed, and the last output.
	firstIn, lastIn, lastOut atomic.Int64
	// tail holds the process's last stderr lines, guarded by the
	// transcoder's tailMu.
	tail []string
}

// NewFFmpeg starts an ffmpeg process converting the frames of track in to
// codec out: AAC to Opus (48 kHz, libopus, 20 ms packets) or Opus to AAC
// (48 kHz, AAC LC), mono or stereo following the input. The process is
// restarted when it exits until Close, or until ctx is done. It returns
// ErrFFmpegNotFound when ffmpeg cannot be found and ErrUnsupported for
// other conversions.
func NewFFmpeg(ctx context.Context, in *media.Track, out media.Codec, opts FFmpegOptions) (Transcoder, error) {
	opts.setDefaults()
	conv, err := plan(in, out, opts.Bitrate)
	if err != nil {
		return nil, err
	}
	path, err := exec.LookPath(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFFmpegNotFound, err)
	}
	t := &ffmpegTranscoder{
		opts:    opts,
		log:     opts.Logger.With("component", "transcode", "from", in.Codec.String(), "to", out.String()),
		path:    path,
		conv:    conv,
		in:      in,
		queue:   make(chan *media.Frame, opts.QueueSize),
		out:     make(chan Output, opts.OutputBuffer),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	p, err := t.start()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.EACCES) {
			err = fmt.Errorf("%w: %w", ErrFFmpegNotFound, err)
		}
		return nil, err
	}
	t.stopCtx = context.AfterFunc(ctx, t.signalClose)
	t.log.Debug("ffmpeg started", "pid", p.cmd.Process.Pid, "args", strings.Join(conv.args, " "))
	go t.supervise(p)
	return t, nil
}

// Write implements Transcoder.
func (t *ffmpegTranscoder) Write(f *media.Frame) error {
	select {
	case <-t.closing:
		return ErrClosed
	default:
	}
	t.framesIn.Add(1)
	select {
	case t.queue <- f:
	default:
		t.droppedIn.Add(1)
	}
	return nil
}

// Output implements Transcoder.
func (t *ffmpegTranscoder) Output() <-chan Output { return t.out }

// Track implements Transcoder.
func (t *ffmpegTranscoder) Track() *media.Track { return t.track.Load() }

// Stats implements Transcoder.
func (t *ffmpegTranscoder) Stats() Stats {
	t.tailMu.Lock()
	tail := append([]string(nil), t.tail...)
	t.tailMu.Unlock()
	return Stats{
		FramesIn:   t.framesIn.Load(),
		FramesOut:  t.framesOut.Load(),
		DroppedIn:  t.droppedIn.Load(),
		DroppedOut: t.droppedOut.Load(),
		Restarts:   t.restarts.Load(),
		Reanchors:  t.reanchors.Load(),
		PID:        int(t.pid.Load()),
		Stderr:     tail,
	}
}

// Close implements Transcoder.
func (t *ffmpegTranscoder) Close() error {
	t.signalClose()
	<-t.done
	t.stopCtx()
	return nil
}

func (t *ffmpegTranscoder) signalClose() { t.closeOnce.Do(func() { close(t.closing) }) }

func (t *ffmpegTranscoder) isClosing() bool {
	select {
	case <-t.closing:
		return true
	default:
		return false
	}
}

// start starts one ffmpeg process.
func (t *ffmpegTranscoder) start() (*process, error) {
	cmd := exec.Command(t.path, t.conv.args...)
	configureCmd(cmd)
	p := &process{cmd: cmd, exited: make(chan struct{}), started: time.Now()}
	var err error
	p.stdin, err = cmd.StdinPipe()
	if err == nil {
		p.stdout, err = cmd.StdoutPipe()
	}
	if err == nil {
		p.stderr, err = cmd.StderrPipe()
	}
	if err != nil {
		// Start closes the pipes when it fails, but it was not called.
		for _, c := range []io.Closer{p.stdin, p.stdout, p.stderr} {
			if c != nil {
				_ = c.Close()
			}
		}
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("transcode: starting %s: %w", t.path, err)
	}
	t.pid.Store(int64(cmd.Process.Pid))
	return p, nil
}

// supervise runs processes one after the other until Close.
func (t *ffmpegTranscoder) supervise(p *process) {
	defer close(t.done)
	defer close(t.out)
	backoff := t.opts.MinBackoff
	for {
		err := t.run(p)
		if t.isClosing() {
			return
		}
		if time.Since(p.started) > 2*t.opts.MaxBackoff {
			backoff = t.opts.MinBackoff
		}
		t.log.Warn("ffmpeg exited, restarting", "pid", p.cmd.Process.Pid, "err", errString(err),
			"ran", time.Since(p.started).Round(time.Millisecond), "backoff", backoff, "stderr", t.processTail(p))
		for {
			if !t.pause(backoff) {
				return
			}
			backoff = min(2*backoff, t.opts.MaxBackoff)
			var err error
			if p, err = t.start(); err == nil {
				break
			}
			t.log.Error("ffmpeg restart failed", "err", err, "backoff", backoff)
		}
		t.restarts.Add(1)
		t.log.Info("ffmpeg restarted", "pid", p.cmd.Process.Pid)
	}
}

func errString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// pause waits d, dropping the frames written meanwhile: they would come out
// late. It returns false when the transcoder is closing.
func (t *ffmpegTranscoder) pause(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			return true
		case <-t.closing:
			return false
		case <-t.queue:
			t.droppedIn.Add(1)
		}
	}
}

// run serves process p until it exits and all its goroutines are done.
func (t *ffmpegTranscoder) run(p *process) error {
	framer := t.conv.newFramer()
	p.tl = newTimeline(framer.rate(), t.opts.Tolerance)
	var pipes, side sync.WaitGroup
	pipes.Add(2)
	go func() {
		defer pipes.Done()
		t.readOutput(p)
	}()
	go func() {
		defer pipes.Done()
		t.readStderr(p)
	}()
	side.Add(2)
	go func() {
		defer side.Done()
		t.feed(p, framer)
	}()
	go func() {
		defer side.Done()
		t.watch(p)
	}()
	// Wait must follow the last read of the pipes.
	pipes.Wait()
	err := p.cmd.Wait()
	close(p.exited)
	side.Wait()
	t.pid.CompareAndSwap(int64(p.cmd.Process.Pid), 0)
	return err
}

// feed writes queued frames to ffmpeg's stdin. On Close it writes what is
// still queued, then closes stdin so ffmpeg flushes its encoder and exits.
func (t *ffmpegTranscoder) feed(p *process, framer inputFramer) {
	defer p.stdin.Close()
	buf := framer.start(make([]byte, 0, 4096))
	if len(buf) > 0 {
		if _, err := p.stdin.Write(buf); err != nil {
			return
		}
	}
	for {
		select {
		case f := <-t.queue:
			if !t.feedFrame(p, framer, &buf, f) {
				return
			}
		case <-p.exited:
			return
		case <-t.closing:
			for {
				select {
				case f := <-t.queue:
					if !t.feedFrame(p, framer, &buf, f) {
						return
					}
				default:
					return
				}
			}
		}
	}
}

// feedFrame writes one frame; false means stdin is broken.
func (t *ffmpegTranscoder) feedFrame(p *process, framer inputFramer, buf *[]byte, f *media.Frame) bool {
	b, n, err := framer.frame((*buf)[:0], f)
	*buf = b
	if err != nil {
		t.droppedIn.Add(1)
		return true
	}
	if p.tl.in(f.PTS, n) {
		t.reanchors.Add(1)
	}
	if _, err := p.stdin.Write(b); err != nil {
		t.droppedIn.Add(1)
		return false
	}
	now := time.Now().UnixNano()
	p.firstIn.CompareAndSwap(0, now)
	p.lastIn.Store(now)
	return true
}

// watch stops the process on Close (drain, SIGTERM, SIGKILL) and kills it
// when it stalls.
func (t *ffmpegTranscoder) watch(p *process) {
	tick := time.NewTicker(min(time.Second, max(t.opts.StallTimeout/4, 10*time.Millisecond)))
	defer tick.Stop()
	closing := t.closing
	var term, kill <-chan time.Time
	var timers []*time.Timer
	defer func() {
		for _, tm := range timers {
			tm.Stop()
		}
	}()
	after := func(d time.Duration) <-chan time.Time {
		tm := time.NewTimer(d)
		timers = append(timers, tm)
		return tm.C
	}
	for {
		select {
		case <-p.exited:
			return
		case <-closing:
			closing = nil
			term = after(t.opts.DrainTimeout)
		case <-term:
			term = nil
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			kill = after(t.opts.KillTimeout)
		case <-kill:
			kill = nil
			t.log.Warn("ffmpeg ignored SIGTERM, killing it", "pid", p.cmd.Process.Pid)
			_ = p.cmd.Process.Kill()
		case now := <-tick.C:
			if closing == nil {
				continue
			}
			first, last, out := p.firstIn.Load(), p.lastIn.Load(), p.lastOut.Load()
			since := max(first, out)
			fed := first != 0 && now.UnixNano()-last < int64(2*time.Second)
			if fed && now.UnixNano()-since > int64(t.opts.StallTimeout) {
				t.log.Warn("ffmpeg stalled: fed but no output, killing it", "pid", p.cmd.Process.Pid, "timeout", t.opts.StallTimeout)
				_ = p.cmd.Process.Kill()
			}
		}
	}
}

// readOutput parses ffmpeg's stdout and sends the frames it holds.
func (t *ffmpegTranscoder) readOutput(p *process) {
	rd := t.conv.newReader(p.stdout)
	var (
		samples int64
		from    *media.Track // rd's track the current one was made from
		track   *media.Track
	)
	for {
		payload, n, err := rd.read()
		if err != nil {
			if err != io.EOF && !t.isClosing() {
				t.log.Warn("bad output from ffmpeg, killing it", "pid", p.cmd.Process.Pid, "err", err)
				_ = p.cmd.Process.Kill()
			}
			// Unblock ffmpeg until it exits so that it is not stuck
			// writing and Wait can return.
			_, _ = io.Copy(io.Discard, p.stdout)
			return
		}
		now := time.Now()
		p.lastOut.Store(now.UnixNano())
		if rt := rd.track(); rt != from {
			from = rt
			track = t.setTrack(rt)
		}
		rate := rd.rate()
		pos := samplesToDuration(samples-rd.delay(), rate)
		samples += n
		pts, ok := p.tl.at(pos)
		if !ok || pts < 0 || (t.haveLast && pts < t.lastEnd-time.Millisecond && t.lastEnd-pts < t.opts.Discontinuity) {
			t.droppedOut.Add(1)
			continue
		}
		t.haveLast, t.lastEnd = true, pts+samplesToDuration(n, rate)
		o := Output{Track: track, Frame: &media.Frame{DTS: pts, PTS: pts, Key: true, Payload: bytes.Clone(payload), Ingest: now}}
		select {
		case t.out <- o:
			t.framesOut.Add(1)
		default:
			t.droppedOut.Add(1)
		}
	}
}

// setTrack makes tr the output track unless it equals the current one,
// and returns the track to use.
func (t *ffmpegTranscoder) setTrack(tr *media.Track) *media.Track {
	if cur := t.track.Load(); cur != nil && sameTrack(cur, tr) {
		return cur
	}
	t.track.Store(tr)
	return tr
}

// readStderr keeps ffmpeg's last stderr lines and logs them at debug level.
func (t *ffmpegTranscoder) readStderr(p *process) {
	sc := bufio.NewScanner(p.stderr)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		line := sc.Text()
		t.log.Debug("ffmpeg", "pid", p.cmd.Process.Pid, "stderr", line)
		t.tailMu.Lock()
		t.tail = appendLine(t.tail, line)
		p.tail = appendLine(p.tail, line)
		t.tailMu.Unlock()
	}
	_, _ = io.Copy(io.Discard, p.stderr)
}

// appendLine appends line to the last stderrLines lines of tail.
func appendLine(tail []string, line string) []string {
	if len(tail) == stderrLines {
		copy(tail, tail[1:])
		tail = tail[:stderrLines-1]
	}
	return append(tail, line)
}

// processTail returns p's last stderr lines as one string.
func (t *ffmpegTranscoder) processTail(p *process) string {
	t.tailMu.Lock()
	defer t.tailMu.Unlock()
	return strings.Join(p.tail, "\n")
}
