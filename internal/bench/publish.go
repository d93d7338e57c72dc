package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/quasipaa/quasipaa/internal/protocol/flv"
	"github.com/quasipaa/quasipaa/internal/protocol/rtmp"
)

// setDataFrame is the AMF0 string "@setDataFrame" that publishers put before
// onMetaData in a data message.
var setDataFrame = []byte("\x02\x00\x0d@setDataFrame")

// fileTag is one tag of the file to publish.
type fileTag struct {
	typ    uint8
	ts     uint32 // ms from the file's first tag
	body   []byte
	header bool // metadata or sequence header: sent on the first pass only
	video  bool // a coded video frame

	// Coded video frames only (for the send log of WHEP latency).
	cto int32  // composition time offset, ms: PTS = ts + cto
	key bool   // a keyframe
	vcl uint32 // bytes of its H.264 slice NAL units (headers included), 0 if not H.264
}

// flvFile is an FLV file loaded for publishing.
type flvFile struct {
	tags []fileTag
	loop uint32 // ms added to the timestamps at each pass
	avcC []byte // the AVC decoder configuration record, if the video is legacy AVC

	lengthSize int // of the AVC NAL unit lengths
}

// loadFLV reads a whole FLV file. Its audio, video and script tags are kept,
// except video end-of-sequence markers. The loop length is the video's
// period (last minus first frame timestamp, plus one frame step), so that
// video timestamps go on at their usual step from one pass to the next.
func loadFLV(path string) (*flvFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := flv.NewReader(f, flv.ReaderOptions{})
	if _, err := r.ReadHeader(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := &flvFile{}
	first, haveFirst := uint32(0), false
	lengthSize := 4 // of the AVC NAL unit lengths, from the sequence header
	for {
		t, err := r.ReadTag()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		ft := fileTag{typ: t.Type, ts: t.Timestamp}
		switch t.Type {
		case flv.TagVideo:
			if isSequenceEnd(t.Body) {
				continue
			}
			k := videoKind(t.Body)
			ft.header = k == kindVideoConfig
			ft.video = k == kindVideoFrame
			ft.body = slices.Clone(t.Body)
			if ft.header && isLegacyAVC(t.Body) && len(t.Body) > 9 {
				lengthSize = int(t.Body[9]&3) + 1
				out.avcC = slices.Clone(t.Body[5:])
			}
			if ft.video {
				ft.cto, ft.key, ft.vcl = videoFrameInfo(t.Body, lengthSize)
			}
		case flv.TagAudio:
			ft.header = audioKind(t.Body) == kindAudioConfig
			ft.body = slices.Clone(t.Body)
		case flv.TagScript:
			ft.header = true
			ft.body = append(slices.Clone(setDataFrame), t.Body...)
		default:
			continue
		}
		if !ft.header && (!haveFirst || t.Timestamp < first) {
			first, haveFirst = t.Timestamp, true
		}
		out.tags = append(out.tags, ft)
	}
	var firstVideo, lastVideo uint32
	var steps []uint32
	frames := 0
	for i := range out.tags {
		t := &out.tags[i]
		t.ts = max(t.ts, first) - first
		if !t.video {
			continue
		}
		if frames == 0 {
			firstVideo = t.ts
		} else if t.ts > lastVideo {
			steps = append(steps, t.ts-lastVideo)
		}
		lastVideo = t.ts
		frames++
	}
	if frames == 0 {
		return nil, fmt.Errorf("%s: no video frames", path)
	}
	step := uint32(1)
	if len(steps) > 0 {
		slices.Sort(steps)
		step = steps[len(steps)/2]
	}
	out.loop = lastVideo + step - firstVideo
	out.lengthSize = lengthSize
	return out, nil
}

// isLegacyAVC reports whether a video body is legacy (non-Enhanced) AVC.
func isLegacyAVC(body []byte) bool {
	return len(body) >= 2 && body[0]&0x80 == 0 && body[0]&0x0f == 7
}

// videoFrameInfo reads a coded video frame's composition time offset and
// keyframe flag, and for legacy AVC the bytes of its slice NAL units (types
// 1 to 5, header byte included): what a WHEP player can measure of the same
// frame from its RTP packets, to recognise it.
func videoFrameInfo(body []byte, lengthSize int) (cto int32, key bool, vcl uint32) {
	if len(body) == 0 {
		return 0, false, 0
	}
	key = (body[0]>>4)&7 == 1
	if !isLegacyAVC(body) || len(body) < 5 {
		return 0, key, 0
	}
	cto = int32(uint32(body[2])<<16|uint32(body[3])<<8|uint32(body[4])) << 8 >> 8 // signed 24 bits
	for b := body[5:]; len(b) >= lengthSize; {
		n := 0
		for _, c := range b[:lengthSize] {
			n = n<<8 | int(c)
		}
		b = b[lengthSize:]
		if n <= 0 || n > len(b) {
			break
		}
		if t := b[0] & 0x1f; t >= 1 && t <= 5 {
			vcl += uint32(n)
		}
		b = b[n:]
	}
	return cto, key, vcl
}

// isSequenceEnd reports whether a video body is an end-of-sequence marker
// (legacy AVC/HEVC packet type 2, or Enhanced RTMP SequenceEnd).
func isSequenceEnd(body []byte) bool {
	if len(body) < 2 {
		return false
	}
	if body[0]&0x80 != 0 {
		return body[0]&0x0f == 2
	}
	codec := body[0] & 0x0f
	return (codec == 7 || codec == 12) && body[1] == 2
}

// publisher pushes an FLV file over RTMP in real time.
type publisher struct {
	url    string
	primed chan struct{} // closed when the first video frame is sent
	done   chan struct{}
	sent   *sendLog    // when each video frame was sent
	wc     *whepClient // WHIP publishers only

	bytes atomic.Uint64
	tags  atomic.Uint64

	started   time.Time
	published time.Time
	ended     time.Time
	loops     int
	maxLate   time.Duration
	err       error
}

func newPublisher(url string) *publisher {
	return &publisher{url: url, primed: make(chan struct{}), done: make(chan struct{}), sent: newSendLog()}
}

// run publishes until ctx ends or the connection fails.
func (p *publisher) run(ctx context.Context, f *flvFile, timeout time.Duration, log *slog.Logger) {
	defer close(p.done)
	p.started = time.Now()
	p.err = p.publish(ctx, f, timeout)
	p.ended = time.Now()
	if p.err != nil && ctx.Err() != nil && !p.published.IsZero() {
		p.err = nil // the run is over
	}
	if p.err != nil {
		log.Debug("publisher failed", "url", p.url, "err", p.err)
	}
}

func (p *publisher) publish(ctx context.Context, f *flvFile, timeout time.Duration) error {
	if p.wc != nil {
		return p.publishWHIP(ctx, f, timeout)
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := rtmp.Dial(dctx, p.url, rtmp.WithWriteTimeout(timeout), rtmp.WithReadTimeout(0))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	if err := c.Publish(dctx); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	cancel()
	p.published = time.Now()
	// Drain what the server sends (acknowledgements, pings), so that it is
	// never blocked writing to us; it ends when the connection closes.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			if _, err := c.ReadMessageBorrowed(); err != nil {
				return
			}
		}
	}()
	defer func() {
		_ = c.Close()
		<-drained
	}()
	return p.pace(ctx, f, func(t *fileTag, ts uint64) (int, error) {
		return len(t.body), c.WriteMessage(t.typ, uint32(ts), t.body)
	})
}

