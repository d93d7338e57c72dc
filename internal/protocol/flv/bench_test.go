package flv

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/media"
)

// frame720p returns the real 720p H264 track of h264aac.flv and a ~10 KB
// frame for it (a real inter frame's NAL units padded with a random slice).
func frame720p(t testing.TB) (*media.Track, *media.Frame) {
	t.Helper()
	_, tags := readFLVFile(t, "h264aac.flv")
	res := demuxTags(t, tags)
	track := res.d.Tracks()[0]
	require.Equal(t, 1280, track.Width)
	payload := bytes.Clone(res.frames[1].Payload)
	rng := rand.New(rand.NewPCG(1, 2))
	slice := make([]byte, 10240-len(payload)-4)
	for i := range slice {
		slice[i] = byte(rng.Uint32())
	}
	slice[0] = 0x41 // non-IDR slice NAL header
	payload = binary.BigEndian.AppendUint32(payload, uint32(len(slice)))
	payload = append(payload, slice...)
	return track, &media.Frame{DTS: ms(1000), PTS: ms(1066), Payload: payload}
}

func TestMuxZeroAllocs(t *testing.T) {
	track, f := frame720p(t)
	aac := &media.Track{Codec: media.CodecAAC, Config: []byte{0x11, 0x90}}
	hevc := testTracks(t)[media.CodecH265]
	dst := make([]byte, 0, 64<<10)
	allocs := testing.AllocsPerRun(100, func() {
		out, _ := AppendVideoTag(dst[:0], track, f)
		out, _ = AppendVideoTag(out, hevc, f)
		out, _ = AppendAudioTag(out, aac, f)
		out, _ = AppendSequenceHeaderTag(out, track, 0)
		out, _ = AppendVideoBody(out, track, f)
		_ = AppendTag(out, TagVideo, 1, f.Payload)
	})
	assert.Zero(t, allocs)
}

func BenchmarkAppendVideoTag(b *testing.B) {
	track, f := frame720p(b)
	dst := make([]byte, 0, 16<<10)
	b.SetBytes(int64(len(f.Payload)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = AppendVideoTag(dst[:0], track, f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDemuxerVideo(b *testing.B) {
	track, f := frame720p(b)
	seq, err := AppendSequenceHeader(nil, track)
	require.NoError(b, err)
	body, err := AppendVideoBody(nil, track, f)
	require.NoError(b, err)
	var d Demuxer
	_, err = d.Video(0, seq)
	require.NoError(b, err)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		ev, err := d.Video(1000, body)
		if err != nil || ev.Frame == nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReaderReadTag(b *testing.B) {
	track, f := frame720p(b)
	file := AppendFileHeader(nil, false, true)
	const tags = 100
	for i := 0; i < tags; i++ {
		var err error
		file, err = AppendVideoTag(file, track, f)
		require.NoError(b, err)
	}
	src := bytes.NewReader(file)
	r := NewReader(src, ReaderOptions{})
	_, err := r.ReadHeader()
	require.NoError(b, err)
	b.SetBytes(int64(len(f.Payload) + 5))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.ReadTag(); err != nil {
			if err != io.EOF {
				b.Fatal(err)
			}
			_, _ = src.Seek(0, io.SeekStart)
			r.Reset(src)
			if _, err := r.ReadHeader(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
