package flv

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/media"
)

// TestMP3Tracks: MP3 tracks come from the frame header, or from the legacy
// flags when the header does not parse.
func TestMP3Tracks(t *testing.T) {
	cases := []struct {
		hdr      []byte
		rate, ch int
	}{
		{[]byte{0xFF, 0xFB, 0x90, 0x44}, 44100, 2}, // MPEG-1 layer III, joint stereo
		{[]byte{0xFF, 0xFB, 0x94, 0xC4}, 48000, 1}, // MPEG-1, mono
		{[]byte{0xFF, 0xFB, 0x98, 0x00}, 32000, 2},
		{[]byte{0xFF, 0xF3, 0x90, 0xC4}, 22050, 1}, // MPEG-2
		{[]byte{0xFF, 0xE3, 0x98, 0x00}, 8000, 2},  // MPEG-2.5
		{[]byte{0xFF, 0xEB, 0x90, 0x00}, 11025, 1}, // reserved version: the flags
		{[]byte{0xFF, 0xFB, 0x9C, 0x00}, 11025, 1}, // reserved rate: the flags
		{[]byte{0xFF, 0x1B, 0x90, 0x00}, 11025, 1}, // no sync: the flags
	}
	for _, c := range cases {
		var d Demuxer
		ev, err := d.Audio(0, cat([]byte{0x24}, c.hdr, make([]byte, 100))) // flags: MP3, 11 kHz, mono
		require.NoError(t, err)
		require.True(t, ev.TracksChanged)
		tr := d.Tracks()[0]
		assert.Equal(t, media.CodecMP3, tr.Codec)
		assert.Equal(t, c.rate, tr.SampleRate, "%x", c.hdr)
		assert.Equal(t, c.ch, tr.Channels, "%x", c.hdr)
	}
}

// TestMP3Flags checks the legacy SoundRate chosen for MP3 and that frames
// whose header cannot be read fall back on the flags, both ways.
func TestMP3Flags(t *testing.T) {
	for _, c := range []struct {
		rate int
		bits byte
	}{{48000, 3}, {44100, 3}, {32000, 3}, {0, 3}, {24000, 2}, {22050, 2}, {16000, 2}, {12000, 1}, {11025, 1}, {8000, 1}, {5512, 0}} {
		assert.Equal(t, c.bits, mp3RateBits(c.rate), "%d", c.rate)
	}
	for _, rate := range legacyRates {
		for _, ch := range []int{1, 2} {
			tr := &media.Track{Codec: media.CodecMP3, SampleRate: rate, Channels: ch}
			body, err := AppendAudioBody(nil, tr, &media.Frame{Payload: []byte{1, 2, 3}})
			require.NoError(t, err)
			var d Demuxer
			ev, err := d.Audio(0, body)
			require.NoError(t, err)
			require.True(t, ev.TracksChanged)
			assert.Equal(t, *tr, *d.Tracks()[0], "flags only: the payload is no MP3 frame")
		}
	}
}

func TestVideoKeyChecks(t *testing.T) {
	vp8Key := []byte{0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00}
	assert.True(t, isKeyFrame(media.CodecVP8, vp8Key))
	w, h, ok := frameDimensions(media.CodecVP8, vp8Key)
	assert.True(t, ok)
	assert.Equal(t, [2]int{320, 240}, [2]int{w, h})
	inter := bytes.Clone(vp8Key)
	inter[0] |= 1
	assert.False(t, isKeyFrame(media.CodecVP8, inter))
	_, _, ok = frameDimensions(media.CodecVP8, inter)
	assert.False(t, ok, "inter frame")
	_, _, ok = frameDimensions(media.CodecH264, []byte{0, 0, 0, 1, 0x65})
	assert.False(t, ok)
	assert.False(t, isKeyFrame(media.CodecAAC, []byte{1}))
}
