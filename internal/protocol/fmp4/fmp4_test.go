package fmp4

import (
	"bytes"
	"os"
	"testing"
	"time"

	mcfmp4 "github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/codec/aac"
	"github.com/quasipaa/quasipaa/internal/codec/av1"
	"github.com/quasipaa/quasipaa/internal/codec/h264"
	"github.com/quasipaa/quasipaa/internal/codec/mp3"
	"github.com/quasipaa/quasipaa/internal/codec/opus"
	"github.com/quasipaa/quasipaa/internal/media"
)

// Tracks of every supported codec, from the committed vectors.

func videoTrack(t testing.TB, codec, file string) *media.Track {
	t.Helper()
	return readMP4(t, codecTestdata(codec, file)).tracks[0]
}

func h264Track(t testing.TB) *media.Track { return videoTrack(t, "h264", "h264_720p.mp4") }

func aacTrack(t testing.TB, rate, channels int) *media.Track {
	t.Helper()
	asc, err := aac.BuildAudioSpecificConfig(2, rate, channels)
	require.NoError(t, err)
	tr, err := aac.TrackFromConfig(asc)
	require.NoError(t, err)
	return tr
}

func opusTrack(t testing.TB, channels int) *media.Track {
	t.Helper()
	head, err := opus.BuildHead(channels, 312, 48000)
	require.NoError(t, err)
	tr, err := opus.TrackFromHead(head)
	require.NoError(t, err)
	return tr
}

// mp3Frames returns the frames of a committed MP3 vector and its track.
func mp3Frames(t testing.TB, file string) (*media.Track, [][]byte) {
	t.Helper()
	data, err := os.ReadFile(codecTestdata("mp3", file))
	require.NoError(t, err)
	var frames [][]byte
	require.NoError(t, mp3.ForEachFrame(data, func(_ mp3.FrameHeader, f []byte) bool {
		frames = append(frames, f)
		return true
	}))
	tr, err := mp3.TrackFromFrame(frames[0])
	require.NoError(t, err)
	return tr, frames
}

func parseInit(t testing.TB, b []byte) *mcfmp4.Init {
	t.Helper()
	var init mcfmp4.Init
	require.NoError(t, init.Unmarshal(bytes.NewReader(b)))
	return &init
}

func TestInitPlansTracks(t *testing.T) {
	h := h264Track(t)
	tracks := []*media.Track{
		h,
		aacTrack(t, 48000, 2),
		{Codec: media.CodecVP8, Width: 640, Height: 480},
		opusTrack(t, 2),
		{Codec: media.CodecG711A, SampleRate: 8000, Channels: 1},
	}
	w, err := NewWriter(tracks)
	require.NoError(t, err)
	assert.Equal(t, []media.Codec{media.CodecVP8, media.CodecG711A}, w.Skipped())
	for i, want := range []bool{true, true, false, true, false} {
		assert.Equal(t, want, w.Accepts(i), "track %d", i)
	}
	assert.False(t, w.Accepts(-1))
	assert.False(t, w.Accepts(len(tracks)))

	// Box layout: ftyp, then moov with mvhd, one trak per written track and mvex with one trex each.
	boxes := parseBoxes(t, w.Init())
	require.Len(t, boxes, 2)
	assert.Equal(t, "ftyp", boxes[0].typ)
	assert.Equal(t, "moov", boxes[1].typ)
	assert.Len(t, find(boxes, "moov", "mvhd"), 1)
	assert.Len(t, find(boxes, "moov", "trak"), 3)
	assert.Len(t, find(boxes, "moov", "mvex", "trex"), 3)
	assert.Len(t, find(boxes, "moov", "trak", "mdia", "minf", "stbl", "stsd"), 3)

	init := parseInit(t, w.Init())
	require.Len(t, init.Tracks, 3)
	for i, want := range []struct {
		scale uint32
		codec codecs.Codec
	}{{90000, &codecs.H264{}}, {48000, &codecs.MPEG4Audio{}}, {48000, &codecs.Opus{}}} {
		assert.Equal(t, i+1, init.Tracks[i].ID)
		assert.Equal(t, want.scale, init.Tracks[i].TimeScale)
		assert.IsType(t, want.codec, init.Tracks[i].Codec)
	}
	rec, err := h264.ParseConfigRecord(h.Config)
	require.NoError(t, err)
	assert.Equal(t, rec.SPS[0], init.Tracks[0].Codec.(*codecs.H264).SPS)
	assert.Equal(t, rec.PPS[0], init.Tracks[0].Codec.(*codecs.H264).PPS)
	assert.Equal(t, 2, init.Tracks[2].Codec.(*codecs.Opus).ChannelCount)

	// Built once.
	assert.Same(t, &w.Init()[0], &w.Init()[0])
}

