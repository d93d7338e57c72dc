// Package exchange is the role that runs per-stream jobs once per stream, not
// once per viewer. Its first job is HLS / Low-Latency HLS packaging: one
// muxer per stream, fed by one hub reader, shared by every HLS viewer.
package exchange

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gohlslib/v2"

	"github.com/quasipaa/quasipaa/internal/hub"
)

// HLSVariant selects how HLS segments are packaged.
type HLSVariant int

// HLS variants.
const (
	// HLSLowLatency is Low-Latency HLS: fMP4 segments split in partial
	// segments, blocking playlist reload and preload hints (the default).
	HLSLowLatency HLSVariant = iota
	// HLSMPEGTS is classic HLS with MPEG-TS segments (H.264 and AAC only).
	HLSMPEGTS
	// HLSFMP4 is classic HLS with fMP4 segments and no partial segments.
	HLSFMP4
)

// String returns the variant's configuration name.
func (v HLSVariant) String() string {
	switch v {
	case HLSMPEGTS:
		return "mpegts"
	case HLSFMP4:
		return "fmp4"
	default:
		return "lowLatency"
	}
}

// ParseHLSVariant parses "lowLatency", "mpegts" or "fmp4" (case-insensitive; "" is lowLatency).
func ParseHLSVariant(s string) (HLSVariant, error) {
	switch strings.ToLower(s) {
	case "", "lowlatency", "low-latency", "ll", "llhls", "ll-hls":
		return HLSLowLatency, nil
	case "mpegts", "ts", "mpeg-ts":
		return HLSMPEGTS, nil
	case "fmp4":
		return HLSFMP4, nil
	}
	return 0, fmt.Errorf("unknown HLS variant %q (lowLatency, mpegts, fmp4)", s)
}

func (v HLSVariant) gohlslib() gohlslib.MuxerVariant {
	switch v {
	case HLSMPEGTS:
		return gohlslib.MuxerVariantMPEGTS
	case HLSFMP4:
		return gohlslib.MuxerVariantFMP4
	default:
		return gohlslib.MuxerVariantLowLatency
	}
}

// HLSOptions configure HLS packaging. Zero values take the documented defaults.
type HLSOptions struct {
	// Variant is the packaging (default HLSLowLatency).
	Variant HLSVariant
	// VariantFor, when set, picks the packaging of one stream (per-app
	// policy); ok false keeps Variant.
	VariantFor func(path string) (v HLSVariant, ok bool)
	// SegmentCount is the number of segments kept in the playlist (default 7,
	// the minimum for Low-Latency HLS).
	SegmentCount int
	// SegmentMinDuration is the minimum segment duration; a segment ends at
	// the first keyframe after it (default 1 s).
	SegmentMinDuration time.Duration
	// PartMinDuration is the minimum partial segment duration of Low-Latency
	// HLS (default 200 ms).
	PartMinDuration time.Duration
	// IdleTimeout closes a stream's muxer when no HLS request came for it
	// this long (default 30 s).
	IdleTimeout time.Duration
	// BlockTimeout bounds a blocking playlist reload (default 3 × SegmentMinDuration, at least 6 s).
	BlockTimeout time.Duration
	// ReadyTimeout is how long the first playlist request of a fresh muxer
	// waits for the first segment before answering 503 (default 10 s).
	ReadyTimeout time.Duration
}

func (o *HLSOptions) setDefaults() {
	if o.SegmentCount <= 0 {
		o.SegmentCount = 7
	}
	if o.Variant == HLSLowLatency && o.SegmentCount < 7 {
		o.SegmentCount = 7
	}
	if o.SegmentCount < 3 {
		o.SegmentCount = 3
	}
	if o.SegmentMinDuration <= 0 {
		o.SegmentMinDuration = time.Second
	}
	if o.PartMinDuration <= 0 {
		o.PartMinDuration = 200 * time.Millisecond
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 30 * time.Second
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 10 * time.Second
	}
}

// Errors reported by HLS.
var (
	// ErrUnsupportedCodec means no track of the stream can be packaged in the configured HLS variant.
	ErrUnsupportedCodec = errors.New("hls: unsupported codec")
	// ErrHLSClosed means the HLS service is shutting down.
	ErrHLSClosed = errors.New("hls: closed")
	// errIdle ends a muxer nobody requested for IdleTimeout.
	errIdle = errors.New("hls: idle")
	// errTracksChanged ends a muxer whose stream changed its codec parameters.
	errTracksChanged = errors.New("hls: stream tracks changed")
)

