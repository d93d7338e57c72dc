// Package transcode converts a stream's audio between AAC and Opus with an
// ffmpeg subprocess, so that WebRTC viewers get Opus from RTMP publishers and
// RTMP, FLV and HLS viewers get AAC from WebRTC publishers. The server stays
// pure Go: ffmpeg is an external program, run once per converted stream
// while someone needs it, restarted when it crashes and stopped when unused.
//
// A Transcoder converts one track's frames; a Manager runs one shared,
// on-demand Job per (stream, codec) on top of the hub. See docs/transcode.md.
package transcode

import (
	"errors"
	"log/slog"
	"time"

	"github.com/quasipaa/quasipaa/internal/media"
)

// Errors returned by this package.
var (
	// ErrFFmpegNotFound means the ffmpeg executable could not be found or run.
	ErrFFmpegNotFound = errors.New("transcode: ffmpeg not found")
	// ErrUnsupported means the track cannot be converted to the requested codec.
	ErrUnsupported = errors.New("transcode: unsupported conversion")
	// ErrClosed means the transcoder, job or manager was closed.
	ErrClosed = errors.New("transcode: closed")
)

// Output is one converted frame and the track it belongs to. Track stays the
// same pointer until the output parameters change, so a consumer spots a
// change (a new sequence header to send) by comparing pointers.
type Output struct {
	// Track describes the converted audio; immutable.
	Track *media.Track
	// Frame is the converted frame: DTS = PTS on the input's timeline, Key
	// set, Track 0 (the consumer places it in its own track list), Ingest
	// the time it came out of the converter. Immutable.
	Frame *media.Frame
}

// Transcoder converts one audio track's frames to another codec.
type Transcoder interface {
	// Write queues one input frame and never blocks: when the converter is
	// behind or restarting, the frame is dropped and counted. The frame is
	// not modified. It returns ErrClosed after Close.
	Write(f *media.Frame) error
	// Output returns the channel of converted frames. It is closed once
	// Close has returned. A consumer that does not keep up loses frames
	// (counted), the converter never waits for it.
	Output() <-chan Output
	// Track returns the output track, nil until the first output frame.
	Track() *media.Track
	// Stats returns the transcoder's counters.
	Stats() Stats
	// Close stops the converter and waits for all its goroutines. Frames
	// queued before Close are still converted when the converter drains
	// them in time. It is safe to call more than once.
	Close() error
}

// Stats counts what a Transcoder did.
type Stats struct {
	// FramesIn counts input frames accepted by Write.
	FramesIn uint64
	// FramesOut counts converted frames sent on the Output channel.
	FramesOut uint64
	// DroppedIn counts input frames dropped: queue full, converter
	// restarting, or a frame that could not be framed (empty, bad packet).
	DroppedIn uint64
	// DroppedOut counts converted frames dropped: Output channel full, or
	// frames that fell before the previous one after the input's clock
	// stepped back, or before the start of the timeline.
	DroppedOut uint64
	// Restarts counts converter processes started after the first.
	Restarts uint64
	// Reanchors counts the times the input's timestamps departed from its
	// sample count (a gap, a jump) and the output was re-anchored.
	Reanchors uint64
	// PID is the current converter process id, 0 when none runs.
	PID int
	// Stderr holds the last lines ffmpeg wrote to its standard error.
	Stderr []string
}

// FFmpegOptions configure NewFFmpeg. Zero values take the defaults.
type FFmpegOptions struct {
	// Path is the ffmpeg executable, a name looked up in PATH or a path
	// (default "ffmpeg").
	Path string
	// Bitrate is the output bit rate in bit/s (default: Opus 64 kb/s mono,
	// 96 kb/s stereo; AAC 64 kb/s mono, 128 kb/s stereo).
	Bitrate int
	// QueueSize is the number of input frames waiting for the converter
	// before Write drops (default 256, about 5 s of audio: enough for a
	// viewer's GOP-cache burst while ffmpeg starts).
	QueueSize int
	// OutputBuffer is the capacity of the Output channel (default 256).
	OutputBuffer int
	// Tolerance is how far an input frame's PTS may depart from the time
	// its sample count predicts before the output is re-anchored on it
	// (default 20 ms, less than one lost 20 ms Opus packet).
	Tolerance time.Duration
	// Discontinuity is the backward jump of the input's timestamps taken as
	// a restart of its clock, that the output follows (default 1 s). A
	// smaller backward step drops the output frames that would overlap.
	Discontinuity time.Duration
	// MinBackoff and MaxBackoff bound the wait before restarting a crashed
	// ffmpeg; the wait doubles with every crash in a row (defaults 250 ms, 10 s).
	MinBackoff, MaxBackoff time.Duration
	// StallTimeout restarts an ffmpeg that was fed but produced nothing
	// for this long (default 10 s).
	StallTimeout time.Duration
	// DrainTimeout is how long Close lets ffmpeg finish after closing its
	// input, before SIGTERM (default 500 ms).
	DrainTimeout time.Duration
	// KillTimeout is how long Close waits after SIGTERM before SIGKILL
	// (default 2 s).
	KillTimeout time.Duration
	// Logger receives the transcoder's logs (default slog.Default()).
	Logger *slog.Logger
}

func (o *FFmpegOptions) setDefaults() {
	if o.Path == "" {
		o.Path = "ffmpeg"
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 256
	}
	if o.OutputBuffer <= 0 {
		o.OutputBuffer = 256
	}
	if o.Tolerance <= 0 {
		o.Tolerance = 20 * time.Millisecond
	}
	if o.Discontinuity <= 0 {
		o.Discontinuity = time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 250 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(10*time.Second, o.MinBackoff)
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = 10 * time.Second
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 500 * time.Millisecond
	}
	if o.KillTimeout <= 0 {
		o.KillTimeout = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// samplesToDuration converts n samples at rate Hz to a duration without
// overflowing for any realistic n (n may be negative).
func samplesToDuration(n int64, rate int) time.Duration {
	r := int64(rate)
	return time.Duration(n/r)*time.Second + time.Duration(n%r)*time.Second/time.Duration(r)
}
