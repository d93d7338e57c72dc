package transcode

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/codec/aac"
	"github.com/quasipaa/quasipaa/internal/codec/opus"
	"github.com/quasipaa/quasipaa/internal/media"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

// readOgg reads every packet of b.
func readOgg(b []byte) ([]oggPacket, error) {
	r := newOggReader(bytes.NewReader(b))
	var out []oggPacket
	for {
		p, err := r.ReadPacket()
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return out, err
		}
		p.Data = bytes.Clone(p.Data)
		out = append(out, p)
	}
}

func TestOggRoundTrip(t *testing.T) {
	sizes := []int{19, 0, 1, 254, 255, 256, 510, 65024, 65025, 65026, 200000, 3}
	w := oggWriter{serial: 7}
	var b []byte
	var want [][]byte
	for i, n := range sizes {
		p := bytes.Repeat([]byte{byte(i + 1)}, n)
		want = append(want, p)
		var flags byte
		if i == 0 {
			flags = oggBOS
		}
		if i == len(sizes)-1 {
			flags |= oggEOS
		}
		b = w.appendPacket(b, p, int64(1000*(i+1)), flags)
	}
	got, err := readOgg(b)
	require.NoError(t, err)
	require.Len(t, got, len(sizes))
	for i := range got {
		assert.Equal(t, want[i], got[i].Data, "packet %d", i)
		assert.Equal(t, int64(1000*(i+1)), got[i].Granule, "packet %d", i)
		assert.Equal(t, i == 0, got[i].BOS)
	}

	// A flipped bit anywhere fails the CRC.
	for _, off := range []int{5, 10, 30, len(b) - 1} {
		bad := bytes.Clone(b)
		bad[off] ^= 1
		_, err := readOgg(bad)
		assert.ErrorIs(t, err, errOgg, "offset %d", off)
	}
	// Truncated inside a page.
	_, err = readOgg(b[:len(b)-1])
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	_, err = readOgg(b[:10])
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

func TestOggOversizedPacket(t *testing.T) {
	w := oggWriter{serial: 1}
	b := w.appendPacket(nil, []byte("head"), 0, oggBOS)
	b = w.appendPacket(b, make([]byte, oggMaxPacket+1000), 1, 0)
	b = w.appendPacket(b, []byte("next"), 2, 0)
	got, err := readOgg(b)
	require.NoError(t, err)
	require.Len(t, got, 2, "the oversized packet is dropped")
	assert.Equal(t, []byte("next"), got[1].Data)

	// A page continuing a packet the reader never saw the start of.
	w = oggWriter{serial: 1}
	b = w.appendPacket(nil, []byte("head"), 0, oggBOS)
	b = w.appendPage(b, oggContinued, 1, []byte("tail"), true)
	b = w.appendPacket(b, []byte("next"), 2, 0)
	got, err = readOgg(b)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, []byte("next"), got[1].Data)
}

func TestOggReaderFollowsFirstStream(t *testing.T) {
	a, other := oggWriter{serial: 1}, oggWriter{serial: 2}
	var b []byte
	b = a.appendPacket(b, []byte("a0"), 0, oggBOS)
	b = other.appendPacket(b, []byte("b0"), 0, oggBOS)
	b = a.appendPacket(b, []byte("a1"), 1, 0)
	b = other.appendPacket(b, bytes.Repeat([]byte("b"), 70000), 1, 0)
	b = a.appendPacket(b, []byte("a2"), 2, oggEOS)
	got, err := readOgg(b)
	require.NoError(t, err)
	require.Len(t, got, 3)
	for i, p := range got {
		assert.Equal(t, []byte{'a', byte('0' + i)}, p.Data)
	}
	_, err = readOgg([]byte("OggS\x00\x00"))
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	_, err = readOgg(bytes.Repeat([]byte("x"), 40))
	assert.ErrorIs(t, err, errOgg)
}

// TestOggReaderFFmpeg reads an Ogg Opus file ffmpeg wrote (CRCs included).
func TestOggReaderFFmpeg(t *testing.T) {
	got, err := readOgg(readTestdata(t, "tiny.ogg"))
	require.NoError(t, err)
	require.Greater(t, len(got), 3)
	h, err := opus.ParseHead(got[0].Data)
	require.NoError(t, err)
	assert.Equal(t, 2, h.Channels)
	assert.Equal(t, uint16(312), h.PreSkip)
	assert.True(t, bytes.HasPrefix(got[1].Data, []byte("OpusTags")))
	r := &opusReader{r: newOggReader(bytes.NewReader(readTestdata(t, "tiny.ogg")))}
	var samples int64
	for {
		_, n, err := r.read()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		samples += n
	}
	assert.Equal(t, int64(312), r.delay())
	assert.Equal(t, 48000, r.rate())
	// 60 ms and the pre-skip, in whole 20 ms packets.
	assert.Equal(t, int64(4*960), samples)
	tr := r.track()
	require.NotNil(t, tr)
	assert.Equal(t, media.CodecOpus, tr.Codec)
	head, err := opus.ParseHead(tr.Config)
	require.NoError(t, err)
	assert.Zero(t, head.PreSkip, "the output's timestamps account for the pre-skip")
}

