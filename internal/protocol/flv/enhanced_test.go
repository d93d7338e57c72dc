package flv

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/media"
)

// The bodies in this file are built by hand from the Enhanced RTMP v2
// specification (ExVideoTagHeader / ExAudioTagHeader pseudocode), not with
// the package's muxer, so that the muxer is checked against the spec layout.

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// exVideo builds [IsExHeader|FrameType|PacketType][FourCC] + rest.
func exVideo(frameType, pktType byte, fourcc string, rest ...[]byte) []byte {
	return cat(append([][]byte{{0x80 | frameType<<4 | pktType}, []byte(fourcc)}, rest...)...)
}

// exAudio builds [SoundFormat 9|AudioPacketType][FourCC] + rest.
func exAudio(pktType byte, fourcc string, rest ...[]byte) []byte {
	return cat(append([][]byte{{9<<4 | pktType}, []byte(fourcc)}, rest...)...)
}

func si24b(v int32) []byte { return []byte{byte(v >> 16), byte(v >> 8), byte(v)} }

func ui24b(v int) []byte { return []byte{byte(v >> 16), byte(v >> 8), byte(v)} }

type realVideo struct {
	file   string
	fourcc string
	codec  media.Codec
}

var realVideos = []realVideo{
	{"hevc.mp4", "hvc1", media.CodecH265},
	{"av1.mp4", "av01", media.CodecAV1},
	{"vp9.mp4", "vp09", media.CodecVP9},
}

// specFrameBody is the Enhanced RTMP body of one sample as ffmpeg 6.1+ and
// OBS write it: hvc1 CodedFrames with SI24 composition time (CodedFramesX
// when it is 0), av01/vp09 CodedFrames without composition time.
func specFrameBody(fourcc string, key bool, ctsMs int32, data []byte) []byte {
	ft := byte(2)
	if key {
		ft = 1
	}
	if fourcc == "hvc1" {
		if ctsMs != 0 {
			return exVideo(ft, 1, fourcc, si24b(ctsMs), data)
		}
		return exVideo(ft, 3, fourcc, data)
	}
	return exVideo(ft, 1, fourcc, data)
}

// TestEnhancedVideoRealBitstreams carries real H265, AV1 and VP9 streams
// (ffmpeg's libx265, libsvtav1, libvpx-vp9, with the configuration records
// ffmpeg wrote into MP4) through Enhanced RTMP bodies and back.
func TestEnhancedVideoRealBitstreams(t *testing.T) {
	for _, rv := range realVideos {
		t.Run(rv.fourcc, func(t *testing.T) {
			mp4 := readMP4Track(t, rv.file)
			require.Equal(t, rv.fourcc, mp4.format)
			require.NotEmpty(t, mp4.config)
			toMs := func(v int64) int64 { return v * 1000 / int64(mp4.timescale) }

			var d Demuxer
			seq := exVideo(1, 0, rv.fourcc, mp4.config)
			ev, err := d.Video(0, seq)
			require.NoError(t, err)
			require.True(t, ev.TracksChanged)
			tr := d.Tracks()[0]
			assert.Equal(t, rv.codec, tr.Codec)
			if rv.fourcc == "vp09" {
				// vpcC has no picture size: the first key frame gives it
				assert.Zero(t, tr.Width)
			} else {
				assert.Equal(t, 320, tr.Width)
				assert.Equal(t, 240, tr.Height)
			}
			assert.Equal(t, mp4.config, tr.Config)

			got, err := AppendSequenceHeader(nil, tr)
			require.NoError(t, err)
			assert.Equal(t, seq, got, "sequence start, byte for byte")

			keys := 0
			withCTS := 0
			for i, s := range mp4.samples {
				dts, cts := toMs(s.dts), toMs(s.dts+s.cto)-toMs(s.dts)
				body := specFrameBody(rv.fourcc, s.sync, int32(cts), s.data)
				ev, err := d.Video(uint32(dts), body)
				require.NoError(t, err, "sample %d", i)
				f := ev.Frame
				require.NotNil(t, f)
				if i == 0 && rv.fourcc == "vp09" {
					require.True(t, ev.TracksChanged)
					require.Len(t, d.Tracks(), 1)
					vp9 := d.Tracks()[0]
					assert.Equal(t, 320, vp9.Width)
					assert.Equal(t, 240, vp9.Height)
					assert.Equal(t, tr.Config, vp9.Config)
					assert.Zero(t, tr.Width, "the old track is not modified")
					tr = vp9
				} else {
					assert.False(t, ev.TracksChanged, "sample %d", i)
				}
				assert.Equal(t, s.data, f.Payload, "sample %d", i)
				assert.Equal(t, s.sync, f.Key, "sample %d", i)
				assert.Equal(t, ms(int(dts)), f.DTS)
				assert.Equal(t, ms(int(dts+cts)), f.PTS)
				if s.sync {
					keys++
				}
				if cts != 0 {
					withCTS++
				}

				out, err := AppendVideoBody(nil, tr, f)
				require.NoError(t, err)
				require.Equal(t, body, out, "sample %d, byte for byte", i)
			}
			assert.Equal(t, 25, len(mp4.samples))
			assert.Equal(t, 3, keys)
			if rv.fourcc == "hvc1" {
				assert.Positive(t, withCTS, "B-frames give composition times")
			}
		})
	}
}

