package bench

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"strings"
	"time"
)

// Percentiles summarises a distribution, in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"` // P50 is the median.
	P90 float64 `json:"p90"` // P90 is the 90th percentile.
	P99 float64 `json:"p99"` // P99 is the 99th percentile.
	Max float64 `json:"max"` // Max is the largest value.
}

// ErrorCount is how many players ended with one error message.
type ErrorCount struct {
	Error string `json:"error"` // Error is the message, without addresses or ports.
	Count int    `json:"count"` // Count is the number of players.
}

// Stats are the figures of a set of players.
type Stats struct {
	Players    int `json:"players"`               // Players is the number of players.
	Connected  int `json:"connected"`             // Connected counts players that started playing.
	Failed     int `json:"failed"`                // Failed counts players that ended with an error.
	NotStarted int `json:"not_started,omitempty"` // NotStarted counts players the run ended before they started.

	Bytes uint64  `json:"bytes"`      // Bytes is the total of audio, video and data payload bytes received.
	Mbps  float64 `json:"mbit_per_s"` // Mbps is Bytes × 8 over the measured time, in Mbit/s.

	ConnectMs Percentiles `json:"connect_ms"` // ConnectMs is dial to playing.
	StartupMs Percentiles `json:"startup_ms"` // StartupMs is dial to the first coded video frame.

	VideoFrames    uint64  `json:"video_frames"`    // VideoFrames counts coded video frames received.
	ExpectedFrames uint64  `json:"expected_frames"` // ExpectedFrames is what the DTS timeline implies.
	DroppedFrames  uint64  `json:"dropped_frames"`  // DroppedFrames is ExpectedFrames - VideoFrames.
	DropPercent    float64 `json:"drop_percent"`    // DropPercent is DroppedFrames over ExpectedFrames, in %.
	AudioFrames    uint64  `json:"audio_frames"`    // AudioFrames counts coded audio frames received.
	FPS            float64 `json:"fps"`             // FPS is the frame rate the timestamps show.
	VideoSeconds   float64 `json:"video_seconds"`   // VideoSeconds is the media time of video received, summed over players.
	PlaySeconds    float64 `json:"play_seconds"`    // PlaySeconds is the wall time from first video frame to end, summed.

	Stalls          int     `json:"stalls"`          // Stalls counts gaps of more than StallThreshold without video.
	StallSeconds    float64 `json:"stall_seconds"`   // StallSeconds is the total length of those gaps.
	Discontinuities int     `json:"discontinuities"` // Discontinuities counts DTS jumps backwards or over 10 s.

	Errors []ErrorCount `json:"errors,omitempty"` // Errors groups the failed players by message.

	// HLS has the HLS figures, when players played HLS. For those players
	// the frame, stall and discontinuity figures above stay zero: parts and
	// segments are not decoded.
	HLS *HLSStats `json:"hls,omitempty"`
	// WebRTC has the WHEP figures, when players played WHEP.
	WebRTC *WebRTCStats `json:"webrtc,omitempty"`
}

// PublisherStats are the figures of the publishers.
type PublisherStats struct {
	Publishers int          `json:"publishers"`       // Publishers is the number of publishers.
	Failed     int          `json:"failed"`           // Failed counts publishers that ended with an error.
	Bytes      uint64       `json:"bytes"`            // Bytes is the total of payload bytes sent.
	Mbps       float64      `json:"mbit_per_s"`       // Mbps is Bytes × 8 over the measured time, in Mbit/s.
	Tags       uint64       `json:"tags"`             // Tags counts the messages sent.
	MaxLateMs  float64      `json:"max_late_ms"`      // MaxLateMs is the worst lateness against the file's timestamps.
	Errors     []ErrorCount `json:"errors,omitempty"` // Errors groups the failed publishers by message.
}

// Summary is the outcome of a run.
type Summary struct {
	URLs    []string `json:"urls"`    // URLs are the players' URLs as given.
	Seconds float64  `json:"seconds"` // Seconds is the measured time: first player start to the end.
	Stats
	// Protocols splits Stats by protocol when players used several.
	Protocols map[Protocol]*Stats `json:"protocols,omitempty"`
	// Publishers is set when the run published.
	Publishers *PublisherStats `json:"publishers,omitempty"`
}

