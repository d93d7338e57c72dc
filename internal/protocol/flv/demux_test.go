package flv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/media"
)

// demuxResult is everything a Demuxer produced from a tag list.
type demuxResult struct {
	d       *Demuxer
	frames  []*media.Frame
	changes int
	// frameTag[i] is the index in the tag list of frames[i].
	frameTag []int
}

func demuxTags(t testing.TB, tags []Tag) demuxResult {
	t.Helper()
	res := demuxResult{d: &Demuxer{}}
	for i, tag := range tags {
		var ev Event
		var err error
		switch tag.Type {
		case TagVideo:
			ev, err = res.d.Video(tag.Timestamp, tag.Body)
		case TagAudio:
			ev, err = res.d.Audio(tag.Timestamp, tag.Body)
		case TagScript:
			err = res.d.Script(tag.Body)
		}
		require.NoError(t, err, "tag %d", i)
		if ev.TracksChanged {
			res.changes++
		}
		if ev.Frame != nil {
			res.frames = append(res.frames, ev.Frame)
			res.frameTag = append(res.frameTag, i)
		}
	}
	return res
}

func (r demuxResult) count(video bool) (n, keys int) {
	for _, f := range r.frames {
		if r.d.Tracks()[f.Track].IsVideo() == video {
			n++
			if f.Key {
				keys++
			}
		}
	}
	return n, keys
}

func ms(v int) time.Duration { return time.Duration(v) * time.Millisecond }

func TestDemuxFFmpegH264AAC(t *testing.T) {
	h, tags := readFLVFile(t, "h264aac.flv")
	assert.Equal(t, Header{Version: 1, HasAudio: true, HasVideo: true}, h)
	res := demuxTags(t, tags)
	tracks := res.d.Tracks()
	require.Len(t, tracks, 2)

	v, a := tracks[0], tracks[1] // ffmpeg writes the video sequence header first
	assert.Equal(t, media.CodecH264, v.Codec)
	assert.Equal(t, 1280, v.Width)
	assert.Equal(t, 720, v.Height)
	assert.Equal(t, byte(3), v.Config[4]&3, "4-byte NAL lengths")
	assert.Equal(t, media.CodecAAC, a.Codec)
	assert.Equal(t, 48000, a.SampleRate)
	assert.Equal(t, 2, a.Channels)
	assert.Equal(t, 2, res.changes)

	nv, kv := res.count(true)
	na, ka := res.count(false)
	assert.Equal(t, 60, nv)
	assert.Equal(t, 1, kv)
	assert.Equal(t, 95, na)
	assert.Equal(t, 95, ka, "every audio frame is a random access point")
	assert.Equal(t, DemuxStats{Frames: 155, Ignored: 1}, res.d.Stats()) // 1: AVC end of sequence

	first := res.frames[0]
	assert.Equal(t, 0, first.Track)
	assert.True(t, first.Key)
	assert.Equal(t, time.Duration(0), first.DTS)
	assert.Equal(t, ms(67), first.PTS)
	assert.False(t, first.Ingest.IsZero())
	for _, f := range res.frames {
		assert.GreaterOrEqual(t, f.PTS, f.DTS)
		if tracks[f.Track].IsVideo() {
			require.True(t, validAVCC(f.Payload, 4))
		}
	}

	width, ok := metadataNumber(res.d, "width")
	assert.True(t, ok)
	assert.Equal(t, 1280.0, width)

	// ffprobe's view of the same packets, in file order
	want := ffprobePackets(t, "testdata/h264aac.flv")
	if want != nil {
		require.Len(t, res.frames, len(want))
		for i, f := range res.frames {
			got := probePacket{
				video: tracks[f.Track].IsVideo(),
				pts:   f.PTS.Milliseconds(), dts: f.DTS.Milliseconds(),
				key: f.Key, size: len(f.Payload),
			}
			require.Equal(t, want[i], got, "packet %d", i)
		}
	}
}

func metadataNumber(d *Demuxer, key string) (float64, bool) {
	for _, p := range d.Metadata() {
		if p.Key == key {
			f, ok := p.Value.(float64)
			return f, ok
		}
	}
	return 0, false
}

type probePacket struct {
	video    bool
	pts, dts int64
	key      bool
	size     int
}

