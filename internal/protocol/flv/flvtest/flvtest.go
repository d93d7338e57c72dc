// Package flvtest reads the FLV files committed under internal/protocol/flv/testdata
// (made by ffmpeg) into the media model, for the tests of other packages.
package flvtest

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/media"
	"github.com/quasipaa/quasipaa/internal/protocol/flv"
)

// Path returns the path of the test file name, e.g. "h264aac.flv".
func Path(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", name)
}

// Read demuxes the test file name into its tracks and frames; every tag
// must demux.
func Read(tb testing.TB, name string) ([]*media.Track, []*media.Frame) {
	tb.Helper()
	return ReadPath(tb, Path(name))
}

// ReadVideo returns the video track of the test file name and its frames,
// renumbered as track 0.
func ReadVideo(tb testing.TB, name string) (*media.Track, []*media.Frame) {
	tb.Helper()
	tracks, all := Read(tb, name)
	video := -1
	for i, t := range tracks {
		if t.IsVideo() {
			video = i
			break
		}
	}
	require.GreaterOrEqual(tb, video, 0, "%s has no video track", name)
	var frames []*media.Frame
	for _, f := range all {
		if f.Track == video {
			f.Track = 0
			frames = append(frames, f)
		}
	}
	return tracks[video], frames
}

// ReadPath demuxes the FLV file at path (e.g. one ffmpeg just wrote) into
// its tracks and frames; every tag must demux.
func ReadPath(tb testing.TB, path string) ([]*media.Track, []*media.Frame) {
	tb.Helper()
	name := filepath.Base(path)
	f, err := os.Open(path)
	require.NoError(tb, err)
	defer f.Close()
	r := flv.NewReader(f, flv.ReaderOptions{})
	_, err = r.ReadHeader()
	require.NoError(tb, err)
	var d flv.Demuxer
	var frames []*media.Frame
	for {
		tag, err := r.ReadTag()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(tb, err)
		var ev flv.Event
		switch tag.Type {
		case flv.TagVideo:
			ev, err = d.Video(tag.Timestamp, tag.Body)
		case flv.TagAudio:
			ev, err = d.Audio(tag.Timestamp, tag.Body)
		default:
			continue
		}
		require.NoError(tb, err, "%s: tag at %d ms", name, tag.Timestamp)
		if ev.Frame != nil {
			frames = append(frames, ev.Frame)
		}
	}
	require.NotEmpty(tb, frames, "%s has no frames", name)
	return d.Tracks(), frames
}
