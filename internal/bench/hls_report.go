package bench

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// HLSStats are the figures of a set of HLS players.
type HLSStats struct {
	Players    int `json:"players"`     // Players is the number of HLS players.
	LowLatency int `json:"low_latency"` // LowLatency counts players that followed parts with blocking reloads.
	Classic    int `json:"classic"`     // Classic counts players that polled a playlist of whole segments.

	Requests     uint64  `json:"requests"`       // Requests counts every request, failed ones too.
	RequestsPerS float64 `json:"requests_per_s"` // RequestsPerS is Requests over the measured time.
	BytesPerS    float64 `json:"bytes_per_s"`    // BytesPerS is the response body bytes over the measured time.

	Playlist       HLSRequests `json:"playlist"`        // Playlist is the playlist requests answered at once (multivariant and media).
	BlockingReload HLSRequests `json:"blocking_reload"` // BlockingReload is the blocking playlist reloads; their latency is mostly the wait for the next part.
	Part           HLSRequests `json:"part"`            // Part is the partial segment requests.
	Segment        HLSRequests `json:"segment"`         // Segment is the media segment requests.
	Init           HLSRequests `json:"init"`            // Init is the initialization section requests.

	Media   uint64 `json:"media"`   // Media counts parts and segments received.
	Missed  uint64 `json:"missed"`  // Missed counts parts and segments listed that a player never fetched (it fell behind).
	Resyncs int    `json:"resyncs"` // Resyncs counts jumps back to the live edge (fell out of the playlist, numbering restarted).

	// LatencyToLiveMs is, for each part or segment received, the receive
	// time minus the wall-clock time of its end: its EXT-X-PROGRAM-DATE-TIME
	// plus its offset in the segment plus its duration.
	LatencyToLiveMs Percentiles `json:"latency_to_live_ms"`
	// EdgeLatencyToLiveMs is the same for the media received once the
	// player was at the live edge (it had waited for new media): without the
	// backlog a player fetches when it starts (or resynchronises) behind the
	// edge, it is how late the server makes new media available.
	EdgeLatencyToLiveMs Percentiles `json:"edge_latency_to_live_ms"`
	// StartupLatencyToLiveMs is the same for the first part or segment each player received.
	StartupLatencyToLiveMs Percentiles `json:"startup_latency_to_live_ms"`
	// WithoutDateTime counts media received whose time the playlist did not tell.
	WithoutDateTime uint64 `json:"without_date_time,omitempty"`

	// HTTPErrors groups the failed requests by status (or transport error);
	// a player retries them and fails only when nothing comes for -timeout.
	HTTPErrors []HTTPErrorCount `json:"http_errors,omitempty"`
}

// HLSRequests are the figures of one kind of HLS request.
type HLSRequests struct {
	Requests  uint64      `json:"requests"`   // Requests counts them, failed ones too.
	PerS      float64     `json:"per_s"`      // PerS is Requests over the measured time.
	Bytes     uint64      `json:"bytes"`      // Bytes is the total of their response bodies.
	LatencyMs Percentiles `json:"latency_ms"` // LatencyMs is request to last body byte, successful requests only.
}

// HTTPErrorCount is how many HLS requests failed one way.
type HTTPErrorCount struct {
	Status int    `json:"status,omitempty"` // Status is the HTTP status, 0 for a transport error.
	Error  string `json:"error"`            // Error is the message.
	Count  int    `json:"count"`            // Count is the number of requests.
}

