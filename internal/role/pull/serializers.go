package pull

import (
	"strconv"
	"sync"

	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/media"
	"github.com/quasipaa/quasipaa/internal/protocol/flv"
	"github.com/quasipaa/quasipaa/internal/protocol/rtmp"
	"github.com/quasipaa/quasipaa/internal/protocol/ws"
)

// The wire formats the pull role delivers, each cached once per frame.
var (
	formatRTMP    = hub.NewFormat("rtmp")
	formatFLVHTTP = hub.NewFormat("flv-http")
	formatFLVWS   = hub.NewFormat("flv-ws")
)

// scratch holds tag bodies while they are wrapped into another framing.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// rtmpSerializer produces RTMP chunks at one chunk size, on message stream 1.
type rtmpSerializer struct{ chunkSize int }

func (*rtmpSerializer) Format() hub.Format                              { return formatRTMP }
func (*rtmpSerializer) AppendPrefix(dst []byte, _ *hub.TrackSet) []byte { return dst }

func (s *rtmpSerializer) AppendHeader(dst []byte, ts *hub.TrackSet) []byte {
	bp := scratch.Get().(*[]byte)
	defer scratch.Put(bp)
	ms := flv.TimestampMs(ts.Start)
	if body, err := flv.AppendMetadataBody((*bp)[:0], orderedTracks(ts)); err == nil {
		dst = rtmp.AppendMessage(dst, rtmp.CSIDData, rtmp.MsgDataAMF0, rtmp.PlayStreamID, ms, body, s.chunkSize)
	}
	for _, t := range orderedTracks(ts) {
		if !flv.HasSequenceHeader(t.Codec) {
			continue
		}
		body, err := flv.AppendSequenceHeader((*bp)[:0], t)
		if err != nil {
			continue
		}
		typ := rtmp.MsgAudio
		if t.IsVideo() {
			typ = rtmp.MsgVideo
		}
		dst = rtmp.AppendMessage(dst, rtmp.CSIDForType(typ), typ, rtmp.PlayStreamID, ms, body, s.chunkSize)
	}
	return dst
}

func (s *rtmpSerializer) AppendFrame(dst []byte, e *hub.Entry) []byte {
	if !carried(e) {
		return dst
	}
	t := e.Track()
	bp := scratch.Get().(*[]byte)
	defer scratch.Put(bp)
	var (
		body []byte
		err  error
		typ  uint8
	)
	if t.IsVideo() {
		typ = rtmp.MsgVideo
		body, err = flv.AppendVideoBody((*bp)[:0], t, e.Frame)
	} else {
		typ = rtmp.MsgAudio
		body, err = flv.AppendAudioBody((*bp)[:0], t, e.Frame)
	}
	if err != nil {
		return dst
	}
	*bp = body[:0]
	csid := rtmp.CSIDForType(typ)
	ms := flv.TimestampMs(e.Frame.DTS)
	if dst == nil {
		dst = make([]byte, 0, rtmp.ChunkedSize(csid, ms, len(body), s.chunkSize))
	}
	return rtmp.AppendMessage(dst, csid, typ, rtmp.PlayStreamID, ms, body, s.chunkSize)
}

// flvAudioPreference orders the audio codecs FLV players handle best: a
// WebRTC stream whose Opus is converted carries AAC too, and FLV takes it.
var flvAudioPreference = []media.Codec{media.CodecAAC, media.CodecMP3, media.CodecG711A, media.CodecG711U, media.CodecOpus}

// flvTracks returns the indexes of the video and audio tracks FLV carries (-1: none).
func flvTracks(ts *hub.TrackSet) (video, audio int) {
	return media.PickTracks(ts.Tracks, flv.Supported, flvAudioPreference...)
}

// orderedTracks lists the tracks FLV carries, video first.
func orderedTracks(ts *hub.TrackSet) []*media.Track {
	out := make([]*media.Track, 0, 2)
	v, a := flvTracks(ts)
	if v >= 0 {
		out = append(out, ts.Tracks[v])
	}
	if a >= 0 {
		out = append(out, ts.Tracks[a])
	}
	return out
}

// carried reports whether e's frame belongs to a track FLV carries.
func carried(e *hub.Entry) bool {
	v, a := flvTracks(e.Tracks)
	return e.Frame.Track == v || e.Frame.Track == a
}

