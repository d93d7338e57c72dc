package flv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/quasipaa/quasipaa/internal/media"
	"github.com/quasipaa/quasipaa/internal/protocol/amf0"
)

// Enhanced RTMP packet types.
const (
	pktSequenceStart        = 0
	pktCodedFrames          = 1
	pktSequenceEnd          = 2
	pktCodedFramesX         = 3 // video only
	pktMetadata             = 4 // video only
	pktMPEG2TSSequenceStart = 5 // video only
	pktMultichannelConfig   = 4 // audio only
	pktAudioMultitrack      = 5 // audio only
	pktVideoMultitrack      = 6 // video only
	pktModEx                = 7
)

// Video frame types (FrameType of the first video byte).
const (
	frameKey     = 1
	frameInter   = 2
	frameCommand = 5
)

// Multitrack types (AvMultitrackType).
const (
	multitrackOne           = 0
	multitrackMany          = 1
	multitrackManyManyCodec = 2
)

// Event is what one tag body produced. A body may produce both a track change
// and a frame: MP3 and G.711 carry their parameters in every frame, and the
// key frames of VP8, VP9 (and AV1 without a sequence header in av1C) give
// the picture size the configuration record lacks. Apply the new track list
// before publishing the frame.
type Event struct {
	// TracksChanged is set when the body added or replaced a track; the new
	// list is Demuxer.Tracks().
	TracksChanged bool
	// Frame is the coded frame the body carried, or nil.
	Frame *media.Frame
}

// DemuxStats counts what a Demuxer produced and what it could not use.
type DemuxStats struct {
	Frames           uint64 // Frames is the number of frames returned.
	NoSequenceHeader uint64 // NoSequenceHeader counts frames dropped before their sequence header.
	Invalid          uint64 // Invalid counts bodies rejected as malformed or unsupported.
	Ignored          uint64 // Ignored counts bodies without media (commands, metadata, sequence ends, other tracks).
}

// Demuxer turns FLV tag bodies (equally RTMP audio and video message
// payloads) into media tracks and frames. The zero value is ready to use; a
// Demuxer is not safe for concurrent use.
//
// Track indices: the first elementary stream (audio or video) that gets a
// track takes index 0, the other index 1, whatever the order the publisher
// sends them in. An index is kept for the Demuxer's lifetime: a new sequence
// header with a different configuration replaces the track in the same slot
// (Tracks returns a new slice; slices returned earlier are never modified).
// A sequence header identical to the current one changes nothing.
//
// Frames never alias the bodies passed in: the payload is copied once into a
// fresh slice, so callers may reuse their buffers. H264/H265 payloads are
// rewritten to 4-byte NAL unit lengths when the sequence header announced
// other sizes, and from Annex B when a broken encoder sent start codes.
// Frame.Ingest is set to time.Now(). DTS is the tag timestamp (unwrapped
// past 2^32 ms, plus any ModEx TimestampOffsetNano) and PTS is DTS plus the
// composition time; a publisher's negative composition time is kept as sent,
// so PTS < DTS only if the publisher said so. Frame.Key comes from the
// bitstream (H264 IDR, H265 IRAP, AV1, VP8 and VP9 key frames), never from
// the FLV FrameType, which encoders do not always set right.
//
// Bodies without media are ignored without error and counted: command
// frames, Enhanced RTMP Metadata, MPEG2TSSequenceStart, sequence ends and
// MultichannelConfig.
//
// Errors are per body and never leave the Demuxer in a bad state: a caller
// may log them and go on. Frames that arrive before their sequence header are
// dropped with ErrNoSequenceHeader.
//
// Multitrack Enhanced RTMP messages: only one track per kind is demuxed, the
// default one. Plain messages are track 0; the first track id seen for a kind
// is kept and other ids are ignored.
type Demuxer struct {
	tracks []*media.Track
	video  stream
	audio  stream
	stats  DemuxStats
	meta   []amf0.Property

	tsInit bool
	tsLast uint32
	tsExt  int64
}

