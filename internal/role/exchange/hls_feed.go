package exchange

import (
	"bytes"
	"fmt"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/quasipaa/quasipaa/internal/codec/h264"
	"github.com/quasipaa/quasipaa/internal/codec/h265"
	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/media"
)

// plannedTrack is one stream track the muxer packages.
type plannedTrack struct {
	index  int
	codec  media.Codec
	config []byte
	clock  int
	hls    *gohlslib.Track
	// params are the parameter sets of the codec configuration, prepended
	// to keyframes that do not carry them in band (the muxer needs them in
	// band to derive decoding times).
	params [][]byte
}

// trackPlan says which tracks of a stream the muxer packages.
type trackPlan struct {
	video, audio *plannedTrack
	skipped      []media.Codec
}

// planTracks maps a stream's tracks to HLS tracks for variant v: the first
// video track (H.264, or H.265 in the fMP4 variants) and the first audio
// track (AAC, or Opus in the fMP4 variants). Audio that cannot be packaged is
// skipped when there is video; video that cannot be packaged fails.
func planTracks(tracks []*media.Track, v HLSVariant) (trackPlan, error) {
	var p trackPlan
	// The first video track, and the preferred audio track: AAC plays
	// everywhere; a WebRTC stream with converted audio has Opus and AAC.
	vi, ai := media.PickTracks(tracks, func(media.Codec) bool { return true }, media.CodecAAC, media.CodecOpus)
	for i, t := range tracks {
		switch {
		case i == vi:
			pt, err := planVideo(i, t, v)
			if err != nil {
				return p, err
			}
			p.video = pt
		case i == ai:
			pt, err := planAudio(i, t, v)
			if err != nil {
				p.skipped = append(p.skipped, t.Codec)
				continue
			}
			p.audio = pt
		case t != nil && t.IsAudio() && ai >= 0 && tracks[ai].Codec == media.CodecAAC && t.Codec == media.CodecOpus:
			// The Opus original of converted audio: not a skipped track.
		default:
			if t != nil {
				p.skipped = append(p.skipped, t.Codec)
			}
		}
	}
	if p.video == nil && p.audio == nil {
		if len(p.skipped) == 0 {
			return p, fmt.Errorf("%w: the stream has no track", ErrUnsupportedCodec)
		}
		return p, fmt.Errorf("%w: %s in HLS %s (supported: %s)", ErrUnsupportedCodec, p.skipped[0], v, supported(v))
	}
	return p, nil
}

func supported(v HLSVariant) string {
	if v == HLSMPEGTS {
		return "h264, aac"
	}
	return "h264, h265, aac, opus"
}

// firstParam returns the first parameter set of list (nil when there is
// none) and records it in pt.params, the sets put in front of keyframes that
// do not carry their own.
func (pt *plannedTrack) firstParam(list [][]byte) []byte {
	if len(list) == 0 {
		return nil
	}
	pt.params = append(pt.params, list[0])
	return list[0]
}

func planVideo(i int, t *media.Track, v HLSVariant) (*plannedTrack, error) {
	pt := &plannedTrack{index: i, codec: t.Codec, config: t.Config, clock: 90000}
	switch {
	case t.Codec == media.CodecH264:
		rec, err := h264.ParseConfigRecord(t.Config)
		if err != nil {
			return nil, fmt.Errorf("%w: h264 configuration: %w", ErrUnsupportedCodec, err)
		}
		c := &codecs.H264{SPS: pt.firstParam(rec.SPS), PPS: pt.firstParam(rec.PPS)}
		pt.hls = &gohlslib.Track{Codec: c, ClockRate: 90000}
	case t.Codec == media.CodecH265 && v != HLSMPEGTS:
		rec, err := h265.ParseConfigRecord(t.Config)
		if err != nil {
			return nil, fmt.Errorf("%w: h265 configuration: %w", ErrUnsupportedCodec, err)
		}
		// Evaluated left to right: params keep the VPS, SPS, PPS order.
		c := &codecs.H265{VPS: pt.firstParam(rec.VPS), SPS: pt.firstParam(rec.SPS), PPS: pt.firstParam(rec.PPS)}
		pt.hls = &gohlslib.Track{Codec: c, ClockRate: 90000}
	default:
		return nil, fmt.Errorf("%w: video %s in HLS %s (supported: %s)", ErrUnsupportedCodec, t.Codec, v, supported(v))
	}
	return pt, nil
}

func planAudio(i int, t *media.Track, v HLSVariant) (*plannedTrack, error) {
	pt := &plannedTrack{index: i, codec: t.Codec, config: t.Config}
	switch {
	case t.Codec == media.CodecAAC:
		var asc mpeg4audio.AudioSpecificConfig
		if err := asc.Unmarshal(t.Config); err != nil {
			return nil, fmt.Errorf("%w: AudioSpecificConfig: %w", ErrUnsupportedCodec, err)
		}
		pt.clock = asc.SampleRate
		pt.hls = &gohlslib.Track{Codec: &codecs.MPEG4Audio{Config: asc}, ClockRate: asc.SampleRate}
	case t.Codec == media.CodecOpus && v != HLSMPEGTS:
		ch := t.Channels
		if ch <= 0 {
			ch = 2
		}
		pt.clock = 48000
		pt.hls = &gohlslib.Track{Codec: &codecs.Opus{ChannelCount: ch}, ClockRate: 48000}
	default:
		return nil, fmt.Errorf("%w: audio %s in HLS %s", ErrUnsupportedCodec, t.Codec, v)
	}
	return pt, nil
}