// ffprobePackets lists the packets of a file as ffprobe sees them, or nil
// (test skipped parts) when ffprobe is not installed.
func ffprobePackets(t testing.TB, path string) []probePacket {
	t.Helper()
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Log("ffprobe not installed: skipping the comparison with ffprobe")
		return nil
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries",
		"packet=codec_type,pts,dts,flags,size", "-of", "csv", path).Output()
	require.NoError(t, err)
	var pkts []probePacket
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, ",")
		require.Len(t, f, 6, line)
		pts, err1 := strconv.ParseInt(f[2], 10, 64)
		dts, err2 := strconv.ParseInt(f[3], 10, 64)
		size, err3 := strconv.Atoi(f[4])
		require.NoError(t, errors.Join(err1, err2, err3), line)
		pkts = append(pkts, probePacket{video: f[1] == "video", pts: pts, dts: dts, key: f[5][0] == 'K', size: size})
	}
	return pkts
}

// remux rebuilds every media tag of tags from what the demuxer made of it:
// sequence headers from the tracks, frames with AppendVideoTag/AppendAudioTag.
// It returns the new tag list (bodies only for comparison) and the new file.
func remux(t testing.TB, tags []Tag) ([]Tag, []byte) {
	t.Helper()
	var d Demuxer
	var out []Tag
	file := AppendFileHeader(nil, hasType(tags, TagAudio), hasType(tags, TagVideo))
	metaDone := false
	for _, tag := range tags {
		var ev Event
		var err error
		switch tag.Type {
		case TagVideo:
			ev, err = d.Video(tag.Timestamp, tag.Body)
		case TagAudio:
			ev, err = d.Audio(tag.Timestamp, tag.Body)
		default:
			continue
		}
		require.NoError(t, err)
		if ev.TracksChanged {
			if !metaDone {
				file, err = AppendMetadataTag(file, allTracks(tags))
				require.NoError(t, err)
				metaDone = true
			}
			// the track whose sequence header this tag was
			for _, tr := range d.Tracks() {
				if tr.IsVideo() == (tag.Type == TagVideo) && HasSequenceHeader(tr.Codec) {
					body, err := AppendSequenceHeader(nil, tr)
					require.NoError(t, err)
					out = append(out, Tag{Type: tag.Type, Timestamp: tag.Timestamp, Body: body})
					file, err = AppendSequenceHeaderTag(file, tr, tag.Timestamp)
					require.NoError(t, err)
				}
			}
		}
		if f := ev.Frame; f != nil {
			tr := d.Tracks()[f.Track]
			var body []byte
			if tr.IsVideo() {
				body, err = AppendVideoBody(nil, tr, f)
				require.NoError(t, err)
				file, err = AppendVideoTag(file, tr, f)
			} else {
				body, err = AppendAudioBody(nil, tr, f)
				require.NoError(t, err)
				file, err = AppendAudioTag(file, tr, f)
			}
			require.NoError(t, err)
			out = append(out, Tag{Type: tag.Type, Timestamp: TimestampMs(f.DTS), Body: body})
		}
	}
	return out, file
}

// allTracks demuxes tags once to know the final tracks (for onMetaData).
func allTracks(tags []Tag) []*media.Track {
	var d Demuxer
	for _, tag := range tags {
		switch tag.Type {
		case TagVideo:
			_, _ = d.Video(tag.Timestamp, tag.Body)
		case TagAudio:
			_, _ = d.Audio(tag.Timestamp, tag.Body)
		}
	}
	return d.Tracks()
}

func hasType(tags []Tag, typ uint8) bool {
	for _, t := range tags {
		if t.Type == typ {
			return true
		}
	}
	return false
}

// mediaTags returns the audio and video tags that carry media (not the AVC
// end of sequence marker).
func mediaTags(tags []Tag) []Tag {
	var out []Tag
	for _, t := range tags {
		if t.Type == TagVideo && len(t.Body) >= 2 && t.Body[0]&0x80 == 0 && t.Body[1] == 2 {
			continue
		}
		if t.Type == TagVideo || t.Type == TagAudio {
			out = append(out, t)
		}
	}
	return out
}

// TestRemuxByteExact checks that demux then mux gives back, byte for byte,
// the tag bodies ffmpeg wrote: the legacy forms are exactly what players read.
func TestRemuxByteExact(t *testing.T) {
	for _, name := range []string{"h264aac.flv", "mp3.flv", "alaw.flv", "mulaw.flv"} {
		t.Run(name, func(t *testing.T) {
			_, tags := readFLVFile(t, name)
			want := mediaTags(tags)
			got, _ := remux(t, tags)
			require.Len(t, got, len(want))
			for i := range want {
				require.Equal(t, want[i].Type, got[i].Type, "tag %d", i)
				require.Equal(t, want[i].Timestamp, got[i].Timestamp, "tag %d", i)
				require.Equal(t, want[i].Body, got[i].Body, "tag %d", i)
			}
		})
	}
}