// pace sends the file's tags in real time, looping, with send, until ctx
// ends or send fails; send returns the payload bytes it sent (0: the tag
// was not sent). It logs each video frame's send time.
func (p *publisher) pace(ctx context.Context, f *flvFile, send func(t *fileTag, ts uint64) (int, error)) error {
	start := time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	primed := false
	var last [32]uint64 // last timestamp sent, by message type
	for pass := 0; ; pass++ {
		base := uint64(pass) * uint64(f.loop)
		for i := range f.tags {
			t := &f.tags[i]
			if pass > 0 && t.header {
				continue
			}
			ts := base + uint64(t.ts)
			// Audio that outlasts the video's period would overlap the next
			// pass: its first frames are skipped rather than sent backwards.
			lt := &last[t.typ&31]
			if ts < *lt {
				continue
			}
			*lt = ts
			due := start.Add(time.Duration(ts) * time.Millisecond)
			if wait := time.Until(due); wait > 0 {
				timer.Reset(wait)
				select {
				case <-timer.C:
				case <-ctx.Done():
					return ctx.Err()
				}
			} else if late := -wait; late > p.maxLate {
				p.maxLate = late
			}
			if t.video {
				p.sent.add(sentFrame{dts: int64(ts), pts: int64(ts) + int64(t.cto), sent: time.Now(), key: t.key, vcl: t.vcl})
			}
			n, err := send(t, ts)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("write: %w", err)
			}
			if n == 0 {
				continue
			}
			p.bytes.Add(uint64(n))
			p.tags.Add(1)
			if t.video && !primed {
				primed = true
				close(p.primed)
			}
		}
		p.loops = pass + 1
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}
