package flv

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReaderFFmpegFile(t *testing.T) {
	h, tags := readFLVFile(t, "h264aac.flv")
	assert.True(t, h.HasVideo && h.HasAudio)
	require.Len(t, tags, 159) // onMetaData + 2 sequence headers + 155 frames + end of sequence
	assert.Equal(t, TagScript, tags[0].Type)
	counts := map[uint8]int{}
	for _, tag := range tags {
		counts[tag.Type]++
		assert.Zero(t, tag.StreamID)
	}
	assert.Equal(t, map[uint8]int{TagScript: 1, TagVideo: 62, TagAudio: 96}, counts)
	assert.Equal(t, uint32(2051), tags[len(tags)-2].Timestamp)

	// the same file read one byte at a time gives the same tags
	data, err := os.ReadFile(filepath.Join("testdata", "h264aac.flv"))
	require.NoError(t, err)
	r := NewReader(iotest.OneByteReader(bytes.NewReader(data)), ReaderOptions{BufferSize: 16})
	_, err = r.ReadHeader()
	require.NoError(t, err)
	for i := range tags {
		tag, err := r.ReadTag()
		require.NoError(t, err)
		require.Equal(t, tags[i], tag)
	}
	_, err = r.ReadTag()
	assert.Equal(t, io.EOF, err)
	_, err = r.ReadTag()
	assert.Equal(t, io.EOF, err, "EOF again")
}

func TestReaderReusesBody(t *testing.T) {
	file := AppendFileHeader(nil, false, true)
	file = AppendTag(file, TagVideo, 1, []byte{1, 2, 3, 4})
	file = AppendTag(file, TagVideo, 2, []byte{5, 6})
	r := NewReader(bytes.NewReader(file), ReaderOptions{})
	_, err := r.ReadHeader()
	require.NoError(t, err)
	a, err := r.ReadTag()
	require.NoError(t, err)
	first := &a.Body[0]
	b, err := r.ReadTag()
	require.NoError(t, err)
	assert.Equal(t, []byte{5, 6}, b.Body)
	assert.Same(t, first, &b.Body[0], "Body is only valid until the next ReadTag")
	assert.Equal(t, byte(5), a.Body[0])
}

func TestReaderErrors(t *testing.T) {
	file := AppendFileHeader(nil, true, true)
	file = AppendTag(file, TagAudio, 0xAABBCCDD, bytes.Repeat([]byte{1}, 100))
	file = AppendTag(file, TagVideo, 7, []byte{2, 2})

	t.Run("extended timestamp", func(t *testing.T) {
		_, tags := readFLVBytes(t, file)
		assert.Equal(t, uint32(0xAABBCCDD), tags[0].Timestamp)
	})

	t.Run("max tag size", func(t *testing.T) {
		r := NewReader(bytes.NewReader(file), ReaderOptions{MaxTagSize: 99})
		_, err := r.ReadHeader()
		require.NoError(t, err)
		_, err = r.ReadTag()
		assert.ErrorIs(t, err, ErrTagTooLarge)
	})

	t.Run("bad signature", func(t *testing.T) {
		bad := bytes.Clone(file)
		bad[0] = 'G'
		_, err := NewReader(bytes.NewReader(bad), ReaderOptions{}).ReadHeader()
		assert.ErrorIs(t, err, ErrBadSignature)
	})

	t.Run("bad header size", func(t *testing.T) {
		bad := bytes.Clone(file)
		bad[8] = 3
		_, err := NewReader(bytes.NewReader(bad), ReaderOptions{}).ReadHeader()
		assert.ErrorIs(t, err, ErrInvalidPacket)
	})

	t.Run("longer header", func(t *testing.T) {
		long := AppendFileHeader(nil, true, false)
		long[8] = 12
		long = append(long[:9], 0xEE, 0xEE, 0xEE, 0, 0, 0, 0)
		long = AppendTag(long, TagAudio, 3, []byte{9})
		_, tags := readFLVBytes(t, long)
		assert.Equal(t, []Tag{{Type: TagAudio, Timestamp: 3, Body: []byte{9}}}, tags)
	})

	t.Run("encrypted", func(t *testing.T) {
		enc := bytes.Clone(file)
		enc[13] |= 0x20
		r := NewReader(bytes.NewReader(enc), ReaderOptions{})
		_, err := r.ReadHeader()
		require.NoError(t, err)
		_, err = r.ReadTag()
		assert.ErrorIs(t, err, ErrEncrypted)
	})

	t.Run("before header", func(t *testing.T) {
		_, err := NewReader(bytes.NewReader(file), ReaderOptions{}).ReadTag()
		assert.Error(t, err)
	})

	t.Run("last PreviousTagSize missing", func(t *testing.T) {
		r := NewReader(bytes.NewReader(file[:len(file)-4]), ReaderOptions{})
		_, err := r.ReadHeader()
		require.NoError(t, err)
		_, err = r.ReadTag()
		require.NoError(t, err)
		tag, err := r.ReadTag()
		require.NoError(t, err)
		assert.Equal(t, []byte{2, 2}, tag.Body)
		_, err = r.ReadTag()
		assert.Equal(t, io.EOF, err)
	})

	t.Run("every cut", func(t *testing.T) {
		// clean ends: after the header, and after each body with or without
		// its PreviousTagSize
		clean := map[int]bool{13: true, 13 + 11 + 100: true, 13 + 11 + 100 + 4: true, len(file) - 4: true}
		for n := 0; n < len(file); n++ {
			r := NewReader(bytes.NewReader(file[:n]), ReaderOptions{})
			_, err := r.ReadHeader()
			for err == nil {
				_, err = r.ReadTag()
			}
			if clean[n] {
				assert.Equal(t, io.EOF, err, "cut at %d", n)
			} else {
				assert.ErrorIs(t, err, ErrTruncated, "cut at %d", n)
				assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "cut at %d", n)
			}
		}
	})

	t.Run("read error", func(t *testing.T) {
		boom := errors.New("boom")
		r := NewReader(io.MultiReader(bytes.NewReader(file[:20]), iotest.ErrReader(boom)), ReaderOptions{})
		_, err := r.ReadHeader()
		require.NoError(t, err)
		_, err = r.ReadTag()
		assert.ErrorIs(t, err, boom)
		assert.NotErrorIs(t, err, ErrTruncated)
	})

	t.Run("reset", func(t *testing.T) {
		r := NewReader(bytes.NewReader(file[:30]), ReaderOptions{})
		_, err := r.ReadHeader()
		require.NoError(t, err)
		_, err = r.ReadTag()
		require.ErrorIs(t, err, ErrTruncated)
		r.Reset(bytes.NewReader(file))
		_, err = r.ReadTag()
		require.Error(t, err, "ReadHeader first")
		_, err = r.ReadHeader()
		require.NoError(t, err)
		tag, err := r.ReadTag()
		require.NoError(t, err)
		assert.Equal(t, uint32(0xAABBCCDD), tag.Timestamp)
	})

	t.Run("bufio reader used as is", func(t *testing.T) {
		br := bufio.NewReader(bytes.NewReader(file))
		r := NewReader(br, ReaderOptions{})
		assert.Same(t, br, r.r)
	})
}