func TestEveryCodec(t *testing.T) {
	mp3Track, _ := mp3Frames(t, "mp3_44k_stereo.mp3")
	mp3LSF, _ := mp3Frames(t, "mp3_22k_mono.mp3")
	cases := []struct {
		name  string
		track *media.Track
		scale uint32
		check func(t *testing.T, c codecs.Codec)
	}{
		{"h264", h264Track(t), 90000, func(t *testing.T, c codecs.Codec) { assert.IsType(t, &codecs.H264{}, c) }},
		{"h265", videoTrack(t, "h265", "h265_720p.mp4"), 90000, func(t *testing.T, c codecs.Codec) {
			require.IsType(t, &codecs.H265{}, c)
			assert.NotEmpty(t, c.(*codecs.H265).VPS)
		}},
		{"h265 main10", videoTrack(t, "h265", "h265_main10_426x240.mp4"), 90000, func(t *testing.T, c codecs.Codec) {
			assert.IsType(t, &codecs.H265{}, c)
		}},
		{"av1", videoTrack(t, "av1", "av1_720p.mp4"), 90000, func(t *testing.T, c codecs.Codec) {
			require.IsType(t, &codecs.AV1{}, c)
			assert.NotEmpty(t, c.(*codecs.AV1).SequenceHeader)
		}},
		{"vp9", videoTrack(t, "vp9", "vp9_720p.mp4"), 90000, func(t *testing.T, c codecs.Codec) {
			assert.Equal(t, &codecs.VP9{Width: 1280, Height: 720, BitDepth: 8, ChromaSubsampling: 1}, c)
		}},
		{"vp9 10-bit", videoTrack(t, "vp9", "vp9_p2_10bit.mp4"), 90000, func(t *testing.T, c codecs.Codec) {
			assert.Equal(t, &codecs.VP9{Width: 320, Height: 180, Profile: 2, BitDepth: 10, ChromaSubsampling: 1}, c)
		}},
		{"vp9 without record", &media.Track{Codec: media.CodecVP9, Width: 320, Height: 240}, 90000, func(t *testing.T, c codecs.Codec) {
			assert.Equal(t, &codecs.VP9{Width: 320, Height: 240, BitDepth: 8, ChromaSubsampling: 1}, c)
		}},
		{"aac 44.1k", aacTrack(t, 44100, 1), 44100, func(t *testing.T, c codecs.Codec) {
			require.IsType(t, &codecs.MPEG4Audio{}, c)
			assert.Equal(t, 44100, c.(*codecs.MPEG4Audio).Config.SampleRate)
		}},
		{"opus mono", opusTrack(t, 1), 48000, func(t *testing.T, c codecs.Codec) {
			assert.Equal(t, &codecs.Opus{ChannelCount: 1}, c)
		}},
		{"opus without head", &media.Track{Codec: media.CodecOpus, SampleRate: 48000}, 48000, func(t *testing.T, c codecs.Codec) {
			assert.Equal(t, &codecs.Opus{ChannelCount: 2}, c)
		}},
		{"mp3", mp3Track, 44100, func(t *testing.T, c codecs.Codec) {
			assert.Equal(t, &codecs.MPEG1Audio{SampleRate: 44100, ChannelCount: 2}, c)
		}},
		{"mp3 22k", mp3LSF, 22050, func(t *testing.T, c codecs.Codec) {
			assert.Equal(t, &codecs.MPEG1Audio{SampleRate: 22050, ChannelCount: 1}, c)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, err := NewWriter([]*media.Track{c.track})
			require.NoError(t, err)
			assert.Empty(t, w.Skipped())
			init := parseInit(t, w.Init())
			require.Len(t, init.Tracks, 1)
			assert.Equal(t, 1, init.Tracks[0].ID)
			assert.Equal(t, c.scale, init.Tracks[0].TimeScale)
			c.check(t, init.Tracks[0].Codec)
		})
	}
}