// PlayerResult is what one player measured.
type PlayerResult struct {
	URL             string        // URL is the stream played.
	Protocol        Protocol      // Protocol is the playback protocol.
	Started         bool          // Started is false if the run ended before the player's turn.
	Connected       bool          // Connected reports that the player started playing.
	Connect         time.Duration // Connect is dial to playing.
	Startup         time.Duration // Startup is dial to the first coded video frame (0: none).
	Bytes           uint64        // Bytes counts payload bytes received.
	VideoFrames     uint64        // VideoFrames counts coded video frames.
	AudioFrames     uint64        // AudioFrames counts coded audio frames.
	ExpectedFrames  uint64        // ExpectedFrames is what the DTS timeline implies.
	DroppedFrames   uint64        // DroppedFrames is ExpectedFrames - VideoFrames.
	FrameInterval   time.Duration // FrameInterval is the median DTS step.
	FPS             float64       // FPS is the frame rate the timestamps show.
	MediaTime       time.Duration // MediaTime is the DTS span received (jumps excluded).
	PlayTime        time.Duration // PlayTime is first video frame to end.
	Stalls          int           // Stalls counts gaps over StallThreshold without video.
	StallTime       time.Duration // StallTime is their total length.
	LongestGap      time.Duration // LongestGap is the longest wall-clock gap between video frames.
	Discontinuities int           // Discontinuities counts DTS jumps not taken as gaps.
	Err             error         // Err is why the player failed, nil if it did not.

	hls *hlsStats  // HLS players: requests, latencies, latency to live
	rtc *whepStats // WHEP players: packets, latencies
}

// PublisherResult is what one publisher did.
type PublisherResult struct {
	URL     string        // URL is where it published.
	Bytes   uint64        // Bytes counts payload bytes sent.
	Tags    uint64        // Tags counts messages sent.
	Loops   int           // Loops counts complete passes over the file.
	MaxLate time.Duration // MaxLate is the worst lateness against the file's timestamps.
	Err     error         // Err is why it failed, nil if it did not.
}

func buildReport(cfg *Config, start, stop time.Time, players []*player, pubs []*publisher) *Report {
	secs := stop.Sub(start).Seconds()
	r := &Report{}
	r.URLs = cfg.URLs
	r.Seconds = secs
	for _, p := range players {
		r.PlayerResults = append(r.PlayerResults, p.result(stop))
	}
	r.Stats = aggregate(r.PlayerResults, secs)
	protos := map[Protocol][]PlayerResult{}
	for _, pr := range r.PlayerResults {
		protos[pr.Protocol] = append(protos[pr.Protocol], pr)
	}
	if len(protos) > 1 {
		r.Protocols = map[Protocol]*Stats{}
		for proto, prs := range protos {
			s := aggregate(prs, secs)
			r.Protocols[proto] = &s
		}
	}
	if len(pubs) > 0 {
		pubSecs := secs
		if d := stop.Sub(pubs[0].started).Seconds(); d > 0 {
			pubSecs = d
		}
		ps := &PublisherStats{Publishers: len(pubs)}
		var errs []error
		for _, p := range pubs {
			res := p.result()
			r.PublisherResults = append(r.PublisherResults, res)
			ps.Bytes += res.Bytes
			ps.Tags += res.Tags
			ps.MaxLateMs = max(ps.MaxLateMs, ms(res.MaxLate))
			if res.Err != nil {
				ps.Failed++
				errs = append(errs, res.Err)
			}
		}
		ps.Mbps = float64(ps.Bytes) * 8 / pubSecs / 1e6
		ps.Errors = groupErrors(errs)
		r.Publishers = ps
	}
	return r
}

// result reads the player's figures; the player must have ended, or not
// have been started (then it reports the run's end as its failure).
func (p *player) result(stop time.Time) PlayerResult {
	select {
	case <-p.done:
	default:
		return PlayerResult{URL: p.url, Protocol: p.proto, Started: true, Err: errors.New("did not stop in time")}
	}
	r := PlayerResult{
		URL:             p.url,
		Protocol:        p.proto,
		Started:         p.attempted,
		Connected:       !p.playing.IsZero(),
		Bytes:           p.bytes,
		VideoFrames:     p.videoFrames,
		AudioFrames:     p.audioFrames,
		ExpectedFrames:  p.expected(),
		DroppedFrames:   p.dropped,
		FrameInterval:   time.Duration(p.interval) * time.Millisecond,
		FPS:             p.fps(),
		MediaTime:       time.Duration(p.mediaMs) * time.Millisecond,
		Stalls:          p.stalls,
		StallTime:       p.stallTime,
		LongestGap:      p.longestGap,
		Discontinuities: p.discont,
		Err:             p.err,
		hls:             p.hls,
		rtc:             p.rtc,
	}
	if r.Connected {
		r.Connect = p.playing.Sub(p.started)
	}
	if p.haveVideo {
		r.Startup = p.firstVideo.Sub(p.started)
		end := p.ended
		if end.After(stop) {
			end = stop
		}
		r.PlayTime = end.Sub(p.firstVideo)
	}
	return r
}

