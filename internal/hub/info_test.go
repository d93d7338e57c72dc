package hub

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/media"
)

func TestTrackStatsMeasureFPSAndBitrate(t *testing.T) {
	h := newTestHub(t, Options{})
	p, err := h.Publish("live/a", ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	require.NoError(t, p.SetTracks(testTracks))
	// 3 s of 30 fps video (100-byte frames) and 50 fps audio (20-byte frames).
	for i := 0; i < 90; i++ {
		ts := time.Duration(i) * time.Second / 30
		require.NoError(t, p.WriteFrame(&media.Frame{Track: 0, DTS: ts, PTS: ts, Key: i%30 == 0, Payload: make([]byte, 100), Ingest: time.Now()}))
	}
	for i := 0; i < 150; i++ {
		ts := time.Duration(i) * 20 * time.Millisecond
		require.NoError(t, p.WriteFrame(&media.Frame{Track: 1, DTS: ts, PTS: ts, Key: true, Payload: make([]byte, 20), Ingest: time.Now()}))
	}
	info, ok := h.Stream("live/a")
	require.True(t, ok)
	require.Len(t, info.TrackStats, 2)
	assert.InDelta(t, 30, info.TrackStats[0].FPS, 0.5)
	assert.InDelta(t, 30*100*8, info.TrackStats[0].Bitrate, 300)
	assert.InDelta(t, 50, info.TrackStats[1].FPS, 0.5)
	assert.InDelta(t, 50*20*8, info.TrackStats[1].Bitrate, 100)

	// New tracks start new measurements.
	require.NoError(t, p.SetTracks(testTracks[:1]))
	info, _ = h.Stream("live/a")
	require.Len(t, info.TrackStats, 1)
	assert.Zero(t, info.TrackStats[0].FPS)
}

func TestSummariesOmitReaders(t *testing.T) {
	h := newTestHub(t, Options{})
	p, err := h.Publish("live/a", ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	defer p.Close()
	for i := 0; i < 3; i++ {
		r, err := h.Subscribe("live/a", ClientInfo{Protocol: "flv"})
		require.NoError(t, err)
		defer r.Close()
	}
	detail, ok := h.StreamDetail("live/a")
	require.True(t, ok)
	sum := h.Streams()
	require.Len(t, sum, 1)
	assert.Len(t, detail.Readers, 3)
	assert.Nil(t, sum[0].Readers)
	assert.Equal(t, 3, sum[0].ViewersTotal)
	assert.Equal(t, 3, detail.ViewersTotal)
	assert.Equal(t, map[string]int{"flv": 3}, sum[0].Viewers)
}

func TestEndWithoutPublisher(t *testing.T) {
	h := newTestHub(t, Options{PublisherGrace: time.Minute})
	require.ErrorIs(t, h.End("live/none"), ErrStreamNotFound)
	p, err := h.Publish("live/a", ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	r, err := h.Subscribe("live/a", ClientInfo{Protocol: "flv"})
	require.NoError(t, err)
	defer r.Close()
	p.Close() // in its grace period now
	info, ok := h.Stream("live/a")
	require.True(t, ok)
	require.Equal(t, "waiting_publisher", info.State)
	require.NoError(t, h.End("live/a"))
	_, ok = h.Stream("live/a")
	assert.False(t, ok)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = r.Next(ctx, nil)
	assert.True(t, errors.Is(err, ErrKicked), "%v", err)
}

func TestKickClientFindsTheStream(t *testing.T) {
	h := newTestHub(t, Options{})
	for _, path := range []string{"live/a", "live/b"} {
		p, err := h.Publish(path, ClientInfo{Protocol: "test"})
		require.NoError(t, err)
		defer p.Close()
	}
	r, err := h.Subscribe("live/b", ClientInfo{Protocol: "flv"})
	require.NoError(t, err)
	defer r.Close()
	_, err = h.KickClient("nope")
	require.ErrorIs(t, err, ErrClientNotFound)
	path, err := h.KickClient(r.Info().ID)
	require.NoError(t, err)
	assert.Equal(t, "live/b", path)
	assert.ErrorIs(t, r.Err(), ErrKicked)
}

func TestEnsureAsksUpstreamOnlyForMissingStreams(t *testing.T) {
	calls := 0
	var h *Hub
	h = New(Options{Upstream: func(ctx context.Context, path string) error {
		calls++
		_, err := h.Publish(path, ClientInfo{Protocol: "relay"})
		return err
	}})
	require.NoError(t, h.Ensure(context.Background(), "live/a"))
	require.NoError(t, h.Ensure(context.Background(), "live/a"))
	require.Equal(t, 1, calls, "the second call finds the stream here")
	_, ok := h.Stream("live/a")
	require.True(t, ok)
	require.ErrorIs(t, New(Options{}).Ensure(context.Background(), "live/b"), ErrStreamNotFound)
}