// HLS packages live streams as HLS on demand: the first request for a
// stream starts its muxer, which lives until the stream ends, the service
// closes or no request came for IdleTimeout.
type HLS struct {
	hub  *hub.Hub
	opts HLSOptions
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	streams map[string]*hlsStream
	closed  bool
}

// NewHLS returns the HLS service over h and starts its idle janitor; Close stops it.
func NewHLS(h *hub.Hub, opts HLSOptions, log *slog.Logger) *HLS {
	opts.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	x := &HLS{hub: h, opts: opts, log: log.With("job", "hls"), ctx: ctx, cancel: cancel, streams: map[string]*hlsStream{}}
	x.wg.Add(1)
	go x.janitor()
	return x
}

// Close stops every muxer and waits for their goroutines. Pending HLS
// requests are released.
func (x *HLS) Close() {
	x.mu.Lock()
	x.closed = true
	x.mu.Unlock()
	x.cancel()
	x.wg.Wait()
}

// Active returns the paths of the streams that have a running muxer.
func (x *HLS) Active() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make([]string, 0, len(x.streams))
	for p := range x.streams {
		out = append(out, p)
	}
	return out
}

// janitor cancels the muxers that saw no request for IdleTimeout.
func (x *HLS) janitor() {
	defer x.wg.Done()
	every := x.opts.IdleTimeout / 4
	if every > 5*time.Second {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-x.ctx.Done():
			return
		case now := <-t.C:
			x.mu.Lock()
			for _, st := range x.streams {
				if now.Sub(time.Unix(0, st.lastAccess.Load())) > x.opts.IdleTimeout {
					st.stop(errIdle)
				}
			}
			x.mu.Unlock()
		}
	}
}

// get returns the running muxer of path, starting one when create is set.
func (x *HLS) get(path string, create bool) (*hlsStream, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return nil, ErrHLSClosed
	}
	if st := x.streams[path]; st != nil {
		return st, nil
	}
	if !create {
		return nil, hub.ErrStreamNotFound
	}
	variant := x.opts.Variant
	if x.opts.VariantFor != nil {
		if v, ok := x.opts.VariantFor(path); ok {
			variant = v
		}
	}
	if info, ok := x.hub.Stream(path); !ok {
		return nil, hub.ErrStreamNotFound
	} else if len(info.Tracks) > 0 {
		// Refuse at once what cannot be packaged.
		if _, err := planTracks(info.Tracks, variant); err != nil {
			return nil, err
		}
	}
	reader, err := x.hub.Subscribe(path, hub.ClientInfo{Protocol: "hls", RemoteAddr: "exchange/hls"})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(x.ctx)
	st := &hlsStream{
		x:       x,
		path:    path,
		variant: variant,
		reader:  reader,
		cancel:  cancel,
		started: make(chan struct{}),
		ready:   make(chan struct{}),
		done:    make(chan struct{}),
		created: time.Now(),
	}
	st.touch()
	x.streams[path] = st
	x.wg.Add(1)
	go st.run(ctx)
	return st, nil
}

func (x *HLS) remove(st *hlsStream) {
	x.mu.Lock()
	if x.streams[st.path] == st {
		delete(x.streams, st.path)
	}
	x.mu.Unlock()
}

// ServeHLS answers one HLS request for the stream at path; file is the last
// URL segment (index.m3u8, a media playlist, an init file, a segment or a
// part). A playlist request starts the stream's muxer if needed and, on a
// fresh muxer, waits for its first segment.
func (x *HLS) ServeHLS(w http.ResponseWriter, r *http.Request, path, file string) {
	isPlaylist := strings.HasSuffix(file, ".m3u8")
	st, err := x.get(path, isPlaylist)
	if err != nil {
		x.writeError(w, path, err)
		return
	}
	st.touch()
	if isPlaylist {
		timer := time.NewTimer(x.opts.ReadyTimeout)
		defer timer.Stop()
		select {
		case <-st.ready:
		case <-st.done:
			x.writeError(w, path, st.err)
			return
		case <-r.Context().Done():
			return
		case <-timer.C:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "HLS stream not ready yet: "+path, http.StatusServiceUnavailable)
			return
		}
	}
	select {
	case <-st.done:
		x.writeError(w, path, st.err)
		return
	case <-st.started:
	default:
		http.Error(w, "HLS file not found: "+path+"/"+file, http.StatusNotFound)
		return
	}
	if isPlaylist && r.URL.Query().Has("_HLS_msn") {
		x.serveBlockingReload(w, r, st, path)
		return
	}
	tw := &trackingWriter{ResponseWriter: w}
	st.muxer.Handle(tw, r)
	if !tw.wrote {
		http.Error(w, "HLS file not found: "+path+"/"+file, http.StatusNotFound)
	}
}