func TestUnsupportedTracks(t *testing.T) {
	h := h264Track(t)
	badH264 := &media.Track{Codec: media.CodecH264, Config: []byte{1, 2, 3}}
	// An av1C without configOBUs: the sequence header is in band only.
	av1C, err := av1.BuildConfigRecord(av1.SequenceHeaderOBU(mustParseAV1(t)))
	require.NoError(t, err)
	surround, err := opus.Head{Channels: 6, MappingFamily: 1, StreamCount: 4, CoupledCount: 2, Mapping: []byte{0, 4, 1, 2, 3, 5}}.Marshal()
	require.NoError(t, err)
	cases := map[string]*media.Track{
		"vp8":              {Codec: media.CodecVP8, Width: 640, Height: 480},
		"g711":             {Codec: media.CodecG711U, SampleRate: 8000, Channels: 1},
		"unknown":          {Codec: media.CodecUnknown},
		"bad avcC":         badH264,
		"avcC without PS":  {Codec: media.CodecH264, Config: []byte{1, 100, 0, 31, 0xFF, 0xE0, 0}},
		"bad hvcC":         {Codec: media.CodecH265, Config: []byte{1}},
		"av1C without sh":  {Codec: media.CodecAV1, Config: av1C[:4]},
		"vp9 without size": {Codec: media.CodecVP9},
		"bad asc":          {Codec: media.CodecAAC, Config: []byte{0xFF}},
		"opus 5.1":         {Codec: media.CodecOpus, Config: surround},
		"mp3 without rate": {Codec: media.CodecMP3},
		"nil":              nil,
	}
	for name, tr := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := NewWriter([]*media.Track{tr})
			require.ErrorIs(t, err, ErrUnsupportedCodec)

			// Next to a track that can be written, it is only skipped.
			w, err := NewWriter([]*media.Track{tr, h})
			require.NoError(t, err)
			codec := media.CodecUnknown
			if tr != nil {
				codec = tr.Codec
			}
			assert.Equal(t, []media.Codec{codec}, w.Skipped())
			assert.False(t, w.Accepts(0))
			assert.True(t, w.Accepts(1))
			init := parseInit(t, w.Init())
			require.Len(t, init.Tracks, 1)
			assert.Equal(t, 1, init.Tracks[0].ID)
		})
	}
	_, err = NewWriter(nil)
	require.ErrorIs(t, err, ErrUnsupportedCodec)
}

func mustParseAV1(t *testing.T) []byte {
	t.Helper()
	rec, err := av1.ParseConfigRecord(videoTrack(t, "av1", "av1_720p.mp4").Config)
	require.NoError(t, err)
	return rec.ConfigOBUs
}

// av stream: 30 fps video (a keyframe every second) and 48 kHz AAC, from origin.
type avStream struct {
	origin time.Duration
	video  []*media.Frame
	audio  []*media.Frame
}

