package flv

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/media"
)

// Fuzz targets: the demuxer and the reader face the network. Each target
// feeds arbitrary bytes, requires that only the package's sentinel errors
// come out, and that whatever was accepted survives mux then demux
// unchanged (mux(demux(x)) is stable).

// seedBodies returns real tag bodies: ffmpeg's FLV files, and Enhanced RTMP
// bodies of the real H265/AV1/VP9/Opus samples.
func seedBodies(f *testing.F) (video, audio [][2][]byte) {
	f.Helper()
	for _, name := range []string{"h264aac.flv", "mp3.flv", "alaw.flv"} {
		_, tags := readFLVFile(f, name)
		var seq [2][]byte
		mt := mediaTags(tags)
		for _, tag := range mt[:min(8, len(mt))] {
			switch {
			case tag.Type == TagVideo && tag.Body[1] == 0, tag.Type == TagAudio && tag.Body[0]>>4 == 10 && tag.Body[1] == 0:
				seq[tag.Type-TagAudio] = tag.Body
			case tag.Type == TagVideo:
				video = append(video, [2][]byte{seq[1], tag.Body})
			default:
				audio = append(audio, [2][]byte{seq[0], tag.Body})
			}
		}
	}
	for _, rv := range realVideos {
		mp4 := readMP4Track(f, rv.file)
		seq := exVideo(1, 0, rv.fourcc, mp4.config)
		for _, s := range mp4.samples[:3] {
			video = append(video, [2][]byte{seq, specFrameBody(rv.fourcc, s.sync, 40, s.data)})
		}
	}
	packets := readOggPackets(f, "opus.ogg")
	audio = append(audio, [2][]byte{exAudio(0, "Opus", packets[0]), exAudio(1, "Opus", packets[2])})
	return video, audio
}

// requireSentinel fails on errors that are not the package's own.
func requireSentinel(t *testing.T, err error) {
	t.Helper()
	if err != nil && !isSentinel(err) {
		t.Fatalf("unexpected error %v", err)
	}
}

// sameTrack compares what a track says, not its identity.
func sameTrack(t *testing.T, want, got *media.Track) {
	t.Helper()
	require.Equal(t, *want, *got)
}

// roundTrip muxes track and frame, demuxes them with a fresh Demuxer and
// requires the same track and frame (times to the millisecond FLV keeps),
// then requires that muxing again gives the same bytes.
func roundTrip(t *testing.T, track *media.Track, f *media.Frame) {
	t.Helper()
	seq, err := AppendSequenceHeader(nil, track)
	require.NoError(t, err, "a demuxed track must mux")
	var body []byte
	demux := (*Demuxer).Audio
	if track.IsVideo() {
		demux = (*Demuxer).Video
		body, err = AppendVideoBody(nil, track, f)
	} else {
		body, err = AppendAudioBody(nil, track, f)
	}
	require.NoError(t, err, "a demuxed frame must mux")

	var d Demuxer
	if len(seq) > 0 {
		_, err = demux(&d, 0, seq)
		require.NoError(t, err, "sequence header %x", seq)
	}
	ev, err := demux(&d, TimestampMs(f.DTS), body)
	require.NoError(t, err, "body %x", body)
	require.NotNil(t, ev.Frame)
	require.Len(t, d.Tracks(), 1)
	sameTrack(t, track, d.Tracks()[0])
	g := ev.Frame
	require.Equal(t, f.Payload, g.Payload)
	require.Equal(t, f.Key, g.Key)
	require.Equal(t, time.Duration(floorMs(f.DTS))*time.Millisecond, g.DTS)
	require.Equal(t, floorMs(f.PTS)-floorMs(f.DTS), floorMs(g.PTS)-floorMs(g.DTS))

	var again []byte
	if track.IsVideo() {
		again, err = AppendVideoBody(nil, d.Tracks()[0], g)
	} else {
		again, err = AppendAudioBody(nil, d.Tracks()[0], g)
	}
	require.NoError(t, err)
	require.Equal(t, body, again)
	seq2, err := AppendSequenceHeader(nil, d.Tracks()[0])
	require.NoError(t, err)
	require.Equal(t, seq, seq2)
}