// feeder converts the hub's frames to muxer writes. It is owned by one goroutine.
type feeder struct {
	m       *gohlslib.Muxer
	tracks  *hub.TrackSet
	plan    trackPlan
	variant HLSVariant
	segMin  time.Duration

	// nalus and aus are reused between frames; their elements alias the
	// frames' immutable payloads.
	nalus [][]byte
	aus   [][]byte

	// Readiness estimate, mirroring the muxer's segmentation: segments
	// completed on the leading track since segStart.
	isReady  bool
	started  bool
	segStart time.Duration
	segments int
}

func newFeeder(m *gohlslib.Muxer, ts *hub.TrackSet, plan trackPlan, opts HLSOptions) *feeder {
	return &feeder{m: m, tracks: ts, plan: plan, variant: opts.Variant, segMin: opts.SegmentMinDuration, aus: make([][]byte, 1)}
}

// sameCodecs reports whether ts packages to the same muxer tracks.
func (f *feeder) sameCodecs(ts *hub.TrackSet) bool {
	p, err := planTracks(ts.Tracks, f.variant)
	if err != nil {
		return false
	}
	same := func(a, b *plannedTrack) bool {
		if a == nil || b == nil {
			return a == b
		}
		return a.index == b.index && a.codec == b.codec && bytes.Equal(a.config, b.config)
	}
	return same(p.video, f.plan.video) && same(p.audio, f.plan.audio)
}

// segmentDone reports whether the muxer completed the segments it needs
// before it serves a playlist.
func (f *feeder) segmentDone() bool {
	if f.variant == HLSFMP4 {
		return f.segments >= 2
	}
	return f.segments >= 1
}

// lead advances the readiness estimate with a random access point of the leading track.
func (f *feeder) lead(dts time.Duration) {
	if !f.started {
		f.started, f.segStart = true, dts
		return
	}
	if dts-f.segStart >= f.segMin {
		f.segments++
		f.segStart = dts
	}
}

// write hands one frame to the muxer.
func (f *feeder) write(fr *media.Frame) error {
	ntp := fr.Ingest
	if ntp.IsZero() {
		ntp = time.Now()
	}
	switch {
	case f.plan.video != nil && fr.Track == f.plan.video.index:
		return f.writeVideo(f.plan.video, fr, ntp)
	case f.plan.audio != nil && fr.Track == f.plan.audio.index:
		a := f.plan.audio
		f.aus[0] = fr.Payload
		pts := toClock(fr.PTS, a.clock)
		var err error
		if a.codec == media.CodecAAC {
			err = f.m.WriteMPEG4Audio(a.hls, ntp, pts, f.aus)
		} else {
			err = f.m.WriteOpus(a.hls, ntp, pts, f.aus)
		}
		f.aus[0] = nil
		if f.plan.video == nil && err == nil {
			f.lead(fr.PTS)
		}
		return err
	}
	return nil
}

func (f *feeder) writeVideo(v *plannedTrack, fr *media.Frame, ntp time.Time) error {
	buf := f.nalus[:0]
	np := 0
	if fr.Key {
		buf = append(buf, v.params...)
		np = len(v.params)
	}
	hasParams := false
	for nalu, rest, err := h264.NextNALU(fr.Payload); nalu != nil || err != nil; nalu, rest, err = h264.NextNALU(rest) {
		if err != nil {
			f.nalus = buf[:0]
			return err
		}
		if isParamSet(v.codec, nalu) {
			hasParams = true
		}
		buf = append(buf, nalu)
	}
	au := buf
	if hasParams {
		au = buf[np:]
	}
	var err error
	if len(au) > 0 {
		pts := toClock(fr.PTS, 90000)
		if v.codec == media.CodecH264 {
			err = f.m.WriteH264(v.hls, ntp, pts, au)
		} else {
			err = f.m.WriteH265(v.hls, ntp, pts, au)
		}
	}
	clear(buf)
	f.nalus = buf[:0]
	if err == nil && fr.Key {
		f.lead(fr.DTS)
	}
	return err
}

// isParamSet reports whether nalu is an SPS (or, for H.265, a VPS).
func isParamSet(c media.Codec, nalu []byte) bool {
	if c == media.CodecH264 {
		return h264.TypeOf(nalu) == h264.NALUTypeSPS
	}
	t := h265.TypeOf(nalu)
	return t == h265.NALUTypeVPS || t == h265.NALUTypeSPS
}

// toClock converts d to a timestamp at rate Hz without overflowing.
func toClock(d time.Duration, rate int) int64 {
	secs := int64(d / time.Second)
	rem := int64(d % time.Second)
	return secs*int64(rate) + rem*int64(rate)/int64(time.Second)
}
