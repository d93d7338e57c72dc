package bench

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// This file parses HLS playlists (RFC 8216 and its Low-Latency extension)
// as far as a player needs them: which media playlists to follow, and in
// each, the segments and partial segments with their URIs, durations and
// wall-clock times. It does not use maps and reuses its slices between
// reloads: a thousand players reload several playlists a second each.

// hlsPart is one EXT-X-PART.
type hlsPart struct {
	uri         string
	dur         time.Duration
	independent bool
	gap         bool
}

// hlsSegment is one media segment; the last one of a Low-Latency playlist
// may be incomplete: the parts of the segment being produced, without URI.
type hlsSegment struct {
	msn      int64
	uri      string // "" while incomplete
	dur      time.Duration
	pdt      time.Time // EXT-X-PROGRAM-DATE-TIME, given or carried forward (zero: unknown)
	gap      bool
	complete bool
	parts    []hlsPart
}

// end is the wall-clock time of the end of the segment, or of its part i
// when i >= 0, from its program date-time; zero when unknown.
func (s *hlsSegment) end(i int) time.Time {
	if s.pdt.IsZero() {
		return time.Time{}
	}
	if i < 0 {
		return s.pdt.Add(s.dur)
	}
	var off time.Duration
	for _, p := range s.parts[:i+1] {
		off += p.dur
	}
	return s.pdt.Add(off)
}

// mediaPlaylist is a parsed media playlist.
type mediaPlaylist struct {
	targetDuration time.Duration
	partTarget     time.Duration // EXT-X-PART-INF PART-TARGET; 0 without parts
	canBlockReload bool
	partHoldBack   time.Duration
	mapURI         string // EXT-X-MAP URI ("" for MPEG-TS)
	endList        bool
	// segments are in order, msn ascending; the last may be incomplete.
	segments []hlsSegment
}

// lowLatency reports whether the playlist can be followed part by part with
// blocking reloads.
func (pl *mediaPlaylist) lowLatency() bool { return pl.partTarget > 0 && pl.canBlockReload }

// firstMSN is the media sequence number of the first segment listed.
func (pl *mediaPlaylist) firstMSN() int64 {
	if len(pl.segments) == 0 {
		return math.MaxInt64
	}
	return pl.segments[0].msn
}

// segment returns the segment msn, nil when it is not listed.
func (pl *mediaPlaylist) segment(msn int64) *hlsSegment {
	if len(pl.segments) == 0 {
		return nil
	}
	i := msn - pl.segments[0].msn
	if i < 0 || i >= int64(len(pl.segments)) {
		return nil
	}
	return &pl.segments[i]
}

// nextMSN is the sequence number after the last complete segment.
func (pl *mediaPlaylist) nextMSN() int64 {
	for i := len(pl.segments) - 1; i >= 0; i-- {
		if pl.segments[i].complete {
			return pl.segments[i].msn + 1
		}
	}
	if len(pl.segments) > 0 {
		return pl.segments[0].msn
	}
	return 0
}

// errByteRange rejects what the player does not implement.
var errByteRange = errors.New("byte-range segments and parts are not supported")