// stream is the per-kind state of a Demuxer.
type stream struct {
	init     bool
	index    int          // slot in Demuxer.tracks
	track    *media.Track // current track, nil before the first one
	raw      []byte       // configuration as received, to spot repeats
	lenSize  int          // NAL unit length size on the wire (H264/H265)
	trackSet bool         // trackID holds the followed multitrack id
	trackID  int          // multitrack id followed
}

// Tracks returns the current track list. The slice is shared: do not modify it.
func (d *Demuxer) Tracks() []*media.Track { return d.tracks }

// Stats returns the demuxer's counters.
func (d *Demuxer) Stats() DemuxStats { return d.stats }

// Metadata returns the properties of the last onMetaData script tag, or nil.
func (d *Demuxer) Metadata() []amf0.Property { return d.meta }

// Video demuxes the body of a video tag or RTMP video message with the given
// timestamp in milliseconds.
func (d *Demuxer) Video(timestampMs uint32, body []byte) (Event, error) {
	return d.count(d.videoBody(timestampMs, body))
}

// Audio demuxes the body of an audio tag or RTMP audio message with the given
// timestamp in milliseconds.
func (d *Demuxer) Audio(timestampMs uint32, body []byte) (Event, error) {
	return d.count(d.audioBody(timestampMs, body))
}

// errIgnored marks bodies that carry nothing for the media model; it is
// counted and never returned.
var errIgnored = errors.New("flv: ignored")

// count updates the statistics for one body's outcome.
func (d *Demuxer) count(ev Event, err error) (Event, error) {
	switch {
	case err == nil:
		if ev.Frame != nil {
			d.stats.Frames++
		}
	case err == errIgnored:
		d.stats.Ignored++
		return Event{}, nil
	case errors.Is(err, ErrNoSequenceHeader):
		d.stats.NoSequenceHeader++
	default:
		d.stats.Invalid++
	}
	return ev, err
}

// Script reads a script data tag body. onMetaData (also behind
// "@setDataFrame") is kept for Metadata; other names are ignored, and so are
// bytes after the values read. It changes no track: tracks come from
// sequence headers only.
func (d *Demuxer) Script(body []byte) error {
	var name string
	for range 2 {
		v, n, err := amf0.DecodeValue(body)
		if err != nil {
			return fmt.Errorf("%w: script data: %w", ErrInvalidPacket, err)
		}
		body = body[n:]
		if name, _ = v.(string); name != "@setDataFrame" {
			break
		}
	}
	if name != "onMetaData" || len(body) == 0 {
		return nil
	}
	v, _, err := amf0.DecodeValue(body)
	if err != nil {
		return fmt.Errorf("%w: onMetaData: %w", ErrInvalidPacket, err)
	}
	if props, ok := amf0.Properties(v); ok {
		d.meta = props
	}
	return nil
}

// timestamp converts a 32-bit millisecond timestamp to a duration, unwrapping
// it past 2^32 ms; small backward steps (interleaving) are kept as they are.
func (d *Demuxer) timestamp(ts uint32) time.Duration {
	if !d.tsInit {
		d.tsInit, d.tsLast, d.tsExt = true, ts, int64(ts)
	}
	diff := int32(ts - d.tsLast)
	ext := d.tsExt + int64(diff)
	if diff > 0 {
		d.tsLast, d.tsExt = ts, ext
	}
	return time.Duration(ext) * time.Millisecond
}

// setTrack installs t as the track of s, in a new track list.
func (d *Demuxer) setTrack(s *stream, t *media.Track) {
	tracks := make([]*media.Track, len(d.tracks), len(d.tracks)+1)
	copy(tracks, d.tracks)
	if !s.init {
		s.init = true
		s.index = len(tracks)
		tracks = append(tracks, t)
	} else {
		tracks[s.index] = t
	}
	s.track = t
	d.tracks = tracks
}

