package webrtc

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/media"
)

// browserOffer is a WHIP offer as a browser writes it (trimmed).
const browserOffer = "v=0\r\n" +
	"o=- 4215775240449105457 2 IN IP4 127.0.0.1\r\n" +
	"s=-\r\n" +
	"t=0 0\r\n" +
	"a=group:BUNDLE 0 1\r\n" +
	"a=extmap-allow-mixed\r\n" +
	"a=msid-semantic: WMS\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=rtcp:9 IN IP4 0.0.0.0\r\n" +
	"a=ice-ufrag:Xx1t\r\n" +
	"a=ice-pwd:lkjIJ7MfvRDeOjcN4ej3GyT4\r\n" +
	"a=ice-options:trickle\r\n" +
	"a=fingerprint:sha-256 9C:4C:4F:7E:24:19:02:B0:59:8B:A1:B1:5D:9A:9D:3A:3D:B5:8E:53:E6:6A:E7:6A:C2:6A:0D:0A:FE:AB:0C:1D\r\n" +
	"a=setup:actpass\r\n" +
	"a=mid:0\r\n" +
	"a=sendonly\r\n" +
	"a=rtcp-mux\r\n" +
	"a=rtpmap:111 opus/48000/2\r\n" +
	"a=fmtp:111 minptime=10;useinbandfec=1\r\n" +
	"a=rtpmap:63 red/48000/2\r\n" +
	"a=rtpmap:9 G722/8000\r\n" +
	"a=rtpmap:0 PCMU/8000\r\n" +
	"a=rtpmap:8 PCMA/8000\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 45\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=rtcp:9 IN IP4 0.0.0.0\r\n" +
	"a=ice-ufrag:Xx1t\r\n" +
	"a=ice-pwd:lkjIJ7MfvRDeOjcN4ej3GyT4\r\n" +
	"a=fingerprint:sha-256 9C:4C:4F:7E:24:19:02:B0:59:8B:A1:B1:5D:9A:9D:3A:3D:B5:8E:53:E6:6A:E7:6A:C2:6A:0D:0A:FE:AB:0C:1D\r\n" +
	"a=setup:actpass\r\n" +
	"a=mid:1\r\n" +
	"a=sendonly\r\n" +
	"a=rtcp-mux\r\n" +
	"a=rtpmap:96 VP8/90000\r\n" +
	"a=rtpmap:97 rtx/90000\r\n" +
	"a=fmtp:97 apt=96\r\n" +
	"a=rtpmap:102 H264/90000\r\n" +
	"a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n" +
	"a=rtpmap:103 rtx/90000\r\n" +
	"a=fmtp:103 apt=102\r\n" +
	"a=rtpmap:45 AV1/90000\r\n"

func TestParseOffer(t *testing.T) {
	o, err := ParseOffer([]byte(browserOffer))
	require.NoError(t, err)
	assert.Equal(t, "Xx1t", o.ICEUfrag)
	require.Len(t, o.Media, 2)
	a := o.Section("audio", true)
	require.NotNil(t, a)
	assert.Equal(t, "0", a.Mid)
	assert.True(t, a.Accepts(media.CodecOpus))
	v := o.Section("video", true)
	require.NotNil(t, v)
	assert.True(t, v.Accepts(media.CodecH264))
	assert.True(t, v.Accepts(media.CodecVP8))
	assert.True(t, v.Accepts(media.CodecAV1))
	assert.False(t, v.Accepts(media.CodecVP9))
	assert.False(t, v.Accepts(media.CodecH265))
	assert.Equal(t, "VP8, H264, AV1", v.CodecNames())
	assert.Nil(t, o.Section("video", false), "the offer does not receive")
}