// parse parses body into pl, reusing pl's slices.
func (pl *mediaPlaylist) parse(body string) error {
	if !strings.HasPrefix(body, "#EXTM3U") {
		return errors.New("playlist does not start with #EXTM3U")
	}
	segs := pl.segments[:0]
	*pl = mediaPlaylist{}
	var (
		msn        int64
		skipped    int64
		n          int // segments committed
		pdt        time.Time
		prev       *hlsSegment // last committed segment
		discont    bool
		haveInf    bool
		cur        *hlsSegment
		err        error
		targetSeen bool
	)
	// slot returns the segment being built, at index n of segs.
	slot := func() *hlsSegment {
		if cur != nil {
			return cur
		}
		if n < cap(segs) {
			segs = segs[:n+1]
		} else {
			segs = append(segs[:n], hlsSegment{})
		}
		parts := segs[n].parts[:0]
		clear(segs[n].parts[:cap(segs[n].parts)])
		segs[n] = hlsSegment{parts: parts}
		cur = &segs[n]
		return cur
	}
	for rest := body; rest != "" && err == nil; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if line[0] != '#' {
			s := slot()
			if !haveInf {
				return fmt.Errorf("segment %q without #EXTINF", line)
			}
			s.uri = line
			s.complete = true
			s.msn = msn + skipped + int64(n)
			s.pdt = carriedPDT(pdt, prev, discont)
			prev, cur = s, nil
			n++
			pdt, discont, haveInf = time.Time{}, false, false
			continue
		}
		tag, val, _ := strings.Cut(line, ":")
		switch tag {
		case "#EXT-X-TARGETDURATION":
			var v int
			v, err = strconv.Atoi(val)
			pl.targetDuration = time.Duration(v) * time.Second
			targetSeen = true
		case "#EXT-X-MEDIA-SEQUENCE":
			msn, err = strconv.ParseInt(val, 10, 64)
		case "#EXT-X-PART-INF":
			pl.partTarget, err = durationAttr(val, "PART-TARGET")
		case "#EXT-X-SERVER-CONTROL":
			pl.canBlockReload = attr(val, "CAN-BLOCK-RELOAD") == "YES"
			if v := attr(val, "PART-HOLD-BACK"); v != "" {
				pl.partHoldBack, err = parseSeconds(v)
			}
		case "#EXT-X-MAP":
			pl.mapURI = attr(val, "URI")
			if attr(val, "BYTERANGE") != "" {
				err = errByteRange
			}
		case "#EXT-X-SKIP":
			skipped, err = strconv.ParseInt(attr(val, "SKIPPED-SEGMENTS"), 10, 64)
			discont = true // the date-time chain is broken
		case "#EXT-X-PROGRAM-DATE-TIME":
			pdt, err = parsePDT(val)
		case "#EXT-X-DISCONTINUITY":
			discont = true
		case "#EXT-X-GAP":
			slot().gap = true
		case "#EXTINF":
			d, _, _ := strings.Cut(val, ",")
			slot().dur, err = parseSeconds(d)
			haveInf = true
		case "#EXT-X-BYTERANGE":
			err = errByteRange
		case "#EXT-X-PART":
			var p hlsPart
			haveDur := false
			for list := val; list != "" && err == nil; {
				var k, v string
				k, v, list = nextAttr(list)
				switch k {
				case "DURATION":
					p.dur, err = parseSeconds(v)
					haveDur = true
				case "URI":
					p.uri = v
				case "INDEPENDENT":
					p.independent = v == "YES"
				case "GAP":
					p.gap = v == "YES"
				case "BYTERANGE":
					err = errByteRange
				}
			}
			if err == nil && (!haveDur || p.uri == "") {
				err = fmt.Errorf("EXT-X-PART without DURATION or URI: %q", line)
			}
			s := slot()
			s.parts = append(s.parts, p)
		case "#EXT-X-ENDLIST":
			pl.endList = true
		}
	}
	if err != nil {
		return err
	}
	if !targetSeen {
		return errors.New("playlist without #EXT-X-TARGETDURATION")
	}
	if cur != nil && len(cur.parts) > 0 {
		// The parts of the segment being produced.
		cur.msn = msn + skipped + int64(n)
		cur.pdt = carriedPDT(pdt, prev, discont)
		for _, p := range cur.parts {
			cur.dur += p.dur
		}
		n++
	}
	pl.segments = segs[:n]
	return nil
}

// carriedPDT is the date-time of a segment: the one given, or the previous
// segment's plus its duration (unknown across a discontinuity).
func carriedPDT(given time.Time, prev *hlsSegment, discont bool) time.Time {
	if !given.IsZero() || prev == nil || discont || prev.pdt.IsZero() {
		return given
	}
	return prev.pdt.Add(prev.dur)
}

