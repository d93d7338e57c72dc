// Package fmp4 writes a stream as fragmented MP4 (ISO BMFF): one init
// segment (ftyp+moov) describing the tracks, then moof+mdat fragments that
// hold the frames, on one continuous timeline. The boxes are encoded by
// mediacommon's fmp4 package; this package plans the tracks from the media
// model and turns frame timestamps into sample durations and offsets.
package fmp4

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	mcfmp4 "github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/quasipaa/quasipaa/internal/codec/aac"
	"github.com/quasipaa/quasipaa/internal/codec/av1"
	"github.com/quasipaa/quasipaa/internal/codec/h264"
	"github.com/quasipaa/quasipaa/internal/codec/h265"
	"github.com/quasipaa/quasipaa/internal/codec/mp3"
	"github.com/quasipaa/quasipaa/internal/codec/opus"
	"github.com/quasipaa/quasipaa/internal/codec/vp9"
	"github.com/quasipaa/quasipaa/internal/media"
)

// ErrUnsupportedCodec is returned (wrapped) for a track that cannot be written to MP4.
var ErrUnsupportedCodec = errors.New("fmp4: unsupported codec")

// videoTimeScale is the timescale of every video track.
const videoTimeScale = 90000

// Fallback durations when nothing better is known.
const (
	fallbackVideoFPS   = 30   // video: a last sample with no usable end or previous duration
	aacFrameSamples    = 1024 // AAC access unit
	opusFallbackTicks  = 960  // 20 ms at 48 kHz
	mp3FrameSamples    = 1152 // MPEG-1 Layer III
	mp3LSFFrameSamples = 576  // MPEG-2/2.5 Layer III
)

// Writer turns a stream's frames into an init segment and fragments.
//
// A Writer is not safe for concurrent use. Timestamps are measured from the
// DTS of the first frame it is given (of a track it writes), so its fragments
// form one timeline starting at 0. Within a track, sample times are kept
// non-decreasing and a fragment never starts before the previous fragment of
// the same track ended: a frame that would (out-of-order DTS, or audio
// timestamps rounded to the millisecond) is moved to that point, and the
// composition offset keeps its presentation time.
type Writer struct {
	tracks  []*track // written tracks, in MP4 track ID order
	byIndex []*track // stream track index -> written track, nil when skipped
	skipped []media.Codec
	init    []byte

	started bool
	origin  time.Duration // DTS of the first frame, the timeline's 0
	seq     uint32        // last fragment sequence number
	count   int           // buffered samples
	size    int           // buffered payload bytes

	part  mcfmp4.Part
	parts []*mcfmp4.PartTrack
}

// pending is one buffered frame; payload aliases the frame's.
type pending struct {
	dts, pts time.Duration
	key      bool
	payload  []byte
}

// track is the state of one written track.
type track struct {
	id    int
	codec media.Codec
	video bool
	scale int64

	// Audio: ticks of one AAC access unit, of the MP3 frame default.
	frameTicks uint32

	frames  []pending
	ticks   []int64 // scratch: DTS of each buffered frame in ticks
	samples []mcfmp4.Sample
	ptrs    []*mcfmp4.Sample
	part    mcfmp4.PartTrack

	next    int64  // where the previous fragment of this track ended, in ticks
	prevDur uint32 // duration of the last sample written, 0 before any
}

