package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/media"
	wire "github.com/quasipaa/quasipaa/internal/protocol/relay"
	"github.com/quasipaa/quasipaa/internal/streampath"
)

// sameFrame requires got to be want, bit for bit.
func sameFrame(t *testing.T, i int, want, got *media.Frame) {
	t.Helper()
	require.Equal(t, want.Track, got.Track, "frame %d track", i)
	require.Equal(t, want.Key, got.Key, "frame %d key", i)
	require.Equal(t, want.DTS, got.DTS, "frame %d dts", i)
	require.Equal(t, want.PTS, got.PTS, "frame %d pts", i)
	require.True(t, want.Ingest.Equal(got.Ingest), "frame %d ingest %v != %v", i, want.Ingest, got.Ingest)
	require.True(t, bytes.Equal(want.Payload, got.Payload), "frame %d payload", i)
}

func TestRelayIsLosslessAndStartsWithTheGOPCache(t *testing.T) {
	tracks, frames := realMedia(t, "h264aac.flv")
	a := newNode(t, hub.Options{})
	b := newPullNode(t, hub.Options{PublisherGrace: time.Second}, UpstreamOptions{}, a.http.URL)

	p := publish(t, a, "live/cam", tracks)
	// Publish up to the middle of the file, past at least one keyframe.
	half := len(frames) / 2
	start := -1
	for i, f := range frames[:half] {
		if f.Key && tracks[f.Track].IsVideo() {
			start = i
		}
		require.NoError(t, p.WriteFrame(cloneFrame(f)))
	}
	require.GreaterOrEqual(t, start, 0)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, b.ups.Ensure(ctx, "live/cam"))
	r, err := b.hub.Subscribe("live/cam", hub.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	defer r.Close()
	for _, f := range frames[half:] {
		require.NoError(t, p.WriteFrame(cloneFrame(f)))
	}

	want := frames[start:]
	got := readN(t, r, len(want), 10*time.Second)
	require.Len(t, got, len(want))
	require.True(t, got[0].Frame.Key, "the GOP cache comes first")
	for i, e := range got {
		sameFrame(t, i, want[i], e.Frame)
	}
	// The tracks, field by field.
	require.Len(t, got[0].Tracks.Tracks, len(tracks))
	for i, tr := range tracks {
		require.Equal(t, *tr, *got[0].Tracks.Tracks[i], "track %d", i)
	}
	require.Equal(t, 1, relayReaders(a, "live/cam"))
	up := b.ups.Active()
	require.Len(t, up, 1)
	require.Equal(t, StateConnected, up[0].State)
	require.Equal(t, a.http.URL, up[0].Source)
	require.EqualValues(t, len(frames)-start, up[0].Frames)
	info, _ := b.hub.Stream("live/cam")
	require.Equal(t, ProtocolRelay, info.Publisher.Protocol)
}

func TestRelayResendsTracksWhenTheyChange(t *testing.T) {
	a := newNode(t, hub.Options{})
	b := newPullNode(t, hub.Options{}, UpstreamOptions{}, a.http.URL)
	p := publish(t, a, "live/x", synthTracks)
	require.NoError(t, p.WriteFrame(synthFrame(0, 10, 'a')))
	require.NoError(t, b.ups.Ensure(context.Background(), "live/x"))
	r, err := b.hub.Subscribe("live/x", hub.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	defer r.Close()
	got := readN(t, r, 1, 5*time.Second)
	first := got[0].Tracks

	hd := []*media.Track{{Codec: media.CodecH264, Width: 1920, Height: 1080, Config: []byte{1, 0x64, 0, 0x28}}, {Codec: media.CodecOpus, SampleRate: 48000, Channels: 2}}
	require.NoError(t, p.SetTracks(hd))
	require.NoError(t, p.WriteFrame(synthFrame(1, 1, 'b')))
	got = readN(t, r, 1, 5*time.Second)
	require.NotSame(t, first, got[0].Tracks)
	require.Equal(t, hd, got[0].Tracks.Tracks)
	require.Equal(t, []byte{'b', 0, 1}, got[0].Frame.Payload)
}

func TestConcurrentEnsureMakesOneUpstream(t *testing.T) {
	a := newNode(t, hub.Options{})
	b := newPullNode(t, hub.Options{}, UpstreamOptions{}, a.http.URL)
	p := publish(t, a, "live/busy", synthTracks)
	require.NoError(t, p.WriteFrame(synthFrame(0, 10, 'a')))

	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			errs <- b.ups.Ensure(ctx, "live/busy")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, 1, a.requests.Load(), "one HTTP GET")
	require.Equal(t, 1, relayReaders(a, "live/busy"))
	require.Len(t, b.ups.Active(), 1)
	// A later Ensure finds the stream in the hub.
	require.NoError(t, b.ups.Ensure(context.Background(), "live/busy"))
	require.EqualValues(t, 1, a.requests.Load())
}

