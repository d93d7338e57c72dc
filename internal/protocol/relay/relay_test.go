package relay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/media"
)

// syntheticTracks sets every field of media.Track, with edge values.
var syntheticTracks = []*media.Track{
	{Codec: media.CodecH265, Config: []byte{1, 2, 3, 4}, Width: 3840, Height: 2160, Profile: "Main 10", Level: "5.1"},
	{Codec: media.CodecOpus, SampleRate: 48000, Channels: 2},
	{Codec: media.CodecAAC, Config: []byte{0x11, 0x90}, SampleRate: 44100, Channels: 1, Profile: "LC"},
	{Codec: media.Codec(200), Width: -1, Height: 1<<31 - 1, SampleRate: -1 << 31},
}

func requireSameFrame(t *testing.T, want, got *media.Frame) {
	t.Helper()
	require.Equal(t, want.Track, got.Track)
	require.Equal(t, want.Key, got.Key)
	require.Equal(t, want.DTS, got.DTS)
	require.Equal(t, want.PTS, got.PTS)
	require.Equal(t, want.Ingest.IsZero(), got.Ingest.IsZero())
	require.Equal(t, want.Ingest.UnixNano()*boolInt(!want.Ingest.IsZero()), got.Ingest.UnixNano()*boolInt(!got.Ingest.IsZero()))
	require.True(t, bytes.Equal(want.Payload, got.Payload), "payload")
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// normTracks makes empty configs nil: the format does not tell them apart.
func normTracks(tracks []*media.Track) []*media.Track {
	out := make([]*media.Track, len(tracks))
	for i, t := range tracks {
		c := *t
		if len(c.Config) == 0 {
			c.Config = nil
		}
		out[i] = &c
	}
	return out
}

func TestRoundTripRealMedia(t *testing.T) {
	for _, name := range []string{"h264aac.flv", "mp3.flv", "alaw.flv", "mulaw.flv"} {
		t.Run(name, func(t *testing.T) {
			tracks, frames := realMedia(t, name)
			var buf bytes.Buffer
			w := NewWriter(&buf)
			require.NoError(t, w.WriteTracks(tracks))
			for _, f := range frames {
				require.NoError(t, w.WriteFrame(f))
			}
			require.NoError(t, w.WriteKeepalive())
			require.NoError(t, w.WriteEnd(ReasonStreamEnded))

			r := NewReader(&buf, 0)
			m, err := r.Next()
			require.NoError(t, err)
			require.Equal(t, TypeTracks, m.Type)
			require.Equal(t, normTracks(tracks), m.Tracks)
			for _, f := range frames {
				m, err := r.Next()
				require.NoError(t, err)
				require.Equal(t, TypeFrame, m.Type)
				requireSameFrame(t, f, m.Frame)
			}
			m, err = r.Next()
			require.NoError(t, err)
			require.Equal(t, TypeKeepalive, m.Type)
			m, err = r.Next()
			require.NoError(t, err)
			require.Equal(t, Message{Type: TypeEnd, Reason: ReasonStreamEnded, Size: msgHeaderLen + len(ReasonStreamEnded)}, m)
			_, err = r.Next()
			require.ErrorIs(t, err, io.EOF)
		})
	}
}

func TestRoundTripEdgeValues(t *testing.T) {
	ingest := time.Date(2026, 11, 24, 1, 2, 3, 456789012, time.UTC)
	frames := []*media.Frame{
		{Track: 0, Key: true, DTS: 0, PTS: 0, Ingest: ingest, Payload: []byte{0, 0, 0, 1, 0x65}},
		{Track: 1, DTS: -5 * time.Millisecond, PTS: -7 * time.Millisecond, Ingest: time.Time{}},
		{Track: 3, DTS: 1<<62 + 1, PTS: 1<<62 + 99, Ingest: time.Unix(0, 1), Payload: bytes.Repeat([]byte{0xab}, 70000)},
		{Track: 254, DTS: -1 << 62, PTS: 1 << 62, Ingest: time.Unix(-1, 0)},
	}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	require.NoError(t, w.WriteTracks(syntheticTracks))
	require.NoError(t, w.WriteTracks(nil))
	for _, f := range frames {
		require.NoError(t, w.WriteFrame(f))
	}
	require.NoError(t, w.WriteEnd(""))
	r := NewReader(&buf, 1<<20)
	m, err := r.Next()
	require.NoError(t, err)
	require.Equal(t, syntheticTracks, m.Tracks)
	m, err = r.Next()
	require.NoError(t, err)
	require.Equal(t, TypeTracks, m.Type)
	require.Empty(t, m.Tracks)
	for _, f := range frames {
		m, err := r.Next()
		require.NoError(t, err)
		requireSameFrame(t, f, m.Frame)
	}
	m, err = r.Next()
	require.NoError(t, err)
	require.Equal(t, TypeEnd, m.Type)
	require.Empty(t, m.Reason)
}

func TestWriterRefusesWhatItCannotCarry(t *testing.T) {
	w := NewWriter(io.Discard)
	require.ErrorIs(t, w.WriteFrame(&media.Frame{Track: -1}), ErrInvalid)
	require.ErrorIs(t, w.WriteFrame(&media.Frame{Track: 255}), ErrInvalid)
	require.ErrorIs(t, w.WriteTracks(make([]*media.Track, 256)), ErrInvalid)
	require.ErrorIs(t, w.WriteTracks([]*media.Track{nil}), ErrInvalid)
	var buf bytes.Buffer
	w = NewWriter(&buf)
	require.NoError(t, w.WriteEnd(string(bytes.Repeat([]byte("x"), 5000))))
	m, err := NewReader(&buf, 0).Next()
	require.NoError(t, err)
	require.Len(t, m.Reason, maxReason)
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, io.ErrClosedPipe
	}
	f.n--
	return len(p), nil
}

