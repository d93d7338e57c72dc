package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HLS players behave like Low-Latency HLS players (hls.js, AVPlayer): they
// read the multivariant playlist, follow the media playlists of its first
// variant (and of that variant's default audio rendition) in parallel, and
// fetch every new partial segment once, right after a blocking playlist
// reload announced it. On a playlist without parts or blocking reload
// (classic HLS) they poll the playlist every half target duration and fetch
// every new segment once. They do not decode anything.

// hlsKind is the kind of an HLS request.
type hlsKind int

const (
	kindPlaylist hlsKind = iota // multivariant or media playlist, answered at once
	kindBlocking                // blocking playlist reload (_HLS_msn / _HLS_part)
	kindPart                    // partial segment
	kindSegment                 // media segment
	kindInit                    // initialization section (EXT-X-MAP)
	numKinds
)

// hlsRetryDelay is the pause after a failed request, unless the server
// says otherwise with Retry-After (then at most hlsMaxRetryDelay).
const (
	hlsRetryDelay    = 250 * time.Millisecond
	hlsMaxRetryDelay = time.Second
)

// hlsMaxPlaylist bounds a playlist body.
const hlsMaxPlaylist = 4 << 20

// hlsMediaBuffer is the size of the buffer media bodies are read into (and
// discarded): large reads bypass the connection's small buffer.
const hlsMediaBuffer = 64 << 10

// errNoMedia ends an HLS player that played without receiving any media.
var errNoMedia = errors.New("no part or segment received")

// newHLSClient returns the HTTP client shared by all HLS players of a run:
// HTTP/1.1 with keep-alive, and enough idle connections for every player to
// keep one per media playlist it follows.
func newHLSClient(players int, timeout time.Duration) (*http.Client, *http.Transport) {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0, // no limit
		MaxIdleConnsPerHost: 2*players + 16,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: timeout,
		DisableCompression:  true, // count the bytes on the wire
		WriteBufferSize:     4 << 10,
		ReadBufferSize:      8 << 10,
	}
	return &http.Client{Transport: tr}, tr
}

// hlsStats are what one media playlist follower (and then one player) measured.
type hlsStats struct {
	requests  [numKinds]uint64
	bytes     [numKinds]uint64
	latencies [numKinds][]time.Duration // successful requests only
	live      []time.Duration           // receive time - end of the media, per part or segment
	edge      []time.Duration           // the same, once the player waited for new media
	media     uint64                    // parts and segments received
	missed    uint64                    // parts or segments listed but never fetched
	resyncs   int
	status    []statusCount // HTTP errors by status
	transport []error       // transport errors
	noPDT     uint64        // media received without a program date-time
	loaded    bool          // a media playlist was loaded
	lowLat    bool          // and it was Low-Latency

	first     time.Time // first media received
	firstLive time.Duration
	firstHas  bool // firstLive is known
}

// statusCount is a number of responses with one HTTP status.
type statusCount struct {
	code, n int
}

func (s *hlsStats) addStatus(code, n int) {
	for i := range s.status {
		if s.status[i].code == code {
			s.status[i].n += n
			return
		}
	}
	s.status = append(s.status, statusCount{code, n})
}

// merge adds o into s.
func (s *hlsStats) merge(o *hlsStats) {
	for k := range numKinds {
		s.requests[k] += o.requests[k]
		s.bytes[k] += o.bytes[k]
		s.latencies[k] = append(s.latencies[k], o.latencies[k]...)
	}
	s.live = append(s.live, o.live...)
	s.edge = append(s.edge, o.edge...)
	s.media += o.media
	s.missed += o.missed
	s.resyncs += o.resyncs
	for _, sc := range o.status {
		s.addStatus(sc.code, sc.n)
	}
	s.transport = append(s.transport, o.transport...)
	s.noPDT += o.noPDT
	s.loaded = s.loaded || o.loaded
	s.lowLat = s.lowLat || o.lowLat
	if !o.first.IsZero() && (s.first.IsZero() || o.first.Before(s.first)) {
		s.first, s.firstLive, s.firstHas = o.first, o.firstLive, o.firstHas
	}
}

// httpStatusError is a response other than 200 OK.
type httpStatusError struct {
	code       int
	status     string
	retryAfter time.Duration
}