// NewWriter plans tracks: every video and audio track it can write gets an MP4 track
// (IDs 1.. in order); tracks it cannot write are skipped (Skipped lists their codecs);
// an error (ErrUnsupportedCodec) only when no track at all can be written.
// Video timescale 90000; audio timescale = sample rate (Opus 48000).
func NewWriter(tracks []*media.Track) (*Writer, error) {
	w := &Writer{byIndex: make([]*track, len(tracks))}
	var init mcfmp4.Init
	var reasons []string
	var scratch seekablebuffer.Buffer
	for i, t := range tracks {
		it, tr, err := plan(t)
		if err == nil {
			// Encode the track alone first, so that one the muxer rejects
			// (an SPS it cannot parse, say) is skipped, not fatal.
			it.ID = len(w.tracks) + 1
			scratch.Reset()
			if err = (mcfmp4.Init{Tracks: []*mcfmp4.InitTrack{it}}).Marshal(&scratch); err != nil {
				err = fmt.Errorf("%w: %s: %w", ErrUnsupportedCodec, t.Codec, err)
			}
		}
		if err != nil {
			codec := media.CodecUnknown
			if t != nil {
				codec = t.Codec
			}
			w.skipped = append(w.skipped, codec)
			reasons = append(reasons, err.Error())
			continue
		}
		tr.id = it.ID
		tr.part.ID = it.ID
		w.tracks = append(w.tracks, tr)
		w.byIndex[i] = tr
		init.Tracks = append(init.Tracks, it)
	}
	if len(w.tracks) == 0 {
		if len(reasons) == 0 {
			return nil, fmt.Errorf("%w: the stream has no track", ErrUnsupportedCodec)
		}
		return nil, fmt.Errorf("%w: no track can be written (%s)", ErrUnsupportedCodec, strings.Join(reasons, "; "))
	}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("fmp4: init segment: %w", err)
	}
	w.init = buf.Bytes()
	w.parts = make([]*mcfmp4.PartTrack, 0, len(w.tracks))
	return w, nil
}

// plan maps one media track to an MP4 track.
func plan(t *media.Track) (*mcfmp4.InitTrack, *track, error) {
	if t == nil {
		return nil, nil, fmt.Errorf("%w: nil track", ErrUnsupportedCodec)
	}
	unsupported := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrUnsupportedCodec, t.Codec, fmt.Sprintf(format, args...))
	}
	tr := &track{codec: t.Codec, video: t.IsVideo(), scale: videoTimeScale}
	var c codecs.Codec
	switch t.Codec {
	case media.CodecH264:
		rec, err := h264.ParseConfigRecord(t.Config)
		if err != nil {
			return nil, nil, unsupported("configuration record: %v", err)
		}
		if len(rec.SPS) == 0 || len(rec.PPS) == 0 {
			return nil, nil, unsupported("configuration record without SPS or PPS")
		}
		c = &codecs.H264{SPS: rec.SPS[0], PPS: rec.PPS[0]}
	case media.CodecH265:
		rec, err := h265.ParseConfigRecord(t.Config)
		if err != nil {
			return nil, nil, unsupported("configuration record: %v", err)
		}
		if len(rec.VPS) == 0 || len(rec.SPS) == 0 || len(rec.PPS) == 0 {
			return nil, nil, unsupported("configuration record without VPS, SPS or PPS")
		}
		c = &codecs.H265{VPS: rec.VPS[0], SPS: rec.SPS[0], PPS: rec.PPS[0]}
	case media.CodecAV1:
		rec, err := av1.ParseConfigRecord(t.Config)
		if err != nil {
			return nil, nil, unsupported("configuration record: %v", err)
		}
		seq := av1.SequenceHeaderOBU(rec.ConfigOBUs)
		if seq == nil {
			return nil, nil, unsupported("configuration record without a sequence header")
		}
		c = &codecs.AV1{SequenceHeader: seq}
	case media.CodecVP9:
		rec := vp9.ConfigRecord{Profile: 0, BitDepth: 8, ChromaSubsampling: vp9.ChromaSubsampling420Colocated}
		if len(t.Config) > 0 {
			var err error
			if rec, err = vp9.ParseConfigRecord(t.Config); err != nil {
				return nil, nil, unsupported("configuration record: %v", err)
			}
		}
		if t.Width <= 0 || t.Height <= 0 || t.Width > math.MaxUint16 || t.Height > math.MaxUint16 {
			return nil, nil, unsupported("picture size %dx%d unknown or invalid", t.Width, t.Height)
		}
		c = &codecs.VP9{
			Width: t.Width, Height: t.Height,
			Profile: rec.Profile, BitDepth: rec.BitDepth,
			ChromaSubsampling: rec.ChromaSubsampling, ColorRange: rec.FullRange,
		}
	case media.CodecAAC:
		asc, err := aac.ParseAudioSpecificConfig(t.Config)
		if err != nil {
			return nil, nil, unsupported("AudioSpecificConfig: %v", err)
		}
		var mc mpeg4audio.AudioSpecificConfig
		if err := mc.Unmarshal(t.Config); err != nil {
			return nil, nil, unsupported("AudioSpecificConfig: %v", err)
		}
		if asc.SampleRate <= 0 {
			return nil, nil, unsupported("sample rate %d", asc.SampleRate)
		}
		c = &codecs.MPEG4Audio{Config: mc}
		tr.scale = int64(asc.SampleRate)
		tr.frameTicks = aacFrameSamples
		if asc.FrameLength > 0 {
			tr.frameTicks = uint32(asc.FrameLength)
		}
	case media.CodecOpus:
		ch := t.Channels
		if len(t.Config) > 0 {
			h, err := opus.ParseHead(t.Config)
			if err != nil {
				return nil, nil, unsupported("OpusHead: %v", err)
			}
			ch = h.Channels
		}
		if ch <= 0 {
			ch = 2
		}
		if ch > 2 {
			// mediacommon writes dOps without a channel mapping table.
			return nil, nil, unsupported("%d channels (only mono and stereo)", ch)
		}
		c = &codecs.Opus{ChannelCount: ch}
		tr.scale = opus.SampleRate
	case media.CodecMP3:
		if t.SampleRate <= 0 || t.Channels <= 0 {
			return nil, nil, unsupported("sample rate %d, %d channels", t.SampleRate, t.Channels)
		}
		c = &codecs.MPEG1Audio{SampleRate: t.SampleRate, ChannelCount: t.Channels}
		tr.scale = int64(t.SampleRate)
		tr.frameTicks = mp3FrameSamples
		if t.SampleRate < 32000 {
			tr.frameTicks = mp3LSFFrameSamples
		}
	default:
		return nil, nil, unsupported("no MP4 mapping")
	}
	return &mcfmp4.InitTrack{TimeScale: uint32(tr.scale), Codec: c}, tr, nil
}