func TestADTSReader(t *testing.T) {
	cfg := aac.AudioSpecificConfig{ObjectType: 2, SampleRate: 44100, ChannelConfig: 2, Channels: 2, FrameLength: 1024}
	var b []byte
	var want [][]byte
	for i, n := range []int{1, 300, 8000, 0} {
		au := bytes.Repeat([]byte{byte(i)}, n)
		want = append(want, au)
		var err error
		b, err = aac.AppendADTSFrame(b, cfg, au)
		require.NoError(t, err)
	}
	r := newADTSReader(bytes.NewReader(b))
	for i := range want {
		h, au, err := r.ReadFrame()
		require.NoError(t, err)
		assert.Equal(t, want[i], au)
		assert.Equal(t, 44100, h.SampleRate)
	}
	_, _, err := r.ReadFrame()
	assert.Equal(t, io.EOF, err)

	_, _, err = newADTSReader(bytes.NewReader(b[:len(b)-1])).ReadFrame()
	require.NoError(t, err, "the first frame is whole")
	r = newADTSReader(bytes.NewReader(b[:20]))
	_, _, _ = r.ReadFrame()
	_, _, err = r.ReadFrame()
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	_, _, err = newADTSReader(bytes.NewReader([]byte{0xFF, 0xF1, 0})).ReadFrame()
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	_, _, err = newADTSReader(bytes.NewReader(bytes.Repeat([]byte{0x55}, 10))).ReadFrame()
	assert.ErrorIs(t, err, errADTS)
}

// TestAACReaderFFmpeg reads an ADTS file ffmpeg's AAC encoder wrote.
func TestAACReaderFFmpeg(t *testing.T) {
	r := &aacReader{r: newADTSReader(bytes.NewReader(readTestdata(t, "tiny.aac")))}
	frames := 0
	for {
		au, n, err := r.read()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		assert.NotEmpty(t, au)
		assert.Equal(t, int64(1024), n)
		frames++
	}
	// 60 ms = 2880 samples, the 1024 of priming and the last partial frame.
	assert.Equal(t, 4, frames)
	tr := r.track()
	require.NotNil(t, tr)
	assert.Equal(t, 48000, tr.SampleRate)
	assert.Equal(t, 1, tr.Channels)
	assert.Equal(t, "LC", tr.Profile)
	assert.Equal(t, int64(aacEncoderDelay), r.delay())
}

func TestTimeline(t *testing.T) {
	const rate = 48000
	frame := samplesToDuration(1024, rate)
	pos := func(k int64) time.Duration { return samplesToDuration(k*1024, rate) } // exact
	tl := newTimeline(rate, 20*time.Millisecond)
	pts := 5 * time.Second
	// Steady input with millisecond rounding, like RTMP: no re-anchoring.
	for i := range int64(50) {
		assert.False(t, tl.in((pts+pos(i)).Truncate(time.Millisecond), 1024), "frame %d", i)
	}
	got, ok := tl.at(pos(10))
	require.True(t, ok)
	assert.Equal(t, pts+pos(10), got)
	// Before the first frame (the encoder's delay): extrapolated back.
	got, _ = tl.at(-frame)
	assert.Equal(t, pts-frame, got)

	// A hole of 500 ms: re-anchored, the output after it follows.
	next := pts + pos(50) + 500*time.Millisecond
	assert.True(t, tl.in(next, 1024))
	assert.False(t, tl.in(next+frame, 1024))
	got, _ = tl.at(pos(49))
	assert.Equal(t, pts+pos(49), got, "before the hole")
	got, _ = tl.at(pos(50) + frame/2)
	assert.Equal(t, next+frame/2, got, "after the hole")
	// A step back of 25 ms re-anchors too.
	back := next + pos(2) - 25*time.Millisecond
	assert.True(t, tl.in(back, 1024))
	got, _ = tl.at(pos(52))
	assert.Equal(t, back, got)
	// Anchors behind the asked positions were forgotten.
	tl.mu.Lock()
	assert.Len(t, tl.anchors, 1)
	tl.mu.Unlock()

	_, ok = newTimeline(rate, time.Millisecond).at(0)
	assert.False(t, ok, "no input yet")
}

func TestOpusFramer(t *testing.T) {
	head, err := opus.BuildHead(2, 0, 48000)
	require.NoError(t, err)
	fr := &opusFramer{head: head}
	b := fr.start(nil)
	b, n, err := fr.frame(b, opusFrame(0))
	require.NoError(t, err)
	assert.Equal(t, int64(960), n)
	_, _, err = fr.frame(b, &media.Frame{})
	assert.Error(t, err, "an empty packet")
	got, err := readOgg(b)
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.Equal(t, head, got[0].Data)
	assert.Equal(t, opusTags, got[1].Data)
	assert.Equal(t, int64(960), got[2].Granule)
	assert.False(t, errors.Is(err, errOgg))
}
