package webrtc

import (
	"bytes"
	"errors"
	"github.com/quasipaa/quasipaa/internal/protocol/flv/flvtest"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/codec/av1"
	"github.com/quasipaa/quasipaa/internal/codec/h264"
	"github.com/quasipaa/quasipaa/internal/codec/h265"
	"github.com/quasipaa/quasipaa/internal/codec/vp9"
	"github.com/quasipaa/quasipaa/internal/media"
)

// testStream is one track and its frames in decoding order.
type testStream struct {
	track  *media.Track
	frames []*media.Frame
}

// readFLVVideo reads the H.264 track of the FLV test vector (1280x720 High,
// with B-frames).
func readFLVVideo(t testing.TB) testStream {
	t.Helper()
	track, frames := flvtest.ReadVideo(t, "h264aac.flv")
	require.Equal(t, media.CodecH264, track.Codec)
	return testStream{track: track, frames: frames}
}

// needFFmpeg skips the test when ffmpeg is missing.
func needFFmpeg(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
}

// encode runs ffmpeg on a 1 s 320x240 test pattern with the given output
// arguments and returns the output file's bytes.
func encode(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	needFFmpeg(t)
	out := filepath.Join(t.TempDir(), name)
	cmd := append([]string{"-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1", "-g", "10"}, args...)
	cmd = append(cmd, "-y", out)
	b, err := exec.Command("ffmpeg", cmd...).CombinedOutput()
	require.NoError(t, err, "ffmpeg: %s", b)
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	return data
}

// readIVF returns the frames of an IVF file as a stream of codec c (25 fps).
func readIVF(t testing.TB, data []byte, c media.Codec) testStream {
	t.Helper()
	r, _, err := ivfreader.NewWith(bytes.NewReader(data))
	require.NoError(t, err)
	var s testStream
	for i := 0; ; i++ {
		frame, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if c == media.CodecAV1 {
			frame = stripTemporalDelimiters(t, frame)
		}
		pts := time.Duration(i) * 40 * time.Millisecond
		s.frames = append(s.frames, &media.Frame{DTS: pts, PTS: pts, Key: isKey(c, frame), Payload: frame})
	}
	require.NotEmpty(t, s.frames)
	require.True(t, s.frames[0].Key)
	var err2 error
	switch c {
	case media.CodecVP8:
		w, h, ok := VP8KeyframeSize(s.frames[0].Payload)
		require.True(t, ok)
		s.track = &media.Track{Codec: c, Width: w, Height: h}
	case media.CodecVP9:
		s.track, err2 = vp9.TrackFromKeyframe(s.frames[0].Payload)
	case media.CodecAV1:
		s.track, err2 = av1.TrackFromSequenceHeader(s.frames[0].Payload)
	}
	require.NoError(t, err2)
	return s
}

func stripTemporalDelimiters(t testing.TB, tu []byte) []byte {
	var out []byte
	require.NoError(t, av1.ForEachOBU(tu, func(o av1.OBU) bool {
		if o.Type != av1.OBUTypeTemporalDelimiter {
			out = append(out, o.Raw...)
		}
		return true
	}))
	return out
}

func isKey(c media.Codec, frame []byte) bool {
	switch c {
	case media.CodecH264:
		return h264.IsKeyframe(frame)
	case media.CodecH265:
		return h265.IsKeyframe(frame)
	case media.CodecVP8:
		return len(frame) > 0 && frame[0]&1 == 0
	case media.CodecVP9:
		return vp9.IsKeyframe(frame)
	case media.CodecAV1:
		return av1.IsKeyframe(frame)
	}
	return true
}

// readHEVC encodes H.265 with access unit delimiters and splits it into
// length-prefixed access units.
func readHEVC(t testing.TB) testStream {
	t.Helper()
	data := encode(t, "v.h265", "-c:v", "libx265", "-x265-params", "aud=1:bframes=0:log-level=error", "-f", "hevc")
	var (
		s   testStream
		cur []byte
	)
	flush := func() {
		if len(cur) == 0 {
			return
		}
		pts := time.Duration(len(s.frames)) * 40 * time.Millisecond
		s.frames = append(s.frames, &media.Frame{DTS: pts, PTS: pts, Key: h265.IsKeyframe(cur), Payload: cur})
		cur = nil
	}
	require.NoError(t, h265.ForEachAnnexBNALU(data, func(n []byte) bool {
		if h265.TypeOf(n) == h265.NALUTypeAUD {
			flush()
			return true
		}
		cur, _ = h265.AppendNALU(cur, n)
		return true
	}))
	flush()
	vps, sps, pps := h265.ParameterSets(s.frames[0].Payload)
	tr, err := h265.TrackFromParameterSets(vps, sps, pps)
	require.NoError(t, err)
	s.track = tr
	return s
}

// toRTP turns packet runs into marshalled RTP packets.
type rtpWriter struct {
	seq  uint16
	ssrc uint32
	base uint32
}

func (w *rtpWriter) packets(t testing.TB, run []byte, pts time.Duration, clock uint32) [][]byte {
	t.Helper()
	var out [][]byte
	ts := w.base + RTPTimestamp(int64(pts), clock)
	for payload, marker, rest := NextPacket(run); payload != nil; payload, marker, rest = NextPacket(rest) {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: w.seq, Timestamp: ts, SSRC: w.ssrc, Marker: marker}, Payload: payload}
		w.seq++
		b, err := p.Marshal()
		require.NoError(t, err)
		out = append(out, b)
	}
	return out
}

func (w *rtpWriter) payloads(t testing.TB, payloads [][]byte, pts time.Duration, clock uint32, marker bool) [][]byte {
	t.Helper()
	var out [][]byte
	ts := w.base + RTPTimestamp(int64(pts), clock)
	for i, payload := range payloads {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: w.seq, Timestamp: ts, SSRC: w.ssrc, Marker: marker && i == len(payloads)-1}, Payload: payload}
		w.seq++
		b, err := p.Marshal()
		require.NoError(t, err)
		out = append(out, b)
	}
	return out
}

// collector gathers what a depacketizer emits.
type collector struct {
	frames []*media.Frame
	tracks []*media.Track
}

func (c *collector) emit(f *media.Frame, t *media.Track) {
	c.frames = append(c.frames, f)
	c.tracks = append(c.tracks, t)
}

// expectedH264 is what a depacketizer should rebuild from a frame sent by
// AppendPackets: the NAL units without delimiters and filler, preceded on a
// keyframe by the track's parameter sets when the frame lacks them.
func expectedH264(t testing.TB, tr *media.Track, f *media.Frame) []byte {
	t.Helper()
	var out []byte
	if f.Key && !h264.HasParameterSets(f.Payload) {
		rec, err := h264.ParseConfigRecord(tr.Config)
		require.NoError(t, err)
		for _, n := range append(append([][]byte{}, rec.SPS...), rec.PPS...) {
			out, _ = h264.AppendNALU(out, n)
		}
	}
	require.NoError(t, h264.ForEachNALU(f.Payload, func(n []byte) bool {
		switch h264.TypeOf(n) {
		case h264.NALUTypeAUD, h264.NALUTypeFillerData:
		default:
			out, _ = h264.AppendNALU(out, n)
		}
		return true
	}))
	return out
}