func TestHubUpstreamHookPullsOnSubscribeContext(t *testing.T) {
	a := newNode(t, hub.Options{})
	var ups *Upstreams
	b := newNode(t, hub.Options{Upstream: func(ctx context.Context, path string) error { return ups.Ensure(ctx, path) }})
	ups = NewUpstreams(b.hub, UpstreamOptions{Resolve: (&resolver{base: a.http.URL}).resolve, Secret: testSecret, NodeID: "b", Logger: quiet})
	defer ups.Close()
	p := publish(t, a, "live/hook", synthTracks)
	require.NoError(t, p.WriteFrame(synthFrame(0, 10, 'h')))
	r, err := b.hub.SubscribeContext(context.Background(), "live/hook", hub.ClientInfo{Protocol: "flv"})
	require.NoError(t, err)
	defer r.Close()
	got := readN(t, r, 1, 5*time.Second)
	require.Equal(t, []byte{'h', 0, 0}, got[0].Frame.Payload)
	_, err = b.hub.SubscribeContext(context.Background(), "live/absent", hub.ClientInfo{Protocol: "flv"})
	require.ErrorIs(t, err, hub.ErrStreamNotFound)
}

func TestIdleUpstreamClosesAfterTheLastReader(t *testing.T) {
	a := newNode(t, hub.Options{})
	b := newPullNode(t, hub.Options{}, UpstreamOptions{Idle: 200 * time.Millisecond}, a.http.URL)
	p := publish(t, a, "live/idle", synthTracks)
	require.NoError(t, p.WriteFrame(synthFrame(0, 10, 'a')))
	require.NoError(t, b.ups.Ensure(context.Background(), "live/idle"))
	r, err := b.hub.Subscribe("live/idle", hub.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	time.Sleep(600 * time.Millisecond)
	require.Len(t, b.ups.Active(), 1, "a reader keeps the upstream")
	r.Close()
	eventually(t, 3*time.Second, func() bool { return len(b.ups.Active()) == 0 }, "idle upstream closed")
	eventually(t, 3*time.Second, func() bool { return relayReaders(a, "live/idle") == 0 }, "relay reader gone from A")
	_, ok := b.hub.Stream("live/idle")
	require.False(t, ok, "the local stream ended")
	// The next viewer brings it back.
	require.NoError(t, b.ups.Ensure(context.Background(), "live/idle"))
	require.EqualValues(t, 2, a.requests.Load())
}

func TestPinKeepsTheUpstreamAndRetriesUntilReleased(t *testing.T) {
	a := newNode(t, hub.Options{})
	b := newPullNode(t, hub.Options{}, UpstreamOptions{Idle: 100 * time.Millisecond}, a.http.URL)
	// Pinned before the stream exists: retried in the background.
	release := b.ups.Pin("live/pin")
	time.Sleep(300 * time.Millisecond)
	require.Len(t, b.ups.Active(), 1)
	require.Equal(t, StateConnecting, b.ups.Active()[0].State)
	p := publish(t, a, "live/pin", synthTracks)
	require.NoError(t, p.WriteFrame(synthFrame(0, 10, 'a')))
	eventually(t, 5*time.Second, func() bool { _, ok := b.hub.Stream("live/pin"); return ok }, "pinned stream pulled")
	time.Sleep(500 * time.Millisecond) // five idle periods without a reader
	_, ok := b.hub.Stream("live/pin")
	require.True(t, ok, "a pin outlives the idle timeout")
	require.Equal(t, 1, b.ups.Active()[0].Pinned)
	release()
	release()
	eventually(t, 3*time.Second, func() bool { return len(b.ups.Active()) == 0 }, "released upstream closed")
}

func TestReleasingAnUnconnectedPinStopsIt(t *testing.T) {
	b := newPullNode(t, hub.Options{}, UpstreamOptions{}, "")
	release := b.ups.Pin("live/nowhere")
	require.Len(t, b.ups.Active(), 1)
	release()
	eventually(t, 2*time.Second, func() bool { return len(b.ups.Active()) == 0 }, "pin released")
}

func TestAuthRefused(t *testing.T) {
	a := newNode(t, hub.Options{})
	p := publish(t, a, "live/secret", synthTracks)
	require.NoError(t, p.WriteFrame(synthFrame(0, 10, 'a')))
	url := a.http.URL + PathPrefix + "live/secret"

	for name, sign := range map[string]func(*http.Request){
		"unsigned":     func(*http.Request) {},
		"wrong secret": func(r *http.Request) { Sign(r, "not-the-secret", "intruder") },
	} {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, url, nil)
			require.NoError(t, err)
			sign(req)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			var body struct {
				Error struct{ Code, Message string }
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			require.Equal(t, "unauthorized", body.Error.Code)
			require.NotEmpty(t, body.Error.Message)
		})
	}
	require.Equal(t, 0, relayReaders(a, "live/secret"))

	b := newPullNode(t, hub.Options{}, UpstreamOptions{Secret: "wrong"}, a.http.URL)
	err := b.ups.Ensure(context.Background(), "live/secret")
	require.ErrorIs(t, err, ErrUnauthorized)
	require.Empty(t, b.ups.Active())
	http.DefaultClient.CloseIdleConnections()
}

