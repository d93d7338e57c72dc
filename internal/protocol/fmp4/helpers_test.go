package fmp4

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"github.com/quasipaa/quasipaa/internal/protocol/flv/flvtest"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	mcfmp4 "github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/pmp4"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/codec/aac"
	"github.com/quasipaa/quasipaa/internal/codec/av1"
	"github.com/quasipaa/quasipaa/internal/codec/h264"
	"github.com/quasipaa/quasipaa/internal/codec/h265"
	"github.com/quasipaa/quasipaa/internal/codec/opus"
	"github.com/quasipaa/quasipaa/internal/codec/vp9"
	"github.com/quasipaa/quasipaa/internal/media"
)

// codecTestdata is a committed vector of internal/codec.
func codecTestdata(codec, name string) string {
	return filepath.Join("..", "..", "codec", codec, "testdata", name)
}

// source is a stream read from a real file: its tracks and its frames in DTS order.
type source struct {
	tracks []*media.Track
	frames []*media.Frame
	// ends is, per track, the DTS of its last frame plus that frame's duration.
	ends []time.Duration
}

// end returns the end of the first video track, else of the first track:
// where the last fragment ends.
func (s *source) end() time.Duration {
	for i, t := range s.tracks {
		if t.IsVideo() {
			return s.ends[i]
		}
	}
	return s.ends[0]
}

// starts returns, per track, where its first picture or sound is presented
// on the Writer's timeline (0 at the first frame's DTS): its earliest PTS.
// No edit list shifts it, so a B-frame stream's first picture shows at its
// composition offset, in sync with the other tracks.
func (s *source) starts() []time.Duration {
	out := make([]time.Duration, len(s.tracks))
	seen := make([]bool, len(s.tracks))
	for _, f := range s.frames {
		if !seen[f.Track] || f.PTS < out[f.Track] {
			seen[f.Track], out[f.Track] = true, f.PTS
		}
	}
	for i := range out {
		out[i] -= s.frames[0].DTS
	}
	return out
}

func ticksToDuration(v int64, scale uint32) time.Duration {
	s := int64(scale)
	return time.Duration(v/s)*time.Second + time.Duration(v%s)*time.Second/time.Duration(s)
}

// trackFromMP4 converts a mediacommon codec to a media track with its
// ISO-BMFF configuration record, built by the internal/codec packages.
func trackFromMP4(t testing.TB, c codecs.Codec) *media.Track {
	t.Helper()
	var tr *media.Track
	var err error
	switch c := c.(type) {
	case *codecs.H264:
		var rec []byte
		rec, err = h264.BuildConfigRecord([][]byte{c.SPS}, [][]byte{c.PPS})
		require.NoError(t, err)
		tr, err = h264.TrackFromConfigRecord(rec)
	case *codecs.H265:
		var rec []byte
		rec, err = h265.BuildConfigRecord([][]byte{c.VPS}, [][]byte{c.SPS}, [][]byte{c.PPS})
		require.NoError(t, err)
		tr, err = h265.TrackFromConfigRecord(rec)
	case *codecs.AV1:
		tr, err = av1.TrackFromSequenceHeader(c.SequenceHeader)
	case *codecs.VP9:
		var rec []byte
		rec, err = vp9.BuildConfigRecord(vp9.ConfigRecord{
			Profile: c.Profile, BitDepth: c.BitDepth, ChromaSubsampling: c.ChromaSubsampling,
			FullRange: c.ColorRange, ColourPrimaries: 2, TransferCharacteristics: 2, MatrixCoefficients: 2,
		})
		require.NoError(t, err)
		tr, err = vp9.TrackFromConfigRecord(rec)
		if err == nil {
			tr.Width, tr.Height = c.Width, c.Height
		}
	case *codecs.MPEG4Audio:
		var asc []byte
		asc, err = c.Config.Marshal()
		require.NoError(t, err)
		tr, err = aac.TrackFromConfig(asc)
	case *codecs.Opus:
		var head []byte
		head, err = opus.BuildHead(c.ChannelCount, 312, 48000)
		require.NoError(t, err)
		tr, err = opus.TrackFromHead(head)
	case *codecs.MPEG1Audio:
		tr = &media.Track{Codec: media.CodecMP3, SampleRate: c.SampleRate, Channels: c.ChannelCount}
	default:
		t.Fatalf("no test mapping for %T", c)
	}
	require.NoError(t, err)
	return tr
}

// readMP4 reads a progressive MP4 file (a committed vector or ffmpeg's output).
func readMP4(t testing.TB, path string) *source {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var p pmp4.Presentation
	require.NoError(t, p.Unmarshal(f), path)
	s := &source{}
	for i, pt := range p.Tracks {
		s.tracks = append(s.tracks, trackFromMP4(t, pt.Codec))
		var dts int64
		for _, smp := range pt.Samples {
			payload, err := smp.GetPayload()
			require.NoError(t, err)
			s.frames = append(s.frames, &media.Frame{
				Track:   i,
				DTS:     ticksToDuration(dts, pt.TimeScale),
				PTS:     ticksToDuration(dts+int64(smp.PTSOffset), pt.TimeScale),
				Key:     !smp.IsNonSyncSample,
				Payload: bytes.Clone(payload),
			})
			dts += int64(smp.Duration)
		}
		s.ends = append(s.ends, ticksToDuration(dts, pt.TimeScale))
	}
	sort.SliceStable(s.frames, func(a, b int) bool { return s.frames[a].DTS < s.frames[b].DTS })
	return s
}