func TestWriterStaysFailed(t *testing.T) {
	w := NewWriter(&failWriter{n: 1})
	require.NoError(t, w.WriteKeepalive())
	require.ErrorIs(t, w.WriteFrame(&media.Frame{Payload: []byte{1}}), io.ErrClosedPipe)
	require.ErrorIs(t, w.WriteKeepalive(), io.ErrClosedPipe)
}

// rawMessage builds a message by hand.
func rawMessage(t Type, body []byte) []byte {
	b := []byte{byte(t), 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(body)))
	return append(b, body...)
}

func header() []byte { return append([]byte(Magic), Version) }

func TestReaderSkipsUnknownTypes(t *testing.T) {
	var in []byte
	in = append(in, header()...)
	in = append(in, rawMessage(99, bytes.Repeat([]byte{7}, 100000))...) // larger than the bound: skipped anyway
	in = append(in, rawMessage(0, nil)...)
	in = append(in, rawMessage(TypeKeepalive, []byte("future"))...)
	in = append(in, rawMessage(TypeEnd, []byte("bye"))...)
	r := NewReader(bytes.NewReader(in), 1000)
	m, err := r.Next()
	require.NoError(t, err)
	require.Equal(t, Message{Type: 99, Size: 100005}, m)
	require.Equal(t, "unknown", m.Type.String())
	m, err = r.Next()
	require.NoError(t, err)
	require.Equal(t, Type(0), m.Type)
	m, err = r.Next()
	require.NoError(t, err)
	require.Equal(t, TypeKeepalive, m.Type)
	m, err = r.Next()
	require.NoError(t, err)
	require.Equal(t, "bye", m.Reason)
	_, err = r.Next()
	require.ErrorIs(t, err, io.EOF)
}

func TestReaderIgnoresAppendedTrackFields(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, NewWriter(&buf).WriteTracks(syntheticTracks[:1]))
	in := buf.Bytes()
	// Grow the track entry by two bytes a later version might add.
	body := in[headerLen+msgHeaderLen:]
	entryLen, n := binary.Uvarint(body[1:])
	entry := append([]byte(nil), body[1+n:]...)
	require.Len(t, entry, int(entryLen))
	nb := append([]byte{1}, binary.AppendUvarint(nil, entryLen+2)...)
	nb = append(nb, entry...)
	nb = append(nb, 0xee, 0xff)
	nb = append(nb, 0x42) // and a byte after the last track
	out := append(header(), rawMessage(TypeTracks, nb)...)
	m, err := NewReader(bytes.NewReader(out), 0).Next()
	require.NoError(t, err)
	require.Equal(t, syntheticTracks[:1], m.Tracks)
}