func TestUnknownStreamIsNotFoundQuickly(t *testing.T) {
	a := newNode(t, hub.Options{})
	b := newPullNode(t, hub.Options{}, UpstreamOptions{}, a.http.URL)
	start := time.Now()
	err := b.ups.Ensure(context.Background(), "live/none")
	require.ErrorIs(t, err, hub.ErrStreamNotFound, "the source node answers 404")
	b.res.set("")
	err = b.ups.Ensure(context.Background(), "live/none")
	require.ErrorIs(t, err, hub.ErrStreamNotFound, "no node publishes it")
	require.Less(t, time.Since(start), time.Second)
	require.Empty(t, b.ups.Active())
	require.ErrorIs(t, b.ups.Ensure(context.Background(), "live/../x"), streampath.ErrInvalid)
	b.ups.Pin("bad path")()
	require.Empty(t, b.ups.Active())
}

func TestUpstreamsWithoutResolverRefuse(t *testing.T) {
	h := hub.New(hub.Options{Logger: quiet})
	defer h.Close()
	ups := NewUpstreams(h, UpstreamOptions{Logger: quiet})
	defer ups.Close()
	require.ErrorContains(t, ups.Ensure(context.Background(), "live/x"), "Resolve is not set")
}

func TestUnreachableSourceFails(t *testing.T) {
	b := newPullNode(t, hub.Options{}, UpstreamOptions{ConnectTimeout: 300 * time.Millisecond}, "http://127.0.0.1:1")
	err := b.ups.Ensure(context.Background(), "live/x")
	require.Error(t, err)
	require.NotErrorIs(t, err, hub.ErrStreamNotFound)
}

