// Package aac handles MPEG-4 AAC as Quasipaa carries it: the
// AudioSpecificConfig of a track (ISO/IEC 14496-3 section 1.6.2.1, the FLV
// AAC sequence header and the MP4 decoder specific info) and raw access
// units, which MPEG-TS and raw .aac files wrap in ADTS headers (ISO/IEC
// 13818-7 section 6.2).
//
// Every parser here reads untrusted network input: none panics, and the ADTS
// functions do not allocate.
package aac

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/quasipaa/quasipaa/internal/codec/internal/bitio"
	"github.com/quasipaa/quasipaa/internal/media"
)

// Errors returned by this package.
var (
	// ErrInvalidConfig is returned for a malformed AudioSpecificConfig.
	ErrInvalidConfig = errors.New("aac: invalid AudioSpecificConfig")
	// ErrUnsupported is returned when a configuration cannot be written in the requested form.
	ErrUnsupported = errors.New("aac: unsupported configuration")
	// ErrInvalidADTS is returned for a malformed ADTS header.
	ErrInvalidADTS = errors.New("aac: invalid ADTS header")
	// ErrTruncated is returned when an ADTS frame runs past the end of its buffer.
	ErrTruncated = errors.New("aac: truncated ADTS frame")
	// ErrMultipleRawDataBlocks is returned for ADTS frames carrying more than one access unit.
	ErrMultipleRawDataBlocks = errors.New("aac: ADTS frames with several raw data blocks are not supported")
)

// Audio object types (ISO/IEC 14496-3 Table 1.17) that matter for streaming.
const (
	ObjectTypeMain = 1
	ObjectTypeLC   = 2
	ObjectTypeSSR  = 3
	ObjectTypeLTP  = 4
	ObjectTypeSBR  = 5
	ObjectTypeERLC = 17
	ObjectTypeLD   = 23
	ObjectTypePS   = 29
	ObjectTypeELD  = 39
	ObjectTypeUSAC = 42
)

// sampleRates is the samplingFrequencyIndex table; 13 and 14 are reserved,
// 15 escapes to an explicit 24-bit rate.
var sampleRates = [13]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// SampleRateIndex returns the samplingFrequencyIndex of a rate, or -1.
func SampleRateIndex(rate int) int {
	for i, r := range sampleRates {
		if r == rate {
			return i
		}
	}
	return -1
}

// channelCounts maps channelConfiguration to a channel count; 0 marks the
// reserved values (and configuration 0, whose count a PCE gives).
var channelCounts = [16]int{0, 1, 2, 3, 4, 5, 6, 8, 0, 0, 0, 7, 8, 24, 8, 0}

// AudioSpecificConfig is a parsed AudioSpecificConfig.
type AudioSpecificConfig struct {
	// ObjectType is the audio object type of the core coder: for HE-AAC
	// signalled explicitly (object type 5 or 29) it is the underlying type, 2.
	ObjectType int
	// SampleRate is the core coder's sampling frequency in Hz.
	SampleRate int
	// ChannelConfig is channelConfiguration; 0 means a program config element says.
	ChannelConfig int
	// Channels is the number of coded channels (from the program config element
	// when ChannelConfig is 0).
	Channels int
	// SBR tells that spectral band replication is signalled (HE-AAC). It is
	// false for implicit signalling, which only the access units reveal.
	SBR bool
	// PS tells that parametric stereo is signalled (HE-AAC v2).
	PS bool
	// ExtensionSampleRate is the SBR output sampling frequency, 0 without SBR.
	ExtensionSampleRate int
	// FrameLength is the number of samples per channel of an access unit at
	// SampleRate: 1024 or 960 for AAC, 512 or 480 for the low-delay types.
	FrameLength int
}

// OutputSampleRate returns the sampling frequency a decoder outputs:
// ExtensionSampleRate with explicit SBR, SampleRate otherwise.
func (c AudioSpecificConfig) OutputSampleRate() int {
	if c.SBR && c.ExtensionSampleRate > 0 {
		return c.ExtensionSampleRate
	}
	return c.SampleRate
}