// appendFLVHeaderTags appends onMetaData and the sequence header tags.
func appendFLVHeaderTags(dst []byte, ts *hub.TrackSet) []byte {
	if b, err := flv.AppendMetadataTag(dst, orderedTracks(ts)); err == nil {
		dst = b
	}
	ms := flv.TimestampMs(ts.Start)
	for _, t := range orderedTracks(ts) {
		if !flv.HasSequenceHeader(t.Codec) {
			continue
		}
		if b, err := flv.AppendSequenceHeaderTag(dst, t, ms); err == nil {
			dst = b
		}
	}
	return dst
}

func appendFLVFileHeader(dst []byte, ts *hub.TrackSet) []byte {
	v, a := flvTracks(ts)
	return flv.AppendFileHeader(dst, a >= 0, v >= 0)
}

// appendFLVFrameTag appends the frame's FLV tag, or nothing if FLV cannot carry it.
func appendFLVFrameTag(dst []byte, e *hub.Entry) []byte {
	if !carried(e) {
		return dst
	}
	t := e.Track()
	var (
		out []byte
		err error
	)
	if t.IsVideo() {
		out, err = flv.AppendVideoTag(dst, t, e.Frame)
	} else {
		out, err = flv.AppendAudioTag(dst, t, e.Frame)
	}
	if err != nil {
		return dst
	}
	return out
}

// flvHTTPSerializer frames FLV as HTTP/1.1 chunks, one chunk per piece, so
// the same bytes serve every HTTP-FLV viewer.
type flvHTTPSerializer struct{}

func (*flvHTTPSerializer) Format() hub.Format { return formatFLVHTTP }
func (*flvHTTPSerializer) AppendPrefix(dst []byte, ts *hub.TrackSet) []byte {
	return httpChunk(dst, ts, appendFLVFileHeader)
}
func (*flvHTTPSerializer) AppendHeader(dst []byte, ts *hub.TrackSet) []byte {
	return httpChunk(dst, ts, appendFLVHeaderTags)
}
func (*flvHTTPSerializer) AppendFrame(dst []byte, e *hub.Entry) []byte {
	return httpChunk(dst, e, appendFLVFrameTag)
}

// httpChunk appends what build makes as one HTTP/1.1 chunk. The size is
// written as 8 hex digits (leading zeros are valid) so it can be patched in
// after the body is built, without a copy.
func httpChunk[T any](dst []byte, v T, build func([]byte, T) []byte) []byte {
	start := len(dst)
	dst = append(dst, "00000000\r\n"...)
	dst = build(dst, v)
	n := len(dst) - start - 10
	if n == 0 {
		return dst[:start]
	}
	var hex [16]byte
	h := strconv.AppendUint(hex[:0], uint64(n), 16)
	copy(dst[start+8-len(h):start+8], h)
	return append(dst, "\r\n"...)
}

// flvWSSerializer frames FLV as WebSocket binary messages, one per piece.
type flvWSSerializer struct{}

func (*flvWSSerializer) Format() hub.Format { return formatFLVWS }
func (*flvWSSerializer) AppendPrefix(dst []byte, ts *hub.TrackSet) []byte {
	return wsMessage(dst, ts, appendFLVFileHeader)
}
func (*flvWSSerializer) AppendHeader(dst []byte, ts *hub.TrackSet) []byte {
	return wsMessage(dst, ts, appendFLVHeaderTags)
}
func (*flvWSSerializer) AppendFrame(dst []byte, e *hub.Entry) []byte {
	return wsMessage(dst, e, appendFLVFrameTag)
}

// wsMessage appends what build makes as one binary WebSocket message. Room
// for the longest header is reserved, then the header is written in place.
func wsMessage[T any](dst []byte, v T, build func([]byte, T) []byte) []byte {
	const reserve = 10
	start := len(dst)
	dst = append(dst, make([]byte, reserve)...)
	dst = build(dst, v)
	n := len(dst) - start - reserve
	if n == 0 {
		return dst[:start]
	}
	var hb [reserve]byte
	hdr := ws.AppendHeader(hb[:0], ws.OpBinary, n)
	copy(dst[start:], hdr)
	if len(hdr) < reserve {
		copy(dst[start+len(hdr):], dst[start+reserve:])
		dst = dst[:len(dst)-(reserve-len(hdr))]
	}
	return dst
}