// aggregateHLS sums the HLS figures of some players over secs seconds; nil
// when none played HLS.
func aggregateHLS(rs []PlayerResult, secs float64) *HLSStats {
	var all hlsStats
	var startup []time.Duration
	s := &HLSStats{}
	for _, r := range rs {
		if r.Protocol != HLS {
			continue
		}
		s.Players++
		h := r.hls
		if h == nil {
			continue
		}
		switch {
		case h.lowLat:
			s.LowLatency++
		case h.loaded:
			s.Classic++
		}
		all.merge(h)
		if h.firstHas {
			startup = append(startup, h.firstLive)
		}
	}
	if s.Players == 0 {
		return nil
	}
	perS := func(n uint64) float64 {
		if secs <= 0 {
			return 0
		}
		return float64(n) / secs
	}
	var bytes uint64
	for k, out := range []*HLSRequests{&s.Playlist, &s.BlockingReload, &s.Part, &s.Segment, &s.Init} {
		out.Requests = all.requests[k]
		out.PerS = perS(out.Requests)
		out.Bytes = all.bytes[k]
		out.LatencyMs = percentiles(all.latencies[k])
		s.Requests += out.Requests
		bytes += out.Bytes
	}
	s.RequestsPerS = perS(s.Requests)
	s.BytesPerS = perS(bytes)
	s.Media, s.Missed, s.Resyncs, s.WithoutDateTime = all.media, all.missed, all.resyncs, all.noPDT
	s.LatencyToLiveMs = percentiles(all.live)
	s.EdgeLatencyToLiveMs = percentiles(all.edge)
	s.StartupLatencyToLiveMs = percentiles(startup)
	for _, sc := range all.status {
		s.HTTPErrors = append(s.HTTPErrors, HTTPErrorCount{Status: sc.code, Error: "HTTP " + strconv.Itoa(sc.code) + " " + http.StatusText(sc.code), Count: sc.n})
	}
	for _, e := range groupErrors(all.transport) {
		s.HTTPErrors = append(s.HTTPErrors, HTTPErrorCount{Error: e.Error, Count: e.Count})
	}
	slices.SortFunc(s.HTTPErrors, func(a, b HTTPErrorCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Error, b.Error))
	})
	return s
}

// writeHLS writes the HLS figures for people.
func writeHLS(b *strings.Builder, s *HLSStats, in string) {
	mode := "no media playlist loaded"
	switch {
	case s.LowLatency > 0 && s.Classic > 0:
		mode = fmt.Sprintf("%d low-latency, %d classic players", s.LowLatency, s.Classic)
	case s.LowLatency > 0:
		mode = "low-latency (parts, blocking reloads)"
	case s.Classic > 0:
		mode = "classic (segments, polling)"
	}
	fmt.Fprintf(b, "%shls         %s; %d parts and segments received, %d missed, %d resyncs\n",
		in, mode, s.Media, s.Missed, s.Resyncs)
	fmt.Fprintf(b, "%srequests    %.1f/s, %.2f MB/s: playlists %.1f/s (%.1f/s blocking), parts %.1f/s, segments %.1f/s, init %.1f/s\n",
		in, s.RequestsPerS, s.BytesPerS/1e6, s.Playlist.PerS+s.BlockingReload.PerS, s.BlockingReload.PerS,
		s.Part.PerS, s.Segment.PerS, s.Init.PerS)
	for i, k := range []struct {
		name string
		r    *HLSRequests
		note string
	}{
		{"playlist", &s.Playlist, "  (answered at once)"},
		{"blocking", &s.BlockingReload, "  (blocking reloads: mostly the wait for the next part)"},
		{"part", &s.Part, ""},
		{"segment", &s.Segment, ""},
		{"init", &s.Init, ""},
	} {
		head := "           "
		if i == 0 {
			head = "latency    "
		}
		if k.r.Requests == 0 {
			fmt.Fprintf(b, "%s%s %-9s -\n", in, head, k.name)
			continue
		}
		fmt.Fprintf(b, "%s%s %-9s %s%s\n", in, head, k.name, k.r.LatencyMs, k.note)
	}
	if s.Media > s.WithoutDateTime {
		fmt.Fprintf(b, "%sto live     %s  (receive time - end of the part or segment by its PROGRAM-DATE-TIME)\n", in, s.LatencyToLiveMs)
		fmt.Fprintf(b, "%s  at edge   %s  (once the player waited for new media)\n", in, s.EdgeLatencyToLiveMs)
		fmt.Fprintf(b, "%s  startup   %s  (first part or segment of each player)\n", in, s.StartupLatencyToLiveMs)
	} else {
		fmt.Fprintf(b, "%sto live     - (no EXT-X-PROGRAM-DATE-TIME)\n", in)
	}
	if len(s.HTTPErrors) == 0 {
		fmt.Fprintf(b, "%shttp errors none\n", in)
		return
	}
	fmt.Fprintf(b, "%shttp errors (retried):\n", in)
	for _, e := range s.HTTPErrors {
		fmt.Fprintf(b, "%s  %6d × %s\n", in, e.Count, e.Error)
	}
}