// TestEnhancedVideoAlternativeForms checks the forms other writers use:
// legacy CodecID 12 HEVC, hvc1 CodedFrames with an explicit zero
// composition time, av01/vp09 CodedFramesX, a SequenceStart with frame type
// 0, and a vp09 record without the FullBox header.
func TestEnhancedVideoAlternativeForms(t *testing.T) {
	hevc := readMP4Track(t, "hevc.mp4")
	var ref Demuxer
	_, err := ref.Video(0, exVideo(1, 0, "hvc1", hevc.config))
	require.NoError(t, err)

	var legacy Demuxer
	_, err = legacy.Video(0, cat([]byte{0x1C, 0, 0, 0, 0}, hevc.config))
	require.NoError(t, err)
	assert.Equal(t, ref.Tracks()[0], legacy.Tracks()[0])
	for i, s := range hevc.samples {
		cts := int32((s.cto) * 1000 / int64(hevc.timescale))
		dts := uint32(s.dts * 1000 / int64(hevc.timescale))
		ft := byte(2)
		if s.sync {
			ft = 1
		}
		want, err := ref.Video(dts, specFrameBody("hvc1", s.sync, cts, s.data))
		require.NoError(t, err)
		got, err := legacy.Video(dts, cat([]byte{ft<<4 | 12, 1}, si24b(cts), s.data))
		require.NoError(t, err)
		assertSameFrame(t, want.Frame, got.Frame, i)
		if cts == 0 {
			got, err = legacy.Video(dts, exVideo(ft, 1, "hvc1", si24b(0), s.data))
			require.NoError(t, err)
			assertSameFrame(t, want.Frame, got.Frame, i)
		}
	}

	for _, rv := range realVideos[1:] {
		mp4 := readMP4Track(t, rv.file)
		var d Demuxer
		_, err := d.Video(0, cat([]byte{0x80 | 0<<4 | 0}, []byte(rv.fourcc), mp4.config))
		require.NoError(t, err)
		for i, s := range mp4.samples {
			ft := byte(2)
			if s.sync {
				ft = 1
			}
			ev, err := d.Video(0, exVideo(ft, 3, rv.fourcc, s.data))
			require.NoError(t, err)
			assert.Equal(t, s.data, ev.Frame.Payload, "sample %d", i)
			assert.Equal(t, s.sync, ev.Frame.Key, "sample %d", i)
		}
	}

	vp9 := readMP4Track(t, "vp9.mp4")
	var bare Demuxer
	_, err = bare.Video(0, exVideo(1, 0, "vp09", vp9.config[4:]))
	require.NoError(t, err)
	assert.Equal(t, vp9.config, bare.Tracks()[0].Config, "FFmpeg's bare record, as a vpcC box body")

	// a missing or malformed vpcC is informative only: defaults replace it
	for _, rec := range [][]byte{nil, {1, 2, 3}, {1, 0, 0, 0, 0, 0, 0x02, 1, 1, 1, 0, 0}} {
		var d Demuxer
		_, err := d.Video(0, exVideo(1, 0, "vp09", rec))
		require.NoError(t, err, "%x", rec)
		assert.Equal(t, []byte{1, 0, 0, 0, 0, 0, 0x82, 2, 2, 2, 0, 0}, d.Tracks()[0].Config, "%x", rec)
	}
}