func (p *publisher) result() PublisherResult {
	select {
	case <-p.done:
	default:
		return PublisherResult{URL: p.url, Err: errors.New("did not stop in time")}
	}
	return PublisherResult{URL: p.url, Bytes: p.bytes.Load(), Tags: p.tags.Load(), Loops: p.loops, MaxLate: p.maxLate, Err: p.err}
}

// aggregate sums the results of some players over secs seconds.
func aggregate(rs []PlayerResult, secs float64) Stats {
	s := Stats{Players: len(rs)}
	var connect, startup []time.Duration
	var fpsWeighted float64
	var errs []error
	for _, r := range rs {
		if !r.Started {
			s.NotStarted++
			continue
		}
		if r.Connected {
			s.Connected++
			connect = append(connect, r.Connect)
		}
		if r.Err != nil {
			s.Failed++
			errs = append(errs, r.Err)
		}
		if r.VideoFrames > 0 || r.hls != nil && r.hls.media > 0 {
			startup = append(startup, r.Startup)
		}
		fpsWeighted += r.FPS * r.MediaTime.Seconds()
		s.Bytes += r.Bytes
		s.VideoFrames += r.VideoFrames
		s.ExpectedFrames += r.ExpectedFrames
		s.DroppedFrames += r.DroppedFrames
		s.AudioFrames += r.AudioFrames
		s.VideoSeconds += r.MediaTime.Seconds()
		s.PlaySeconds += r.PlayTime.Seconds()
		s.Stalls += r.Stalls
		s.StallSeconds += r.StallTime.Seconds()
		s.Discontinuities += r.Discontinuities
	}
	if secs > 0 {
		s.Mbps = float64(s.Bytes) * 8 / secs / 1e6
	}
	if s.ExpectedFrames > 0 {
		s.DropPercent = 100 * float64(s.DroppedFrames) / float64(s.ExpectedFrames)
	}
	if s.VideoSeconds > 0 {
		s.FPS = fpsWeighted / s.VideoSeconds
	}
	s.ConnectMs = percentiles(connect)
	s.StartupMs = percentiles(startup)
	s.Errors = groupErrors(errs)
	s.HLS = aggregateHLS(rs, secs)
	s.WebRTC = aggregateWebRTC(rs)
	return s
}

// percentiles uses the nearest-rank method.
func percentiles(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	slices.Sort(ds)
	rank := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(ds)))) - 1
		return ms(ds[max(i, 0)])
	}
	return Percentiles{P50: rank(0.50), P90: rank(0.90), P99: rank(0.99), Max: ms(ds[len(ds)-1])}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }

// groupErrors counts errors by message, most frequent first.
func groupErrors(errs []error) []ErrorCount {
	counts := map[string]int{}
	for _, err := range errs {
		counts[errorKey(err)]++
	}
	out := make([]ErrorCount, 0, len(counts))
	for msg, n := range counts {
		out = append(out, ErrorCount{Error: msg, Count: n})
	}
	slices.SortFunc(out, func(a, b ErrorCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Error, b.Error))
	})
	if len(out) == 0 {
		return nil
	}
	return out
}

// errorKey is an error's message without the addresses of network errors
// (which carry each player's own port), so that equal failures group.
func errorKey(err error) string {
	msg := err.Error()
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		msg = strings.Replace(msg, op.Error(), op.Op+": "+op.Err.Error(), 1)
	}
	return msg
}