// OutputChannels returns the number of channels a decoder outputs: two for
// parametric stereo over a mono core, Channels otherwise.
func (c AudioSpecificConfig) OutputChannels() int {
	if c.PS && c.Channels == 1 {
		return 2
	}
	return c.Channels
}

// ProfileName names the configuration as ffprobe does ("LC", "HE-AAC", "HE-AACv2"...).
func (c AudioSpecificConfig) ProfileName() string {
	switch {
	case c.PS:
		return "HE-AACv2"
	case c.SBR:
		return "HE-AAC"
	}
	switch c.ObjectType {
	case ObjectTypeMain:
		return "Main"
	case ObjectTypeLC:
		return "LC"
	case ObjectTypeSSR:
		return "SSR"
	case ObjectTypeLTP:
		return "LTP"
	case ObjectTypeERLC:
		return "ER LC"
	case ObjectTypeLD:
		return "LD"
	case ObjectTypeELD:
		return "ELD"
	case ObjectTypeUSAC:
		return "USAC"
	}
	return fmt.Sprintf("Object type %d", c.ObjectType)
}

// bitReader wraps bitio.Reader with a sticky error.
type bitReader struct {
	bitio.Reader
	err error
}

func (r *bitReader) f(n int) int {
	if r.err != nil {
		return 0
	}
	v, err := r.ReadBits(n)
	r.err = err
	return int(v)
}

func (r *bitReader) skip(n int) {
	if r.err == nil {
		r.err = r.Skip(n)
	}
}

func (r *bitReader) objectType() int {
	t := r.f(5)
	if t == 31 {
		t = 32 + r.f(6)
	}
	return t
}

func (r *bitReader) sampleRate() int {
	i := r.f(4)
	switch {
	case i < len(sampleRates):
		return sampleRates[i]
	case i == 15:
		return r.f(24)
	}
	if r.err == nil {
		r.err = fmt.Errorf("reserved samplingFrequencyIndex %d", i)
	}
	return 0
}

// generalAudio reports whether an object type uses GASpecificConfig.
func generalAudio(t int) bool {
	switch t {
	case 1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23:
		return true
	}
	return false
}

// errorResilient reports whether an object type is followed by epConfig.
func errorResilient(t int) bool {
	return t == 17 || (t >= 19 && t <= 27) || t == 39
}

