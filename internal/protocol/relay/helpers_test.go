package relay

import (
	"github.com/quasipaa/quasipaa/internal/protocol/flv/flvtest"
	"testing"

	"github.com/quasipaa/quasipaa/internal/media"
)

// realMedia demuxes an ffmpeg-made FLV test file into its tracks and frames.
func realMedia(t testing.TB, name string) ([]*media.Track, []*media.Frame) {
	return flvtest.Read(t, name)
}
