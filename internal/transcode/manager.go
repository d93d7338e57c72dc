package transcode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/media"
)

// maxBatch bounds how many outputs one Job.Next call returns.
const maxBatch = 256

// ManagerOptions configure a Manager. Zero values take the defaults.
type ManagerOptions struct {
	// FFmpeg configures the converters (Logger defaults to the manager's).
	FFmpeg FFmpegOptions
	// IdleTimeout keeps a job running this long after its last consumer
	// released it, so that a consumer coming back (a page reload) finds it
	// warm (default 5 s).
	IdleTimeout time.Duration
	// RingSize is the number of converted frames a job keeps for its
	// consumers, rounded up to a power of two (default 512, about 10 s). A
	// consumer further behind skips ahead.
	RingSize int
	// Logger receives the manager's logs (default slog.Default()).
	Logger *slog.Logger
	// New makes the converters; nil means NewFFmpeg with FFmpeg.
	New func(ctx context.Context, in *media.Track, out media.Codec) (Transcoder, error)
}

// Manager runs one conversion job per (stream, output codec) while at least
// one consumer holds it. A job reads the stream from the hub itself,
// converts the stream's first audio track and shares the converted frames
// with all its consumers.
type Manager struct {
	h    *hub.Hub
	opts ManagerOptions
	log  *slog.Logger

	mu     sync.Mutex
	jobs   map[jobKey]*worker
	closed bool
	wg     sync.WaitGroup
}

type jobKey struct {
	path  string
	codec media.Codec
}

// NewManager returns a manager converting the streams of h.
func NewManager(h *hub.Hub, opts ManagerOptions) *Manager {
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 5 * time.Second
	}
	if opts.RingSize <= 0 {
		opts.RingSize = 512
	}
	n := 16
	for n < opts.RingSize {
		n <<= 1
	}
	opts.RingSize = n
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.FFmpeg.Logger == nil {
		opts.FFmpeg.Logger = opts.Logger
	}
	return &Manager{h: h, opts: opts, log: opts.Logger.With("component", "transcode"), jobs: make(map[jobKey]*worker)}
}

// Acquire returns a consumer's hold on the job converting the audio of the
// stream on path to want (media.CodecAAC or media.CodecOpus), starting the
// job if it does not run. The consumer reads from the newest frame on;
// it must call Release when done. When the stream's audio already is want,
// the job passes it through unchanged.
//
// It fails with ErrUnsupported for another codec, ErrFFmpegNotFound
// without ffmpeg, hub.ErrStreamNotFound when nothing is published on path
// and ErrClosed after Close.
func (m *Manager) Acquire(path string, want media.Codec) (*Job, error) {
	if want != media.CodecAAC && want != media.CodecOpus {
		return nil, fmt.Errorf("%w: output %s", ErrUnsupported, want)
	}
	if m.opts.New == nil {
		if _, err := exec.LookPath(m.ffmpegPath()); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrFFmpegNotFound, err)
		}
	}
	key := jobKey{path: path, codec: want}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	w := m.jobs[key]
	if w != nil && w.ended() {
		w = nil // it ended a moment ago and is about to be forgotten
	}
	if w == nil {
		r, err := m.h.Subscribe(path, hub.ClientInfo{Protocol: "transcode", RemoteAddr: "transcode:" + want.String()})
		if err != nil {
			return nil, err
		}
		w = m.newWorker(key, r)
		m.jobs[key] = w
		m.wg.Add(1)
		go w.run()
	}
	w.refs++
	if w.idle != nil {
		w.idle.Stop()
		w.idle = nil
	}
	j := &Job{w: w, released: make(chan struct{})}
	w.mu.Lock()
	j.cursor = w.head
	w.mu.Unlock()
	return j, nil
}

func (m *Manager) ffmpegPath() string {
	if m.opts.FFmpeg.Path == "" {
		return "ffmpeg"
	}
	return m.opts.FFmpeg.Path
}

// JobInfo describes a running job for logs and the API.
type JobInfo struct {
	// Path is the stream's path.
	Path string
	// Codec is the codec the job outputs.
	Codec media.Codec
	// Source is the codec of the audio track being converted (unknown before
	// the stream announced one).
	Source media.Codec
	// PassThrough is set when the source already is Codec.
	PassThrough bool
	// Consumers counts the holders of the job.
	Consumers int
	// Stats are the counters of the current converter.
	Stats Stats
}

// Jobs returns a snapshot of the running jobs, sorted by path and codec.
func (m *Manager) Jobs() []JobInfo {
	m.mu.Lock()
	infos := make([]JobInfo, 0, len(m.jobs))
	ws := make([]*worker, 0, len(m.jobs))
	for _, w := range m.jobs {
		infos = append(infos, JobInfo{Path: w.key.path, Codec: w.key.codec, Consumers: w.refs})
		ws = append(ws, w)
	}
	m.mu.Unlock()
	for i, w := range ws {
		w.mu.Lock()
		if w.src != nil {
			infos[i].Source = w.src.Codec
		}
		infos[i].PassThrough = w.pass
		if w.tc != nil {
			infos[i].Stats = w.tc.Stats()
		}
		w.mu.Unlock()
	}
	sort.Slice(infos, func(i, j int) bool {
		if infos[i].Path != infos[j].Path {
			return infos[i].Path < infos[j].Path
		}
		return infos[i].Codec < infos[j].Codec
	})
	return infos
}

