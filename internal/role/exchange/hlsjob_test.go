package exchange

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/hub"
)

// Keep starts the muxer before any request, keeps it past the idle
// timeout, starts a new one when the stream comes back, and lets it idle
// out after stop.
func TestHLSKeep(t *testing.T) {
	fx := newFixture(t, HLSOptions{IdleTimeout: 400 * time.Millisecond})
	stop := fx.hls.Keep("live/x") // before the stream exists
	defer stop()
	active := func() bool { return slices.Contains(fx.hls.Active(), "live/x") }
	time.Sleep(150 * time.Millisecond)
	require.False(t, active())

	tracks, frames := readFLV(t, "h264aac.flv")
	p, err := fx.hub.Publish("live/x", hub.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	require.NoError(t, p.SetTracks(tracks))
	require.Eventually(t, active, 2*time.Second, 10*time.Millisecond, "started without a request")
	publishLoop(t, p, frames, 0, 2, 2100*time.Millisecond)
	time.Sleep(1200 * time.Millisecond) // three idle timeouts without a request
	require.True(t, active(), "kept past the idle timeout")

	// The stream ends and comes back: a new muxer.
	p.Kick()
	require.Eventually(t, func() bool { return !active() }, 2*time.Second, 10*time.Millisecond)
	p, err = fx.hub.Publish("live/x", hub.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	fx.pub = p
	require.NoError(t, p.SetTracks(tracks))
	require.Eventually(t, active, 2*time.Second, 10*time.Millisecond, "restarted for the new stream")

	stop()
	stop() // no-op
	require.Eventually(t, func() bool { return !active() }, 3*time.Second, 20*time.Millisecond, "idles out once the job stopped")
}