func TestDemuxLegacyAudio(t *testing.T) {
	cases := []struct {
		file     string
		codec    media.Codec
		rate, ch int
		frames   int
	}{
		{"mp3.flv", media.CodecMP3, 44100, 1, 40},
		{"alaw.flv", media.CodecG711A, 8000, 1, 4},
		{"mulaw.flv", media.CodecG711U, 8000, 1, 4},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			_, tags := readFLVFile(t, c.file)
			res := demuxTags(t, tags)
			require.Len(t, res.d.Tracks(), 1)
			tr := res.d.Tracks()[0]
			assert.Equal(t, c.codec, tr.Codec)
			assert.Equal(t, c.rate, tr.SampleRate)
			assert.Equal(t, c.ch, tr.Channels)
			assert.Empty(t, tr.Config)
			assert.Len(t, res.frames, c.frames)
			assert.Equal(t, 1, res.changes, "the track is made once, by the first frame")
			if want := ffprobePackets(t, "testdata/"+c.file); want != nil {
				require.Len(t, want, len(res.frames))
				for i, f := range res.frames {
					assert.Equal(t, want[i].dts, f.DTS.Milliseconds())
					assert.Equal(t, want[i].size, len(f.Payload))
				}
			}
		})
	}
}

// TestDemuxAudioFirst feeds the audio sequence header before the video one:
// audio takes index 0 and video index 1, and frames say so.
func TestDemuxAudioFirst(t *testing.T) {
	_, tags := readFLVFile(t, "h264aac.flv")
	var vseq, aseq Tag
	var rest []Tag
	for _, tag := range mediaTags(tags) {
		switch {
		case tag.Type == TagVideo && tag.Body[1] == 0:
			vseq = tag
		case tag.Type == TagAudio && tag.Body[1] == 0:
			aseq = tag
		default:
			rest = append(rest, tag)
		}
	}
	var d Demuxer
	ev, err := d.Audio(aseq.Timestamp, aseq.Body)
	require.NoError(t, err)
	require.True(t, ev.TracksChanged)
	first := d.Tracks()
	require.Len(t, first, 1)
	assert.Equal(t, media.CodecAAC, first[0].Codec)

	// audio frames before any video are fine
	var audioBefore int
	for _, tag := range rest {
		if tag.Type != TagAudio {
			continue
		}
		ev, err := d.Audio(tag.Timestamp, tag.Body)
		require.NoError(t, err)
		require.Equal(t, 0, ev.Frame.Track)
		if audioBefore++; audioBefore == 3 {
			break
		}
	}
	ev, err = d.Video(vseq.Timestamp, vseq.Body)
	require.NoError(t, err)
	require.True(t, ev.TracksChanged)
	tracks := d.Tracks()
	require.Len(t, tracks, 2)
	assert.Equal(t, media.CodecAAC, tracks[0].Codec)
	assert.Equal(t, media.CodecH264, tracks[1].Codec)
	assert.Len(t, first, 1, "earlier track lists are never modified")

	for _, tag := range rest {
		var ev Event
		var err error
		if tag.Type == TagVideo {
			ev, err = d.Video(tag.Timestamp, tag.Body)
		} else {
			ev, err = d.Audio(tag.Timestamp, tag.Body)
		}
		require.NoError(t, err)
		require.NotNil(t, ev.Frame)
		assert.Equal(t, tag.Type == TagVideo, tracks[ev.Frame.Track].IsVideo())
	}
}

func TestDemuxFramesBeforeSequenceHeader(t *testing.T) {
	_, tags := readFLVFile(t, "h264aac.flv")
	tags = mediaTags(tags)
	var d Demuxer
	dropped := 0
	for _, tag := range tags {
		if tag.Body[1] == 0 { // skip the sequence headers for now
			continue
		}
		var err error
		if tag.Type == TagVideo {
			_, err = d.Video(tag.Timestamp, tag.Body)
		} else {
			_, err = d.Audio(tag.Timestamp, tag.Body)
		}
		require.ErrorIs(t, err, ErrNoSequenceHeader)
		dropped++
	}
	assert.Equal(t, uint64(dropped), d.Stats().NoSequenceHeader)
	assert.Empty(t, d.Tracks())

	// the stream goes on once the headers arrive
	res := demuxResult{d: &d}
	for _, tag := range tags {
		var ev Event
		var err error
		if tag.Type == TagVideo {
			ev, err = d.Video(tag.Timestamp, tag.Body)
		} else {
			ev, err = d.Audio(tag.Timestamp, tag.Body)
		}
		require.NoError(t, err)
		if ev.Frame != nil {
			res.frames = append(res.frames, ev.Frame)
		}
	}
	assert.Len(t, res.frames, 155)

	// an HEVC frame after an AVC sequence header is dropped the same way
	_, err := d.Video(0, []byte{0x1C, 1, 0, 0, 0, 0, 0, 0, 1, 0x26})
	require.ErrorIs(t, err, ErrNoSequenceHeader)
}