// blockTimeout bounds a blocking playlist reload: the muxer waits for the
// requested part without a deadline of its own, and a publisher that stays
// connected but sends nothing would hold the request until its connection
// times out. LL-HLS asks for 503 after three target durations.
func (x *HLS) blockTimeout() time.Duration {
	if x.opts.BlockTimeout > 0 {
		return x.opts.BlockTimeout
	}
	return max(6*time.Second, 3*x.opts.SegmentMinDuration)
}

// serveBlockingReload runs a blocking playlist reload (_HLS_msn) in its own
// goroutine, answering 503 when the part does not come within blockTimeout
// and returning as soon as the client goes away. The muxer's goroutine ends
// when the part comes or the muxer closes; it writes into a buffer, never to
// the connection after this handler returned.
func (x *HLS) serveBlockingReload(w http.ResponseWriter, r *http.Request, st *hlsStream, path string) {
	buf := &bufferedResponse{header: http.Header{}}
	req := r.Clone(context.WithoutCancel(r.Context()))
	finished := make(chan struct{})
	x.mu.Lock()
	if x.closed {
		x.mu.Unlock()
		x.writeError(w, path, ErrHLSClosed)
		return
	}
	x.wg.Add(1) // under mu: never after Close started waiting
	x.mu.Unlock()
	go func() {
		defer x.wg.Done()
		defer close(finished)
		st.muxer.Handle(buf, req)
	}()
	timer := time.NewTimer(x.blockTimeout())
	defer timer.Stop()
	select {
	case <-finished:
		if buf.status == 0 && buf.body.Len() == 0 {
			http.Error(w, "HLS file not found: "+r.URL.Path, http.StatusNotFound)
			return
		}
		buf.copyTo(w)
	case <-st.done:
		x.writeError(w, path, st.err)
	case <-r.Context().Done():
	case <-timer.C:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "the requested part did not come within "+x.blockTimeout().String()+" (is the publisher sending?)", http.StatusServiceUnavailable)
	}
}

// bufferedResponse holds a small response (a playlist) in memory.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// copyTo sends the held response to w.
func (b *bufferedResponse) copyTo(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range b.header {
		h[k] = v
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}

func (x *HLS) writeError(w http.ResponseWriter, path string, err error) {
	switch {
	case errors.Is(err, ErrUnsupportedCodec):
		http.Error(w, "cannot play "+path+" as HLS: "+err.Error(), http.StatusUnsupportedMediaType)
	case errors.Is(err, ErrHLSClosed), errors.Is(err, hub.ErrHubClosed):
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
	case err == nil || hub.IsNormalEnd(err) || errors.Is(err, hub.ErrStreamNotFound):
		http.Error(w, "stream not found: "+path, http.StatusNotFound)
	default:
		// The muxer stopped (idle, tracks changed, reader too slow): the
		// next request starts a new one.
		w.Header().Set("Retry-After", "1")
		http.Error(w, "HLS muxer restarting for "+path+": "+err.Error(), http.StatusServiceUnavailable)
	}
}

// trackingWriter notes whether a handler answered at all: the muxer's router
// writes nothing for a file it does not know.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (t *trackingWriter) WriteHeader(code int) {
	t.wrote = true
	t.ResponseWriter.WriteHeader(code)
}

func (t *trackingWriter) Write(b []byte) (int, error) {
	t.wrote = true
	return t.ResponseWriter.Write(b)
}

// hlsStream is the muxer of one stream and the goroutine that feeds it.
type hlsStream struct {
	x       *HLS
	path    string
	variant HLSVariant
	reader  *hub.Reader
	cancel  context.CancelCauseFunc
	created time.Time

	// muxer is set before started is closed.
	muxer   *gohlslib.Muxer
	started chan struct{}
	// ready is closed once the muxer holds its first segment.
	ready chan struct{}
	// done is closed when the goroutine ended; err says why.
	done chan struct{}
	err  error

	lastAccess atomic.Int64

	// warnings are rate limited: a broken stream fails every frame.
	warnMu    sync.Mutex
	warnLast  time.Time
	warnQuiet int
}

