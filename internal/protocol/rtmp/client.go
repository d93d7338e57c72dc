package rtmp

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/quasipaa/quasipaa/internal/protocol/amf0"
)

// ClientConn is the client side of an RTMP connection: Dial, then Publish
// and WriteMessage, or Play and ReadMessage. WriteMessage may run
// concurrently with ReadMessage; each of them is for one goroutine at a time.
type ClientConn struct {
	conn
	app, name, query, tcURL string
	streamID                uint32
	txn                     float64
	publishing, playing     bool
	queued                  []Message
	closed                  atomic.Bool
}

// ParseURL splits rtmp://host[:port]/app/stream?query into the address to
// dial (port 1935 by default), the app, the stream name and the raw query.
func ParseURL(rawURL string) (addr, app, name, query string, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", "", "", "", fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	if u.Scheme != "rtmp" {
		return "", "", "", "", fmt.Errorf("%w: scheme %q (only rtmp)", ErrBadURL, u.Scheme)
	}
	if u.Host == "" {
		return "", "", "", "", fmt.Errorf("%w: no host", ErrBadURL)
	}
	addr = u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "1935")
	}
	app, name, _ = strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if app == "" || name == "" {
		return "", "", "", "", fmt.Errorf("%w: %q needs /app/stream", ErrBadURL, rawURL)
	}
	return addr, app, name, u.RawQuery, nil
}