func assertSameFrame(t *testing.T, want, got *media.Frame, i int) {
	t.Helper()
	require.NotNil(t, got, "frame %d", i)
	assert.Equal(t, want.Payload, got.Payload, "frame %d", i)
	assert.Equal(t, want.DTS, got.DTS, "frame %d", i)
	assert.Equal(t, want.PTS, got.PTS, "frame %d", i)
	assert.Equal(t, want.Key, got.Key, "frame %d", i)
	assert.Equal(t, want.Track, got.Track, "frame %d", i)
}

// TestEnhancedOpus carries a real Opus stream (libopus in Ogg) through
// Enhanced RTMP audio bodies and back.
func TestEnhancedOpus(t *testing.T) {
	packets := readOggPackets(t, "opus.ogg")
	require.Equal(t, "OpusHead", string(packets[0][:8]))
	require.Equal(t, "OpusTags", string(packets[1][:8]))
	head, frames := packets[0], packets[2:]

	var d Demuxer
	seq := exAudio(0, "Opus", head)
	ev, err := d.Audio(0, seq)
	require.NoError(t, err)
	require.True(t, ev.TracksChanged)
	tr := d.Tracks()[0]
	assert.Equal(t, media.CodecOpus, tr.Codec)
	assert.Equal(t, 48000, tr.SampleRate)
	assert.Equal(t, 2, tr.Channels)
	assert.Equal(t, head, tr.Config)
	got, err := AppendSequenceHeader(nil, tr)
	require.NoError(t, err)
	assert.Equal(t, seq, got)

	for i, p := range frames {
		body := exAudio(1, "Opus", p)
		ev, err := d.Audio(uint32(20*i), body)
		require.NoError(t, err)
		require.NotNil(t, ev.Frame)
		assert.Equal(t, p, ev.Frame.Payload)
		assert.True(t, ev.Frame.Key)
		assert.Equal(t, ms(20*i), ev.Frame.DTS)
		assert.Equal(t, ev.Frame.DTS, ev.Frame.PTS)
		out, err := AppendAudioBody(nil, tr, ev.Frame)
		require.NoError(t, err)
		require.Equal(t, body, out)
	}
	assert.Equal(t, uint64(len(frames)), d.Stats().Frames)
}

// TestEnhancedAudioMP4AAndMP3 reads AAC and MP3 sent with FourCCs: the same
// tracks and frames as the legacy forms.
func TestEnhancedAudioMP4AAndMP3(t *testing.T) {
	_, tags := readFLVFile(t, "h264aac.flv")
	var legacy, enhanced Demuxer
	n := 0
	for _, tag := range mediaTags(tags) {
		if tag.Type != TagAudio {
			continue
		}
		want, err := legacy.Audio(tag.Timestamp, tag.Body)
		require.NoError(t, err)
		got, err := enhanced.Audio(tag.Timestamp, exAudio(tag.Body[1], "mp4a", tag.Body[2:]))
		require.NoError(t, err)
		assert.Equal(t, want.TracksChanged, got.TracksChanged)
		if want.Frame != nil {
			assertSameFrame(t, want.Frame, got.Frame, n)
			n++
		}
	}
	assert.Equal(t, 95, n)
	assert.Equal(t, legacy.Tracks(), enhanced.Tracks())

	_, tags = readFLVFile(t, "mp3.flv")
	var l2, e2 Demuxer
	for i, tag := range mediaTags(tags) {
		want, err := l2.Audio(tag.Timestamp, tag.Body)
		require.NoError(t, err)
		got, err := e2.Audio(tag.Timestamp, exAudio(1, ".mp3", tag.Body[1:]))
		require.NoError(t, err)
		assert.Equal(t, want.TracksChanged, got.TracksChanged)
		assertSameFrame(t, want.Frame, got.Frame, i)
	}
	assert.Equal(t, l2.Tracks(), e2.Tracks())
	ev, err := e2.Audio(0, exAudio(0, ".mp3")) // a SequenceStart for MP3 carries nothing
	require.NoError(t, err)
	assert.Equal(t, Event{}, ev)
}