func newAVStream(origin time.Duration, seconds int) *avStream {
	s := &avStream{origin: origin}
	for i := range 30 * seconds {
		dts := origin + time.Duration(i)*time.Second/30
		s.video = append(s.video, &media.Frame{Track: 0, DTS: dts, PTS: dts, Key: i%30 == 0, Payload: []byte{byte(i), 1, 2, 3}})
	}
	for i := 0; ; i++ {
		dts := origin + time.Duration(i)*1024*time.Second/48000
		if dts >= origin+time.Duration(seconds)*time.Second {
			break
		}
		s.audio = append(s.audio, &media.Frame{Track: 1, DTS: dts, PTS: dts, Key: true, Payload: []byte{byte(i), 9}})
	}
	return s
}

// addUntil adds, in DTS order, the frames with DTS before end that are not added yet.
func (s *avStream) addUntil(w *Writer, end time.Duration) (video, audio []*media.Frame) {
	for len(s.video) > 0 || len(s.audio) > 0 {
		var f *media.Frame
		switch {
		case len(s.video) > 0 && (len(s.audio) == 0 || s.video[0].DTS <= s.audio[0].DTS):
			if f = s.video[0]; f.DTS >= end {
				return
			}
			s.video = s.video[1:]
			video = append(video, f)
		default:
			if f = s.audio[0]; f.DTS >= end {
				return
			}
			s.audio = s.audio[1:]
			audio = append(audio, f)
		}
		w.Add(f)
	}
	return
}

func TestFlushTimeline(t *testing.T) {
	w, err := NewWriter([]*media.Track{h264Track(t), aacTrack(t, 48000, 2)})
	require.NoError(t, err)
	assert.False(t, w.Buffered())
	frag, err := w.Flush(time.Second)
	require.NoError(t, err)
	assert.Nil(t, frag, "nothing buffered")

	origin := 10 * time.Second // the timeline starts at the first frame, not at DTS 0
	s := newAVStream(origin, 3)
	var audioNext uint64
	for i, cut := range []time.Duration{2 * time.Second, 3 * time.Second} {
		video, audio := s.addUntil(w, origin+cut)
		require.True(t, w.Buffered())
		b, err := w.Flush(origin + cut)
		require.NoError(t, err)
		assert.False(t, w.Buffered())
		f := parseFragment(t, b)
		assert.Equal(t, uint32(i+1), f.part.SequenceNumber)
		require.Len(t, f.part.Tracks, 2)
		require.Len(t, find(f.boxes, "moof", "traf"), 2)

		v := f.track(t, 1)
		require.Len(t, v.Samples, len(video))
		assert.Equal(t, uint64(toTicks(video[0].DTS-origin, 90000)), v.BaseTime)
		assert.Equal(t, repeat(uint32(3000), len(video)), durations(v), "last one lasts until end")
		for j, smp := range v.Samples {
			assert.Equal(t, !video[j].Key, smp.IsNonSyncSample, "sample %d", j)
			assert.Equal(t, video[j].Payload, smp.Payload)
			assert.Zero(t, smp.PTSOffset)
		}

		a := f.track(t, 2)
		require.Len(t, a.Samples, len(audio))
		assert.Equal(t, uint64(toTicks(audio[0].DTS-origin, 48000)), a.BaseTime)
		if i > 0 {
			assert.Equal(t, audioNext, a.BaseTime, "audio continues where the last fragment ended")
		}
		assert.Equal(t, repeat(uint32(1024), len(audio)), durations(a))
		for j, smp := range a.Samples {
			assert.False(t, smp.IsNonSyncSample)
			assert.Equal(t, audio[j].Payload, smp.Payload)
		}
		audioNext = a.BaseTime + 1024*uint64(len(audio))
	}
}

