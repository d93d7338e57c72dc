package transcode

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"

	"github.com/quasipaa/quasipaa/internal/codec/aac"
	"github.com/quasipaa/quasipaa/internal/codec/opus"
	"github.com/quasipaa/quasipaa/internal/media"
)

// What goes in and out of ffmpeg:
//
//   - AAC in: ADTS on stdin (-f aac). ADTS frames itself and ffmpeg reads a
//     frame as soon as it is written.
//   - Opus in: Ogg on stdin (-f ogg), one packet per page, an OpusHead with
//     pre-skip 0 (see opusFramer).
//   - Opus out: Ogg on stdout, one packet per page (-page_duration 1).
//   - AAC out: ADTS on stdout.
//
// None of these carries the stream's timestamps: the output is timed by
// counting samples on both sides (see timeline), which is exact for audio
// and survives gaps and jumps of the input's clock.

// aacEncoderDelay is the priming of ffmpeg's native AAC encoder
// (AVCodecContext.initial_padding), in samples; ADTS cannot carry it.
const aacEncoderDelay = 1024

// inputFramer turns frames into the byte stream ffmpeg reads. A new one is
// made for every ffmpeg process.
type inputFramer interface {
	// start appends the bytes that open the stream (headers) to dst.
	start(dst []byte) []byte
	// frame appends f's bytes to dst and returns the number of samples f
	// holds, at rate().
	frame(dst []byte, f *media.Frame) ([]byte, int64, error)
	// rate is the clock of the sample counts.
	rate() int
}

// outputReader parses what ffmpeg writes. A new one is made for every
// ffmpeg process.
type outputReader interface {
	// read returns the next coded packet (valid until the next read) and
	// its duration in samples at rate().
	read() ([]byte, int64, error)
	// track returns the output track; it is set once read returned a packet.
	track() *media.Track
	// rate is the output sample rate.
	rate() int
	// delay is the encoder's delay in samples at rate(): the output's
	// sample n holds the input's sample n-delay.
	delay() int64
}

// conversion is everything codec-specific about one conversion.
type conversion struct {
	args      []string
	newFramer func() inputFramer
	newReader func(io.Reader) outputReader
}

// plan checks that in can be converted to out and prepares the conversion.
func plan(in *media.Track, out media.Codec, bitrate int) (*conversion, error) {
	if in == nil {
		return nil, fmt.Errorf("%w: no input track", ErrUnsupported)
	}
	channels := min(max(in.Channels, 1), 2)
	if in.Channels <= 0 {
		channels = 2
	}
	c := &conversion{}
	var inFormat string
	switch in.Codec {
	case media.CodecAAC:
		cfg, err := aac.ParseAudioSpecificConfig(in.Config)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
		}
		if cfg.FrameLength != 1024 || cfg.ChannelConfig == 0 {
			return nil, fmt.Errorf("%w: AAC %s with %d-sample frames and channel configuration %d cannot go in ADTS",
				ErrUnsupported, cfg.ProfileName(), cfg.FrameLength, cfg.ChannelConfig)
		}
		if _, err := aac.AppendADTSHeader(nil, cfg, 0); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
		}
		inFormat = "aac"
		c.newFramer = func() inputFramer { return &adtsFramer{cfg: cfg} }
	case media.CodecOpus:
		head := opus.Head{Channels: channels}
		if len(in.Config) > 0 {
			h, err := opus.ParseHead(in.Config)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
			}
			head = h
			head.Mapping = bytes.Clone(h.Mapping)
		}
		// The media model times an Opus packet like RTP does: its decoded
		// samples play from its PTS, nothing trimmed. Pre-skip 0 makes
		// ffmpeg decode it that way.
		head.PreSkip = 0
		b, err := head.Marshal()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
		}
		inFormat = "ogg"
		c.newFramer = func() inputFramer { return &opusFramer{head: b} }
	default:
		return nil, fmt.Errorf("%w: %s input", ErrUnsupported, in.Codec)
	}
	c.args = []string{
		"-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning",
		// Start after the first frame. Not -fflags nobuffer: it discards
		// the frames read while probing, which would shift the output.
		"-probesize", "32", "-analyzeduration", "0",
		"-f", inFormat, "-i", "pipe:0",
		"-map", "0:a:0",
		// ffmpeg's own timestamps from the sample count, like ours: the
		// ADTS demuxer's first timestamps step back, which ffmpeg warns of.
		"-af", "asetpts=N/SR/TB",
		"-ac", strconv.Itoa(channels), "-ar", "48000",
	}
	switch {
	case out == media.CodecOpus && in.Codec != media.CodecOpus:
		if bitrate <= 0 {
			bitrate = 32000 + 32000*channels
		}
		// application=audio: libopus' full quality (SILK/hybrid for speech,
		// CELT for music) for 4 ms more look-ahead than lowdelay, nothing
		// next to a 20 ms frame and a WebRTC jitter buffer.
		c.args = append(c.args, "-c:a", "libopus", "-b:a", strconv.Itoa(bitrate),
			"-application", "audio", "-frame_duration", "20",
			"-f", "ogg", "-page_duration", "1", "-flush_packets", "1", "pipe:1")
		c.newReader = func(r io.Reader) outputReader { return &opusReader{r: newOggReader(r)} }
	case out == media.CodecAAC && in.Codec != media.CodecAAC:
		if bitrate <= 0 {
			bitrate = 64000 * channels
		}
		c.args = append(c.args, "-c:a", "aac", "-b:a", strconv.Itoa(bitrate),
			"-f", "adts", "-flush_packets", "1", "pipe:1")
		c.newReader = func(r io.Reader) outputReader { return &aacReader{r: newADTSReader(r)} }
	default:
		return nil, fmt.Errorf("%w: %s to %s", ErrUnsupported, in.Codec, out)
	}
	return c, nil
}

