package hub

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quasipaa/quasipaa/internal/media"
)

// Sentinel errors of publishers.
var (
	// ErrNoTracks means a frame was written before any track was announced.
	ErrNoTracks = errors.New("hub: frame written before tracks")
	// ErrBadTrack means a frame names a track the stream does not have.
	ErrBadTrack = errors.New("hub: frame names an unknown track")
)

type streamState int

const (
	stateLive streamState = iota
	stateGrace
	stateEnded
)

func (s streamState) String() string {
	switch s {
	case stateLive:
		return "live"
	case stateGrace:
		return "waiting_publisher"
	default:
		return "ended"
	}
}

// Stream is one path's live media: its publisher, its ring of recent frames,
// its GOP cache and its readers.
type Stream struct {
	hub     *Hub
	path    string
	log     *slog.Logger
	created time.Time

	ring []atomic.Pointer[Entry]
	mask uint64
	head atomic.Uint64 // sequence number of the next entry
	// bFrames is set once a video frame had PTS != DTS (see StreamInfo.BFrames).
	bFrames atomic.Bool
	// lastKey is the sequence number + 1 of the newest keyframe entry (0: none).
	lastKey atomic.Uint64

	// ended is closed when the stream ends; endErr says why. endedFlag is
	// the same fact for the readers' fast path.
	ended     chan struct{}
	endedFlag atomic.Bool
	endErr    error

	mu        sync.Mutex
	state     streamState
	publisher *Publisher
	tracks    *TrackSet
	hasVideo  bool
	gop       []*Entry
	gopFull   bool
	readers   []*Reader // copy on write: the slice is never modified in place
	grace     *time.Timer
	graceGen  uint64

	// Timestamp rebasing across publisher sessions.
	rebase  bool
	offset  time.Duration
	lastDTS time.Duration

	framesIn     atomic.Uint64
	bytesIn      atomic.Uint64
	bytesOutDone atomic.Uint64 // bytes sent by readers that left
	drops        atomic.Uint64
	bitrate      atomic.Int64
	rateStart    time.Time
	rateBytes    uint64
	// trackRates measures each track's frame rate and bit rate over about
	// a second of its DTS; guarded by mu.
	trackRates []trackRate
}

// trackRate measures one track over windows of about a second of DTS.
type trackRate struct {
	start   time.Duration // DTS the window started at
	started bool
	frames  int
	bytes   int
	fps     float64
	bitrate int64
}

// add accounts one frame of size n at dts; it runs with the stream's mu held.
func (r *trackRate) add(dts time.Duration, n int) {
	if !r.started || dts < r.start {
		r.start, r.started, r.frames, r.bytes = dts, true, 0, 0
	}
	r.frames++
	r.bytes += n
	if el := dts - r.start; el >= time.Second {
		// frames-1 intervals span el; the last frame opens the next window.
		r.fps = float64(r.frames-1) / el.Seconds()
		r.bitrate = int64(float64(r.bytes-n) * 8 / el.Seconds())
		r.start, r.frames, r.bytes = dts, 1, n
	}
}

// TrackStats are measured figures of one track.
type TrackStats struct {
	// FPS is the frame rate over about the last second of media time.
	FPS float64
	// Bitrate is the payload bit rate over the same window, bit/s.
	Bitrate int64
}

func newStream(h *Hub, path string) *Stream {
	size := h.opts.QueueSize
	return &Stream{
		hub:     h,
		path:    path,
		log:     h.log.With("stream", path),
		created: time.Now(),
		ring:    make([]atomic.Pointer[Entry], size),
		mask:    uint64(size - 1),
		ended:   make(chan struct{}),
		state:   stateEnded, // until a publisher attaches
	}
}

// isEnded reports whether the stream has ended; endErr is set when it has.
func (s *Stream) isEnded() bool { return s.endedFlag.Load() }

// Path returns the stream's path, e.g. "live/cam1".
func (s *Stream) Path() string { return s.path }