// Dial connects to an RTMP server: TCP, handshake, Set Chunk Size and
// connect. ctx bounds the whole exchange.
func Dial(ctx context.Context, rawURL string, opts ...Option) (*ClientConn, error) {
	addr, app, name, query, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	cfg := newConfig(DefaultClientChunkSize, opts)
	d := cfg.dialer
	if d == nil {
		d = &net.Dialer{}
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &ClientConn{app: app, name: name, query: query}
	c.tcURL = "rtmp://" + addr + "/" + app
	c.init(nc, cfg)
	stop := c.watchContext(ctx)
	defer stop()
	if err := c.connect(ctx); err != nil {
		_ = nc.Close()
		return nil, ctxErr(ctx, err)
	}
	return c, nil
}

func (c *ClientConn) connect(ctx context.Context) error {
	if d := c.cfg.handshakeTimeout; d > 0 {
		c.setDeadline(time.Now().Add(d))
	}
	if err := clientHandshake(c.br, c.nc, 0); err != nil {
		return err
	}
	c.setDeadline(time.Time{})
	if err := c.setChunkSize(c.cfg.chunkSize); err != nil {
		return err
	}
	c.txn = 1
	if err := c.writeAMF(CSIDCommand, MsgCommandAMF0, 0, "connect", c.txn, amf0.Object{
		{Key: "app", Value: c.app},
		{Key: "type", Value: "nonprivate"},
		{Key: "flashVer", Value: "FMLE/3.0 (compatible; Quasipaa)"},
		{Key: "tcUrl", Value: c.tcURL},
		{Key: "fpad", Value: false},
		{Key: "capabilities", Value: 15.0},
		{Key: "audioCodecs", Value: 4071.0},
		{Key: "videoCodecs", Value: 252.0},
		{Key: "videoFunction", Value: 1.0},
		{Key: "objectEncoding", Value: 0.0},
	}); err != nil {
		return err
	}
	_, err := c.waitResult(ctx, c.txn)
	return err
}

func (c *ClientConn) nextTxn() float64 {
	c.txn++
	return c.txn
}

// streamName is the name sent with publish/play: the stream plus its query.
func (c *ClientConn) streamName() string {
	if c.query != "" {
		return c.name + "?" + c.query
	}
	return c.name
}

// next reads one message during the command exchange, queueing media.
func (c *ClientConn) next(ctx context.Context) (command, error) {
	for {
		if err := ctx.Err(); err != nil {
			return command{}, err
		}
		c.setReadTimeout(c.cfg.readTimeout)
		m, err := c.readMessage(false)
		if err != nil {
			return command{}, err
		}
		switch m.Type {
		case MsgAudio, MsgVideo, MsgDataAMF0, MsgDataAMF3:
			c.queued = append(c.queued, m)
			continue
		}
		cmd, ok, err := c.parseCommand(m)
		if err != nil {
			return command{}, err
		}
		if ok {
			return cmd, nil
		}
	}
}

// waitResult waits for the _result (or _error) of transaction txn.
func (c *ClientConn) waitResult(ctx context.Context, txn float64) (command, error) {
	for {
		cmd, err := c.next(ctx)
		if err != nil {
			return command{}, err
		}
		switch cmd.name {
		case "_result":
			if cmd.txn == txn {
				return cmd, nil
			}
		case "_error":
			if cmd.txn == txn {
				level, code, desc := cmd.statusInfo()
				return command{}, &StatusError{Level: level, Code: code, Description: desc}
			}
		case "onStatus":
			if level, code, desc := cmd.statusInfo(); level == "error" {
				return command{}, &StatusError{Level: level, Code: code, Description: desc}
			}
		}
	}
}

// waitStatus waits for an onStatus with code want; an error-level status
// fails with a *StatusError.
func (c *ClientConn) waitStatus(ctx context.Context, want string) error {
	for {
		cmd, err := c.next(ctx)
		if err != nil {
			return err
		}
		if cmd.name != "onStatus" && cmd.name != "_error" {
			continue
		}
		level, code, desc := cmd.statusInfo()
		if level == "error" || cmd.name == "_error" {
			return &StatusError{Level: level, Code: code, Description: desc}
		}
		if code == want {
			return nil
		}
	}
}

func (c *ClientConn) createStream(ctx context.Context) error {
	txn := c.nextTxn()
	if err := c.writeAMF(CSIDCommand, MsgCommandAMF0, 0, "createStream", txn, nil); err != nil {
		return err
	}
	res, err := c.waitResult(ctx, txn)
	if err != nil {
		return err
	}
	c.streamID = uint32(res.argNumber(0, float64(PlayStreamID)))
	return nil
}

// Publish announces the stream for publishing (releaseStream, FCPublish,
// createStream, publish "live") and waits for NetStream.Publish.Start. An
// error-level status is returned as a *StatusError.
func (c *ClientConn) Publish(ctx context.Context) error {
	if c.publishing || c.playing {
		return ErrState
	}
	stop := c.watchContext(ctx)
	defer stop()
	err := func() error {
		name := c.streamName()
		if err := c.writeAMF(CSIDCommand, MsgCommandAMF0, 0, "releaseStream", c.nextTxn(), nil, name); err != nil {
			return err
		}
		if err := c.writeAMF(CSIDCommand, MsgCommandAMF0, 0, "FCPublish", c.nextTxn(), nil, name); err != nil {
			return err
		}
		if err := c.createStream(ctx); err != nil {
			return err
		}
		if err := c.writeAMF(CSIDData, MsgCommandAMF0, c.streamID, "publish", c.nextTxn(), nil, name, "live"); err != nil {
			return err
		}
		return c.waitStatus(ctx, CodePublishStart)
	}()
	if err != nil {
		return ctxErr(ctx, err)
	}
	c.publishing = true
	return nil
}

// Play asks to play the stream (createStream, play, setBufferLength) and
// waits for NetStream.Play.Start. An error-level status (e.g.
// NetStream.Play.StreamNotFound) is returned as a *StatusError.
func (c *ClientConn) Play(ctx context.Context) error {
	if c.publishing || c.playing {
		return ErrState
	}
	stop := c.watchContext(ctx)
	defer stop()
	err := func() error {
		if err := c.createStream(ctx); err != nil {
			return err
		}
		if err := c.writeAMF(CSIDData, MsgCommandAMF0, c.streamID, "play", c.nextTxn(), nil, c.streamName(), -2000.0); err != nil {
			return err
		}
		if err := c.writeUserControl(EventSetBufferLength, c.streamID, 3000); err != nil {
			return err
		}
		return c.waitStatus(ctx, CodePlayStart)
	}()
	if err != nil {
		return ctxErr(ctx, err)
	}
	c.playing = true
	return nil
}

// StreamID returns the message stream id createStream returned.
func (c *ClientConn) StreamID() uint32 { return c.streamID }

// WriteMessage sends one message (MsgAudio, MsgVideo or MsgDataAMF0) of the
// published stream. The chunk bytes are built in a reused buffer.
func (c *ClientConn) WriteMessage(msgType uint8, timestamp uint32, payload []byte) error {
	if !c.publishing {
		return ErrState
	}
	return c.writeMsg(CSIDForType(msgType), msgType, c.streamID, timestamp, payload)
}

// ReadMessage returns the next audio, video or data message of the played
// stream; the payload belongs to the caller. Acknowledgements and pongs are
// sent as needed; an error-level onStatus is returned as a *StatusError.
func (c *ClientConn) ReadMessage() (Message, error) { return c.read(false) }

// ReadMessageBorrowed is ReadMessage without allocating: the payload is only
// valid until the next read.
func (c *ClientConn) ReadMessageBorrowed() (Message, error) { return c.read(true) }

func (c *ClientConn) read(borrow bool) (Message, error) {
	if len(c.queued) > 0 {
		m := c.queued[0]
		c.queued = c.queued[1:]
		return m, nil
	}
	for {
		c.setReadTimeout(c.cfg.readTimeout)
		m, err := c.readMessage(borrow)
		if err != nil {
			return Message{}, err
		}
		switch m.Type {
		case MsgAudio, MsgVideo, MsgDataAMF0, MsgDataAMF3:
			return m, nil
		case MsgCommandAMF0, MsgCommandAMF3:
			cmd, _, err := c.parseCommand(m)
			if err != nil {
				return Message{}, err
			}
			if cmd.name == "onStatus" {
				if level, code, desc := cmd.statusInfo(); level == "error" {
					return Message{}, &StatusError{Level: level, Code: code, Description: desc}
				}
			}
		}
	}
}

// Close ends the session (FCUnpublish and deleteStream when publishing, so
// the server sees a clean end) and closes the connection.
func (c *ClientConn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	if c.publishing {
		c.setDeadline(time.Now().Add(time.Second))
		_ = c.writeAMF(CSIDCommand, MsgCommandAMF0, 0, "FCUnpublish", 0.0, nil, c.streamName())
		_ = c.writeAMF(CSIDCommand, MsgCommandAMF0, 0, "deleteStream", 0.0, nil, float64(c.streamID))
		return closeGracefully(c.nc, time.Second)
	}
	return c.nc.Close()
}