// adtsFramer writes AAC access units as ADTS frames.
type adtsFramer struct {
	cfg aac.AudioSpecificConfig
}

func (a *adtsFramer) start(dst []byte) []byte { return dst }

func (a *adtsFramer) frame(dst []byte, f *media.Frame) ([]byte, int64, error) {
	if len(f.Payload) == 0 {
		return dst, 0, fmt.Errorf("%w: empty AAC frame", ErrUnsupported)
	}
	dst, err := aac.AppendADTSFrame(dst, a.cfg, f.Payload)
	return dst, int64(a.cfg.FrameLength), err
}

// rate is the core sample rate: with SBR the decoder outputs twice the
// samples at twice the rate, the same duration.
func (a *adtsFramer) rate() int { return a.cfg.SampleRate }

// opusFramer writes Opus packets as an Ogg Opus stream.
type opusFramer struct {
	head    []byte
	w       oggWriter
	granule int64
}

// opusTags is an OpusTags packet with a vendor string and no comments.
var opusTags = func() []byte {
	const vendor = "quasipaa"
	b := append([]byte("OpusTags"), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(b[8:], uint32(len(vendor)))
	b = append(b, vendor...)
	return append(b, 0, 0, 0, 0)
}()

func (o *opusFramer) start(dst []byte) []byte {
	o.w.serial = 0x51415041 // "QAPA"
	dst = o.w.appendPacket(dst, o.head, 0, oggBOS)
	return o.w.appendPacket(dst, opusTags, 0, 0)
}

func (o *opusFramer) frame(dst []byte, f *media.Frame) ([]byte, int64, error) {
	n, err := opus.PacketSamples(f.Payload)
	if err != nil {
		return dst, 0, err
	}
	o.granule += int64(n)
	return o.w.appendPacket(dst, f.Payload, o.granule, 0), int64(n), nil
}

func (o *opusFramer) rate() int { return opus.SampleRate }

// opusReader reads the Ogg Opus stream libopus makes.
type opusReader struct {
	r       *oggReader
	t       *media.Track
	preSkip int64
	tags    bool
}

func (o *opusReader) read() ([]byte, int64, error) {
	for {
		p, err := o.r.ReadPacket()
		if err != nil {
			return nil, 0, err
		}
		switch {
		case o.t == nil:
			h, err := opus.ParseHead(p.Data)
			if err != nil {
				return nil, 0, err
			}
			o.preSkip = int64(h.PreSkip)
			// The output's timestamps account for the pre-skip already.
			h.PreSkip = 0
			h.Mapping = bytes.Clone(h.Mapping)
			b, err := h.Marshal()
			if err != nil {
				return nil, 0, err
			}
			if o.t, err = opus.TrackFromHead(b); err != nil {
				return nil, 0, err
			}
		case !o.tags:
			if !bytes.HasPrefix(p.Data, []byte("OpusTags")) {
				return nil, 0, fmt.Errorf("%w: no OpusTags", errOgg)
			}
			o.tags = true
		default:
			n, err := opus.PacketSamples(p.Data)
			if err != nil {
				return nil, 0, err
			}
			return p.Data, int64(n), nil
		}
	}
}

func (o *opusReader) track() *media.Track { return o.t }
func (o *opusReader) rate() int           { return opus.SampleRate }
func (o *opusReader) delay() int64        { return o.preSkip }

// aacReader reads the ADTS stream ffmpeg's AAC encoder makes.
type aacReader struct {
	r          *adtsReader
	t          *media.Track
	cfg        aac.AudioSpecificConfig
	sampleRate int
}

func (a *aacReader) read() ([]byte, int64, error) {
	h, au, err := a.r.ReadFrame()
	if err != nil {
		return nil, 0, err
	}
	if cfg := h.Config(); a.t == nil || cfg != a.cfg {
		asc, err := cfg.Marshal()
		if err != nil {
			return nil, 0, err
		}
		t, err := aac.TrackFromConfig(asc)
		if err != nil {
			return nil, 0, err
		}
		a.t, a.cfg, a.sampleRate = t, cfg, h.SampleRate
	}
	return au, int64(a.cfg.FrameLength), nil
}

func (a *aacReader) track() *media.Track { return a.t }
func (a *aacReader) rate() int           { return a.sampleRate }
func (a *aacReader) delay() int64        { return aacEncoderDelay }

// sameTrack reports whether a and b describe the same coded audio.
func sameTrack(a, b *media.Track) bool {
	return a.Codec == b.Codec && a.SampleRate == b.SampleRate && a.Channels == b.Channels && bytes.Equal(a.Config, b.Config)
}