// attachPublisher runs with h.mu held.
func (s *Stream) attachPublisher(info ClientInfo) (*Publisher, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case stateLive:
		if s.hub.opts.Conflict != ConflictTakeOver {
			return nil, ErrStreamBusy
		}
		old := s.publisher
		old.fail(ErrPublisherReplaced)
		s.log.Info("publisher taken over", "old", old.info.RemoteAddr, "new", info.RemoteAddr)
		s.rebase = true
	case stateGrace:
		s.graceGen++
		if s.grace != nil {
			s.grace.Stop()
		}
		s.log.Info("publisher resumed within grace period", "remote", info.RemoteAddr)
		s.rebase = true
	case stateEnded:
		s.log.Info("stream published", "protocol", info.Protocol, "remote", info.RemoteAddr)
	}
	p := &Publisher{s: s, info: info, since: time.Now(), done: make(chan struct{})}
	s.publisher = p
	s.state = stateLive
	s.rateStart, s.rateBytes = time.Now(), s.bytesIn.Load()
	return p, nil
}

// publisherLeft is called when p stops publishing.
func (s *Stream) publisherLeft(p *Publisher) {
	s.mu.Lock()
	if s.publisher != p || s.state != stateLive {
		s.mu.Unlock()
		return
	}
	s.publisher = nil
	s.bitrate.Store(0)
	grace := s.hub.opts.PublisherGrace
	if grace <= 0 {
		s.mu.Unlock()
		s.end(ErrStreamClosed)
		return
	}
	s.state = stateGrace
	s.graceGen++
	gen := s.graceGen
	s.grace = time.AfterFunc(grace, func() { s.graceExpired(gen) })
	s.mu.Unlock()
	s.log.Info("publisher left, waiting for it to return", "grace", grace)
}

func (s *Stream) graceExpired(gen uint64) {
	s.mu.Lock()
	expired := s.state == stateGrace && s.graceGen == gen
	s.mu.Unlock()
	if expired {
		s.end(ErrStreamClosed)
	}
}

// end closes the stream for good. Readers drain what is queued, then get err.
func (s *Stream) end(err error) {
	s.hub.remove(s)
	s.mu.Lock()
	if s.endErr != nil {
		s.mu.Unlock()
		return
	}
	s.state = stateEnded
	s.endErr = err
	if s.grace != nil {
		s.grace.Stop()
	}
	p := s.publisher
	s.publisher = nil
	s.mu.Unlock()
	if p != nil {
		p.fail(err)
	}
	s.mu.Lock()
	readers := s.readers
	s.mu.Unlock()
	s.endedFlag.Store(true)
	close(s.ended)
	for _, r := range readers {
		r.signal()
	}
	s.log.Info("stream ended", "reason", err.Error())
	if f := s.hub.opts.OnStreamEnd; f != nil {
		f(s.Summary())
	}
}

func (s *Stream) setTracks(p *Publisher, tracks []*media.Track) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.publisher != p {
		return p.Err()
	}
	version := uint64(1)
	if s.tracks != nil {
		version = s.tracks.Version + 1
	}
	ts := &TrackSet{Tracks: append([]*media.Track(nil), tracks...), Version: version, Start: s.lastDTS}
	s.tracks = ts
	s.trackRates = make([]trackRate, len(tracks))
	s.hasVideo = false
	for _, t := range tracks {
		if t.IsVideo() {
			s.hasVideo = true
		}
	}
	// Frames from before the change cannot be decoded with the new tracks.
	s.gop = nil
	s.gopFull = false
	s.lastKey.Store(0)
	return nil
}