// Close stops every job and waits for them. Consumers get ErrClosed.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	ws := make([]*worker, 0, len(m.jobs))
	for _, w := range m.jobs {
		if w.idle != nil {
			w.idle.Stop()
			w.idle = nil
		}
		ws = append(ws, w)
	}
	m.mu.Unlock()
	for _, w := range ws {
		w.cancel()
	}
	m.wg.Wait()
}

// release drops one hold on w and arms its idle timer after the last one.
func (m *Manager) release(w *worker) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w.refs--
	if w.refs == 0 && !m.closed && m.jobs[w.key] == w {
		w.idle = time.AfterFunc(m.opts.IdleTimeout, func() { m.expire(w) })
	}
}

// expire stops w if nobody acquired it during its idle timeout.
func (m *Manager) expire(w *worker) {
	m.mu.Lock()
	if w.refs > 0 || m.jobs[w.key] != w {
		m.mu.Unlock()
		return
	}
	delete(m.jobs, w.key)
	w.idle = nil
	m.mu.Unlock()
	w.log.Info("transcode job idle, stopping")
	w.cancel()
}

// forget removes w from the jobs once it ended.
func (m *Manager) forget(w *worker) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.jobs[w.key] == w {
		delete(m.jobs, w.key)
	}
	if w.idle != nil {
		w.idle.Stop()
		w.idle = nil
	}
}

func (m *Manager) newTranscoder(ctx context.Context, in *media.Track, out media.Codec) (Transcoder, error) {
	if m.opts.New != nil {
		return m.opts.New(ctx, in, out)
	}
	return NewFFmpeg(ctx, in, out, m.opts.FFmpeg)
}

// worker is a running job: it reads the stream, feeds the converter and
// keeps the converted frames in a ring its consumers walk.
//
// Goroutines: run (the job's life) and one pump per converter, which run
// waits for before starting the next converter.
type worker struct {
	m      *Manager
	key    jobKey
	r      *hub.Reader
	ctx    context.Context
	cancel context.CancelFunc
	log    *slog.Logger

	// Guarded by m.mu.
	refs int
	idle *time.Timer

	// Owned by run.
	srcIdx int
	pumps  sync.WaitGroup

	mu sync.Mutex
	// The converter and its source, written by run under mu.
	src  *media.Track
	tc   Transcoder
	pass bool
	// The ring.
	ring    []Output
	mask    uint64
	head    uint64
	track   *media.Track
	wake    chan struct{}
	waiting bool
	err     error
}

func (m *Manager) newWorker(key jobKey, r *hub.Reader) *worker {
	ctx, cancel := context.WithCancel(context.Background())
	return &worker{
		m:      m,
		key:    key,
		r:      r,
		ctx:    ctx,
		cancel: cancel,
		log:    m.log.With("stream", key.path, "to", key.codec.String()),
		srcIdx: -1,
		ring:   make([]Output, m.opts.RingSize),
		mask:   uint64(m.opts.RingSize - 1),
		wake:   make(chan struct{}),
	}
}

func (w *worker) run() {
	defer w.m.wg.Done()
	w.log.Info("transcode job started")
	err := w.loop()
	w.setConverter(nil, nil, false)
	w.r.Close()
	w.cancel()
	if errors.Is(err, context.Canceled) {
		err = ErrClosed
	}
	w.mu.Lock()
	w.err = err
	close(w.wake)
	w.mu.Unlock()
	w.m.forget(w)
	w.log.Info("transcode job stopped", "reason", err.Error())
}

// loop reads the stream until it ends or the job is stopped.
func (w *worker) loop() error {
	var (
		entries []*hub.Entry
		tracks  *hub.TrackSet
	)
	for {
		var err error
		entries, err = w.r.Next(w.ctx, entries[:0])
		for _, e := range entries {
			if e.Tracks != tracks {
				tracks = e.Tracks
				w.retarget(tracks)
			}
			if e.Frame.Track != w.srcIdx {
				continue
			}
			if w.pass {
				f := *e.Frame
				f.Track = 0
				w.publish(Output{Track: w.src, Frame: &f})
			} else if w.tc != nil {
				_ = w.tc.Write(e.Frame)
			}
		}
		clear(entries)
		if err != nil {
			return err
		}
	}
}