// warn logs msg at most once per warnEvery, with the number of warnings it held back.
func (st *hlsStream) warn(log *slog.Logger, msg string, args ...any) {
	st.warnMu.Lock()
	now := time.Now()
	if now.Sub(st.warnLast) < warnEvery {
		st.warnQuiet++
		st.warnMu.Unlock()
		return
	}
	quiet := st.warnQuiet
	st.warnLast, st.warnQuiet = now, 0
	st.warnMu.Unlock()
	if quiet > 0 {
		args = append(args, "suppressed", quiet)
	}
	log.Warn(msg, args...)
}

// warnEvery is the interval of hlsStream.warn.
const warnEvery = 10 * time.Second

func (st *hlsStream) touch() { st.lastAccess.Store(time.Now().UnixNano()) }

// stop asks the goroutine to end with cause.
func (st *hlsStream) stop(cause error) { st.cancel(cause) }

// run feeds the muxer from the hub until the stream ends or ctx is cancelled.
func (st *hlsStream) run(ctx context.Context) {
	x := st.x
	log := x.log.With("stream", st.path, "variant", st.variant.String())
	var feed *feeder
	defer func() {
		st.reader.Close()
		if st.muxer != nil {
			st.muxer.Close()
		}
		x.remove(st)
		close(st.done)
		x.wg.Done()
	}()
	var batch []*hub.Entry
	var err error
	for err == nil {
		batch, err = st.reader.Next(ctx, batch[:0])
		for _, e := range batch {
			if feed == nil || e.Tracks != feed.tracks {
				if feed != nil && !feed.sameCodecs(e.Tracks) {
					err = errTracksChanged
					break
				}
				if feed != nil {
					feed.tracks = e.Tracks
				} else if feed, err = st.start(e.Tracks, log); err != nil {
					break
				}
			}
			if werr := feed.write(e.Frame); werr != nil {
				st.warn(log, "hls muxer rejected a frame", "track", e.Frame.Track, "err", werr)
			}
			if !feed.isReady && feed.segmentDone() {
				feed.isReady = true
				close(st.ready)
				log.Info("hls ready", "startup", time.Since(st.created).Round(time.Millisecond))
			}
		}
		clear(batch)
	}
	if cause := context.Cause(ctx); ctx.Err() != nil && cause != nil {
		err = cause
	}
	st.err = err
	switch {
	case errors.Is(err, errIdle):
		log.Info("hls muxer closed", "reason", "no request for "+x.opts.IdleTimeout.String())
	case hub.IsNormalEnd(err), errors.Is(err, context.Canceled), errors.Is(err, hub.ErrHubClosed):
		log.Info("hls muxer closed", "reason", errString(err))
	default:
		log.Warn("hls muxer stopped", "err", err)
	}
}

// start creates the muxer for the stream's first track set.
func (st *hlsStream) start(ts *hub.TrackSet, log *slog.Logger) (*feeder, error) {
	x := st.x
	plan, err := planTracks(ts.Tracks, st.variant)
	if err != nil {
		return nil, err
	}
	for _, skipped := range plan.skipped {
		log.Warn("hls: track not packaged", "codec", skipped.String())
	}
	segmentCount := x.opts.SegmentCount
	if st.variant == HLSLowLatency {
		segmentCount = max(segmentCount, 7)
	}
	var tracks []*gohlslib.Track
	if plan.video != nil {
		tracks = append(tracks, plan.video.hls)
	}
	if plan.audio != nil {
		tracks = append(tracks, plan.audio.hls)
	}
	m := &gohlslib.Muxer{
		Tracks:             tracks,
		Variant:            st.variant.gohlslib(),
		SegmentCount:       segmentCount,
		SegmentMinDuration: x.opts.SegmentMinDuration,
		PartMinDuration:    x.opts.PartMinDuration,
		OnEncodeError: func(err error) {
			st.warn(log, "hls encode error", "err", err)
		},
	}
	if err := m.Start(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupportedCodec, err)
	}
	st.muxer = m
	close(st.started)
	log.Info("hls muxer started", "tracks", len(tracks))
	opts := x.opts
	opts.Variant = st.variant
	return newFeeder(m, ts, plan, opts), nil
}

func errString(err error) string {
	if err == nil {
		return "end"
	}
	return err.Error()
}