// Init returns the init segment, ftyp+moov (with mvex/trex), built once by
// NewWriter. The slice is shared: do not modify it.
func (w *Writer) Init() []byte { return w.init }

// Skipped returns the codecs of the tracks that are not written, in stream order.
func (w *Writer) Skipped() []media.Codec { return w.skipped }

// Accepts reports whether frames of the stream track with this index are written.
func (w *Writer) Accepts(trackIndex int) bool {
	return trackIndex >= 0 && trackIndex < len(w.byIndex) && w.byIndex[trackIndex] != nil
}

// Add buffers one frame of the current fragment; frames of skipped tracks are ignored.
// Frames of one track arrive in DTS order; tracks interleave arbitrarily.
// Frames with an empty payload are ignored too (an MP4 sample has a size).
// The payload is not copied: the frame must stay unmodified until Flush returns.
func (w *Writer) Add(f *media.Frame) {
	if f == nil || len(f.Payload) == 0 || !w.Accepts(f.Track) {
		return
	}
	if !w.started {
		w.started, w.origin = true, f.DTS
	}
	t := w.byIndex[f.Track]
	t.frames = append(t.frames, pending{dts: f.DTS, pts: f.PTS, key: f.Key, payload: f.Payload})
	w.count++
	w.size += len(f.Payload)
}

// Buffered reports whether any sample is waiting.
func (w *Writer) Buffered() bool { return w.count > 0 }

// Flush returns moof+mdat holding every buffered sample (all tracks in one
// fragment), and resets the buffer; it returns nil when nothing is buffered.
// The returned slice is the caller's.
//
// end is the DTS where the fragment ends (the DTS of the frame that starts
// the next fragment, or of the last frame plus its duration at the end of
// the stream). A sample lasts until the next sample's DTS; a track's last
// sample lasts until end for video, and for audio the duration its packet
// codes (AAC frame length, Opus TOC, MP3 header), else the previous sample's
// duration, else 1024 samples (AAC), 20 ms (Opus), one frame (MP3). tfdt
// (version 1) is the track's first sample's DTS measured from the first frame
// the Writer saw; PTS-DTS is the composition offset, signed (trun version 1).
// Non-key video samples are marked non-sync.
func (w *Writer) Flush(end time.Duration) ([]byte, error) {
	if w.count == 0 {
		return nil, nil
	}
	defer w.reset()
	w.seq++
	parts := w.parts[:0]
	moof := 8 + 16 // moof, mfhd
	for _, t := range w.tracks {
		if len(t.frames) == 0 {
			continue
		}
		t.build(w.origin, end)
		parts = append(parts, &t.part)
		moof += 8 + 16 + 20 + 20 + 16*len(t.frames) // traf, tfhd, tfdt v1, trun, entries
	}
	w.parts = parts
	w.part.SequenceNumber = w.seq
	w.part.Tracks = parts

	var buf seekablebuffer.Buffer
	buf.Grow(moof + 16 + w.size)
	if err := w.part.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("fmp4: fragment %d: %w", w.seq, err)
	}
	return buf.Bytes(), nil
}

