package flv

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/media"
	"github.com/quasipaa/quasipaa/internal/protocol/amf0"
)

func TestAppendFileHeader(t *testing.T) {
	assert.Equal(t, []byte{'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0}, AppendFileHeader(nil, true, true))
	assert.Equal(t, []byte{'F', 'L', 'V', 1, 4, 0, 0, 0, 9, 0, 0, 0, 0}, AppendFileHeader(nil, true, false))
	assert.Equal(t, []byte{'x', 'F', 'L', 'V', 1, 1, 0, 0, 0, 9, 0, 0, 0, 0}, AppendFileHeader([]byte{'x'}, false, true))
}

func TestAppendTagLayout(t *testing.T) {
	body := []byte{0xAA, 0xBB, 0xCC}
	got := AppendTag([]byte{0xEE}, TagVideo, 0x12345678, body)
	want := []byte{
		0xEE,
		9, 0, 0, 3, // type, DataSize
		0x34, 0x56, 0x78, 0x12, // Timestamp (24 bits) and TimestampExtended
		0, 0, 0, // StreamID
		0xAA, 0xBB, 0xCC,
		0, 0, 0, 14, // PreviousTagSize = 11 + 3
	}
	assert.Equal(t, want, got)
}

// testTracks are small tracks with real configuration records.
func testTracks(t *testing.T) map[media.Codec]*media.Track {
	t.Helper()
	out := map[media.Codec]*media.Track{}
	_, tags := readFLVFile(t, "h264aac.flv")
	var d Demuxer
	for _, tag := range mediaTags(tags)[:2] {
		if tag.Type == TagVideo {
			_, _ = d.Video(0, tag.Body)
		} else {
			_, _ = d.Audio(0, tag.Body)
		}
	}
	for _, tr := range d.Tracks() {
		out[tr.Codec] = tr
	}
	for _, rv := range realVideos {
		var d Demuxer
		_, err := d.Video(0, exVideo(1, 0, rv.fourcc, readMP4Track(t, rv.file).config))
		require.NoError(t, err)
		out[rv.codec] = d.Tracks()[0]
	}
	var o Demuxer
	_, err := o.Audio(0, exAudio(0, "Opus", readOggPackets(t, "opus.ogg")[0]))
	require.NoError(t, err)
	out[media.CodecOpus] = o.Tracks()[0]
	out[media.CodecVP8] = &media.Track{Codec: media.CodecVP8}
	out[media.CodecMP3] = &media.Track{Codec: media.CodecMP3, SampleRate: 44100, Channels: 2}
	out[media.CodecG711A] = &media.Track{Codec: media.CodecG711A, SampleRate: 8000, Channels: 1}
	out[media.CodecG711U] = &media.Track{Codec: media.CodecG711U, SampleRate: 8000, Channels: 2}
	return out
}

// TestMuxLayout checks the first bytes of every body form against the
// legacy FLV and Enhanced RTMP specifications.
func TestMuxLayout(t *testing.T) {
	tr := testTracks(t)
	payload := []byte{0, 0, 0, 2, 0x65, 0x88}
	frame := func(key bool, dtsMs, ptsMs int) *media.Frame {
		return &media.Frame{DTS: ms(dtsMs), PTS: ms(ptsMs), Key: key, Payload: payload}
	}
	cases := []struct {
		name  string
		codec media.Codec
		f     *media.Frame
		head  []byte
	}{
		{"h264 key", media.CodecH264, frame(true, 0, 80), []byte{0x17, 1, 0, 0, 80}},
		{"h264 inter negative cts", media.CodecH264, frame(false, 100, 99), []byte{0x27, 1, 0xFF, 0xFF, 0xFF}},
		{"h265 key cts", media.CodecH265, frame(true, 0, 40), cat([]byte{0x91}, []byte("hvc1"), []byte{0, 0, 40})},
		{"h265 key no cts", media.CodecH265, frame(true, 0, 0), cat([]byte{0x93}, []byte("hvc1"))},
		{"h265 inter no cts", media.CodecH265, frame(false, 0, 0), cat([]byte{0xA3}, []byte("hvc1"))},
		{"av1 key", media.CodecAV1, frame(true, 0, 0), cat([]byte{0x91}, []byte("av01"))},
		{"vp9 inter", media.CodecVP9, frame(false, 0, 0), cat([]byte{0xA1}, []byte("vp09"))},
		{"vp8 key", media.CodecVP8, frame(true, 0, 0), cat([]byte{0x91}, []byte("vp08"))},
		{"aac", media.CodecAAC, frame(true, 0, 0), []byte{0xAF, 1}},
		{"opus", media.CodecOpus, frame(true, 0, 0), cat([]byte{0x91}, []byte("Opus"))},
		{"mp3 44.1k stereo", media.CodecMP3, frame(true, 0, 0), []byte{0x2F}},
		{"pcma mono", media.CodecG711A, frame(true, 0, 0), []byte{0x72}},
		{"pcmu stereo", media.CodecG711U, frame(true, 0, 0), []byte{0x83}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			track := tr[c.codec]
			var body []byte
			var err error
			if track.IsVideo() {
				body, err = AppendVideoBody(nil, track, c.f)
			} else {
				body, err = AppendAudioBody(nil, track, c.f)
			}
			require.NoError(t, err)
			assert.Equal(t, cat(c.head, payload), body)
		})
	}
}

func TestSequenceHeaderLayout(t *testing.T) {
	tr := testTracks(t)
	cases := []struct {
		codec media.Codec
		head  []byte
	}{
		{media.CodecH264, []byte{0x17, 0, 0, 0, 0}},
		{media.CodecH265, cat([]byte{0x90}, []byte("hvc1"))},
		{media.CodecAV1, cat([]byte{0x90}, []byte("av01"))},
		{media.CodecVP9, cat([]byte{0x90}, []byte("vp09"))}, // Config is the vpcC box body
		{media.CodecAAC, []byte{0xAF, 0}},
		{media.CodecOpus, cat([]byte{0x90}, []byte("Opus"))},
	}
	for _, c := range cases {
		got, err := AppendSequenceHeader(nil, tr[c.codec])
		require.NoError(t, err)
		assert.Equal(t, cat(c.head, tr[c.codec].Config), got, "%s", c.codec)
		assert.True(t, HasSequenceHeader(c.codec))
	}
	for _, c := range []media.Codec{media.CodecMP3, media.CodecG711A, media.CodecG711U} {
		got, err := AppendSequenceHeader([]byte{1}, tr[c])
		require.NoError(t, err)
		assert.Equal(t, []byte{1}, got, "%s has no sequence header", c)
		got, err = AppendSequenceHeaderTag([]byte{1}, tr[c], 0)
		require.NoError(t, err)
		assert.Equal(t, []byte{1}, got)
		assert.False(t, HasSequenceHeader(c))
		assert.True(t, Supported(c))
	}

	// H264/H265 records are always sent with 4-byte lengths, the payload form
	h264 := *tr[media.CodecH264]
	h264.Config = bytes.Clone(h264.Config)
	h264.Config[4] = 0xFD
	got, err := AppendSequenceHeader(nil, &h264)
	require.NoError(t, err)
	assert.Equal(t, byte(0xFF), got[5+4])
	assert.Equal(t, byte(0xFD), h264.Config[4], "the track is not modified")

	// a bare VP9 record gets the vpcC version and flags
	bare := &media.Track{Codec: media.CodecVP9, Config: tr[media.CodecVP9].Config[4:]}
	got, err = AppendSequenceHeader(nil, bare)
	require.NoError(t, err)
	assert.Equal(t, cat([]byte{0x90}, []byte("vp09"), tr[media.CodecVP9].Config), got)

	// VP8/VP9 without a record and Opus without an OpusHead get defaults
	// that demux back to the same codec
	for _, c := range []struct {
		tr       *media.Track
		channels int
	}{
		{&media.Track{Codec: media.CodecVP9}, 0}, {&media.Track{Codec: media.CodecVP8}, 0},
		{&media.Track{Codec: media.CodecOpus, Channels: 1}, 1}, {&media.Track{Codec: media.CodecOpus}, 2},
	} {
		tr := c.tr
		body, err := AppendSequenceHeader(nil, tr)
		require.NoError(t, err)
		var d Demuxer
		if tr.IsVideo() {
			_, err = d.Video(0, body)
		} else {
			_, err = d.Audio(0, body)
		}
		require.NoError(t, err, "%s", tr.Codec)
		got := d.Tracks()[0]
		assert.Equal(t, tr.Codec, got.Codec)
		if tr.Codec == media.CodecOpus {
			assert.Equal(t, c.channels, got.Channels)
			assert.Equal(t, 48000, got.SampleRate)
			assert.Len(t, got.Config, 19)
		}
	}
}

func TestMuxErrors(t *testing.T) {
	tr := testTracks(t)
	f := &media.Frame{Payload: []byte{1}}
	dst := []byte{7, 7}
	for _, c := range []struct {
		track *media.Track
		err   error
	}{
		{&media.Track{Codec: media.CodecUnknown}, ErrUnsupportedCodec},
		{tr[media.CodecAAC], ErrTrackMismatch}, // an audio track in a video tag
		{nil, ErrTrackMismatch},
	} {
		got, err := AppendVideoTag(dst, c.track, f)
		assert.ErrorIs(t, err, c.err)
		assert.Equal(t, []byte{7, 7}, got, "dst unchanged on error")
	}
	got, err := AppendAudioTag(dst, tr[media.CodecH264], f)
	assert.ErrorIs(t, err, ErrTrackMismatch)
	assert.Equal(t, []byte{7, 7}, got)
	for _, fn := range []func([]byte, *media.Track, *media.Frame) ([]byte, error){
		AppendVideoTag, AppendAudioTag, AppendFrameTag, AppendVideoBody, AppendAudioBody,
	} {
		got, err = fn(dst, tr[media.CodecAAC], nil)
		assert.ErrorIs(t, err, ErrTrackMismatch)
		assert.Equal(t, []byte{7, 7}, got)
	}
	_, err = AppendSequenceHeader(dst, nil)
	assert.ErrorIs(t, err, ErrTrackMismatch)
	_, err = AppendSequenceHeaderTag(dst, nil, 0)
	assert.ErrorIs(t, err, ErrTrackMismatch)

	for _, c := range []*media.Track{
		{Codec: media.CodecH264, Config: []byte{1, 2}},
		{Codec: media.CodecH265, Config: []byte{1}},
		{Codec: media.CodecAV1, Config: []byte{0x80, 0, 0, 0}},
		{Codec: media.CodecAAC},
	} {
		got, err := AppendSequenceHeaderTag(dst, c, 0)
		assert.ErrorIs(t, err, ErrInvalidConfig, "%s", c.Codec)
		assert.Equal(t, []byte{7, 7}, got)
	}
	_, err = AppendSequenceHeaderTag(dst, &media.Track{Codec: media.CodecUnknown}, 0)
	assert.ErrorIs(t, err, ErrUnsupportedCodec)
	assert.False(t, Supported(media.CodecUnknown))

	big := &media.Frame{Payload: make([]byte, maxBodySize)}
	got, err = AppendVideoTag(dst, tr[media.CodecH264], big)
	assert.ErrorIs(t, err, ErrTagTooLarge)
	assert.Equal(t, []byte{7, 7}, got)
}

// TestAppendTagFastPaths checks that the direct tag writers give exactly
// AppendTag of the body, and that a Reader reads them back.
func TestAppendTagFastPaths(t *testing.T) {
	tr := testTracks(t)
	var file []byte
	var want []Tag
	file = AppendFileHeader(file, true, true)
	ts := uint32(0x01FFFFF0) // needs the extended timestamp byte
	for c, track := range tr {
		seq, err := AppendSequenceHeader(nil, track)
		require.NoError(t, err)
		f := &media.Frame{DTS: ms(int(ts)), PTS: ms(int(ts) + 40), Key: true, Payload: []byte{0, 0, 0, 1, 0x65}}
		var body []byte
		var tagged []byte
		typ := TagAudio
		if track.IsVideo() {
			typ = TagVideo
			body, err = AppendVideoBody(nil, track, f)
			require.NoError(t, err)
			tagged, err = AppendVideoTag(nil, track, f)
		} else {
			body, err = AppendAudioBody(nil, track, f)
			require.NoError(t, err)
			tagged, err = AppendAudioTag(nil, track, f)
		}
		require.NoError(t, err)
		require.Equal(t, AppendTag(nil, typ, ts, body), tagged, "%s", c)
		seqTag, err := AppendSequenceHeaderTag(nil, track, ts)
		require.NoError(t, err)
		if len(seq) > 0 {
			require.Equal(t, AppendTag(nil, typ, ts, seq), seqTag, "%s", c)
			want = append(want, Tag{Type: typ, Timestamp: ts, Body: seq})
			file = append(file, seqTag...)
		}
		want = append(want, Tag{Type: typ, Timestamp: ts, Body: body})
		file = append(file, tagged...)
	}
	_, got := readFLVBytes(t, file)
	assert.Equal(t, want, got)
}

func TestCompositionTime(t *testing.T) {
	tr := testTracks(t)[media.CodecH264]
	cases := []struct {
		dts, pts       time.Duration
		wantTS, wantCT int32
	}{
		{33366666, 100100000, 33, 67}, // 90 kHz-ish times: PTS floors to 100 ms
		{ms(10), ms(10), 10, 0},
		{ms(100), ms(60), 100, -40},
		{0, time.Hour * 10, 0, 1<<23 - 1}, // clamped to SI24
		{time.Hour * 10, 0, int32(36000000), -(1 << 23)},
	}
	for _, c := range cases {
		f := &media.Frame{DTS: c.dts, PTS: c.pts, Payload: []byte{0, 0, 0, 1, 0x41}}
		tag, err := AppendVideoTag(nil, tr, f)
		require.NoError(t, err)
		ts := uint32(tag[4])<<16 | uint32(tag[5])<<8 | uint32(tag[6]) | uint32(tag[7])<<24
		assert.Equal(t, uint32(c.wantTS), ts)
		assert.Equal(t, c.wantCT, si24(tag[TagHeaderSize+2:]))
	}
	assert.Equal(t, uint32(math.MaxUint32), TimestampMs(-time.Millisecond/2), "floored")
	assert.Equal(t, uint32(0), TimestampMs(time.Millisecond*(1<<32)), "wraps like RTMP")
}

func TestMetadataBody(t *testing.T) {
	tr := testTracks(t)
	decode := func(tracks ...*media.Track) amf0.ECMAArray {
		body, err := AppendMetadataBody(nil, tracks)
		require.NoError(t, err)
		v, err := amf0.Decode(body)
		require.NoError(t, err)
		require.Len(t, v, 2)
		require.Equal(t, "onMetaData", v[0])
		arr, ok := v[1].(amf0.ECMAArray)
		require.True(t, ok, "%T", v[1])
		return arr
	}
	num := func(a amf0.ECMAArray, k string) float64 {
		v, ok := a.GetNumber(k)
		require.True(t, ok, k)
		return v
	}

	m := decode(tr[media.CodecH264], tr[media.CodecAAC])
	assert.Equal(t, 1280.0, num(m, "width"))
	assert.Equal(t, 720.0, num(m, "height"))
	assert.Equal(t, 7.0, num(m, "videocodecid"))
	assert.Equal(t, 10.0, num(m, "audiocodecid"))
	assert.Equal(t, 48000.0, num(m, "audiosamplerate"))
	assert.Equal(t, 16.0, num(m, "audiosamplesize"))
	stereo, ok := m.GetBool("stereo")
	assert.True(t, ok && stereo)
	enc, _ := m.GetString("encoder")
	assert.Equal(t, "Quasipaa", enc)
	_, hasDuration := m.Get("duration")
	assert.False(t, hasDuration)

	m = decode(tr[media.CodecOpus], tr[media.CodecH265])
	assert.Equal(t, float64(binary.BigEndian.Uint32([]byte("hvc1"))), num(m, "videocodecid"))
	assert.Equal(t, float64(binary.BigEndian.Uint32([]byte("Opus"))), num(m, "audiocodecid"))
	assert.Equal(t, 320.0, num(m, "width"))

	m = decode(tr[media.CodecAV1])
	assert.Equal(t, 1635135537.0, num(m, "videocodecid"), "the spec's own example: 'av01'")
	_, hasAudio := m.Get("audiocodecid")
	assert.False(t, hasAudio)

	m = decode(tr[media.CodecG711U], tr[media.CodecMP3])
	assert.Equal(t, 8.0, num(m, "audiocodecid"), "the first audio track")

	tag, err := AppendMetadataTag(nil, []*media.Track{tr[media.CodecH264]})
	require.NoError(t, err)
	body, err := AppendMetadataBody(nil, []*media.Track{tr[media.CodecH264]})
	require.NoError(t, err)
	assert.Equal(t, AppendTag(nil, TagScript, 0, body), tag)
}

func TestCodecIDs(t *testing.T) {
	assert.Equal(t, uint32(7), VideoCodecID(media.CodecH264))
	assert.Equal(t, FourCCVP9, VideoCodecID(media.CodecVP9))
	assert.Equal(t, uint32(0), VideoCodecID(media.CodecAAC))
	assert.Equal(t, uint32(2), AudioCodecID(media.CodecMP3))
	assert.Equal(t, uint32(7), AudioCodecID(media.CodecG711A))
	assert.Equal(t, uint32(0), AudioCodecID(media.CodecH264))
	for _, c := range []struct {
		v uint32
		s string
	}{{FourCCAVC, "avc1"}, {FourCCHEVC, "hvc1"}, {FourCCAV1, "av01"}, {FourCCVP9, "vp09"}, {FourCCVP8, "vp08"},
		{FourCCOpus, "Opus"}, {FourCCAAC, "mp4a"}, {FourCCMP3, ".mp3"}, {FourCCFLAC, "fLaC"}, {FourCCAC3, "ac-3"}, {FourCCEAC3, "ec-3"}} {
		assert.Equal(t, binary.BigEndian.Uint32([]byte(c.s)), c.v, c.s)
	}
}

func TestAppendHeaderTags(t *testing.T) {
	tr := testTracks(t)
	tracks := []*media.Track{tr[media.CodecH265], {Codec: media.CodecUnknown}, tr[media.CodecOpus]}
	file := AppendFileHeader(nil, true, true)
	file, err := AppendHeaderTags(file, tracks, 5)
	require.NoError(t, err)
	f := &media.Frame{DTS: ms(5), PTS: ms(5), Key: true, Payload: []byte{0xFC, 0xFF, 0xFE}}
	file, err = AppendFrameTag(file, tr[media.CodecOpus], f)
	require.NoError(t, err)

	_, tags := readFLVBytes(t, file)
	require.Len(t, tags, 4, "metadata, 2 sequence headers, 1 frame")
	assert.Equal(t, TagScript, tags[0].Type)
	res := demuxTags(t, tags)
	require.Len(t, res.d.Tracks(), 2)
	assert.Equal(t, *tr[media.CodecH265], *res.d.Tracks()[0])
	assert.Equal(t, *tr[media.CodecOpus], *res.d.Tracks()[1])
	require.Len(t, res.frames, 1)
	assert.Equal(t, 1, res.frames[0].Track)

	// MP3 has no sequence header: only the metadata announces it
	mp3, err := AppendHeaderTags(nil, []*media.Track{tr[media.CodecMP3]}, 0)
	require.NoError(t, err)
	meta, err := AppendMetadataTag(nil, []*media.Track{tr[media.CodecMP3]})
	require.NoError(t, err)
	assert.Equal(t, meta, mp3)
	id, ok := metadataNumber(res.d, "videocodecid")
	assert.True(t, ok)
	assert.Equal(t, float64(FourCCHEVC), id)

	bad := []*media.Track{{Codec: media.CodecAAC}}
	got, err := AppendHeaderTags([]byte{1}, bad, 0)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.Equal(t, []byte{1}, got)
}