// WriteText writes the summary for people.
func WriteText(w io.Writer, s *Summary) error {
	var b strings.Builder
	fmt.Fprintf(&b, "quasipaa bench: %d players for %.1fs, %s\n", s.Players, s.Seconds, strings.Join(s.URLs, " "))
	writeStats(&b, &s.Stats, s.Seconds, "")
	if len(s.Protocols) > 0 {
		protos := make([]Protocol, 0, len(s.Protocols))
		for p := range s.Protocols {
			protos = append(protos, p)
		}
		slices.Sort(protos)
		for _, p := range protos {
			fmt.Fprintf(&b, "%s:\n", p)
			writeStats(&b, s.Protocols[p], s.Seconds, "  ")
		}
	}
	if ps := s.Publishers; ps != nil {
		fmt.Fprintf(&b, "publishers  %d ok, %d failed; sent %.2f Mbit/s, %d messages, at worst %.0fms late\n",
			ps.Publishers-ps.Failed, ps.Failed, ps.Mbps, ps.Tags, ps.MaxLateMs)
		writeErrors(&b, ps.Errors, "")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeStats(b *strings.Builder, s *Stats, secs float64, in string) {
	fmt.Fprintf(b, "%splayers     %d connected, %d failed", in, s.Connected, s.Failed)
	if s.NotStarted > 0 {
		fmt.Fprintf(b, ", %d not started", s.NotStarted)
	}
	fmt.Fprintf(b, " (of %d)\n", s.Players)
	perPlayer := 0.0
	if s.Connected > 0 {
		perPlayer = s.Mbps / float64(s.Connected)
	}
	fmt.Fprintf(b, "%sdelivered   %.2f Mbit/s (%.3f Gbit/s; %.2f Mbit/s per player; %.1f MB in %.2fs)\n",
		in, s.Mbps, s.Mbps/1000, perPlayer, float64(s.Bytes)/1e6, secs)
	fmt.Fprintf(b, "%sconnect     %s\n", in, s.ConnectMs)
	fmt.Fprintf(b, "%sstartup     %s\n", in, s.StartupMs)
	if s.HLS != nil {
		writeHLS(b, s.HLS, in)
		if s.HLS.Players == s.Players {
			writeErrors(b, s.Errors, in)
			return // no frame figures for HLS
		}
	}
	fmt.Fprintf(b, "%svideo       %d frames received, %d expected, %d dropped (%.2f%%), %.2f fps\n",
		in, s.VideoFrames, s.ExpectedFrames, s.DroppedFrames, s.DropPercent, s.FPS)
	fmt.Fprintf(b, "%saudio       %d frames received\n", in, s.AudioFrames)
	fmt.Fprintf(b, "%sstalls      %d (%.1fs in total)", in, s.Stalls, s.StallSeconds)
	if s.Discontinuities > 0 {
		fmt.Fprintf(b, ", %d timestamp discontinuities", s.Discontinuities)
	}
	b.WriteString("\n")
	if s.WebRTC != nil {
		writeWebRTC(b, s.WebRTC, in)
	}
	writeErrors(b, s.Errors, in)
}

func writeErrors(b *strings.Builder, errs []ErrorCount, in string) {
	if len(errs) == 0 {
		return
	}
	fmt.Fprintf(b, "%serrors:\n", in)
	for _, e := range errs {
		fmt.Fprintf(b, "%s  %6d × %s\n", in, e.Count, e.Error)
	}
}

// String formats the percentiles in milliseconds.
func (p Percentiles) String() string {
	return fmt.Sprintf("p50 %.1fms  p90 %.1fms  p99 %.1fms  max %.1fms", p.P50, p.P90, p.P99, p.Max)
}

// progress prints the live one-line progress.
type progress struct {
	w         io.Writer
	start     time.Time
	players   []*player
	pubs      []*publisher
	lastAt    time.Time
	lastBytes uint64
	lastReqs  uint64
}

func newProgress(w io.Writer, start time.Time, players []*player, pubs []*publisher) *progress {
	return &progress{w: w, start: start, players: players, pubs: pubs, lastAt: start}
}

func (pr *progress) print(now time.Time) {
	var connecting, playing, failed int
	var bytes, video, drops, reqs, media, httpErrs uint64
	var stalls uint32
	hlsPlayers := 0
	for _, p := range pr.players {
		if p.proto == HLS {
			hlsPlayers++
			reqs += p.c.requests.Load()
			media += p.c.media.Load()
			httpErrs += p.c.httpErrors.Load()
		}
		switch p.c.state.Load() {
		case stateConnecting:
			connecting++
		case stateConnected:
			playing++
		case stateFailed:
			failed++
		}
		bytes += p.c.bytes.Load()
		video += p.c.video.Load()
		drops += p.c.drops.Load()
		stalls += p.c.stalls.Load()
	}
	mbps := 0.0
	if d := now.Sub(pr.lastAt).Seconds(); d > 0 {
		mbps = float64(bytes-pr.lastBytes) * 8 / d / 1e6
	}
	line := fmt.Sprintf("%6.1fs  players %d playing, %d connecting, %d failed  %8.1f Mbit/s",
		now.Sub(pr.start).Seconds(), playing, connecting, failed, mbps)
	if hlsPlayers < len(pr.players) {
		line += fmt.Sprintf("  video frames %d, dropped %d, stalls %d", video, drops, stalls)
	}
	if hlsPlayers > 0 {
		rps := 0.0
		if d := now.Sub(pr.lastAt).Seconds(); d > 0 {
			rps = float64(reqs-pr.lastReqs) / d
		}
		line += fmt.Sprintf("  hls %.0f requests/s, %d parts and segments, %d http errors", rps, media, httpErrs)
	}
	pr.lastAt, pr.lastBytes, pr.lastReqs = now, bytes, reqs
	if len(pr.pubs) > 0 {
		var sent uint64
		up := 0
		for _, p := range pr.pubs {
			sent += p.tags.Load()
			select {
			case <-p.done:
			default:
				up++
			}
		}
		line += fmt.Sprintf("  publishers %d/%d up, %d messages sent", up, len(pr.pubs), sent)
	}
	_, _ = io.WriteString(pr.w, line+"\n")
}