func fuzzDemux(t *testing.T, video bool, seq, frame []byte, ts uint32) {
	var d Demuxer
	demux := (*Demuxer).Audio
	if video {
		demux = (*Demuxer).Video
	}
	_, err := demux(&d, ts, seq)
	requireSentinel(t, err)
	input := bytes.Clone(frame)
	ev, err := demux(&d, ts, input)
	requireSentinel(t, err)
	for i := range input {
		input[i] ^= 0xFF // the caller reuses its buffer
	}
	if err != nil {
		require.Nil(t, ev.Frame)
		require.False(t, ev.TracksChanged)
	}
	require.LessOrEqual(t, len(d.Tracks()), 1)
	for _, tr := range d.Tracks() {
		require.Equal(t, video, tr.IsVideo())
		_, err := AppendSequenceHeader(nil, tr)
		require.NoError(t, err)
	}
	if ev.Frame != nil {
		require.Equal(t, 0, ev.Frame.Track)
		require.NotEmpty(t, ev.Frame.Payload)
		require.True(t, bytes.Contains(frame, ev.Frame.Payload) || track0IsNAL(d.Tracks()[0]),
			"the frame must not alias the input body")
		roundTrip(t, d.Tracks()[0], ev.Frame)
	}
}

// track0IsNAL reports whether frames of the track are rebuilt from NAL units
// (and so do not appear verbatim in the input).
func track0IsNAL(t *media.Track) bool {
	return t.Codec == media.CodecH264 || t.Codec == media.CodecH265
}

func FuzzDemuxVideo(f *testing.F) {
	video, _ := seedBodies(f)
	for _, v := range video {
		f.Add(v[0], v[1], uint32(1000))
	}
	f.Fuzz(func(t *testing.T, seq, frame []byte, ts uint32) {
		fuzzDemux(t, true, seq, frame, ts)
	})
}

func FuzzDemuxAudio(f *testing.F) {
	_, audio := seedBodies(f)
	for _, a := range audio {
		f.Add(a[0], a[1], uint32(1000))
	}
	f.Fuzz(func(t *testing.T, seq, frame []byte, ts uint32) {
		fuzzDemux(t, false, seq, frame, ts)
	})
}

func FuzzReader(f *testing.F) {
	for _, name := range []string{"mp3.flv", "alaw.flv"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(f, err)
		f.Add(data)
	}
	data, err := os.ReadFile(filepath.Join("testdata", "h264aac.flv"))
	require.NoError(f, err)
	f.Add(data[:4096])
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), ReaderOptions{MaxTagSize: 1 << 20})
		h, err := r.ReadHeader()
		if err != nil {
			require.True(t, errors.Is(err, ErrTruncated) || errors.Is(err, ErrBadSignature) ||
				errors.Is(err, ErrInvalidPacket), "%v", err)
			return
		}
		var tags []Tag
		var d Demuxer
		for {
			tag, err := r.ReadTag()
			if err == io.EOF {
				break
			}
			if err != nil {
				require.True(t, errors.Is(err, ErrTruncated) || errors.Is(err, ErrTagTooLarge) ||
					errors.Is(err, ErrEncrypted), "%v", err)
				break
			}
			switch tag.Type {
			case TagVideo:
				_, err = d.Video(tag.Timestamp, tag.Body)
				requireSentinel(t, err)
			case TagAudio:
				_, err = d.Audio(tag.Timestamp, tag.Body)
				requireSentinel(t, err)
			case TagScript:
				requireSentinel(t, d.Script(tag.Body))
			}
			tag.Body = bytes.Clone(tag.Body)
			tag.StreamID = 0
			tags = append(tags, tag)
		}

		// what was read writes back and reads the same
		file := AppendFileHeader(nil, h.HasAudio, h.HasVideo)
		for _, tag := range tags {
			file = AppendTag(file, tag.Type, tag.Timestamp, tag.Body)
		}
		r2 := NewReader(bytes.NewReader(file), ReaderOptions{})
		h2, err := r2.ReadHeader()
		require.NoError(t, err)
		require.Equal(t, h.HasAudio, h2.HasAudio)
		require.Equal(t, h.HasVideo, h2.HasVideo)
		for i := range tags {
			got, err := r2.ReadTag()
			require.NoError(t, err)
			require.Equal(t, tags[i], got)
		}
		_, err = r2.ReadTag()
		require.Equal(t, io.EOF, err)
	})
}