func TestFirstFragmentStartsAtZero(t *testing.T) {
	w, err := NewWriter([]*media.Track{h264Track(t), aacTrack(t, 48000, 2)})
	require.NoError(t, err)
	// Audio first, video 5 ms later.
	w.Add(&media.Frame{Track: 1, DTS: time.Hour, PTS: time.Hour, Key: true, Payload: []byte{1}})
	w.Add(&media.Frame{Track: 0, DTS: time.Hour + 5*time.Millisecond, PTS: time.Hour + 5*time.Millisecond, Key: true, Payload: []byte{2}})
	b, err := w.Flush(time.Hour + 38*time.Millisecond)
	require.NoError(t, err)
	f := parseFragment(t, b)
	assert.Equal(t, uint64(450), f.track(t, 1).BaseTime)
	assert.Equal(t, []uint32{2970}, durations(f.track(t, 1)))
	assert.Equal(t, uint64(0), f.track(t, 2).BaseTime)
}

func TestCompositionOffsets(t *testing.T) {
	w, err := NewWriter([]*media.Track{h264Track(t)})
	require.NoError(t, err)
	const frame = time.Second / 30
	// Decode order I0 P3 B1 B2 P6 B4 B5, presented one frame late.
	display := []int{0, 3, 1, 2, 6, 4, 5}
	var frames []*media.Frame
	for i, d := range display {
		frames = append(frames, &media.Frame{
			DTS: time.Duration(i) * frame, PTS: time.Duration(d+1) * frame,
			Key: i == 0, Payload: []byte{byte(i)},
		})
	}
	// Split across two fragments: offsets do not depend on the fragment.
	for _, f := range frames[:3] {
		w.Add(f)
	}
	b1, err := w.Flush(frames[3].DTS)
	require.NoError(t, err)
	for _, f := range frames[3:] {
		w.Add(f)
	}
	b2, err := w.Flush(7 * frame)
	require.NoError(t, err)

	var offsets []int32
	var base []uint64
	for _, b := range [][]byte{b1, b2} {
		pt := parseFragment(t, b).track(t, 1)
		base = append(base, pt.BaseTime)
		for _, s := range pt.Samples {
			offsets = append(offsets, s.PTSOffset)
			assert.Equal(t, uint32(3000), s.Duration)
		}
	}
	assert.Equal(t, []int32{3000, 9000, 0, 0, 9000, 0, 0}, offsets)
	assert.Equal(t, []uint64{0, 9000}, base)

	// A publisher's negative composition time stays negative (trun version 1).
	w.Add(&media.Frame{DTS: 7 * frame, PTS: 6 * frame, Key: true, Payload: []byte{1}})
	b, err := w.Flush(8 * frame)
	require.NoError(t, err)
	assert.Equal(t, int32(-3000), parseFragment(t, b).track(t, 1).Samples[0].PTSOffset)
}