// TestDemuxTrackChange replaces the video configuration mid-stream.
func TestDemuxTrackChange(t *testing.T) {
	_, tags := readFLVFile(t, "h264aac.flv")
	tags = mediaTags(tags)
	var d Demuxer
	vseq := tags[0]
	require.Equal(t, []byte{0x17, 0}, vseq.Body[:2])
	ev, err := d.Video(0, vseq.Body)
	require.NoError(t, err)
	require.True(t, ev.TracksChanged)
	before := d.Tracks()

	ev, err = d.Video(10, vseq.Body) // repeated as is: nothing changes
	require.NoError(t, err)
	assert.False(t, ev.TracksChanged)
	assert.Same(t, before[0], d.Tracks()[0])

	// same SPS/PPS announced with 2-byte NAL lengths: a new configuration
	changed := bytes.Clone(vseq.Body)
	changed[5+4] = 0xFD
	ev, err = d.Video(20, changed)
	require.NoError(t, err)
	require.True(t, ev.TracksChanged)
	after := d.Tracks()
	require.Len(t, after, 1)
	assert.NotSame(t, before[0], after[0])
	assert.Equal(t, before[0].Config, after[0].Config, "both normalised to 4-byte lengths")
	assert.Equal(t, media.CodecH264, before[0].Codec, "old track untouched")
}

// toLengthSize rewrites a 4-byte-length AVCC payload with n-byte lengths.
func toLengthSize(t testing.TB, p []byte, n int) []byte {
	t.Helper()
	var out []byte
	for len(p) > 0 {
		l := int(binary.BigEndian.Uint32(p))
		nal := p[4 : 4+l]
		switch n {
		case 1:
			require.Less(t, l, 256)
			out = append(out, byte(l))
		case 2:
			require.Less(t, l, 65536)
			out = binary.BigEndian.AppendUint16(out, uint16(l))
		}
		out = append(out, nal...)
		p = p[4+l:]
	}
	return out
}

func TestDemuxLengthSizeAndAnnexB(t *testing.T) {
	_, tags := readFLVFile(t, "h264aac.flv")
	orig := demuxTags(t, tags)
	var video []Tag
	for _, tag := range mediaTags(tags) {
		if tag.Type == TagVideo {
			video = append(video, tag)
		}
	}
	var wantPayloads [][]byte
	for _, f := range orig.frames {
		if orig.d.Tracks()[f.Track].IsVideo() {
			wantPayloads = append(wantPayloads, f.Payload)
		}
	}

	for _, form := range []string{"2-byte", "annexb"} {
		t.Run(form, func(t *testing.T) {
			var d Demuxer
			seq := bytes.Clone(video[0].Body)
			if form == "2-byte" {
				seq[5+4] = 0xFD
			}
			_, err := d.Video(0, seq)
			require.NoError(t, err)
			assert.Equal(t, orig.d.Tracks()[0].Config, d.Tracks()[0].Config)
			for i, tag := range video[1:] {
				body := bytes.Clone(tag.Body[:5])
				payload := tag.Body[5:]
				if form == "2-byte" {
					body = append(body, toLengthSize(t, payload, 2)...)
				} else {
					for len(payload) > 0 {
						l := binary.BigEndian.Uint32(payload)
						body = append(body, 0, 0, 0, 1)
						body = append(body, payload[4:4+l]...)
						payload = payload[4+l:]
					}
				}
				ev, err := d.Video(tag.Timestamp, body)
				require.NoError(t, err)
				require.Equal(t, wantPayloads[i], ev.Frame.Payload, "frame %d", i)
			}
		})
	}
}

