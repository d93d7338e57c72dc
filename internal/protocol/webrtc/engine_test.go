package webrtc

import (
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	pwebrtc "github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// checkLeaks verifies, after every cleanup of the test ran, that the test
// left no goroutine behind.
func checkLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestEngine(t *testing.T, udp, tcp string) *Engine {
	t.Helper()
	e, err := NewEngine(EngineOptions{UDPListen: udp, TCPListen: tcp, HandshakeTimeout: 5 * time.Second, Logger: quietLogger()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// clientAPI is a plain pion peer on loopback, as a remote client.
func clientAPI(t *testing.T, networks ...pwebrtc.NetworkType) *pwebrtc.API {
	t.Helper()
	var se pwebrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes(networks)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() && ip.To4() != nil })
	m := &pwebrtc.MediaEngine{}
	require.NoError(t, m.RegisterDefaultCodecs())
	return pwebrtc.NewAPI(pwebrtc.WithSettingEngine(se), pwebrtc.WithMediaEngine(m))
}

// connect has a client send Opus to a server PeerConnection of e and
// returns the answer's candidates once the server received a packet.
func connect(t *testing.T, e *Engine, api *pwebrtc.API) []string {
	t.Helper()
	client, err := api.NewPeerConnection(pwebrtc.Configuration{})
	require.NoError(t, err)
	defer client.Close()
	track, err := pwebrtc.NewTrackLocalStaticRTP(OpusCapability(), "audio", "test")
	require.NoError(t, err)
	_, err = client.AddTransceiverFromTrack(track, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionSendonly})
	require.NoError(t, err)
	offer, err := client.CreateOffer(nil)
	require.NoError(t, err)
	gathered := pwebrtc.GatheringCompletePromise(client)
	require.NoError(t, client.SetLocalDescription(offer))
	<-gathered

	server, err := e.NewPeerConnection(nil)
	require.NoError(t, err)
	defer server.Close()
	got := make(chan struct{})
	server.OnTrack(func(tr *pwebrtc.TrackRemote, _ *pwebrtc.RTPReceiver) {
		if _, _, err := tr.ReadRTP(); err == nil {
			close(got)
		}
	})
	require.NoError(t, server.SetRemoteDescription(*client.LocalDescription()))
	answer, err := server.CreateAnswer(nil)
	require.NoError(t, err)
	sGathered := pwebrtc.GatheringCompletePromise(server)
	require.NoError(t, server.SetLocalDescription(answer))
	<-sGathered
	require.NoError(t, client.SetRemoteDescription(*server.LocalDescription()))

	done := time.After(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for seq := uint16(0); ; seq++ {
		select {
		case <-got:
			var cands []string
			for _, l := range strings.Split(server.LocalDescription().SDP, "\n") {
				if strings.HasPrefix(l, "a=candidate:") {
					cands = append(cands, strings.TrimSpace(l))
				}
			}
			return cands
		case <-done:
			t.Fatal("no media through the engine")
		case <-tick.C:
			_ = track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 960}, Payload: []byte{0xF8, 0xFF, 0xFE}})
		}
	}
}

func TestEngineUDP(t *testing.T) {
	checkLeaks(t)
	e := newTestEngine(t, "127.0.0.1:0", "")
	addrs := e.Addrs()
	require.Len(t, addrs, 1)
	port := strconv.Itoa(addrs[0].(*net.UDPAddr).Port)
	// Two sessions in a row share the one socket.
	for range 2 {
		cands := connect(t, e, clientAPI(t, pwebrtc.NetworkTypeUDP4))
		require.NotEmpty(t, cands)
		for _, c := range cands {
			f := strings.Fields(c)
			assert.Equal(t, "udp", strings.ToLower(f[2]), c)
			assert.Equal(t, "127.0.0.1", f[4], c)
			assert.Equal(t, port, f[5], c)
		}
	}
	require.NoError(t, e.Close())
}

func TestEngineICETCP(t *testing.T) {
	checkLeaks(t)
	e := newTestEngine(t, "127.0.0.1:0", "127.0.0.1:0")
	addrs := e.Addrs()
	require.Len(t, addrs, 2)
	tcpPort := strconv.Itoa(addrs[1].(*net.TCPAddr).Port)
	// A client that can only use TCP (a UDP-blocking network).
	cands := connect(t, e, clientAPI(t, pwebrtc.NetworkTypeTCP4))
	found := false
	for _, c := range cands {
		if f := strings.Fields(c); strings.EqualFold(f[2], "tcp") {
			found = true
			assert.Equal(t, "127.0.0.1", f[4])
			assert.Equal(t, tcpPort, f[5])
			assert.Contains(t, c, "tcptype passive")
		}
	}
	assert.True(t, found, "a passive TCP candidate: %v", cands)
	require.NoError(t, e.Close())
}

func TestEnginePublicIP(t *testing.T) {
	checkLeaks(t)
	e, err := NewEngine(EngineOptions{UDPListen: "127.0.0.1:0", PublicIPs: []string{"203.0.113.7"}, Logger: quietLogger()})
	require.NoError(t, err)
	defer e.Close()
	pc, err := e.NewPeerConnection(nil)
	require.NoError(t, err)
	defer pc.Close()
	_, err = pc.AddTransceiverFromKind(pwebrtc.RTPCodecTypeAudio)
	require.NoError(t, err)
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	g := pwebrtc.GatheringCompletePromise(pc)
	require.NoError(t, pc.SetLocalDescription(offer))
	<-g
	sdp := pc.LocalDescription().SDP
	assert.Contains(t, sdp, " 203.0.113.7 ")
	assert.NotContains(t, sdp, " 127.0.0.1 ")

	_, err = NewEngine(EngineOptions{UDPListen: "127.0.0.1:0", PublicIPs: []string{"203.0.113.7", "203.0.113.8"}, Logger: quietLogger()})
	assert.Error(t, err)
	_, err = NewEngine(EngineOptions{Logger: quietLogger()})
	assert.Error(t, err, "no listen address")
}
