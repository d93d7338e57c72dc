package relay

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/media"
)

// FuzzReader feeds arbitrary bytes to the reader: only the package's
// sentinel errors may come out, never a panic or a hang, and every message
// accepted survives write then read unchanged.
func FuzzReader(f *testing.F) {
	tracks, frames := realMedia(f, "h264aac.flv")
	var seed bytes.Buffer
	w := NewWriter(&seed)
	require.NoError(f, w.WriteTracks(tracks))
	// Small frames keep the fuzzer's input minimisation fast.
	for _, fr := range smallFrames(frames, 6) {
		require.NoError(f, w.WriteFrame(fr))
	}
	require.NoError(f, w.WriteKeepalive())
	require.NoError(f, w.WriteEnd(ReasonStreamEnded))
	f.Add(seed.Bytes())
	f.Add(append(header(), rawMessage(42, []byte("future"))...))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), 1<<20)
		for i := 0; i < 10000; i++ {
			m, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, ErrBadMagic) && !errors.Is(err, ErrVersion) &&
					!errors.Is(err, ErrOversize) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			requireStable(t, m)
		}
	})
}

// requireStable writes m and reads it back.
func requireStable(t *testing.T, m Message) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	switch m.Type {
	case TypeTracks:
		require.NoError(t, w.WriteTracks(m.Tracks))
	case TypeFrame:
		require.NoError(t, w.WriteFrame(m.Frame))
	case TypeKeepalive:
		require.NoError(t, w.WriteKeepalive())
	case TypeEnd:
		require.NoError(t, w.WriteEnd(m.Reason))
	default:
		return
	}
	got, err := NewReader(&buf, 1<<20).Next()
	require.NoError(t, err)
	switch m.Type {
	case TypeTracks:
		require.Equal(t, m.Tracks, got.Tracks)
	case TypeFrame:
		requireSameFrame(t, m.Frame, got.Frame)
	case TypeEnd:
		// The writer cuts reasons to maxReason bytes.
		require.Equal(t, m.Reason[:min(len(m.Reason), maxReason)], got.Reason)
	}
}

// smallFrames returns the first n frames of at most 256 bytes.
func smallFrames(frames []*media.Frame, n int) []*media.Frame {
	var out []*media.Frame
	for _, fr := range frames {
		if len(fr.Payload) <= 256 && len(out) < n {
			out = append(out, fr)
		}
	}
	return out
}