// readFLV reads an FLV file through Quasipaa's own FLV reader and demuxer.
// Tag timestamps are milliseconds, so a track's end is its last DTS plus
// its last DTS step.
func readFLV(t testing.TB, path string) *source {
	t.Helper()
	s := &source{}
	s.tracks, s.frames = flvtest.ReadPath(t, path)
	s.ends = make([]time.Duration, len(s.tracks))
	last := make([]time.Duration, len(s.tracks))
	for _, f := range s.frames {
		if step := f.DTS - last[f.Track]; step > 0 {
			s.ends[f.Track] = f.DTS + step
		}
		last[f.Track] = f.DTS
	}
	return s
}

// cutEveryFrame makes writeFragmented cut before every frame of the leading track.
const cutEveryFrame = -1

// writeFragmented writes src as init + fragments, cutting before a video
// keyframe once at least every has passed since the last cut (before every audio
// frame past that for audio-only streams). It returns the file and the
// number of fragments.
func writeFragmented(t testing.TB, src *source, every time.Duration) ([]byte, int) {
	t.Helper()
	w, err := NewWriter(src.tracks)
	require.NoError(t, err)
	require.Empty(t, w.Skipped())
	hasVideo := false
	for _, tr := range src.tracks {
		hasVideo = hasVideo || tr.IsVideo()
	}
	out := bytes.Clone(w.Init())
	n := 0
	start := time.Duration(-1)
	for _, f := range src.frames {
		lead := src.tracks[f.Track].IsVideo() || !hasVideo
		if lead && (f.Key || every == cutEveryFrame) {
			if start < 0 {
				start = f.DTS
			}
			if w.Buffered() && f.DTS-start >= every {
				frag, err := w.Flush(f.DTS)
				require.NoError(t, err)
				out = append(out, frag...)
				n++
				start = f.DTS
			}
		}
		w.Add(f)
	}
	frag, err := w.Flush(src.end())
	require.NoError(t, err)
	out = append(out, frag...)
	return out, n + 1
}

// mp4Box is one box of a parsed tree.
type mp4Box struct {
	typ      string
	body     []byte // payload, after the header
	children []*mp4Box
}

// containers are the box types whose payload is a list of boxes.
var containers = map[string]bool{
	"moov": true, "trak": true, "mdia": true, "minf": true, "stbl": true,
	"dinf": true, "mvex": true, "moof": true, "traf": true, "edts": true,
}

// parseBoxes parses a sequence of boxes, recursing into containers.
func parseBoxes(t testing.TB, p []byte) []*mp4Box {
	t.Helper()
	var out []*mp4Box
	for len(p) > 0 {
		require.GreaterOrEqual(t, len(p), 8, "box header")
		size := uint64(binary.BigEndian.Uint32(p))
		typ := string(p[4:8])
		hdr := uint64(8)
		if size == 1 {
			require.GreaterOrEqual(t, len(p), 16)
			size, hdr = binary.BigEndian.Uint64(p[8:]), 16
		}
		require.GreaterOrEqual(t, size, hdr, "box %s", typ)
		require.LessOrEqual(t, size, uint64(len(p)), "box %s", typ)
		b := &mp4Box{typ: typ, body: p[hdr:size]}
		if containers[typ] {
			b.children = parseBoxes(t, b.body)
		}
		out = append(out, b)
		p = p[size:]
	}
	return out
}

// paths lists the paths of every box of a tree ("moov/trak/mdia"...), in order.
func paths(boxes []*mp4Box, prefix string) []string {
	var out []string
	for _, b := range boxes {
		p := prefix + b.typ
		out = append(out, p)
		out = append(out, paths(b.children, p+"/")...)
	}
	return out
}

// find returns the boxes at a path.
func find(boxes []*mp4Box, path ...string) []*mp4Box {
	var out []*mp4Box
	for _, b := range boxes {
		if b.typ != path[0] {
			continue
		}
		if len(path) == 1 {
			out = append(out, b)
		} else {
			out = append(out, find(b.children, path[1:]...)...)
		}
	}
	return out
}

// fragment is a parsed moof+mdat.
type fragment struct {
	boxes []*mp4Box
	part  *mcfmp4.Part
}

// parseFragment checks a moof+mdat and decodes it with mediacommon's reader.
func parseFragment(t testing.TB, b []byte) fragment {
	t.Helper()
	boxes := parseBoxes(t, b)
	require.Len(t, boxes, 2)
	require.Equal(t, "moof", boxes[0].typ)
	require.Equal(t, "mdat", boxes[1].typ)
	for _, tfdt := range find(boxes, "moof", "traf", "tfdt") {
		require.Equal(t, byte(1), tfdt.body[0], "tfdt version")
	}
	for _, trun := range find(boxes, "moof", "traf", "trun") {
		require.Equal(t, byte(1), trun.body[0], "trun version")
	}
	var parts mcfmp4.Parts
	require.NoError(t, parts.Unmarshal(b))
	require.Len(t, parts, 1)
	return fragment{boxes: boxes, part: parts[0]}
}

// partTrack returns the track of a part with this ID.
func (f fragment) track(t testing.TB, id int) *mcfmp4.PartTrack {
	t.Helper()
	for _, pt := range f.part.Tracks {
		if pt.ID == id {
			return pt
		}
	}
	t.Fatalf("no track %d in fragment", id)
	return nil
}

// durations returns the sample durations of a part track.
func durations(pt *mcfmp4.PartTrack) []uint32 {
	out := make([]uint32, len(pt.Samples))
	for i, s := range pt.Samples {
		out[i] = s.Duration
	}
	return out
}

// repeat returns n copies of v.
func repeat[T any](v T, n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func (s *source) String() string {
	return fmt.Sprintf("%d tracks, %d frames", len(s.tracks), len(s.frames))
}