func TestSilentSourceTimesOut(t *testing.T) {
	// A publisher without tracks: the server has no TRACKS to send, only
	// keepalives, so the connect timeout fires.
	a := newNode(t, hub.Options{})
	_, err := a.hub.Publish("live/mute", hub.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	b := newPullNode(t, hub.Options{}, UpstreamOptions{ConnectTimeout: 300 * time.Millisecond}, a.http.URL)
	start := time.Now()
	err = b.ups.Ensure(context.Background(), "live/mute")
	require.ErrorIs(t, err, ErrTimeout)
	require.Less(t, time.Since(start), 2*time.Second)
}

func TestStreamEndClosesTheLocalStreamPromptly(t *testing.T) {
	a := newNode(t, hub.Options{})
	b := newPullNode(t, hub.Options{PublisherGrace: 10 * time.Second}, UpstreamOptions{}, a.http.URL)
	p := publish(t, a, "live/end", synthTracks)
	require.NoError(t, p.WriteFrame(synthFrame(0, 10, 'a')))
	require.NoError(t, b.ups.Ensure(context.Background(), "live/end"))
	r, err := b.hub.Subscribe("live/end", hub.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	defer r.Close()
	readN(t, r, 1, 5*time.Second)
	p.Close() // A has no grace: the stream ends there, A sends END "stream ended"
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = r.Next(ctx, nil)
	require.Error(t, err)
	require.True(t, hub.IsNormalEnd(err), "%v", err)
	require.Less(t, time.Since(start), 2*time.Second, "well before B's 10 s publisher grace")
	eventually(t, 2*time.Second, func() bool { return len(b.ups.Active()) == 0 }, "upstream gone")
}

func TestReconnectToTheSameSourceSkipsWhatWasAlreadyRelayed(t *testing.T) {
	a := newNode(t, hub.Options{})
	b := newPullNode(t, hub.Options{PublisherGrace: 5 * time.Second}, UpstreamOptions{Grace: 5 * time.Second}, a.http.URL)
	p := publish(t, a, "live/cut", synthTracks)
	for i := range 5 {
		require.NoError(t, p.WriteFrame(synthFrame(i, 100, 'a')))
	}
	require.NoError(t, b.ups.Ensure(context.Background(), "live/cut"))
	r, err := b.hub.Subscribe("live/cut", hub.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	defer r.Close()
	got := readN(t, r, 5, 5*time.Second)
	// Cut the connection, not the node: B reconnects to A, which sends its
	// GOP cache (frames 0-4) again.
	a.http.CloseClientConnections()
	eventually(t, 5*time.Second, func() bool { u := b.ups.Active(); return len(u) == 1 && u[0].Reconnects == 1 }, "reconnected")
	for i := 5; i < 10; i++ {
		require.NoError(t, p.WriteFrame(synthFrame(i, 100, 'a')))
	}
	got = append(got, readN(t, r, 5, 5*time.Second)...)
	require.Len(t, got, 10)
	time.Sleep(100 * time.Millisecond)
	extra, err := r.TryNext(nil)
	require.NoError(t, err)
	require.Empty(t, extra, "no frame twice")
	for i, e := range got {
		require.Equal(t, []byte{'a', 0, byte(i)}, e.Frame.Payload, "frame %d once, in order", i)
		if i > 0 {
			require.Greater(t, e.Frame.DTS, got[i-1].Frame.DTS)
		}
	}
}

func TestFailoverToAnotherSourceKeepsTheViewer(t *testing.T) {
	a := newNode(t, hub.Options{})
	c := newNode(t, hub.Options{})
	b := newPullNode(t, hub.Options{PublisherGrace: 5 * time.Second}, UpstreamOptions{Grace: 5 * time.Second}, a.http.URL)
	pa := publish(t, a, "live/fo", synthTracks)
	for i := range 10 {
		require.NoError(t, pa.WriteFrame(synthFrame(i, 5, 'A')))
	}
	require.NoError(t, b.ups.Ensure(context.Background(), "live/fo"))
	r, err := b.hub.Subscribe("live/fo", hub.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	defer r.Close()
	got := readN(t, r, 5, 5*time.Second) // the GOP cache: frames 5-9
	last := got[len(got)-1].Frame.DTS

	// A dies; nobody publishes for a moment; then C publishes the path.
	a.kill()
	b.res.set("")
	eventually(t, 5*time.Second, func() bool { u := b.ups.Active(); return len(u) == 1 && u[0].State == StateReconnecting }, "reconnecting")
	info, ok := b.hub.Stream("live/fo")
	require.True(t, ok)
	require.Equal(t, "waiting_publisher", info.State)
	pc := publish(t, c, "live/fo", synthTracks)
	for i := range 3 {
		require.NoError(t, pc.WriteFrame(synthFrame(i, 5, 'C')))
	}
	b.res.set(c.http.URL)

	got = readN(t, r, 3, 5*time.Second)
	for i, e := range got {
		require.Equal(t, []byte{'C', 0, byte(i)}, e.Frame.Payload)
		require.Greater(t, e.Frame.DTS, last, "timestamps continue across the failover")
		last = e.Frame.DTS
	}
	u := b.ups.Active()
	require.Len(t, u, 1)
	require.Equal(t, c.http.URL, u[0].Source)
	require.Equal(t, StateConnected, u[0].State)
}

func TestGiveUpAfterGrace(t *testing.T) {
	a := newNode(t, hub.Options{})
	b := newPullNode(t, hub.Options{PublisherGrace: 300 * time.Millisecond}, UpstreamOptions{Grace: 300 * time.Millisecond}, a.http.URL)
	p := publish(t, a, "live/gone", synthTracks)
	require.NoError(t, p.WriteFrame(synthFrame(0, 5, 'A')))
	require.NoError(t, b.ups.Ensure(context.Background(), "live/gone"))
	r, err := b.hub.Subscribe("live/gone", hub.ClientInfo{Protocol: "test"})
	require.NoError(t, err)
	defer r.Close()
	a.kill()
	eventually(t, 5*time.Second, func() bool { return len(b.ups.Active()) == 0 }, "upstream gave up")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var e error
	for e == nil {
		_, e = r.Next(ctx, nil)
	}
	require.ErrorIs(t, e, hub.ErrStreamClosed)
}

func TestCloseEndsUpstreams(t *testing.T) {
	a := newNode(t, hub.Options{})
	b := newPullNode(t, hub.Options{PublisherGrace: 10 * time.Second}, UpstreamOptions{}, a.http.URL)
	p := publish(t, a, "live/close", synthTracks)
	require.NoError(t, p.WriteFrame(synthFrame(0, 5, 'A')))
	require.NoError(t, b.ups.Ensure(context.Background(), "live/close"))
	b.ups.Close()
	_, ok := b.hub.Stream("live/close")
	require.False(t, ok)
	require.ErrorIs(t, b.ups.Ensure(context.Background(), "live/close"), ErrClosed)
	eventually(t, 3*time.Second, func() bool { return relayReaders(a, "live/close") == 0 }, "relay reader gone")
}

// fakeSource serves path with handler behind the relay's authentication.
func fakeSource(t *testing.T, handler func(w http.ResponseWriter, r *http.Request)) string {
	t.Helper()
	srv := httptest.NewServer(RequireSecret(testSecret, http.HandlerFunc(handler)))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv.URL
}

func TestSourceGoingSilentIsLost(t *testing.T) {
	// A source that sends TRACKS, then nothing, not even keepalives; asked
	// again, it no longer has the stream.
	var calls atomic.Int32
	url := fakeSource(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) > 1 {
			writeError(w, http.StatusNotFound, "stream_not_found", "gone")
			return
		}
		w.Header().Set("Content-Type", ContentType)
		ww := wire.NewWriter(w)
		_ = ww.WriteTracks(synthTracks)
		_ = http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	b := newPullNode(t, hub.Options{PublisherGrace: 5 * time.Second},
		UpstreamOptions{ReadTimeout: 200 * time.Millisecond, Grace: 300 * time.Millisecond}, url)
	require.NoError(t, b.ups.Ensure(context.Background(), "live/silent"))
	eventually(t, 3*time.Second, func() bool {
		u := b.ups.Active()
		return len(u) == 1 && u[0].State == StateReconnecting
	}, "silence detected")
	eventually(t, 5*time.Second, func() bool { return len(b.ups.Active()) == 0 }, "gave up after grace")
}

func TestGarbageFromTheSourceFails(t *testing.T) {
	for name, body := range map[string]string{
		"bad magic":          "FLV\x01\x05\x00\x00\x00\x09",
		"frame before track": "QPRL\x01\x02\x00\x00\x00\x05\x00\x01\x00\x00\x00",
		"no end":             "QPRL\x01",
	} {
		t.Run(name, func(t *testing.T) {
			url := fakeSource(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", ContentType)
				_, _ = w.Write([]byte(body))
			})
			b := newPullNode(t, hub.Options{}, UpstreamOptions{}, url)
			err := b.ups.Ensure(context.Background(), "live/junk")
			require.Error(t, err)
			require.NotErrorIs(t, err, hub.ErrStreamNotFound)
			require.Empty(t, b.ups.Active())
			_, ok := b.hub.Stream("live/junk")
			require.False(t, ok)
		})
	}
	url := fakeSource(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>")) })
	b := newPullNode(t, hub.Options{}, UpstreamOptions{}, url)
	require.ErrorIs(t, b.ups.Ensure(context.Background(), "live/html"), ErrProtocol)
}