// followTrack reports whether a multitrack message's track id is the one s follows.
func followTrack(s *stream, id int) bool {
	if !s.trackSet {
		s.trackSet, s.trackID = true, id
	}
	return s.trackID == id
}

func si24(p []byte) int32 {
	return int32(uint32(p[0])<<24|uint32(p[1])<<16|uint32(p[2])<<8) >> 8
}

func u24(p []byte) int { return int(p[0])<<16 | int(p[1])<<8 | int(p[2]) }

// modEx skips the ModEx prefixes of an Enhanced RTMP header. p starts after
// the byte whose packet type was ModEx; it returns the real packet type, the
// rest of the body and the TimestampOffsetNano it found.
func modEx(p []byte) (pktType uint8, rest []byte, nanos time.Duration, err error) {
	pktType = pktModEx
	for pktType == pktModEx {
		if len(p) < 1 {
			return 0, nil, 0, fmt.Errorf("%w: ModEx size", ErrTruncated)
		}
		size := int(p[0]) + 1
		p = p[1:]
		if size == 256 {
			if len(p) < 2 {
				return 0, nil, 0, fmt.Errorf("%w: ModEx 16-bit size", ErrTruncated)
			}
			size = int(binary.BigEndian.Uint16(p)) + 1
			p = p[2:]
		}
		if len(p) < size+1 {
			return 0, nil, 0, fmt.Errorf("%w: ModEx data of %d bytes", ErrTruncated, size)
		}
		data := p[:size]
		modType := p[size] >> 4
		pktType = p[size] & 0x0f
		p = p[size+1:]
		if modType == 0 && size >= 3 { // TimestampOffsetNano
			if n := u24(data); n < 1000000 {
				nanos = time.Duration(n)
			}
		}
	}
	return pktType, p, nanos, nil
}

func fourCC(p []byte) uint32 { return binary.BigEndian.Uint32(p) }