// reset empties the buffer, dropping every reference to frame payloads.
func (w *Writer) reset() {
	for _, t := range w.tracks {
		clear(t.frames)
		t.frames = t.frames[:0]
		clear(t.samples)
	}
	clear(w.parts)
	w.parts = w.parts[:0]
	w.part.Tracks = nil
	w.count, w.size = 0, 0
}

// build fills t.part with the buffered frames.
func (t *track) build(origin, end time.Duration) {
	n := len(t.frames)
	if cap(t.samples) < n {
		t.samples = make([]mcfmp4.Sample, n, n+n/4)
		t.ticks = make([]int64, n, n+n/4)
	}
	t.samples, t.ticks = t.samples[:n], t.ticks[:n]

	prev := t.next
	for i := range t.frames {
		tick := max(toTicks(t.frames[i].dts-origin, t.scale), prev)
		t.ticks[i] = tick
		prev = tick
	}
	for i := range t.frames {
		f := &t.frames[i]
		var d int64
		if i+1 < n {
			d = t.ticks[i+1] - t.ticks[i]
		} else {
			d = t.lastDuration(f, t.ticks[i], toTicks(end-origin, t.scale))
		}
		dur := uint32(min(d, math.MaxUint32))
		cts := toTicks(f.pts-origin, t.scale) - t.ticks[i]
		t.samples[i] = mcfmp4.Sample{
			Duration:        dur,
			PTSOffset:       int32(min(max(cts, math.MinInt32), math.MaxInt32)),
			IsNonSyncSample: t.video && !f.key,
			Payload:         f.payload,
		}
		t.prevDur = dur
	}
	t.next = t.ticks[n-1] + int64(t.samples[n-1].Duration)

	t.ptrs = t.ptrs[:0]
	for i := range t.samples {
		t.ptrs = append(t.ptrs, &t.samples[i])
	}
	t.part.BaseTime = uint64(t.ticks[0])
	t.part.Samples = t.ptrs
}

// lastDuration returns the duration of a track's last buffered sample,
// which starts at tick; endTick is the fragment's end.
func (t *track) lastDuration(f *pending, tick, endTick int64) int64 {
	if t.video {
		if endTick > tick {
			return endTick - tick
		}
		if t.prevDur > 0 {
			return int64(t.prevDur)
		}
		return t.scale / fallbackVideoFPS
	}
	if d := t.packetTicks(f.payload); d > 0 {
		return d
	}
	if t.prevDur > 0 {
		return int64(t.prevDur)
	}
	switch t.codec {
	case media.CodecOpus:
		return opusFallbackTicks
	default:
		return int64(t.frameTicks)
	}
}

// packetTicks returns the duration an audio packet codes, 0 when unknown.
func (t *track) packetTicks(p []byte) int64 {
	switch t.codec {
	case media.CodecAAC:
		return int64(t.frameTicks)
	case media.CodecOpus:
		if n, err := opus.PacketSamples(p); err == nil {
			return int64(n)
		}
	case media.CodecMP3:
		if h, err := mp3.ParseFrameHeader(p); err == nil && h.SampleRate > 0 {
			return int64(h.Samples) * t.scale / int64(h.SampleRate)
		}
	}
	return 0
}

// toTicks converts a duration to a timescale, rounding to the nearest tick,
// without overflowing for any duration.
func toTicks(d time.Duration, scale int64) int64 {
	if d < 0 {
		return -toTicks(-d, scale)
	}
	sec, rem := int64(d/time.Second), int64(d%time.Second)
	return sec*scale + (rem*scale+int64(time.Second)/2)/int64(time.Second)
}