// hevcStream returns a demuxer primed with the real HEVC sequence header and
// the first (key) sample with its spec body.
func hevcStream(t *testing.T) (*Demuxer, mp4Track) {
	t.Helper()
	mp4 := readMP4Track(t, "hevc.mp4")
	d := &Demuxer{}
	_, err := d.Video(0, exVideo(1, 0, "hvc1", mp4.config))
	require.NoError(t, err)
	return d, mp4
}

func TestEnhancedModEx(t *testing.T) {
	d, mp4 := hevcStream(t)
	data := mp4.samples[0].data
	// ModEx TimestampOffsetNano (type 0, 3 bytes: 500000 ns), then CodedFrames
	body := cat([]byte{0x80 | 1<<4 | 7, 3 - 1}, ui24b(500000), []byte{0<<4 | 1}, []byte("hvc1"), si24b(40), data)
	ev, err := d.Video(1000, body)
	require.NoError(t, err)
	require.NotNil(t, ev.Frame)
	assert.Equal(t, ms(1000)+500*time.Microsecond, ev.Frame.DTS)
	assert.Equal(t, ms(1040)+500*time.Microsecond, ev.Frame.PTS)
	assert.Equal(t, data, ev.Frame.Payload)

	// two ModEx blocks: an unknown type with a 16-bit size (300 bytes), then
	// a TimestampOffsetNano, then CodedFramesX
	big := bytes.Repeat([]byte{0xAB}, 300)
	body = cat([]byte{0x80 | 1<<4 | 7, 0xFF, 0x01, 0x2B}, big, []byte{5<<4 | 7},
		[]byte{2}, ui24b(999), []byte{0<<4 | 3}, []byte("hvc1"), data)
	ev, err = d.Video(2000, body)
	require.NoError(t, err)
	require.NotNil(t, ev.Frame)
	assert.Equal(t, ms(2000)+999, ev.Frame.DTS)
	assert.Equal(t, ev.Frame.DTS, ev.Frame.PTS)
	assert.Equal(t, data, ev.Frame.Payload)

	// audio ModEx around an Opus frame
	packets := readOggPackets(t, "opus.ogg")
	var a Demuxer
	_, err = a.Audio(0, exAudio(0, "Opus", packets[0]))
	require.NoError(t, err)
	ev, err = a.Audio(20, cat([]byte{9<<4 | 7, 2}, ui24b(1234), []byte{0<<4 | 1}, []byte("Opus"), packets[2]))
	require.NoError(t, err)
	assert.Equal(t, ms(20)+1234, ev.Frame.DTS)
	assert.Equal(t, packets[2], ev.Frame.Payload)

	// truncated ModEx blocks
	for _, b := range [][]byte{
		{0x80 | 1<<4 | 7},
		{0x80 | 1<<4 | 7, 0xFF, 0x01},
		{0x80 | 1<<4 | 7, 5, 1, 2, 3},
		{0x80 | 1<<4 | 7, 0, 1},
	} {
		_, err := d.Video(0, b)
		assert.ErrorIs(t, err, ErrTruncated, "%x", b)
	}
}

