package e2e

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/codec/av1"
	"github.com/quasipaa/quasipaa/internal/codec/h265"
	"github.com/quasipaa/quasipaa/internal/media"
	"github.com/quasipaa/quasipaa/internal/protocol/flv"
	"github.com/quasipaa/quasipaa/internal/protocol/rtmp"
)

// TestEnhancedRTMP proves Enhanced RTMP ingest and enhanced FLV/RTMP
// delivery. ffmpeg 5.1 speaks neither, so ffmpeg encodes real HEVC and AV1,
// our RTMP client publishes them as E-RTMP (hvc1/av01 FourCC), and what comes
// back over HTTP-FLV and RTMP must be the same bitstream, which ffmpeg then
// decodes without an error.
func TestEnhancedRTMP(t *testing.T) {
	requireTools(t, "ffmpeg")
	s := startServer(t, "QUASIPAA_HUB_PUBLISHER_GRACE=0s")
	for _, tc := range []struct {
		name    string
		encode  []string
		format  string
		split   func(t *testing.T, es []byte) (*media.Track, [][]byte, []bool)
		toRawES func(t *testing.T, tr *media.Track, frames [][]byte) []byte
	}{
		{
			name:    "h265",
			encode:  []string{"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "aud=1:keyint=30:min-keyint=30:bframes=0:log-level=error", "-f", "hevc"},
			format:  "hevc",
			split:   splitHEVC,
			toRawES: joinHEVC,
		},
		{
			name:    "av1",
			encode:  []string{"-c:v", "libaom-av1", "-cpu-used", "8", "-usage", "realtime", "-g", "30", "-lag-in-frames", "0", "-f", "obu"},
			format:  "obu",
			split:   splitAV1,
			toRawES: joinAV1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			es := filepath.Join(dir, "in."+tc.format)
			args := append([]string{"-hide_banner", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-frames:v", "60"}, tc.encode...)
			out, err := exec.Command("ffmpeg", append(args, es)...).CombinedOutput()
			require.NoError(t, err, "%s", out)
			raw, err := os.ReadFile(es)
			require.NoError(t, err)
			track, frames, keys := tc.split(t, raw)
			require.Len(t, frames, 60)

			path := "live/" + tc.name
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			pub, err := rtmp.Dial(ctx, s.rtmpURL(path))
			require.NoError(t, err)
			defer pub.Close()
			require.NoError(t, pub.Publish(ctx))
			seq, err := flv.AppendSequenceHeader(nil, track)
			require.NoError(t, err)
			require.Equal(t, byte(0x80), seq[0]&0x80, "an Enhanced RTMP ExHeader")
			require.NoError(t, pub.WriteMessage(rtmp.MsgVideo, 0, seq))

			// Two players on the live stream before any frame is sent.
			httpFrames := make(chan [][]byte, 1)
			go func() { httpFrames <- playHTTPFLV(t, s.flvURL(path)) }()
			rtmpFrames := make(chan [][]byte, 1)
			go func() { rtmpFrames <- playRTMP(t, s.rtmpURL(path)) }()
			require.Eventually(t, func() bool {
				st, ok := getStream(s, path)
				return ok && st.ViewersTotal == 2
			}, 10*time.Second, 20*time.Millisecond)

			for i, payload := range frames {
				ts := time.Duration(i) * time.Second / 30
				f := &media.Frame{DTS: ts, PTS: ts, Key: keys[i], Payload: payload}
				body, err := flv.AppendVideoBody(nil, track, f)
				require.NoError(t, err)
				require.NoError(t, pub.WriteMessage(rtmp.MsgVideo, flv.TimestampMs(ts), body))
			}
			pub.Close() // the stream ends (no grace): players get EOF

			for name, ch := range map[string]chan [][]byte{"http-flv": httpFrames, "rtmp": rtmpFrames} {
				var got [][]byte
				select {
				case got = <-ch:
				case <-ctx.Done():
					t.Fatalf("%s player did not finish", name)
				}
				require.Equal(t, len(frames), len(got), name)
				for i := range frames {
					require.True(t, bytes.Equal(frames[i], got[i]), "%s: frame %d differs", name, i)
				}
				// The bitstream that went through the server decodes cleanly.
				file := filepath.Join(dir, name+"."+tc.format)
				require.NoError(t, os.WriteFile(file, tc.toRawES(t, track, got), 0o644))
				errs, _ := decode(t, file, 10, "-f", tc.format)
				require.Empty(t, errs, name)
			}
		})
	}
}

// playHTTPFLV reads an HTTP-FLV stream to its end and returns the video payloads.
func playHTTPFLV(t *testing.T, url string) [][]byte {
	resp, err := http.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return nil
	}
	defer resp.Body.Close()
	r := flv.NewReader(resp.Body, flv.ReaderOptions{})
	if _, err := r.ReadHeader(); err != nil {
		t.Errorf("FLV header: %v", err)
		return nil
	}
	var d flv.Demuxer
	var frames [][]byte
	for {
		tag, err := r.ReadTag()
		if err != nil {
			return frames
		}
		if tag.Type == flv.TagVideo {
			if ev, err := d.Video(tag.Timestamp, tag.Body); err == nil && ev.Frame != nil {
				frames = append(frames, ev.Frame.Payload)
			}
		}
	}
}

// playRTMP plays an RTMP stream to its end and returns the video payloads.
func playRTMP(t *testing.T, url string) [][]byte {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := rtmp.Dial(ctx, url)
	if err != nil {
		t.Errorf("dial %s: %v", url, err)
		return nil
	}
	defer c.Close()
	if err := c.Play(ctx); err != nil {
		t.Errorf("play %s: %v", url, err)
		return nil
	}
	var d flv.Demuxer
	var frames [][]byte
	for {
		m, err := c.ReadMessage()
		if err != nil {
			return frames
		}
		if m.Type == rtmp.MsgVideo {
			if ev, err := d.Video(m.Timestamp, m.Payload); err == nil && ev.Frame != nil {
				frames = append(frames, ev.Frame.Payload)
			}
		}
	}
}

// splitHEVC cuts an Annex B stream with access unit delimiters into AVCC
// access units, and builds the hvcC track from its parameter sets.
func splitHEVC(t *testing.T, es []byte) (*media.Track, [][]byte, []bool) {
	var vps, sps, pps [][]byte
	var units [][]byte
	var cur []byte
	flush := func() {
		if len(cur) > 0 {
			units = append(units, cur)
			cur = nil
		}
	}
	require.NoError(t, h265.ForEachAnnexBNALU(es, func(n []byte) bool {
		switch typ := (n[0] >> 1) & 0x3F; typ {
		case 35: // access unit delimiter
			flush()
			return true
		case 32:
			vps = appendOnce(vps, n)
		case 33:
			sps = appendOnce(sps, n)
		case 34:
			pps = appendOnce(pps, n)
		}
		var err error
		cur, err = h265.AppendNALU(cur, n)
		require.NoError(t, err)
		return true
	}))
	flush()
	rec, err := h265.BuildConfigRecord(vps, sps, pps)
	require.NoError(t, err)
	track, err := h265.TrackFromConfigRecord(rec)
	require.NoError(t, err)
	require.Equal(t, 640, track.Width)
	keys := make([]bool, len(units))
	for i, u := range units {
		keys[i] = h265.IsKeyframe(u)
	}
	require.True(t, keys[0])
	return track, units, keys
}

func joinHEVC(t *testing.T, tr *media.Track, frames [][]byte) []byte {
	var out []byte
	for _, f := range frames {
		var err error
		out, err = h265.AVCCToAnnexB(out, f)
		require.NoError(t, err)
	}
	return out
}

func appendOnce(list [][]byte, n []byte) [][]byte {
	for _, x := range list {
		if bytes.Equal(x, n) {
			return list
		}
	}
	return append(list, append([]byte(nil), n...))
}

// splitAV1 cuts a low-overhead OBU stream into temporal units (without their
// temporal delimiters, as FLV and MP4 carry them).
func splitAV1(t *testing.T, es []byte) (*media.Track, [][]byte, []bool) {
	var units [][]byte
	var cur []byte
	require.NoError(t, av1.ForEachOBU(es, func(o av1.OBU) bool {
		if o.Type == av1.OBUTypeTemporalDelimiter {
			if len(cur) > 0 {
				units = append(units, cur)
			}
			cur = nil
			return true
		}
		cur = append(cur, o.Raw...)
		return true
	}))
	if len(cur) > 0 {
		units = append(units, cur)
	}
	rec, err := av1.BuildConfigRecord(av1.SequenceHeaderOBU(es))
	require.NoError(t, err)
	track, err := av1.TrackFromConfigRecord(rec)
	require.NoError(t, err)
	require.Equal(t, 640, track.Width)
	keys := make([]bool, len(units))
	for i, u := range units {
		keys[i] = av1.IsKeyframe(u)
	}
	require.True(t, keys[0])
	return track, units, keys
}

func joinAV1(t *testing.T, tr *media.Track, frames [][]byte) []byte {
	var out []byte
	for _, f := range frames {
		out = append(out, 0x12, 0x00) // temporal delimiter OBU with obu_size 0
		out = append(out, f...)
	}
	return out
}