// ParseAudioSpecificConfig parses an AudioSpecificConfig: the object type
// (with the escape for types above 30), the sampling frequency (with the
// explicit-rate escape, index 15), the channel configuration (with the
// program config element when it is 0), the explicit SBR/PS signalling of
// HE-AAC in both its hierarchical and backward-compatible forms, and the
// frame length.
func ParseAudioSpecificConfig(asc []byte) (AudioSpecificConfig, error) {
	c, err := parseASC(asc)
	if err != nil {
		return AudioSpecificConfig{}, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	return c, nil
}

func parseASC(asc []byte) (AudioSpecificConfig, error) {
	var c AudioSpecificConfig
	r := &bitReader{Reader: bitio.NewReader(asc)}
	c.ObjectType = r.objectType()
	c.SampleRate = r.sampleRate()
	c.ChannelConfig = r.f(4)
	if r.err != nil {
		return c, r.err
	}
	if c.SampleRate <= 0 {
		return c, fmt.Errorf("sampling frequency 0")
	}
	if c.ObjectType == 0 {
		return c, fmt.Errorf("audio object type 0")
	}
	c.Channels = channelCounts[c.ChannelConfig]
	if c.ChannelConfig != 0 && c.Channels == 0 {
		return c, fmt.Errorf("reserved channelConfiguration %d", c.ChannelConfig)
	}
	if c.ObjectType == ObjectTypeSBR || c.ObjectType == ObjectTypePS {
		c.SBR, c.PS = true, c.ObjectType == ObjectTypePS
		c.ExtensionSampleRate = r.sampleRate()
		c.ObjectType = r.objectType()
		if c.ObjectType == 22 {
			r.f(4) // extensionChannelConfiguration
		}
		if r.err != nil {
			return c, r.err
		}
		if c.ExtensionSampleRate <= 0 || c.ObjectType == 0 {
			return c, fmt.Errorf("invalid SBR signalling")
		}
	}
	c.FrameLength = 1024
	switch {
	case generalAudio(c.ObjectType):
		if err := readGASpecificConfig(r, &c); err != nil {
			return c, err
		}
	case c.ObjectType == ObjectTypeELD:
		if r.f(1) == 1 { // frameLengthFlag of ELDSpecificConfig
			c.FrameLength = 480
		} else {
			c.FrameLength = 512
		}
		return c, r.err // the rest of ELDSpecificConfig is not needed
	default:
		return c, nil // other types: the header fields are all we know
	}
	if errorResilient(c.ObjectType) {
		if ep := r.f(2); ep >= 2 {
			return c, r.err // ErrorProtectionSpecificConfig follows: nothing more to learn
		}
	}
	if r.err != nil {
		return c, r.err
	}
	if !c.SBR {
		readSyncExtension(r, &c)
	}
	return c, nil
}

// readGASpecificConfig reads GASpecificConfig (section 4.4.1).
func readGASpecificConfig(r *bitReader, c *AudioSpecificConfig) error {
	if r.f(1) == 1 { // frameLengthFlag
		c.FrameLength = 960
	}
	if c.ObjectType == ObjectTypeLD {
		c.FrameLength = c.FrameLength / 2 // 512 or 480
	}
	if r.f(1) == 1 { // dependsOnCoreCoder
		r.f(14) // coreCoderDelay
	}
	extension := r.f(1)
	if r.err != nil {
		return r.err
	}
	if c.ChannelConfig == 0 {
		n, err := readProgramConfigElement(r)
		if err != nil {
			return err
		}
		c.Channels = n
	}
	if c.ObjectType == 6 || c.ObjectType == 20 {
		r.f(3) // layerNr
	}
	if extension == 1 {
		if c.ObjectType == 22 {
			r.f(5)  // numOfSubFrame
			r.f(11) // layer_length
		}
		if c.ObjectType == 17 || c.ObjectType == 19 || c.ObjectType == 20 || c.ObjectType == 23 {
			r.f(3) // aacSection/Scalefactor/SpectralDataResilienceFlag
		}
		r.f(1) // extensionFlag3
	}
	return r.err
}

// readProgramConfigElement reads program_config_element() (section
// 4.4.1.1) and returns the number of channels it describes.
func readProgramConfigElement(r *bitReader) (int, error) {
	r.f(4) // element_instance_tag
	r.f(2) // object_type
	r.f(4) // sampling_frequency_index
	front, side, back := r.f(4), r.f(4), r.f(4)
	lfe, assoc, cc := r.f(2), r.f(3), r.f(4)
	if r.f(1) == 1 { // mono_mixdown_present
		r.f(4)
	}
	if r.f(1) == 1 { // stereo_mixdown_present
		r.f(4)
	}
	if r.f(1) == 1 { // matrix_mixdown_idx_present
		r.f(3)
	}
	channels := lfe
	for range front + side + back {
		channels += 1 + r.f(1) // is_cpe: a channel pair
		r.f(4)                 // element_tag_select
	}
	r.skip(4*lfe + 4*assoc + 5*cc)
	// byte_alignment() relative to the start of the AudioSpecificConfig.
	if pad := (8 - r.Pos()%8) % 8; pad > 0 {
		r.f(pad)
	}
	r.skip(8 * r.f(8)) // comment_field_bytes and the comment
	if r.err != nil {
		return 0, r.err
	}
	if channels == 0 {
		return 0, fmt.Errorf("program config element without channels")
	}
	return channels, nil
}

// readSyncExtension reads the backward-compatible SBR/PS signalling that may
// follow the core configuration (section 1.6.5.2). It is optional: a
// truncated or unknown extension is ignored.
func readSyncExtension(r *bitReader, c *AudioSpecificConfig) {
	if r.BitsLeft() < 16 {
		return
	}
	s := *r
	if s.f(11) != 0x2B7 {
		return
	}
	if s.objectType() != ObjectTypeSBR {
		return
	}
	if s.f(1) != 1 { // sbrPresentFlag
		return
	}
	rate := s.sampleRate()
	if s.err != nil || rate <= 0 {
		return
	}
	c.SBR, c.ExtensionSampleRate = true, rate
	if s.BitsLeft() >= 12 && s.f(11) == 0x548 && s.f(1) == 1 && s.err == nil {
		c.PS = true
	}
}

// Marshal writes the configuration as an AudioSpecificConfig. Only the
// general audio types without error resilience (Main, LC, SSR, LTP...) are
// supported, with a channelConfiguration from 1 to 7; SBR and PS are
// written in the explicit hierarchical form (object type 5 or 29).
func (c AudioSpecificConfig) Marshal() ([]byte, error) {
	switch {
	case !generalAudio(c.ObjectType) || errorResilient(c.ObjectType) || c.ObjectType == 6 || c.ObjectType == 20:
		return nil, fmt.Errorf("%w: object type %d", ErrUnsupported, c.ObjectType)
	case c.ChannelConfig < 1 || c.ChannelConfig > 7:
		return nil, fmt.Errorf("%w: channelConfiguration %d", ErrUnsupported, c.ChannelConfig)
	case c.SampleRate <= 0 || c.SampleRate >= 1<<24:
		return nil, fmt.Errorf("%w: sample rate %d", ErrUnsupported, c.SampleRate)
	case c.FrameLength != 0 && c.FrameLength != 1024 && c.FrameLength != 960:
		return nil, fmt.Errorf("%w: frame length %d", ErrUnsupported, c.FrameLength)
	}
	ext := c.ExtensionSampleRate
	if (c.SBR || c.PS) && ext == 0 {
		ext = 2 * c.SampleRate
	}
	if ext >= 1<<24 {
		return nil, fmt.Errorf("%w: extension sample rate %d", ErrUnsupported, ext)
	}
	var w bitio.Writer
	writeRate := func(rate int) {
		if i := SampleRateIndex(rate); i >= 0 {
			w.WriteBits(uint64(i), 4)
		} else {
			w.WriteBits(15, 4)
			w.WriteBits(uint64(rate), 24)
		}
	}
	switch {
	case c.PS:
		w.WriteBits(ObjectTypePS, 5)
	case c.SBR:
		w.WriteBits(ObjectTypeSBR, 5)
	default:
		w.WriteBits(uint64(c.ObjectType), 5)
	}
	writeRate(c.SampleRate)
	w.WriteBits(uint64(c.ChannelConfig), 4)
	if c.SBR || c.PS {
		writeRate(ext)
		w.WriteBits(uint64(c.ObjectType), 5)
	}
	w.WriteFlag(c.FrameLength == 960) // frameLengthFlag
	w.WriteBits(0, 2)                 // dependsOnCoreCoder, extensionFlag
	return w.Bytes(), nil
}

// BuildAudioSpecificConfig writes the AudioSpecificConfig of a plain
// configuration: an object type (2 for AAC LC), a sample rate and a channel
// count (1 to 6, or 8 for 7.1).
func BuildAudioSpecificConfig(objectType, sampleRate, channels int) ([]byte, error) {
	config := channels
	switch {
	case channels == 8:
		config = 7
	case channels < 1 || channels > 6:
		return nil, fmt.Errorf("%w: %d channels", ErrUnsupported, channels)
	}
	return AudioSpecificConfig{ObjectType: objectType, SampleRate: sampleRate, ChannelConfig: config}.Marshal()
}

// TrackFromConfig describes an AAC track from its AudioSpecificConfig.
// Track.SampleRate and Track.Channels are what a decoder outputs (see
// OutputSampleRate and OutputChannels); Track.Config is a copy.
func TrackFromConfig(asc []byte) (*media.Track, error) {
	c, err := ParseAudioSpecificConfig(asc)
	if err != nil {
		return nil, err
	}
	return &media.Track{
		Codec:      media.CodecAAC,
		Config:     bytes.Clone(asc),
		Profile:    c.ProfileName(),
		SampleRate: c.OutputSampleRate(),
		Channels:   c.OutputChannels(),
	}, nil
}