func TestEnhancedMultitrack(t *testing.T) {
	mp4 := readMP4Track(t, "hevc.mp4")
	av1 := readMP4Track(t, "av1.mp4")
	data := mp4.samples[0].data
	other := av1.samples[0].data

	t.Run("one track", func(t *testing.T) {
		var d Demuxer
		_, err := d.Video(0, cat([]byte{0x80 | 1<<4 | 6, 0<<4 | 0}, []byte("hvc1"), []byte{0}, mp4.config))
		require.NoError(t, err)
		require.Len(t, d.Tracks(), 1)
		ev, err := d.Video(40, cat([]byte{0x80 | 1<<4 | 6, 0<<4 | 1}, []byte("hvc1"), []byte{0}, si24b(0), data))
		require.NoError(t, err)
		assert.Equal(t, data, ev.Frame.Payload)
	})

	t.Run("many tracks: the first one is followed", func(t *testing.T) {
		var d Demuxer
		seq := cat([]byte{0x80 | 1<<4 | 6, 1<<4 | 0}, []byte("hvc1"),
			[]byte{0}, ui24b(len(mp4.config)), mp4.config,
			[]byte{1}, ui24b(3), []byte{1, 2, 3})
		_, err := d.Video(0, seq)
		require.NoError(t, err)
		require.Len(t, d.Tracks(), 1)
		frame := cat([]byte{0x80 | 1<<4 | 6, 1<<4 | 3}, []byte("hvc1"),
			[]byte{0}, ui24b(len(data)), data,
			[]byte{1}, ui24b(2), []byte{9, 9})
		ev, err := d.Video(40, frame)
		require.NoError(t, err)
		assert.Equal(t, data, ev.Frame.Payload)

		// a message with only track 1 is not ours
		ev, err = d.Video(80, cat([]byte{0x80 | 1<<4 | 6, 0<<4 | 3}, []byte("hvc1"), []byte{1}, data))
		require.NoError(t, err)
		assert.Nil(t, ev.Frame)
		assert.Equal(t, uint64(1), d.Stats().Ignored)
	})

	t.Run("many tracks many codecs", func(t *testing.T) {
		var d Demuxer
		seq := cat([]byte{0x80 | 1<<4 | 6, 2<<4 | 0},
			[]byte("av01"), []byte{0}, ui24b(len(av1.config)), av1.config,
			[]byte("hvc1"), []byte{1}, ui24b(len(mp4.config)), mp4.config)
		_, err := d.Video(0, seq)
		require.NoError(t, err)
		assert.Equal(t, media.CodecAV1, d.Tracks()[0].Codec)
		frame := cat([]byte{0x80 | 1<<4 | 6, 2<<4 | 1},
			[]byte("av01"), []byte{0}, ui24b(len(other)), other,
			[]byte("hvc1"), []byte{1}, ui24b(3+len(data)), si24b(0), data)
		ev, err := d.Video(40, frame)
		require.NoError(t, err)
		assert.Equal(t, other, ev.Frame.Payload)
	})

	t.Run("audio", func(t *testing.T) {
		packets := readOggPackets(t, "opus.ogg")
		var d Demuxer
		_, err := d.Audio(0, cat([]byte{9<<4 | 5, 1<<4 | 0}, []byte("Opus"),
			[]byte{3}, ui24b(len(packets[0])), packets[0], []byte{4}, ui24b(1), []byte{0}))
		require.NoError(t, err)
		require.Len(t, d.Tracks(), 1)
		ev, err := d.Audio(20, cat([]byte{9<<4 | 5, 0<<4 | 1}, []byte("Opus"), []byte{3}, packets[2]))
		require.NoError(t, err)
		assert.Equal(t, packets[2], ev.Frame.Payload)
	})

	t.Run("malformed", func(t *testing.T) {
		var d Demuxer
		for _, b := range [][]byte{
			{0x80 | 1<<4 | 6},
			{0x80 | 1<<4 | 6, 1<<4 | 1, 'h', 'v'},
			cat([]byte{0x80 | 1<<4 | 6, 1<<4 | 1}, []byte("hvc1"), []byte{0, 0, 0}),
			cat([]byte{0x80 | 1<<4 | 6, 1<<4 | 1}, []byte("hvc1"), []byte{0, 0, 0, 9, 1}),
			cat([]byte{0x80 | 1<<4 | 6, 2<<4 | 1}, []byte("hv")),
		} {
			_, err := d.Video(0, b)
			assert.ErrorIs(t, err, ErrTruncated, "%x", b)
		}
		_, err := d.Video(0, cat([]byte{0x80 | 1<<4 | 6, 3<<4 | 1}, []byte("hvc1")))
		assert.ErrorIs(t, err, ErrInvalidPacket)
		_, err = d.Video(0, cat([]byte{0x80 | 1<<4 | 6, 0<<4 | 6}, []byte("hvc1")))
		assert.ErrorIs(t, err, ErrInvalidPacket)
	})
}