func fourCCString(v uint32) string {
	b := [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
	return fmt.Sprintf("%q", b[:])
}

// exTrack is one track of an Enhanced RTMP message body.
type exTrack struct {
	fourcc uint32
	data   []byte
}

// multitrack returns the followed track of a multitrack message body that
// starts at p (the byte holding AvMultitrackType and the packet type).
func multitrack(s *stream, p []byte, nested uint8) (pktType uint8, tr exTrack, found bool, err error) {
	if len(p) < 1 {
		return 0, tr, false, fmt.Errorf("%w: multitrack header", ErrTruncated)
	}
	mt := p[0] >> 4
	pktType = p[0] & 0x0f
	p = p[1:]
	if mt > multitrackManyManyCodec {
		return 0, tr, false, fmt.Errorf("%w: multitrack type %d", ErrInvalidPacket, mt)
	}
	if pktType == nested || pktType == pktModEx {
		return 0, tr, false, fmt.Errorf("%w: packet type %d inside a multitrack message", ErrInvalidPacket, pktType)
	}
	var cc uint32
	if mt != multitrackManyManyCodec {
		if len(p) < 4 {
			return 0, tr, false, fmt.Errorf("%w: multitrack FourCC", ErrTruncated)
		}
		cc = fourCC(p)
		p = p[4:]
	}
	for len(p) > 0 {
		if mt == multitrackManyManyCodec {
			if len(p) < 4 {
				return 0, tr, false, fmt.Errorf("%w: track FourCC", ErrTruncated)
			}
			cc = fourCC(p)
			p = p[4:]
		}
		if len(p) < 1 {
			return 0, tr, false, fmt.Errorf("%w: track id", ErrTruncated)
		}
		id := int(p[0])
		p = p[1:]
		data := p
		if mt == multitrackOne {
			p = nil
		} else {
			if len(p) < 3 {
				return 0, tr, false, fmt.Errorf("%w: track size", ErrTruncated)
			}
			n := u24(p)
			p = p[3:]
			if n > len(p) {
				return 0, tr, false, fmt.Errorf("%w: track of %d bytes", ErrTruncated, n)
			}
			data, p = p[:n], p[n:]
		}
		if followTrack(s, id) {
			return pktType, exTrack{fourcc: cc, data: data}, true, nil
		}
	}
	return pktType, tr, false, nil
}

func (d *Demuxer) videoBody(ts uint32, body []byte) (Event, error) {
	if len(body) < 1 {
		return Event{}, fmt.Errorf("%w: empty video body", ErrTruncated)
	}
	b0 := body[0]
	if b0&0x80 != 0 {
		return d.exVideo(ts, body)
	}
	frameType, codecID := b0>>4, b0&0x0f
	if frameType == frameCommand {
		return Event{}, errIgnored
	}
	var c media.Codec
	switch codecID {
	case VideoCodecAVC:
		c = media.CodecH264
	case VideoCodecHEVC:
		c = media.CodecH265
	default:
		return Event{}, fmt.Errorf("%w: legacy video codec id %d", ErrUnsupportedCodec, codecID)
	}
	if len(body) < 5 {
		return Event{}, fmt.Errorf("%w: %s video header", ErrTruncated, c)
	}
	if !followTrack(&d.video, 0) {
		return Event{}, errIgnored
	}
	data := body[5:]
	switch body[1] {
	case 0:
		return d.videoConfig(c, data)
	case 1:
		return d.videoFrame(ts, 0, c, si24(body[2:]), data)
	case 2:
		return Event{}, errIgnored
	}
	return Event{}, fmt.Errorf("%w: AVCPacketType %d", ErrInvalidPacket, body[1])
}

func (d *Demuxer) exVideo(ts uint32, body []byte) (Event, error) {
	frameType := (body[0] >> 4) & 7
	pktType := body[0] & 0x0f
	p := body[1:]
	var nanos time.Duration
	if pktType == pktModEx {
		var err error
		if pktType, p, nanos, err = modEx(p); err != nil {
			return Event{}, err
		}
	}
	if frameType == frameCommand && pktType != pktMetadata {
		return Event{}, errIgnored
	}
	pktType, tr, err := exTrackOf(&d.video, pktType, p, pktVideoMultitrack, "video")
	if err != nil {
		return Event{}, err
	}
	var c media.Codec
	switch tr.fourcc {
	case FourCCAVC:
		c = media.CodecH264
	case FourCCHEVC:
		c = media.CodecH265
	case FourCCAV1:
		c = media.CodecAV1
	case FourCCVP9:
		c = media.CodecVP9
	case FourCCVP8:
		c = media.CodecVP8
	default:
		return Event{}, fmt.Errorf("%w: video FourCC %s", ErrUnsupportedCodec, fourCCString(tr.fourcc))
	}
	switch pktType {
	case pktSequenceStart:
		return d.videoConfig(c, tr.data)
	case pktCodedFrames:
		var cts int32
		data := tr.data
		if c == media.CodecH264 || c == media.CodecH265 {
			if len(data) < 3 {
				return Event{}, fmt.Errorf("%w: composition time", ErrTruncated)
			}
			cts, data = si24(data), data[3:]
		}
		return d.videoFrame(ts, nanos, c, cts, data)
	case pktCodedFramesX:
		return d.videoFrame(ts, nanos, c, 0, tr.data)
	case pktSequenceEnd, pktMetadata, pktMPEG2TSSequenceStart:
		return Event{}, errIgnored
	}
	return Event{}, fmt.Errorf("%w: video packet type %d", ErrInvalidPacket, pktType)
}

func (d *Demuxer) videoConfig(c media.Codec, config []byte) (Event, error) {
	s := &d.video
	if s.track != nil && s.track.Codec == c && bytes.Equal(s.raw, config) {
		return Event{}, nil
	}
	lenSize, err := nalLengthSize(c, config)
	if err != nil {
		return Event{}, err
	}
	t, err := videoTrack(c, config)
	if err != nil {
		return Event{}, err
	}
	s.lenSize = lenSize
	s.raw = append(s.raw[:0:0], config...)
	d.setTrack(s, t)
	return Event{TracksChanged: true}, nil
}

func (d *Demuxer) videoFrame(ts uint32, nanos time.Duration, c media.Codec, cts int32, data []byte) (Event, error) {
	s := &d.video
	if s.track == nil {
		return Event{}, fmt.Errorf("%w: %s", ErrNoSequenceHeader, c)
	}
	if s.track.Codec != c {
		return Event{}, fmt.Errorf("%w: %s frame after a %s sequence header", ErrNoSequenceHeader, c, s.track.Codec)
	}
	if len(data) == 0 {
		return Event{}, errIgnored
	}
	var payload []byte
	if c == media.CodecH264 || c == media.CodecH265 {
		var err error
		if payload, err = canonicalNALUs(c, data, s.lenSize); err != nil {
			return Event{}, err
		}
	} else {
		payload = make([]byte, len(data))
		copy(payload, data)
	}
	key := isKeyFrame(c, payload)
	changed := false
	if key {
		if w, h, ok := frameDimensions(c, payload); ok && (w != s.track.Width || h != s.track.Height) {
			t := *s.track
			t.Width, t.Height = w, h
			d.setTrack(s, &t)
			changed = true
		}
	}
	dts := d.timestamp(ts) + nanos
	return Event{TracksChanged: changed, Frame: &media.Frame{
		Track:   s.index,
		DTS:     dts,
		PTS:     dts + time.Duration(cts)*time.Millisecond,
		Key:     key,
		Payload: payload,
		Ingest:  time.Now(),
	}}, nil
}

func (d *Demuxer) audioBody(ts uint32, body []byte) (Event, error) {
	if len(body) < 1 {
		return Event{}, fmt.Errorf("%w: empty audio body", ErrTruncated)
	}
	format := body[0] >> 4
	switch format {
	case SoundFormatExHeader:
		return d.exAudio(ts, body)
	case SoundFormatAAC:
		if len(body) < 2 {
			return Event{}, fmt.Errorf("%w: AAC header", ErrTruncated)
		}
		if !followTrack(&d.audio, 0) {
			return Event{}, errIgnored
		}
		switch body[1] {
		case 0:
			return d.audioConfig(media.CodecAAC, body[2:])
		case 1:
			return d.audioFrame(ts, 0, media.CodecAAC, body[2:])
		}
		return Event{}, fmt.Errorf("%w: AACPacketType %d", ErrInvalidPacket, body[1])
	case SoundFormatMP3, 14: // 14 is "MP3 8 kHz"
		if !followTrack(&d.audio, 0) {
			return Event{}, errIgnored
		}
		return d.selfDescribed(ts, 0, media.CodecMP3, body[0], body[1:])
	case SoundFormatG711A, SoundFormatG711U:
		if !followTrack(&d.audio, 0) {
			return Event{}, errIgnored
		}
		c := media.CodecG711A
		if format == SoundFormatG711U {
			c = media.CodecG711U
		}
		return d.selfDescribed(ts, 0, c, body[0], body[1:])
	}
	return Event{}, fmt.Errorf("%w: legacy sound format %d", ErrUnsupportedCodec, format)
}

func (d *Demuxer) exAudio(ts uint32, body []byte) (Event, error) {
	pktType := body[0] & 0x0f
	p := body[1:]
	var nanos time.Duration
	if pktType == pktModEx {
		var err error
		if pktType, p, nanos, err = modEx(p); err != nil {
			return Event{}, err
		}
	}
	pktType, tr, err := exTrackOf(&d.audio, pktType, p, pktAudioMultitrack, "audio")
	if err != nil {
		return Event{}, err
	}
	var c media.Codec
	switch tr.fourcc {
	case FourCCOpus:
		c = media.CodecOpus
	case FourCCAAC:
		c = media.CodecAAC
	case FourCCMP3:
		c = media.CodecMP3
	default:
		return Event{}, fmt.Errorf("%w: audio FourCC %s", ErrUnsupportedCodec, fourCCString(tr.fourcc))
	}
	switch pktType {
	case pktSequenceStart:
		if c == media.CodecMP3 {
			return Event{}, errIgnored
		}
		return d.audioConfig(c, tr.data)
	case pktCodedFrames:
		if c == media.CodecMP3 {
			return d.selfDescribed(ts, nanos, c, 0x2e, tr.data)
		}
		return d.audioFrame(ts, nanos, c, tr.data)
	case pktSequenceEnd, pktMultichannelConfig:
		return Event{}, errIgnored
	}
	return Event{}, fmt.Errorf("%w: audio packet type %d", ErrInvalidPacket, pktType)
}

func (d *Demuxer) audioConfig(c media.Codec, config []byte) (Event, error) {
	s := &d.audio
	if s.track != nil && s.track.Codec == c && bytes.Equal(s.raw, config) {
		return Event{}, nil
	}
	t, err := audioTrack(c, config)
	if err != nil {
		return Event{}, err
	}
	s.raw = append(s.raw[:0:0], config...)
	d.setTrack(s, t)
	return Event{TracksChanged: true}, nil
}

func (d *Demuxer) audioFrame(ts uint32, nanos time.Duration, c media.Codec, data []byte) (Event, error) {
	s := &d.audio
	if s.track == nil {
		return Event{}, fmt.Errorf("%w: %s", ErrNoSequenceHeader, c)
	}
	if s.track.Codec != c {
		return Event{}, fmt.Errorf("%w: %s frame after a %s sequence header", ErrNoSequenceHeader, c, s.track.Codec)
	}
	return d.audioEvent(ts, nanos, false, data)
}

func (d *Demuxer) audioEvent(ts uint32, nanos time.Duration, changed bool, data []byte) (Event, error) {
	if len(data) == 0 {
		if changed {
			return Event{TracksChanged: true}, nil
		}
		return Event{}, errIgnored
	}
	payload := make([]byte, len(data))
	copy(payload, data)
	dts := d.timestamp(ts) + nanos
	return Event{TracksChanged: changed, Frame: &media.Frame{
		Track:   d.audio.index,
		DTS:     dts,
		PTS:     dts,
		Key:     true,
		Payload: payload,
		Ingest:  time.Now(),
	}}, nil
}

// legacyRates are the sample rates of the legacy SoundRate field.
var legacyRates = [4]int{5512, 11025, 22050, 44100}

// selfDescribed handles codecs without a sequence header (MP3, G.711): the
// track comes from the frame itself and changes when its parameters do.
func (d *Demuxer) selfDescribed(ts uint32, nanos time.Duration, c media.Codec, flags byte, data []byte) (Event, error) {
	t := selfDescribedTrack(c, flags, data)
	s := &d.audio
	changed := false
	if o := s.track; o == nil || o.Codec != t.Codec || o.SampleRate != t.SampleRate ||
		o.Channels != t.Channels || o.Profile != t.Profile {
		s.raw = nil
		d.setTrack(s, t)
		changed = true
	}
	return d.audioEvent(ts, nanos, changed, data)
}

// exTrackOf picks the track an Enhanced RTMP body carries: from a multitrack
// packet (multitrackType) the followed track, else the single FourCC track.
// It returns the packet type of that track, or errIgnored for other tracks.
func exTrackOf(s *stream, pktType uint8, p []byte, multitrackType uint8, kind string) (uint8, exTrack, error) {
	if pktType == multitrackType {
		pktType, tr, found, err := multitrack(s, p, multitrackType)
		if err != nil {
			return 0, exTrack{}, err
		}
		if !found {
			return 0, exTrack{}, errIgnored
		}
		return pktType, tr, nil
	}
	if len(p) < 4 {
		return 0, exTrack{}, fmt.Errorf("%w: %s FourCC", ErrTruncated, kind)
	}
	if !followTrack(s, 0) {
		return 0, exTrack{}, errIgnored
	}
	return pktType, exTrack{fourcc: fourCC(p), data: p[4:]}, nil
}