func TestLastSampleDuration(t *testing.T) {
	t.Run("video", func(t *testing.T) {
		w, err := NewWriter([]*media.Track{h264Track(t)})
		require.NoError(t, err)
		key := &media.Frame{Key: true, Payload: []byte{1}}
		w.Add(key)
		b, err := w.Flush(0) // an end not after the sample: no previous duration, 1/30 s
		require.NoError(t, err)
		assert.Equal(t, []uint32{3000}, durations(parseFragment(t, b).track(t, 1)))

		w.Add(&media.Frame{DTS: 40 * time.Millisecond, PTS: 40 * time.Millisecond, Payload: []byte{2}})
		w.Add(&media.Frame{DTS: 80 * time.Millisecond, PTS: 80 * time.Millisecond, Payload: []byte{3}})
		b, err = w.Flush(120 * time.Millisecond) // until end
		require.NoError(t, err)
		assert.Equal(t, []uint32{3600, 3600}, durations(parseFragment(t, b).track(t, 1)))

		w.Add(&media.Frame{DTS: 120 * time.Millisecond, PTS: 120 * time.Millisecond, Payload: []byte{4}})
		b, err = w.Flush(100 * time.Millisecond) // end before the sample: the previous duration
		require.NoError(t, err)
		assert.Equal(t, []uint32{3600}, durations(parseFragment(t, b).track(t, 1)))
	})
	t.Run("opus", func(t *testing.T) {
		w, err := NewWriter([]*media.Track{opusTrack(t, 2)})
		require.NoError(t, err)
		silk60 := []byte{3 << 3, 0xAA}  // SILK narrowband 60 ms, one frame
		invalid := []byte{31<<3 | 3, 0} // code 3 with no frame
		w.Add(&media.Frame{Key: true, Payload: invalid})
		b, err := w.Flush(time.Second)
		require.NoError(t, err)
		assert.Equal(t, []uint32{960}, durations(parseFragment(t, b).track(t, 1)), "20 ms when nothing is known")

		w.Add(&media.Frame{DTS: 20 * time.Millisecond, Key: true, Payload: silk60})
		b, err = w.Flush(time.Second)
		require.NoError(t, err)
		assert.Equal(t, []uint32{2880}, durations(parseFragment(t, b).track(t, 1)), "from the TOC, not from end")

		w.Add(&media.Frame{DTS: 80 * time.Millisecond, Key: true, Payload: invalid})
		b, err = w.Flush(time.Second)
		require.NoError(t, err)
		assert.Equal(t, []uint32{2880}, durations(parseFragment(t, b).track(t, 1)), "the previous duration")
	})
	t.Run("mp3", func(t *testing.T) {
		for _, c := range []struct {
			file string
			want uint32
		}{{"mp3_44k_stereo.mp3", 1152}, {"mp3_22k_mono.mp3", 576}} {
			tr, frames := mp3Frames(t, c.file)
			w, err := NewWriter([]*media.Track{tr})
			require.NoError(t, err)
			w.Add(&media.Frame{Key: true, Payload: frames[0]})
			b, err := w.Flush(time.Hour)
			require.NoError(t, err)
			assert.Equal(t, []uint32{c.want}, durations(parseFragment(t, b).track(t, 1)), c.file)
		}
	})
	t.Run("aac", func(t *testing.T) {
		w, err := NewWriter([]*media.Track{aacTrack(t, 44100, 2)})
		require.NoError(t, err)
		w.Add(&media.Frame{Key: true, Payload: []byte{1}})
		w.Add(&media.Frame{DTS: 23 * time.Millisecond, Key: true, Payload: []byte{2}})
		b, err := w.Flush(time.Hour)
		require.NoError(t, err)
		assert.Equal(t, []uint32{1014, 1024}, durations(parseFragment(t, b).track(t, 1)))
	})
}

func TestTimelineNeverGoesBack(t *testing.T) {
	w, err := NewWriter([]*media.Track{h264Track(t), aacTrack(t, 48000, 2)})
	require.NoError(t, err)
	// Video sets the origin; an audio frame 10 ms older arrives after it.
	w.Add(&media.Frame{Track: 0, DTS: time.Second, PTS: time.Second, Key: true, Payload: []byte{1}})
	w.Add(&media.Frame{Track: 1, DTS: 990 * time.Millisecond, PTS: 990 * time.Millisecond, Key: true, Payload: []byte{2}})
	w.Add(&media.Frame{Track: 1, DTS: 1010 * time.Millisecond, PTS: 1010 * time.Millisecond, Key: true, Payload: []byte{3}})
	b, err := w.Flush(time.Second + 40*time.Millisecond)
	require.NoError(t, err)
	a := parseFragment(t, b).track(t, 2)
	assert.Equal(t, uint64(0), a.BaseTime)
	assert.Equal(t, []uint32{480, 1024}, durations(a), "the early frame starts at 0")
	assert.Equal(t, int32(-480), a.Samples[0].PTSOffset, "and keeps its presentation time")

	// The next audio frame is stamped 1 ms before the last one ended (ms-rounded timestamps).
	w.Add(&media.Frame{Track: 1, DTS: 1030 * time.Millisecond, PTS: 1030 * time.Millisecond, Key: true, Payload: []byte{4}})
	w.Add(&media.Frame{Track: 1, DTS: 1051 * time.Millisecond, PTS: 1051 * time.Millisecond, Key: true, Payload: []byte{5}})
	b, err = w.Flush(time.Second + 80*time.Millisecond)
	require.NoError(t, err)
	a = parseFragment(t, b).track(t, 2)
	assert.Equal(t, uint64(480+1024), a.BaseTime, "starts where the previous fragment ended")
	assert.Equal(t, []uint32{2448 - 1504, 1024}, durations(a), "the next sample keeps its time")
	assert.Equal(t, int32(1440-1504), a.Samples[0].PTSOffset)
}

