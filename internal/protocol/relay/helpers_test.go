package relay

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/media"
	"github.com/quasipaa/quasipaa/internal/protocol/flv"
)

// realMedia demuxes one of the ffmpeg-made FLV files of the flv package's
// testdata into its tracks (as they were when the last track appeared) and
// frames.
func realMedia(t testing.TB, name string) ([]*media.Track, []*media.Frame) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "flv", "testdata", name))
	require.NoError(t, err)
	r := flv.NewReader(bytes.NewReader(data), flv.ReaderOptions{})
	_, err = r.ReadHeader()
	require.NoError(t, err)
	var (
		d      flv.Demuxer
		tracks []*media.Track
		frames []*media.Frame
	)
	for {
		tag, err := r.ReadTag()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		var ev flv.Event
		switch tag.Type {
		case flv.TagVideo:
			ev, err = d.Video(tag.Timestamp, tag.Body)
		case flv.TagAudio:
			ev, err = d.Audio(tag.Timestamp, tag.Body)
		default:
			continue
		}
		if err != nil {
			continue
		}
		if ev.TracksChanged {
			tracks = d.Tracks()
		}
		if ev.Frame != nil {
			frames = append(frames, ev.Frame)
		}
	}
	require.NotEmpty(t, tracks)
	require.NotEmpty(t, frames)
	return tracks, frames
}