func TestEnhancedIgnoredPackets(t *testing.T) {
	d, mp4 := hevcStream(t)
	before := d.Stats()
	for _, b := range [][]byte{
		{0x57, 0},                        // legacy command frame (seek start)
		exVideo(5, 1, "hvc1", []byte{0}), // enhanced command frame
		exVideo(1, 2, "hvc1"),            // SequenceEnd
		exVideo(1, 4, "hvc1", []byte{2, 0, 9, 'c', 'o', 'l', 'o', 'r', 'I', 'n', 'f', 'o', 3, 0, 0, 9}), // Metadata (colorInfo)
		exVideo(1, 5, "av01", []byte{1, 2}), // MPEG2TSSequenceStart
		{0x17, 2, 0, 0, 0},                  // AVC end of sequence
		exVideo(1, 3, "hvc1"),               // CodedFramesX without data
	} {
		ev, err := d.Video(0, b)
		require.NoError(t, err, "%x", b)
		assert.Equal(t, Event{}, ev, "%x", b)
	}
	assert.Equal(t, before.Ignored+7, d.Stats().Ignored)
	assert.Len(t, d.Tracks(), 1)
	ev, err := d.Video(0, specFrameBody("hvc1", true, 0, mp4.samples[0].data))
	require.NoError(t, err)
	assert.NotNil(t, ev.Frame, "the stream goes on")
}

func TestUnsupportedCodecs(t *testing.T) {
	var d Demuxer
	for _, b := range [][]byte{
		{0x12, 0},                        // Sorenson H.263
		{0x14, 0},                        // VP6
		exVideo(1, 0, "vvc1", []byte{1}), // VVC
		exVideo(1, 1, "xxxx"),
	} {
		_, err := d.Video(0, b)
		assert.ErrorIs(t, err, ErrUnsupportedCodec, "%x", b)
	}
	for _, b := range [][]byte{
		{0x32, 0},                           // linear PCM little endian
		{0xB2, 0},                           // Speex
		exAudio(0, "fLaC", []byte{0, 0, 0}), // FLAC
		exAudio(1, "ac-3", []byte{0x0B, 0x77}),
		exAudio(1, "ec-3", []byte{0x0B, 0x77}),
	} {
		_, err := d.Audio(0, b)
		assert.ErrorIs(t, err, ErrUnsupportedCodec, "%x", b)
	}
	assert.Equal(t, uint64(9), d.Stats().Invalid)
	assert.Empty(t, d.Tracks())
}

func TestDemuxInvalidBodies(t *testing.T) {
	var d Demuxer
	cases := []struct {
		video bool
		body  []byte
		err   error
	}{
		{true, nil, ErrTruncated},
		{false, nil, ErrTruncated},
		{true, []byte{0x17, 0, 0}, ErrTruncated},
		{true, []byte{0x17, 9, 0, 0, 0}, ErrInvalidPacket},
		{true, []byte{0x17, 0, 0, 0, 0}, ErrInvalidConfig},
		{true, []byte{0x17, 0, 0, 0, 0, 2, 0, 0, 0, 0xFF, 0xE1, 0}, ErrInvalidConfig},
		{true, []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1F, 0xFE, 0xE1, 0}, ErrInvalidConfig}, // 3-byte lengths
		{true, exVideo(1, 0, "hvc1", []byte{1, 2, 3}), ErrInvalidConfig},
		{true, exVideo(1, 0, "av01", []byte{0x81}), ErrInvalidConfig},
		{true, exVideo(1, 1, "hvc1", []byte{0}), ErrTruncated},
		{true, exVideo(1, 9, "hvc1"), ErrInvalidPacket},
		{true, []byte{0x80 | 1<<4 | 1, 'h', 'v'}, ErrTruncated},
		{false, []byte{0xAF}, ErrTruncated},
		{false, []byte{0xAF, 7}, ErrInvalidPacket},
		{false, []byte{0xAF, 0, 0xFF}, ErrInvalidConfig},
		{false, exAudio(0, "Opus", []byte("OpusHea")), ErrInvalidConfig},
		{false, exAudio(9, "Opus"), ErrInvalidPacket},
		{false, []byte{0x90, 'O', 'p'}, ErrTruncated},
	}
	for _, c := range cases {
		var err error
		if c.video {
			_, err = d.Video(0, c.body)
		} else {
			_, err = d.Audio(0, c.body)
		}
		assert.ErrorIs(t, err, c.err, "%x", c.body)
	}
	assert.Empty(t, d.Tracks())
	assert.Equal(t, uint64(len(cases)), d.Stats().Invalid)

	// a valid H264 track, then a frame whose NAL lengths are wrong
	_, tags := readFLVFile(t, "h264aac.flv")
	_, err := d.Video(0, tags[1].Body)
	require.NoError(t, err)
	_, err = d.Video(0, []byte{0x27, 1, 0, 0, 0, 0, 0, 0, 9, 0x41})
	assert.ErrorIs(t, err, ErrInvalidFrame)
}