func TestIgnoredFrames(t *testing.T) {
	w, err := NewWriter([]*media.Track{h264Track(t), {Codec: media.CodecVP8}})
	require.NoError(t, err)
	w.Add(nil)
	w.Add(&media.Frame{Track: 1, Key: true, Payload: []byte{1}})  // skipped track
	w.Add(&media.Frame{Track: 2, Key: true, Payload: []byte{1}})  // no such track
	w.Add(&media.Frame{Track: -1, Key: true, Payload: []byte{1}}) // no such track
	w.Add(&media.Frame{Track: 0, Key: true})                      // empty payload
	assert.False(t, w.Buffered())
	b, err := w.Flush(time.Second)
	require.NoError(t, err)
	assert.Nil(t, b)

	// The origin is the first frame written, not one ignored.
	w.Add(&media.Frame{Track: 0, DTS: time.Second, PTS: time.Second, Key: true, Payload: []byte{1}})
	b, err = w.Flush(time.Second + 40*time.Millisecond)
	require.NoError(t, err)
	assert.Equal(t, uint64(0), parseFragment(t, b).track(t, 1).BaseTime)
}

func TestFlushReleasesAndReuses(t *testing.T) {
	w, err := NewWriter([]*media.Track{h264Track(t), aacTrack(t, 48000, 2)})
	require.NoError(t, err)
	s := newAVStream(0, 6)
	s.addUntil(w, 2*time.Second)
	b1, err := w.Flush(2 * time.Second)
	require.NoError(t, err)
	for _, tr := range w.tracks {
		for _, p := range tr.frames[:cap(tr.frames)] {
			assert.Nil(t, p.payload, "no frame is retained")
		}
		for _, smp := range tr.samples[:cap(tr.samples)] {
			assert.Nil(t, smp.Payload, "no payload is retained")
		}
	}

	// Buffering a fragment of the same size again does not allocate.
	var again []*media.Frame
	for len(s.video) > 0 && s.video[0].DTS < 4*time.Second {
		again = append(again, s.video[0])
		s.video = s.video[1:]
	}
	for len(s.audio) > 0 && s.audio[0].DTS < 4*time.Second {
		again = append(again, s.audio[0])
		s.audio = s.audio[1:]
	}
	allocs := testing.AllocsPerRun(10, func() {
		for _, f := range again {
			w.Add(f)
		}
		w.reset()
	})
	assert.Zero(t, allocs)

	// The next Flush does not touch the bytes returned by the last one.
	keep := bytes.Clone(b1)
	for _, f := range again {
		w.Add(f)
	}
	_, err = w.Flush(4 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, keep, b1)
}

func TestToTicks(t *testing.T) {
	assert.Equal(t, int64(0), toTicks(0, 90000))
	assert.Equal(t, int64(3000), toTicks(time.Second/30, 90000))
	assert.Equal(t, int64(-3000), toTicks(-time.Second/30, 90000))
	assert.Equal(t, int64(1), toTicks(6*time.Microsecond, 90000), "rounds to nearest")
	assert.Equal(t, int64(0), toTicks(5*time.Microsecond, 90000))
	const years = 200 * 365 * 24 * time.Hour
	assert.Equal(t, int64(years/time.Second)*192000, toTicks(years, 192000), "no overflow")
}