// parsePDT parses an ISO 8601 date-time with a time zone.
func parsePDT(v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		// ISO 8601 also allows a zone without a colon (+0100).
		var err2 error
		if t, err2 = time.Parse("2006-01-02T15:04:05.999999999Z0700", v); err2 != nil {
			return time.Time{}, fmt.Errorf("EXT-X-PROGRAM-DATE-TIME: %w", err)
		}
	}
	return t, nil
}

// parseSeconds parses a decimal number of seconds.
func parseSeconds(v string) (time.Duration, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1e6 {
		return 0, fmt.Errorf("bad duration %q", v)
	}
	return time.Duration(math.Round(f * 1e9)), nil
}

func durationAttr(list, key string) (time.Duration, error) {
	v := attr(list, key)
	if v == "" {
		return 0, fmt.Errorf("missing %s", key)
	}
	return parseSeconds(v)
}

// attr returns the value of key in an attribute list (KEY=VALUE,KEY="quoted,
// value"), unquoted; "" when absent.
func attr(list, key string) string {
	for list != "" {
		var k, v string
		k, v, list = nextAttr(list)
		if k == key {
			return v
		}
	}
	return ""
}

// nextAttr splits the first attribute off an attribute list.
func nextAttr(list string) (key, val, rest string) {
	key, rest, _ = strings.Cut(list, "=")
	key = strings.TrimSpace(key)
	if strings.HasPrefix(rest, `"`) {
		end := strings.IndexByte(rest[1:], '"')
		if end < 0 {
			return key, rest[1:], ""
		}
		val, rest = rest[1:1+end], rest[2+end:]
		rest = strings.TrimPrefix(rest, ",")
		return key, val, rest
	}
	val, rest, _ = strings.Cut(rest, ",")
	return key, val, rest
}

// hlsRendition is a media playlist a player follows.
type hlsRendition struct {
	uri  string
	kind string // "video" (or the variant's main playlist), "audio"
}

// parseMultivariant returns the media playlists a player follows for a
// multivariant playlist: the first variant (EXT-X-STREAM-INF), and the
// default rendition of its audio group when it has its own URI. ok is false
// when body is a media playlist.
func parseMultivariant(body string) (rs []hlsRendition, ok bool, err error) {
	if !strings.HasPrefix(body, "#EXTM3U") {
		return nil, false, errors.New("playlist does not start with #EXTM3U")
	}
	var audioGroup, variant string
	type media struct{ group, uri string }
	var audio []media
	var defaultAudio []media
	inf := false
	for rest := body; rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "#EXTINF:"), strings.HasPrefix(line, "#EXT-X-TARGETDURATION:"):
			return nil, false, nil // a media playlist
		case strings.HasPrefix(line, "#EXT-X-STREAM-INF:"):
			if variant == "" {
				inf = true
				audioGroup = attr(line[len("#EXT-X-STREAM-INF:"):], "AUDIO")
			}
		case strings.HasPrefix(line, "#EXT-X-MEDIA:"):
			l := line[len("#EXT-X-MEDIA:"):]
			if attr(l, "TYPE") == "AUDIO" && attr(l, "URI") != "" {
				m := media{attr(l, "GROUP-ID"), attr(l, "URI")}
				audio = append(audio, m)
				if attr(l, "DEFAULT") == "YES" {
					defaultAudio = append(defaultAudio, m)
				}
			}
		case line[0] != '#':
			if inf && variant == "" {
				variant = line
			}
			inf = false
		}
	}
	if variant == "" {
		return nil, true, errors.New("multivariant playlist without a variant")
	}
	rs = append(rs, hlsRendition{uri: variant, kind: "video"})
	if audioGroup != "" {
		for _, list := range [][]media{defaultAudio, audio} {
			i := 0
			for i < len(list) && list[i].group != audioGroup {
				i++
			}
			if i < len(list) {
				rs = append(rs, hlsRendition{uri: list[i].uri, kind: "audio"})
				break
			}
		}
	}
	return rs, true, nil
}