func (s *Stream) write(p *Publisher, f *media.Frame) error {
	s.mu.Lock()
	if s.publisher != p {
		s.mu.Unlock()
		return p.Err()
	}
	ts := s.tracks
	if ts == nil {
		s.mu.Unlock()
		return ErrNoTracks
	}
	t := ts.Track(f.Track)
	if t == nil {
		s.mu.Unlock()
		return fmt.Errorf("%w: %d of %d", ErrBadTrack, f.Track, len(ts.Tracks))
	}
	if s.rebase {
		// A new session continues the timeline of the old one.
		s.offset = s.lastDTS + 20*time.Millisecond - f.DTS
		s.rebase = false
	}
	if s.offset != 0 {
		f.DTS += s.offset
		f.PTS += s.offset
	}
	if f.DTS > s.lastDTS {
		s.lastDTS = f.DTS
	}
	if int(f.Track) < len(s.trackRates) {
		s.trackRates[f.Track].add(f.DTS, len(f.Payload))
	}
	if f.PTS != f.DTS && t.IsVideo() {
		s.bFrames.Store(true)
	}
	seq := s.head.Load()
	key := f.Key && (t.IsVideo() || !s.hasVideo)
	e := &Entry{Frame: f, Tracks: ts, seq: seq, key: key}
	if key {
		s.lastKey.Store(seq + 1)
		if !s.hub.opts.DisableGOPCache {
			// A fresh slice: readers may still hold the old one.
			s.gop = make([]*Entry, 0, max(cap(s.gop), 64))
			s.gopFull = false
		}
	}
	if !s.hub.opts.DisableGOPCache && s.lastKey.Load() != 0 && !s.gopFull {
		if len(s.gop) < s.hub.opts.MaxGOPFrames {
			s.gop = append(s.gop, e)
		} else {
			s.gopFull = true
			s.log.Warn("GOP longer than the GOP cache, new viewers wait for the next keyframe", "max_frames", s.hub.opts.MaxGOPFrames)
		}
	}
	s.ring[seq&s.mask].Store(e)
	s.head.Store(seq + 1)
	readers := s.readers
	s.framesIn.Add(1)
	in := s.bytesIn.Add(uint64(len(f.Payload)))
	if el := f.Ingest.Sub(s.rateStart); el >= time.Second {
		s.bitrate.Store(int64(float64(in-s.rateBytes) * 8 / el.Seconds()))
		s.rateStart, s.rateBytes = f.Ingest, in
	}
	s.mu.Unlock()
	for _, r := range readers {
		r.signal()
	}
	return nil
}

// addReader runs with h.mu held.
func (s *Stream) addReader(info ClientInfo) (*Reader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.endErr != nil {
		return nil, ErrStreamNotFound
	}
	r := &Reader{
		s:         s,
		info:      info,
		since:     time.Now(),
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		cursor:    s.head.Load(),
		dropTimes: make([]time.Time, s.hub.opts.MaxDrops),
	}
	switch {
	case len(s.gop) > 0 && !s.gopFull:
		r.pending = s.gop[:len(s.gop):len(s.gop)]
	default:
		r.waitKey = true
	}
	readers := make([]*Reader, len(s.readers), len(s.readers)+1)
	copy(readers, s.readers)
	s.readers = append(readers, r)
	return r, nil
}

func (s *Stream) removeReader(r *Reader) {
	s.mu.Lock()
	readers := make([]*Reader, 0, len(s.readers))
	for _, x := range s.readers {
		if x != r {
			readers = append(readers, x)
		}
	}
	s.readers = readers
	s.mu.Unlock()
	s.bytesOutDone.Add(r.bytesOut.Load())
}

// StreamInfo is a snapshot of a stream for the API.
type StreamInfo struct {
	Path string
	// State is "live" or "waiting_publisher" (in the grace period).
	State  string
	Tracks []*media.Track
	// TrackStats are the measured frame rate and bit rate of each track,
	// in the order of Tracks.
	TrackStats []TrackStats
	Publisher  *ClientInfo
	// PublishedAt is when the current publisher attached.
	PublishedAt time.Time
	Created     time.Time
	// IngressBitrate is the payload bit rate of the last second or so, bit/s.
	IngressBitrate int64
	FramesIn       uint64
	BytesIn        uint64
	BytesOut       uint64
	DroppedFrames  uint64
	// Viewers counts readers by protocol.
	Viewers map[string]int
	// BFrames is set once a video frame had a presentation time different
	// from its decoding time: the video has B-frames (reordered frames).
	BFrames bool
	// Readers are the stream's readers, in the order they came (left nil
	// by Summary and Hub.Summaries).
	Readers []ReaderInfo
	// ViewersTotal is the number of readers.
	ViewersTotal int
}