func TestParseOfferErrors(t *testing.T) {
	for name, sdp := range map[string]string{
		"garbage":        "hello",
		"empty":          "",
		"no media":       "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
		"no ice":         "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n",
		"no fingerprint": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:a\r\na=ice-pwd:b\r\na=rtpmap:111 opus/48000/2\r\n",
	} {
		_, err := ParseOffer([]byte(sdp))
		assert.Error(t, err, name)
	}
}

func TestParseSDPFrag(t *testing.T) {
	f, err := ParseSDPFrag([]byte("a=ice-ufrag:Xx1t\r\na=ice-pwd:pw\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n" +
		"a=candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host\r\na=end-of-candidates\r\n"))
	require.NoError(t, err)
	assert.Equal(t, "Xx1t", f.ICEUfrag)
	assert.Equal(t, "pw", f.ICEPwd)
	require.Len(t, f.Candidates, 1)
	assert.Equal(t, "candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host", f.Candidates[0].Candidate)
	assert.Equal(t, "0", *f.Candidates[0].SDPMid)
	assert.True(t, f.EndOfCandidates)
	_, err = ParseSDPFrag([]byte("not sdp"))
	assert.Error(t, err)
}

func TestLinkHeaders(t *testing.T) {
	got := LinkHeaders([]ICEServer{
		{URLs: []string{"stun:stun.example.net:3478"}},
		{URLs: []string{"turn:turn.example.net:3478?transport=udp", "turn:turn.example.net:3478?transport=tcp"}, Username: "1700000000:u", Credential: `p"w`},
	})
	assert.Equal(t, []string{
		`<stun:stun.example.net:3478>; rel="ice-server"`,
		`<turn:turn.example.net:3478?transport=udp>; rel="ice-server"; username="1700000000:u"; credential="p\"w"; credential-type="password"`,
		`<turn:turn.example.net:3478?transport=tcp>; rel="ice-server"; username="1700000000:u"; credential="p\"w"; credential-type="password"`,
	}, got)
}

func TestParsePath(t *testing.T) {
	id := "0123456789abcdef0123456789abcdef"
	for _, c := range []struct {
		in, stream, id string
		ok             bool
	}{
		{"/live/cam1/whip", "live/cam1", "", true},
		{"/live/cam1/whip/" + id, "live/cam1", id, true},
		{"/live/a/b/whip", "live/a/b", "", true},
		{"/live/whip/whip", "live/whip", "", true},
		{"/live/whip/whip/" + id, "live/whip", id, true},
		{"/live/cam1/whep", "", "", false},
		{"/cam1/whip", "", "", false},
		{"/live/cam1/whip/nothex", "", "", false},
		{"/live/cam1/whip/" + id + "/x", "", "", false},
		{"/live/../whip", "", "", false},
		{"/live//whip", "", "", false},
		{"/live/cam1.flv", "", "", false},
	} {
		stream, gotID, ok := ParsePath(c.in, "whip")
		assert.Equal(t, c.ok, ok, c.in)
		assert.Equal(t, c.stream, stream, c.in)
		assert.Equal(t, c.id, gotID, c.in)
	}
}

func TestLimiter(t *testing.T) {
	l := NewLimiter(2)
	assert.True(t, l.Acquire())
	assert.True(t, l.Acquire())
	assert.False(t, l.Acquire())
	l.Release()
	assert.True(t, l.Acquire())
	assert.Equal(t, 2, l.InUse())
	var none *Limiter
	assert.True(t, none.Acquire())
	none.Release()
}

func TestRTPTimestamp(t *testing.T) {
	assert.Equal(t, uint32(90000), RTPTimestamp(int64(1e9), 90000))
	assert.Equal(t, uint32(2970), RTPTimestamp(int64(33e6), 90000))
	assert.Equal(t, uint32(960), RTPTimestamp(int64(20e6), 48000))
	// 30 hours: no overflow, wraps modulo 2^32.
	h30 := int64(30 * 3600 * 1e9)
	assert.Equal(t, uint32(uint64(30*3600*90000)%(1<<32)), RTPTimestamp(h30, 90000))
}