// TestDemuxEveryPrefix cuts every real sequence header and some frames at
// every length: the demuxer answers with an error or an event, never a panic,
// and a cut sequence header never replaces a good track.
func TestDemuxEveryPrefix(t *testing.T) {
	var bodies []struct {
		video bool
		body  []byte
	}
	add := func(video bool, b []byte) {
		bodies = append(bodies, struct {
			video bool
			body  []byte
		}{video, b})
	}
	_, tags := readFLVFile(t, "h264aac.flv")
	for _, tag := range mediaTags(tags)[:6] {
		add(tag.Type == TagVideo, tag.Body)
	}
	for _, rv := range realVideos {
		mp4 := readMP4Track(t, rv.file)
		add(true, exVideo(1, 0, rv.fourcc, mp4.config))
		add(true, specFrameBody(rv.fourcc, true, 40, mp4.samples[1].data))
	}
	packets := readOggPackets(t, "opus.ogg")
	add(false, exAudio(0, "Opus", packets[0]))
	add(false, exAudio(1, "Opus", packets[2]))

	for _, b := range bodies {
		var d Demuxer
		for n := 0; n <= len(b.body); n++ {
			cut := b.body[:n]
			var err error
			if b.video {
				_, err = d.Video(0, cut)
			} else {
				_, err = d.Audio(0, cut)
			}
			if err != nil {
				assert.True(t, isSentinel(err), "%v", err)
			}
		}
	}
}

func isSentinel(err error) bool {
	for _, s := range []error{ErrTruncated, ErrUnsupportedCodec, ErrNoSequenceHeader,
		ErrInvalidConfig, ErrInvalidFrame, ErrInvalidPacket} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// TestEnhancedNALULengthRecord checks an hvcC announcing 2-byte lengths.
func TestEnhancedNALULengthRecord(t *testing.T) {
	mp4 := readMP4Track(t, "hevc.mp4")
	cfg := bytes.Clone(mp4.config)
	cfg[21] = cfg[21]&^3 | 1
	var d Demuxer
	_, err := d.Video(0, exVideo(1, 0, "hvc1", cfg))
	require.NoError(t, err)
	assert.Equal(t, mp4.config, d.Tracks()[0].Config, "normalised to 4-byte lengths")
	for i, s := range mp4.samples {
		ev, err := d.Video(0, exVideo(1, 3, "hvc1", toLengthSize(t, s.data, 2)))
		require.NoError(t, err)
		assert.Equal(t, s.data, ev.Frame.Payload, "sample %d", i)
	}
}

// TestEnhancedAVC reads H264 sent with the avc1 FourCC (CodedFrames with
// composition time and CodedFramesX): the same track and frames as legacy.
func TestEnhancedAVC(t *testing.T) {
	_, tags := readFLVFile(t, "h264aac.flv")
	var legacy, enhanced Demuxer
	n := 0
	for _, tag := range mediaTags(tags) {
		if tag.Type != TagVideo {
			continue
		}
		ft := tag.Body[0] >> 4
		var body []byte
		switch cts := si24(tag.Body[2:]); {
		case tag.Body[1] == 0:
			body = exVideo(ft, 0, "avc1", tag.Body[5:])
		case cts == 0:
			body = exVideo(ft, 3, "avc1", tag.Body[5:])
		default:
			body = exVideo(ft, 1, "avc1", tag.Body[2:5], tag.Body[5:])
		}
		want, err := legacy.Video(tag.Timestamp, tag.Body)
		require.NoError(t, err)
		got, err := enhanced.Video(tag.Timestamp, body)
		require.NoError(t, err)
		assert.Equal(t, want.TracksChanged, got.TracksChanged)
		if want.Frame != nil {
			assertSameFrame(t, want.Frame, got.Frame, n)
			n++
		}
	}
	assert.Equal(t, 60, n)
	assert.Equal(t, legacy.Tracks(), enhanced.Tracks())
}