// ReaderInfo is a snapshot of one reader.
type ReaderInfo struct {
	ClientInfo
	Since    time.Time
	BytesOut uint64
	Dropped  uint64
}

// Info returns a snapshot of the stream, its readers included.
func (s *Stream) Info() StreamInfo { return s.info(true) }

// Summary is Info without the list of readers (their counts are there):
// cheaper for listings.
func (s *Stream) Summary() StreamInfo { return s.info(false) }

func (s *Stream) info(withReaders bool) StreamInfo {
	s.mu.Lock()
	info := StreamInfo{
		Path:           s.path,
		State:          s.state.String(),
		Created:        s.created,
		IngressBitrate: s.bitrate.Load(),
		FramesIn:       s.framesIn.Load(),
		BytesIn:        s.bytesIn.Load(),
		DroppedFrames:  s.drops.Load(),
		Viewers:        map[string]int{},
		BFrames:        s.bFrames.Load(),
	}
	if s.tracks != nil {
		info.Tracks = s.tracks.Tracks
		info.TrackStats = make([]TrackStats, len(s.trackRates))
		for i, r := range s.trackRates {
			info.TrackStats[i] = TrackStats{FPS: r.fps, Bitrate: r.bitrate}
		}
	}
	if p := s.publisher; p != nil {
		ci := p.info
		info.Publisher = &ci
		info.PublishedAt = p.since
	}
	readers := s.readers
	s.mu.Unlock()
	out := s.bytesOutDone.Load()
	if withReaders {
		info.Readers = make([]ReaderInfo, 0, len(readers))
	}
	for _, r := range readers {
		info.Viewers[r.info.Protocol]++
		b := r.bytesOut.Load()
		out += b
		if withReaders {
			info.Readers = append(info.Readers, ReaderInfo{ClientInfo: r.info, Since: r.since, BytesOut: b, Dropped: r.drops.Load()})
		}
	}
	info.BytesOut = out
	info.ViewersTotal = len(readers)
	return info
}

// Publisher is the single writer of a stream.
type Publisher struct {
	s     *Stream
	info  ClientInfo
	since time.Time

	once sync.Once
	done chan struct{}
	err  atomic.Pointer[error]
}

// Stream returns the stream being published.
func (p *Publisher) Stream() *Stream { return p.s }

// SetTracks announces the stream's tracks; call it before the first frame and
// again whenever a parameter changes. The slice is copied; the tracks are not
// and must not be modified afterwards.
func (p *Publisher) SetTracks(tracks []*media.Track) error { return p.s.setTracks(p, tracks) }

// WriteFrame publishes a frame. The hub takes ownership of f: neither f nor
// its payload may be modified afterwards. It never blocks on readers.
func (p *Publisher) WriteFrame(f *media.Frame) error { return p.s.write(p, f) }

// Close ends the publishing session; the stream waits for a new publisher
// during the grace period.
func (p *Publisher) Close() {
	p.fail(ErrStreamClosed)
	p.s.publisherLeft(p)
}

// End stops publishing and ends the stream at once, without a grace period:
// readers get what is queued, then ErrStreamClosed (a normal end).
func (p *Publisher) End() {
	p.fail(ErrStreamClosed)
	p.s.end(ErrStreamClosed)
}

// Kick disconnects the publisher and ends the stream at once.
func (p *Publisher) Kick() {
	p.fail(ErrKicked)
	p.s.end(ErrKicked)
}

// Done is closed when the publisher must stop (replaced, kicked, hub closed).
func (p *Publisher) Done() <-chan struct{} { return p.done }

// Err returns why the publisher was stopped, or nil.
func (p *Publisher) Err() error {
	if e := p.err.Load(); e != nil {
		return *e
	}
	return nil
}

func (p *Publisher) fail(err error) {
	p.once.Do(func() {
		p.err.Store(&err)
		close(p.done)
		if p.info.notify {
			p.s.hub.opts.OnLeave(Event{Action: ActionPublish, Path: p.s.path, Client: p.info, Since: p.since,
				Duration: time.Since(p.since), Bytes: p.s.bytesIn.Load(), Err: err})
		}
	})
}