func (e *httpStatusError) Error() string { return "HTTP " + e.status }

// follower follows one media playlist of one player.
type follower struct {
	p       *player
	hc      *http.Client
	url     string // media playlist URL
	dir     string // url up to its last '/', to resolve relative URIs
	query   string // url's query, kept on blocking reloads
	timeout time.Duration
	log     *slog.Logger

	pl      mediaPlaylist
	body    []byte // playlist body buffer
	scratch []byte // media bodies are read into it
	initURI string // the EXT-X-MAP fetched

	msn    int64 // next segment to take
	part   int   // next part of it (Low-Latency)
	atEdge bool  // the follower has waited for new media: its backlog is fetched

	lastMedia  time.Time // last media received (or the start)
	lastReload time.Time // last playlist load (classic polling)
	lastErr    error
	st         hlsStats
}

func newFollower(p *player, hc *http.Client, rawURL string, timeout time.Duration, log *slog.Logger) *follower {
	f := &follower{p: p, hc: hc, url: rawURL, timeout: timeout, log: log, lastMedia: time.Now()}
	f.dir, f.query = splitPlaylistURL(rawURL)
	return f
}

// splitPlaylistURL returns what relative URIs resolve against (the URL up to
// its last '/') and the query.
func splitPlaylistURL(u string) (dir, query string) {
	if i := strings.IndexByte(u, '#'); i >= 0 {
		u = u[:i]
	}
	u, query, _ = strings.Cut(u, "?")
	return u[:strings.LastIndexByte(u, '/')+1], query
}

// resolve returns the absolute URL of uri, relative to the playlist.
func (f *follower) resolve(uri string) string {
	if uri != "" && !strings.Contains(uri, ":") && uri[0] != '/' && uri[0] != '.' {
		return f.dir + uri
	}
	base, err := url.Parse(f.url)
	if err != nil {
		return uri
	}
	ref, err := url.Parse(uri)
	if err != nil {
		return uri
	}
	return base.ResolveReference(ref).String()
}

// get fetches u; with into set, the body is read into *into, else it is
// discarded. Requests cut short by the end of the run are not counted.
func (f *follower) get(ctx context.Context, kind hlsKind, u string, into *[]byte) (int, error) {
	rctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", "quasipaa-bench")
	begin := time.Now()
	resp, err := f.hc.Do(req)
	if err != nil {
		return 0, f.failed(ctx, kind, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10) // keep the connection
		e := &httpStatusError{code: resp.StatusCode, status: resp.Status}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			e.retryAfter = time.Duration(s) * time.Second
		}
		return 0, f.failed(ctx, kind, e)
	}
	n := 0
	if into != nil {
		b := (*into)[:0]
		for err == nil {
			if len(b) == cap(b) {
				if len(b) >= hlsMaxPlaylist {
					err = errors.New("playlist too large")
					break
				}
				b = append(b, 0)[:len(b)]
			}
			var m int
			m, err = resp.Body.Read(b[len(b):cap(b)])
			b = b[:len(b)+m]
		}
		*into = b
		n = len(b)
	} else {
		if f.scratch == nil {
			f.scratch = make([]byte, hlsMediaBuffer)
		}
		for err == nil {
			var m int
			m, err = resp.Body.Read(f.scratch)
			n += m
		}
	}
	if err != io.EOF {
		return n, f.failed(ctx, kind, err)
	}
	f.st.requests[kind]++
	f.st.bytes[kind] += uint64(n)
	f.st.latencies[kind] = append(f.st.latencies[kind], time.Since(begin))
	f.p.c.bytes.Add(uint64(n))
	f.p.c.requests.Add(1)
	return n, nil
}

// failed counts a failed request, unless the run is over.
func (f *follower) failed(ctx context.Context, kind hlsKind, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	f.st.requests[kind]++
	f.p.c.requests.Add(1)
	f.p.c.httpErrors.Add(1)
	var se *httpStatusError
	if errors.As(err, &se) {
		f.st.addStatus(se.code, 1)
	} else {
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err // without the URL, so that equal errors group
		}
		f.st.transport = append(f.st.transport, err)
	}
	f.lastErr = err
	return err
}