func TestDemuxFramesDoNotAliasInput(t *testing.T) {
	_, tags := readFLVFile(t, "h264aac.flv")
	tags = mediaTags(tags)
	var d Demuxer
	for _, tag := range tags[:4] {
		body := bytes.Clone(tag.Body)
		var ev Event
		var err error
		if tag.Type == TagVideo {
			ev, err = d.Video(tag.Timestamp, body)
		} else {
			ev, err = d.Audio(tag.Timestamp, body)
		}
		require.NoError(t, err)
		var keep []byte
		if ev.Frame != nil {
			keep = bytes.Clone(ev.Frame.Payload)
		}
		for i := range body {
			body[i] = 0xEE
		}
		if ev.Frame != nil {
			assert.Equal(t, keep, ev.Frame.Payload)
		}
		for _, tr := range d.Tracks() {
			assert.NotContains(t, string(tr.Config), "\xEE\xEE\xEE\xEE")
		}
	}
}

func TestDemuxTimestampWrap(t *testing.T) {
	var d Demuxer
	_, tags := readFLVFile(t, "mp3.flv")
	body := mediaTags(tags)[0].Body
	steps := []struct {
		ts   uint32
		want time.Duration
	}{
		{0xFFFFFF00, ms(0xFFFFFF00)},
		{0xFFFFFFF0, ms(0xFFFFFFF0)},
		{0x00000010, ms(1<<32 + 0x10)}, // wrapped
		{0xFFFFFFFA, ms(1<<32 - 6)},    // a late frame from before the wrap
		{0x00000020, ms(1<<32 + 0x20)},
	}
	for _, s := range steps {
		ev, err := d.Audio(s.ts, body)
		require.NoError(t, err)
		assert.Equal(t, s.want, ev.Frame.DTS, "ts %#x", s.ts)
	}
}

func TestDemuxScript(t *testing.T) {
	var d Demuxer
	tr := []*media.Track{{Codec: media.CodecH265, Width: 320, Height: 240}, {Codec: media.CodecOpus, SampleRate: 48000, Channels: 2}}
	body, err := AppendMetadataBody(nil, tr)
	require.NoError(t, err)
	require.NoError(t, d.Script(body))
	id, ok := metadataNumber(&d, "videocodecid")
	assert.True(t, ok)
	assert.Equal(t, float64(FourCCHEVC), id)

	// "@setDataFrame" wrapped, as RTMP publishers send it
	var d2 Demuxer
	wrapped := append([]byte{2, 0, 13}, "@setDataFrame"...)
	require.NoError(t, d2.Script(append(wrapped, body...)))
	assert.Equal(t, d.Metadata(), d2.Metadata())

	assert.ErrorIs(t, d.Script([]byte{2, 0, 50, 'x'}), ErrInvalidPacket)
	assert.ErrorIs(t, d.Script(nil), ErrInvalidPacket)
	assert.ErrorIs(t, d.Script(append(bytes.Clone(body[:13]), 8, 0)), ErrInvalidPacket)
	assert.NoError(t, d.Script([]byte{2, 0, 6, 'o', 'n', 'P', 'i', 'n', 'g', 0, 0, 0, 0, 0, 0, 0, 0, 0}), "other names are ignored")
	assert.NoError(t, d.Script(append(bytes.Clone(body), 0xDE, 0xAD)), "trailing bytes are ignored")
	assert.Equal(t, d2.Metadata(), d.Metadata(), "bad or empty script data keeps the metadata")
}

// TestDemuxKeyFromBitstream: the FLV FrameType is not trusted, the NAL unit
// types are.
func TestDemuxKeyFromBitstream(t *testing.T) {
	_, tags := readFLVFile(t, "h264aac.flv")
	var d Demuxer
	var idr, inter []byte
	for _, tag := range mediaTags(tags) {
		if tag.Type != TagVideo {
			continue
		}
		switch {
		case tag.Body[1] == 0:
			_, err := d.Video(0, tag.Body)
			require.NoError(t, err)
		case tag.Body[0] == 0x17 && idr == nil:
			idr = bytes.Clone(tag.Body)
		case tag.Body[0] == 0x27 && inter == nil:
			inter = bytes.Clone(tag.Body)
		}
	}
	idr[0], inter[0] = 0x27, 0x17
	ev, err := d.Video(0, idr)
	require.NoError(t, err)
	assert.True(t, ev.Frame.Key, "an IDR frame flagged inter")
	ev, err = d.Video(0, inter)
	require.NoError(t, err)
	assert.False(t, ev.Frame.Key, "an inter frame flagged key")
}