// retarget follows a new track set: the converter keeps running while the
// stream's first audio track is the same, and is replaced otherwise.
func (w *worker) retarget(ts *hub.TrackSet) {
	src, idx := ts.Audio()
	w.srcIdx = idx
	if src == nil {
		if w.src != nil {
			w.log.Info("stream has no audio any more")
		}
		w.setConverter(nil, nil, false)
		return
	}
	if w.src != nil && (w.src == src || sameTrack(w.src, src)) {
		return
	}
	w.setConverter(nil, nil, false)
	if src.Codec == w.key.codec {
		w.log.Info("audio already in the wanted codec, passing it through")
		w.setConverter(src, nil, true)
		return
	}
	tc, err := w.m.newTranscoder(w.ctx, src, w.key.codec)
	if err != nil {
		w.log.Warn("cannot convert the stream's audio", "from", src.Codec.String(), "err", err)
		w.setConverter(src, nil, false)
		return
	}
	w.log.Info("converting audio", "from", src.Codec.String(), "rate", src.SampleRate, "channels", src.Channels)
	w.setConverter(src, tc, false)
	w.pumps.Add(1)
	go w.pump(tc)
}

// setConverter replaces the converter, closing the old one and waiting for
// its pump: its last frames reach the ring before the new one's.
func (w *worker) setConverter(src *media.Track, tc Transcoder, pass bool) {
	w.mu.Lock()
	old := w.tc
	w.src, w.tc, w.pass = src, tc, pass
	w.mu.Unlock()
	if old != nil {
		_ = old.Close()
		w.pumps.Wait()
	}
}

// pump moves a converter's output into the ring.
func (w *worker) pump(tc Transcoder) {
	defer w.pumps.Done()
	for o := range tc.Output() {
		w.publish(o)
	}
}

// ended reports whether the job has stopped.
func (w *worker) ended() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err != nil
}

// publish adds o to the ring and wakes the waiting consumers. It never
// waits for them.
func (w *worker) publish(o Output) {
	w.mu.Lock()
	w.ring[w.head&w.mask] = o
	w.head++
	w.track = o.Track
	if w.waiting {
		close(w.wake)
		w.wake = make(chan struct{})
		w.waiting = false
	}
	w.mu.Unlock()
}

// Job is one consumer's hold on a shared conversion job, with its own
// cursor over the job's converted frames. A Job is used by one goroutine;
// Release may be called from any.
type Job struct {
	w        *worker
	cursor   uint64 // guarded by w.mu
	released chan struct{}
	once     sync.Once
	dropped  atomic.Uint64
}

// Path returns the path of the converted stream.
func (j *Job) Path() string { return j.w.key.path }

// Codec returns the codec the job outputs.
func (j *Job) Codec() media.Codec { return j.w.key.codec }

// Track returns the track of the newest converted frame, nil before the first.
func (j *Job) Track() *media.Track {
	j.w.mu.Lock()
	defer j.w.mu.Unlock()
	return j.w.track
}

// Dropped returns how many frames the consumer missed by falling a whole
// ring behind.
func (j *Job) Dropped() uint64 { return j.dropped.Load() }

// Next appends the converted frames ready for the consumer to dst, waiting
// until there is at least one. Compare each Output.Track with the previous
// one to notice a change of parameters. Once the job ended it returns what
// was left, then the reason: the hub's error when the stream ended
// (hub.ErrStreamClosed...), ErrClosed when the job or manager was closed or
// the Job released, or ctx's error.
func (j *Job) Next(ctx context.Context, dst []Output) ([]Output, error) {
	w := j.w
	for {
		select {
		case <-j.released:
			return dst, ErrClosed
		default:
		}
		w.mu.Lock()
		if behind := w.head - j.cursor; behind > uint64(len(w.ring)) {
			j.dropped.Add(behind - uint64(len(w.ring)))
			j.cursor = w.head - uint64(len(w.ring))
		}
		n := 0
		for ; j.cursor < w.head && n < maxBatch; n++ {
			dst = append(dst, w.ring[j.cursor&w.mask])
			j.cursor++
		}
		if n > 0 {
			w.mu.Unlock()
			return dst, nil
		}
		if err := w.err; err != nil {
			w.mu.Unlock()
			return dst, err
		}
		w.waiting = true
		wake := w.wake
		w.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return dst, ctx.Err()
		case <-j.released:
			return dst, ErrClosed
		}
	}
}

// Seek moves the consumer back to the oldest frame still held whose PTS
// is at least pts, for example the start of the video GOP a viewer begins
// with. It does not move the cursor forward.
func (j *Job) Seek(pts time.Duration) {
	w := j.w
	w.mu.Lock()
	defer w.mu.Unlock()
	from := uint64(0)
	if w.head > uint64(len(w.ring)) {
		from = w.head - uint64(len(w.ring))
	}
	for s := from; s < j.cursor; s++ {
		if f := w.ring[s&w.mask].Frame; f != nil && f.PTS >= pts {
			j.cursor = s
			return
		}
	}
}

// Release gives the hold back. The job stops after the idle timeout once
// nobody holds it. It is safe to call more than once.
func (j *Job) Release() {
	j.once.Do(func() {
		close(j.released)
		j.w.m.release(j.w)
	})
}