// retry pauses after the failed request err and reports whether to go on:
// false when the run is over or nothing was received for the timeout.
func (f *follower) retry(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if time.Since(f.lastMedia) > f.timeout {
		return fmt.Errorf("nothing received for %s: %w", f.timeout, err)
	}
	d := hlsRetryDelay
	var se *httpStatusError
	if errors.As(err, &se) && se.retryAfter > 0 {
		d = min(se.retryAfter, hlsMaxRetryDelay)
	}
	return sleep(ctx, d)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loadPlaylist fetches and parses the media playlist, blocking until part
// of segment msn is listed when block is set.
func (f *follower) loadPlaylist(ctx context.Context, block bool, msn int64, part int) error {
	u, kind := f.url, kindPlaylist
	if block {
		kind = kindBlocking
		sep := "?"
		if f.query != "" {
			sep = "&"
		}
		u = f.url + sep + "_HLS_msn=" + strconv.FormatInt(msn, 10) + "&_HLS_part=" + strconv.Itoa(part)
	}
	f.lastReload = time.Now()
	if _, err := f.get(ctx, kind, u, &f.body); err != nil {
		return err
	}
	if err := f.pl.parse(string(f.body)); err != nil {
		return fmt.Errorf("media playlist: %w", err)
	}
	f.st.loaded, f.st.lowLat = true, f.pl.lowLatency()
	return nil
}

// startAt places the follower where a player starts: at the latest
// independent part (Low-Latency), or three segments from the end (classic),
// or, when at is set (another media playlist of the player started there),
// at the part or segment that holds that time.
func (f *follower) startAt(at time.Time) {
	pl := &f.pl
	f.msn, f.part = pl.nextMSN(), 0
	if len(pl.segments) == 0 {
		return
	}
	if !at.IsZero() {
		for i := range pl.segments {
			s := &pl.segments[i]
			if s.gap || s.pdt.IsZero() {
				continue
			}
			if !pl.lowLatency() || len(s.parts) == 0 {
				if s.complete && s.end(-1).After(at.Add(time.Millisecond)) {
					f.msn, f.part = s.msn, 0
					return
				}
				continue
			}
			for j := range s.parts {
				if s.end(j).After(at.Add(time.Millisecond)) {
					f.msn, f.part = s.msn, j
					return
				}
			}
		}
	}
	if pl.lowLatency() {
		for i := len(pl.segments) - 1; i >= 0; i-- {
			s := &pl.segments[i]
			for j := len(s.parts) - 1; j >= 0; j-- {
				if s.parts[j].independent && !s.parts[j].gap {
					f.msn, f.part = s.msn, j
					return
				}
			}
		}
		return // no independent part listed yet: wait for the next segment
	}
	complete := 0
	for i := len(pl.segments) - 1; i >= 0; i-- {
		s := &pl.segments[i]
		if !s.complete || s.gap {
			continue
		}
		f.msn = s.msn
		if complete++; complete == 3 {
			break
		}
	}
}

// startTime is the wall-clock time of the follower's start position (zero
// when unknown).
func (f *follower) startTime() time.Time {
	s := f.pl.segment(f.msn)
	if s == nil || s.pdt.IsZero() {
		return time.Time{}
	}
	if f.part == 0 {
		return s.pdt
	}
	return s.end(f.part - 1)
}

// received accounts a part (i >= 0) or whole segment (i < 0) of s received now.
func (f *follower) received(s *hlsSegment, i int, now time.Time) {
	f.st.media++
	f.p.c.media.Add(1)
	f.lastMedia = now
	end := s.end(i)
	var live time.Duration
	has := !end.IsZero()
	if has {
		live = now.Sub(end)
		f.st.live = append(f.st.live, live)
		if f.atEdge {
			f.st.edge = append(f.st.edge, live)
		}
	} else {
		f.st.noPDT++
	}
	if f.st.first.IsZero() {
		f.st.first, f.st.firstLive, f.st.firstHas = now, live, has
	}
}

// fetchInit fetches the playlist's initialization section when it changed.
func (f *follower) fetchInit(ctx context.Context) error {
	if f.pl.mapURI == "" || f.pl.mapURI == f.initURI {
		return nil
	}
	if _, err := f.get(ctx, kindInit, f.resolve(f.pl.mapURI), nil); err != nil {
		return err
	}
	f.initURI = f.pl.mapURI
	return nil
}

// resync jumps back to where a new player would start, after the follower
// fell out of the playlist or the server restarted its numbering.
func (f *follower) resync(behind int64) {
	if behind > 0 {
		f.st.missed += uint64(behind)
	}
	f.st.resyncs++
	f.atEdge = false
	from := f.msn
	f.startAt(time.Time{})
	f.log.Debug("hls player resynchronised", "playlist", f.url, "from_msn", from, "to_msn", f.msn, "behind", behind)
}

// follow fetches every new part or segment until ctx ends. The playlist is
// loaded and the start position set.
func (f *follower) follow(ctx context.Context) error {
	f.lastMedia = time.Now()
	var err error
	for ctx.Err() == nil {
		if err != nil {
			if err = f.retry(ctx, err); err != nil {
				break
			}
		}
		if err = f.fetchInit(ctx); err != nil {
			continue
		}
		if f.pl.endList && f.pl.segment(f.msn) == nil {
			return io.EOF
		}
		if f.pl.lowLatency() {
			err = f.stepLowLatency(ctx)
		} else {
			err = f.stepClassic(ctx)
		}
		if err != nil && !f.countedError(err) {
			return err // not a request error: a broken playlist
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// countedError reports whether err is a failed request (to retry), as
// opposed to a playlist the player cannot follow.
func (f *follower) countedError(err error) bool {
	return err == f.lastErr || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// stepLowLatency takes one step on a Low-Latency playlist: fetch the next
// part if listed, else reload the playlist blocking until it is.
func (f *follower) stepLowLatency(ctx context.Context) error {
	pl := &f.pl
	if f.msn < pl.firstMSN() || f.msn > pl.nextMSN()+1 {
		// Fell out of the window, or the numbering restarted.
		behind := int64(0)
		if f.msn < pl.firstMSN() {
			behind = pl.firstMSN() - f.msn
		}
		f.resync(behind)
		return nil
	}
	s := pl.segment(f.msn)
	switch {
	case s == nil:
		// Not listed yet.
	case s.gap:
		f.msn, f.part = f.msn+1, 0
		return nil
	case f.part < len(s.parts):
		p := &s.parts[f.part]
		if !p.gap {
			if _, err := f.get(ctx, kindPart, f.resolve(p.uri), nil); err != nil {
				if se := (*httpStatusError)(nil); errors.As(err, &se) && se.code == http.StatusNotFound {
					f.st.missed++ // gone already: go on with the next one
					f.advancePart(s)
				}
				return err
			}
			f.received(s, f.part, time.Now())
		}
		f.advancePart(s)
		return nil
	case s.complete && len(s.parts) == 0 && f.part == 0:
		// An older segment whose parts are no longer listed.
		if _, err := f.get(ctx, kindSegment, f.resolve(s.uri), nil); err != nil {
			return err
		}
		f.received(s, -1, time.Now())
		f.msn++
		return nil
	case s.complete:
		if len(s.parts) == 0 {
			f.st.missed++ // the rest of the segment, whose parts are gone
		}
		f.msn, f.part = f.msn+1, 0
		return nil
	}
	f.atEdge = true
	before := time.Now()
	if err := f.loadPlaylist(ctx, true, f.msn, f.part); err != nil {
		var se *httpStatusError
		if errors.As(err, &se) && se.code == http.StatusBadRequest {
			// Outside what the server can block for: reload and resync.
			if err := f.loadPlaylist(ctx, false, 0, 0); err != nil {
				return err
			}
			f.resync(0)
			return nil
		}
		return err
	}
	if !f.listed() && time.Since(before) < pl.partTarget/4 {
		// The server answered at once without the part: do not spin.
		return sleep(ctx, pl.partTarget/2)
	}
	return nil
}

// listed reports whether the next part (or the segment after) is listed.
func (f *follower) listed() bool {
	s := f.pl.segment(f.msn)
	return s != nil && (f.part < len(s.parts) || s.complete)
}

func (f *follower) advancePart(s *hlsSegment) {
	f.part++
	if s.complete && f.part >= len(s.parts) {
		f.msn, f.part = f.msn+1, 0
	}
}

// stepClassic takes one step on a classic playlist: fetch the next segment
// if listed, else wait half a target duration and reload.
func (f *follower) stepClassic(ctx context.Context) error {
	pl := &f.pl
	if f.msn < pl.firstMSN() {
		f.st.missed += uint64(pl.firstMSN() - f.msn)
		f.msn = pl.firstMSN()
	} else if f.msn > pl.nextMSN()+1 {
		f.resync(0)
		return nil
	}
	if s := pl.segment(f.msn); s != nil && s.complete {
		if !s.gap {
			if _, err := f.get(ctx, kindSegment, f.resolve(s.uri), nil); err != nil {
				if se := (*httpStatusError)(nil); errors.As(err, &se) && se.code == http.StatusNotFound {
					f.st.missed++
					f.msn++
				}
				return err
			}
			f.received(s, -1, time.Now())
		}
		f.msn++
		return nil
	}
	if pl.endList {
		return io.EOF
	}
	f.atEdge = true
	every := pl.targetDuration / 2
	if every <= 0 {
		every = 500 * time.Millisecond
	}
	if wait := time.Until(f.lastReload.Add(every)); wait > 0 {
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
	return f.loadPlaylist(ctx, false, 0, 0)
}

// playHLS plays an HLS stream: multivariant playlist, then its media
// playlists, followed in parallel until ctx ends.
func (p *player) playHLS(ctx context.Context, hc *http.Client, timeout time.Duration, log *slog.Logger) error {
	lead := newFollower(p, hc, p.url, timeout, log)
	fs := []*follower{lead}
	defer func() {
		// What every media playlist's follower measured, even on failure.
		h := &hlsStats{}
		for _, f := range fs {
			h.merge(&f.st)
		}
		p.hls = h
		p.bytes = p.c.bytes.Load()
		if !h.first.IsZero() {
			p.haveVideo, p.firstVideo = true, h.first
		}
	}()
	// The first playlist: retried (a server may answer 503 while it starts
	// packaging) until the timeout.
	var err error
	for {
		if _, err = lead.get(ctx, kindPlaylist, p.url, &lead.body); err == nil {
			break
		}
		var se *httpStatusError
		if errors.As(err, &se) && se.code/100 == 4 || time.Since(p.started) > timeout {
			return fmt.Errorf("connect: %w", err)
		}
		if err := lead.retry(ctx, err); err != nil {
			return fmt.Errorf("connect: %w", err)
		}
	}
	rends, multi, err := parseMultivariant(string(lead.body))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if multi {
		more := make([]*follower, 0, len(rends))
		for _, r := range rends {
			more = append(more, newFollower(p, hc, lead.resolve(r.uri), timeout, log))
		}
		more[0].st = lead.st // the multivariant request
		fs = more
	}
	for i, f := range fs {
		if i == 0 && !multi {
			if err = f.pl.parse(string(f.body)); err == nil {
				f.st.loaded, f.st.lowLat = true, f.pl.lowLatency()
			}
		} else {
			err = f.loadUntil(ctx, p.started.Add(timeout))
		}
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
	}
	p.setPlaying()
	fs[0].startAt(time.Time{})
	at := fs[0].startTime()
	for _, f := range fs[1:] {
		f.startAt(at)
	}

	// One goroutine per further media playlist; the first fails them all.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(fs))
	var wg sync.WaitGroup
	for i, f := range fs[1:] {
		wg.Go(func() {
			if errs[i+1] = f.follow(fctx); errs[i+1] != nil {
				cancel()
			}
		})
	}
	if errs[0] = fs[0].follow(fctx); errs[0] != nil {
		cancel()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return nil
}

// loadUntil loads the media playlist, retrying failures until deadline.
func (f *follower) loadUntil(ctx context.Context, deadline time.Time) error {
	for {
		err := f.loadPlaylist(ctx, false, 0, 0)
		if err == nil || !f.countedError(err) {
			return err
		}
		var se *httpStatusError
		if errors.As(err, &se) && se.code/100 == 4 || time.Now().After(deadline) {
			return err
		}
		if err := f.retry(ctx, err); err != nil {
			return err
		}
	}
}