func TestReaderErrors(t *testing.T) {
	var good bytes.Buffer
	w := NewWriter(&good)
	require.NoError(t, w.WriteTracks(syntheticTracks))
	require.NoError(t, w.WriteFrame(&media.Frame{Track: 1, Payload: []byte("payload")}))
	cases := []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"empty", nil, 0, io.EOF},
		{"short header", []byte("QP"), 0, ErrTruncated},
		{"bad magic", []byte("FLV\x01\x05\x00\x00\x00\x09"), 0, ErrBadMagic},
		{"version", []byte("QPRL\x02"), 0, ErrVersion},
		{"short message header", append(header(), 2, 0, 0), 0, ErrTruncated},
		{"short body", append(header(), 2, 0, 0, 0, 9, 1), 0, ErrTruncated},
		{"short unknown body", append(header(), 77, 0, 0, 0, 9, 1), 0, ErrTruncated},
		{"short keepalive body", append(header(), 3, 0, 0, 0, 9, 1), 0, ErrTruncated},
		{"oversize", append(header(), 2, 0, 1, 0, 0), 1000, ErrOversize},
		{"oversize 4 GiB", append(header(), 1, 0xff, 0xff, 0xff, 0xff), 0, ErrOversize},
		{"empty frame", append(header(), rawMessage(TypeFrame, nil)...), 0, ErrMalformed},
		{"frame track index", append(header(), rawMessage(TypeFrame, []byte{0xff, 0x01, 0, 0, 0, 0})...), 0, ErrMalformed},
		{"frame overlong varint", append(header(), rawMessage(TypeFrame, append([]byte{0, 0}, bytes.Repeat([]byte{0xff}, 11)...))...), 0, ErrMalformed},
		{"empty tracks", append(header(), rawMessage(TypeTracks, nil)...), 0, ErrMalformed},
		{"track count beyond body", append(header(), rawMessage(TypeTracks, []byte{2, 1, 1})...), 0, ErrMalformed},
		{"track entry beyond body", append(header(), rawMessage(TypeTracks, []byte{1, 50, 1})...), 0, ErrMalformed},
		{"track width too large", append(header(), rawMessage(TypeTracks, []byte{1, 7, 1, 0xfe, 0xff, 0xff, 0xff, 0x1f, 0})...), 0, ErrMalformed},
		{"track config beyond entry", append(header(), rawMessage(TypeTracks, []byte{1, 8, 1, 0, 0, 0, 0, 0, 0, 9})...), 0, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(c.in), c.max)
			_, err := r.Next()
			require.ErrorIs(t, err, c.want)
			_, err2 := r.Next()
			require.Equal(t, err, err2, "errors are sticky")
		})
	}
	// Every cut of a good stream is io.EOF at a boundary, else ErrTruncated.
	full := good.Bytes()
	bounds := map[int]bool{0: true, headerLen: true}
	r := NewReader(bytes.NewReader(full), 0)
	pos := 0
	for {
		m, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if pos == 0 {
			pos = headerLen
		}
		pos += m.Size
		bounds[pos] = true
	}
	require.Equal(t, len(full), pos)
	for cut := 0; cut < len(full); cut++ {
		r := NewReader(bytes.NewReader(full[:cut]), 0)
		var err error
		for i := 0; i < 10 && err == nil; i++ {
			_, err = r.Next()
		}
		if bounds[cut] {
			require.ErrorIs(t, err, io.EOF, "cut at %d", cut)
		} else {
			require.ErrorIs(t, err, ErrTruncated, "cut at %d", cut)
		}
	}
}

func TestTypeString(t *testing.T) {
	for ty, s := range map[Type]string{TypeTracks: "TRACKS", TypeFrame: "FRAME", TypeKeepalive: "KEEPALIVE", TypeEnd: "END", 9: "unknown"} {
		require.Equal(t, s, ty.String())
	}
}
