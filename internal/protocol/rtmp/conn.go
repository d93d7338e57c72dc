package rtmp

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/quasipaa/quasipaa/internal/protocol/amf0"
)

// Option configures a ServerConn or a ClientConn.
type Option func(*config)

type config struct {
	chunkSize        int
	handshakeTimeout time.Duration
	readTimeout      time.Duration
	writeTimeout     time.Duration
	maxMessageSize   uint32
	maxChunkSize     uint32
	maxChunkStreams  int
	windowAckSize    uint32
	logger           *slog.Logger
	dialer           *net.Dialer
}

func newConfig(chunkSize int, opts []Option) config {
	c := config{
		chunkSize:        chunkSize,
		handshakeTimeout: 10 * time.Second,
		readTimeout:      30 * time.Second,
		writeTimeout:     10 * time.Second,
		maxMessageSize:   DefaultMaxMessageSize,
		maxChunkSize:     DefaultMaxChunkSize,
		maxChunkStreams:  DefaultMaxChunkStreams,
		windowAckSize:    DefaultWindowAckSize,
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// WithChunkSize sets the chunk size this end sends with (server default
// DefaultServerChunkSize, client default DefaultClientChunkSize). Every play
// connection of a server must use the same value so chunk bytes can be shared.
// Values outside 1..0xFFFFFF are ignored.
func WithChunkSize(n int) Option {
	return func(c *config) {
		if n >= 1 && n <= 0xffffff {
			c.chunkSize = n
		}
	}
}

// WithHandshakeTimeout bounds the handshake (default 10s; 0 disables).
func WithHandshakeTimeout(d time.Duration) Option {
	return func(c *config) { c.handshakeTimeout = d }
}

// WithReadTimeout bounds each read of the command exchange and of a
// publisher's ReadMessage (default 30s; 0 disables). ServePlayer does not use
// it: players may legitimately stay silent.
func WithReadTimeout(d time.Duration) Option {
	return func(c *config) { c.readTimeout = d }
}

// WithWriteTimeout bounds each write (default 10s; 0 disables).
func WithWriteTimeout(d time.Duration) Option {
	return func(c *config) { c.writeTimeout = d }
}

// WithMaxMessageSize sets the largest incoming message accepted (default DefaultMaxMessageSize).
func WithMaxMessageSize(n uint32) Option {
	return func(c *config) {
		if n > 0 {
			c.maxMessageSize = n
		}
	}
}

// WithMaxChunkSize sets the largest incoming Set Chunk Size accepted (default DefaultMaxChunkSize).
func WithMaxChunkSize(n uint32) Option {
	return func(c *config) {
		if n > 0 && n <= MaxChunkSize {
			c.maxChunkSize = n
		}
	}
}

// WithMaxChunkStreams bounds distinct incoming chunk stream ids (default DefaultMaxChunkStreams).
func WithMaxChunkStreams(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxChunkStreams = n
		}
	}
}

// WithWindowAckSize sets the acknowledgement window this end announces (default DefaultWindowAckSize).
func WithWindowAckSize(n uint32) Option {
	return func(c *config) {
		if n > 0 {
			c.windowAckSize = n
		}
	}
}

// WithLogger sets the logger for protocol diagnostics (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithDialer sets the dialer Dial uses.
func WithDialer(d *net.Dialer) Option {
	return func(c *config) { c.dialer = d }
}

// countingReader counts bytes received, for acknowledgements.
type countingReader struct {
	r io.Reader
	n uint64
}

// Read reads from the wrapped reader and counts the bytes.
func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += uint64(n)
	return n, err
}

const readBufferSize = 16 << 10

// conn is the part of ServerConn and ClientConn that moves messages.
type conn struct {
	cfg config
	nc  net.Conn
	cnt countingReader
	br  *bufio.Reader
	cr  *ChunkReader
	log *slog.Logger

	// wmu serialises every write to nc; wbuf and pbuf are guarded by it.
	wmu      sync.Mutex
	wbuf     []byte
	pbuf     []byte
	outChunk int // chunk size in force for what we send

	// read side, owned by the single reading goroutine
	ackWindow  uint32 // acknowledge every ackWindow bytes received (0: never)
	lastAck    uint64
	pending    []Message // sub-messages of an aggregate message
	pendingBuf []Message
	// dlMu guards deadlines against a context cancellation racing a refresh.
	dlMu         sync.Mutex
	canceled     bool
	readDeadline time.Time // owned by the reading goroutine (written under dlMu)
	writeDL      time.Time // guarded by wmu (written under dlMu)
}

func (c *conn) init(nc net.Conn, cfg config) {
	c.cfg = cfg
	c.nc = nc
	c.log = cfg.logger
	c.cnt.r = nc
	// 16 KiB: enough to batch small chunks per read syscall, while payload
	// reads larger than the buffer go straight into the message buffer; a
	// server holding thousands of mostly silent players keeps it small.
	c.br = bufio.NewReaderSize(&c.cnt, readBufferSize)
	c.cr = NewChunkReader(c.br, ReaderConfig{
		MaxChunkSize:    cfg.maxChunkSize,
		MaxMessageSize:  cfg.maxMessageSize,
		MaxChunkStreams: cfg.maxChunkStreams,
	})
	c.outChunk = DefaultChunkSize
	c.ackWindow = cfg.windowAckSize
}

// watchContext makes blocking I/O on nc return when ctx ends; call the
// returned stop function when done.
func (c *conn) watchContext(ctx context.Context) (stop func() bool) {
	if ctx == nil || ctx.Done() == nil {
		return func() bool { return true }
	}
	return context.AfterFunc(ctx, func() {
		c.dlMu.Lock()
		c.canceled = true
		_ = c.nc.SetDeadline(time.Unix(1, 0))
		c.dlMu.Unlock()
	})
}

// setDeadline sets both deadlines unless a context already expired them. It
// is used around the handshake (before the lazily refreshed deadlines are
// armed) and on close.
func (c *conn) setDeadline(t time.Time) {
	c.dlMu.Lock()
	if !c.canceled {
		_ = c.nc.SetDeadline(t)
	}
	c.dlMu.Unlock()
}

// ctxErr prefers the context's error when it caused err.
func ctxErr(ctx context.Context, err error) error {
	if err != nil && ctx != nil && ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

// setReadTimeout arms the read deadline, refreshing it lazily to keep
// time.Now and timer updates off the per-message path.
func (c *conn) setReadTimeout(d time.Duration) {
	if d <= 0 {
		if !c.readDeadline.IsZero() {
			c.dlMu.Lock()
			if !c.canceled {
				c.readDeadline = time.Time{}
				_ = c.nc.SetReadDeadline(time.Time{})
			}
			c.dlMu.Unlock()
		}
		return
	}
	now := time.Now()
	if c.readDeadline.Sub(now) > d-d/8 {
		return
	}
	c.dlMu.Lock()
	if !c.canceled {
		c.readDeadline = now.Add(d)
		_ = c.nc.SetReadDeadline(c.readDeadline)
	}
	c.dlMu.Unlock()
}

// armWrite sets the write deadline; wmu must be held.
func (c *conn) armWrite() {
	d := c.cfg.writeTimeout
	if d <= 0 {
		return
	}
	now := time.Now()
	if c.writeDL.Sub(now) > d-d/8 {
		return
	}
	c.dlMu.Lock()
	if !c.canceled {
		c.writeDL = now.Add(d)
		_ = c.nc.SetWriteDeadline(c.writeDL)
	}
	c.dlMu.Unlock()
}

// writeMsg serialises and writes one message.
func (c *conn) writeMsg(csid uint32, typ uint8, sid, ts uint32, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeMsgLocked(csid, typ, sid, ts, payload)
}

func (c *conn) writeMsgLocked(csid uint32, typ uint8, sid, ts uint32, payload []byte) error {
	c.wbuf = AppendMessage(c.wbuf[:0], csid, typ, sid, ts, payload, c.outChunk)
	c.armWrite()
	_, err := c.nc.Write(c.wbuf)
	return err
}

// writeAMF encodes values as an AMF0 command or data message and writes it.
func (c *conn) writeAMF(csid uint32, typ uint8, sid uint32, values ...any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var err error
	c.pbuf, err = amf0.Append(c.pbuf[:0], values...)
	if err != nil {
		return err
	}
	return c.writeMsgLocked(csid, typ, sid, 0, c.pbuf)
}

func (c *conn) writeControl(typ uint8, v uint32) error {
	var p [4]byte
	binary.BigEndian.PutUint32(p[:], v)
	return c.writeMsg(CSIDControl, typ, 0, 0, p[:])
}

func (c *conn) writeUserControl(event uint16, data ...uint32) error {
	var p [10]byte
	binary.BigEndian.PutUint16(p[:], event)
	n := 2
	for _, d := range data {
		if n+4 > len(p) {
			break
		}
		binary.BigEndian.PutUint32(p[n:], d)
		n += 4
	}
	return c.writeMsg(CSIDControl, MsgUserControl, 0, 0, p[:n])
}

// setChunkSize announces and starts using a new outgoing chunk size.
func (c *conn) setChunkSize(n int) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var p [4]byte
	binary.BigEndian.PutUint32(p[:], uint32(n))
	if err := c.writeMsgLocked(CSIDControl, MsgSetChunkSize, 0, 0, p[:]); err != nil {
		return err
	}
	c.outChunk = n
	return nil
}

// readMessage returns the next message that is not protocol control: it
// answers pings, sends acknowledgements, tracks the peer's window and splits
// aggregate messages. User control messages other than ping are returned.
func (c *conn) readMessage(borrow bool) (Message, error) {
	for {
		if len(c.pending) > 0 {
			m := c.pending[0]
			c.pending = c.pending[1:]
			return m, nil
		}
		var m Message
		var err error
		if borrow {
			m, err = c.cr.ReadMessageBorrowed()
		} else {
			m, err = c.cr.ReadMessage()
		}
		if err != nil {
			return Message{}, err
		}
		if c.ackWindow > 0 && c.cnt.n-c.lastAck >= uint64(c.ackWindow) {
			c.lastAck = c.cnt.n
			if err := c.writeControl(MsgAck, uint32(c.cnt.n)); err != nil {
				return Message{}, err
			}
		}
		switch m.Type {
		case MsgAck:
			continue
		case MsgWindowAckSize:
			if len(m.Payload) < 4 {
				return Message{}, fmt.Errorf("%w: window ack size of %d bytes", ErrBadMessage, len(m.Payload))
			}
			if w := binary.BigEndian.Uint32(m.Payload); w > 0 {
				c.ackWindow = min(w, c.cfg.windowAckSize)
			}
			continue
		case MsgSetPeerBandwidth:
			continue
		case MsgUserControl:
			if len(m.Payload) < 2 {
				return Message{}, fmt.Errorf("%w: user control of %d bytes", ErrBadMessage, len(m.Payload))
			}
			if binary.BigEndian.Uint16(m.Payload) == EventPingRequest {
				if len(m.Payload) < 6 {
					return Message{}, fmt.Errorf("%w: ping of %d bytes", ErrBadMessage, len(m.Payload))
				}
				if err := c.writeUserControl(EventPingResponse, binary.BigEndian.Uint32(m.Payload[2:])); err != nil {
					return Message{}, err
				}
				continue
			}
			return m, nil
		case MsgAggregate:
			if err := c.splitAggregate(m); err != nil {
				return Message{}, err
			}
			continue
		}
		return m, nil
	}
}

// splitAggregate queues the sub-messages of an aggregate message; their
// payloads alias the aggregate's.
func (c *conn) splitAggregate(m Message) error {
	p := m.Payload
	c.pending = c.pendingBuf[:0]
	var base uint32
	first := true
	for len(p) > 0 {
		if len(p) < 11 {
			return fmt.Errorf("%w: aggregate sub-header truncated", ErrBadMessage)
		}
		typ := p[0]
		size := int(u24(p[1:]))
		ts := u24(p[4:]) | uint32(p[7])<<24
		if len(p) < 11+size {
			return fmt.Errorf("%w: aggregate sub-message truncated", ErrBadMessage)
		}
		if first {
			base = ts
			first = false
		}
		if typ == MsgAudio || typ == MsgVideo || typ == MsgDataAMF0 {
			c.pending = append(c.pending, Message{
				Type:      typ,
				StreamID:  m.StreamID,
				Timestamp: m.Timestamp + (ts - base),
				Payload:   p[11 : 11+size : 11+size],
			})
		}
		p = p[11+size:]
		if len(p) >= 4 { // back pointer
			p = p[4:]
		} else {
			p = nil
		}
	}
	c.pendingBuf = c.pending[:0]
	return nil
}

// command is a parsed AMF0 (or AMF3-wrapped AMF0) command message.
type command struct {
	name string
	txn  float64
	obj  amf0.Object // command object, nil if null
	args []any       // values after the command object
}

// parseCommand decodes a command message; it returns ok=false for messages
// that are not commands.
func (c *conn) parseCommand(m Message) (command, bool, error) {
	p := m.Payload
	switch m.Type {
	case MsgCommandAMF0:
	case MsgCommandAMF3:
		if len(p) > 0 && p[0] == 0 {
			p = p[1:]
		}
	default:
		return command{}, false, nil
	}
	// Trailing garbage after the leading values is tolerated; a command
	// without at least its name is not.
	vals, err := amf0.Decode(p)
	if len(vals) == 0 || (err != nil && len(vals) < 2) {
		if err == nil {
			err = errors.New("empty")
		}
		return command{}, true, fmt.Errorf("%w: command: %w", ErrBadMessage, err)
	}
	name, ok := vals[0].(string)
	if !ok {
		return command{}, true, fmt.Errorf("%w: command name is %T", ErrBadMessage, vals[0])
	}
	cmd := command{name: name}
	if len(vals) > 1 {
		cmd.txn, _ = vals[1].(float64)
	}
	if len(vals) > 2 {
		if props, ok := amf0.Properties(vals[2]); ok {
			cmd.obj = amf0.Object(props)
		}
		cmd.args = vals[3:]
	}
	return cmd, true, nil
}

func (cmd command) argString(i int) string {
	if i < len(cmd.args) {
		s, _ := cmd.args[i].(string)
		return s
	}
	return ""
}

func (cmd command) argNumber(i int, def float64) float64 {
	if i < len(cmd.args) {
		if f, ok := cmd.args[i].(float64); ok {
			return f
		}
	}
	return def
}

func (cmd command) argBool(i int) (value, ok bool) {
	if i < len(cmd.args) {
		value, ok = cmd.args[i].(bool)
	}
	return
}

// statusInfo returns the onStatus info object of a command (the first
// argument for onStatus, the second for _error's info).
func (cmd command) statusInfo() (level, code, desc string) {
	for _, a := range cmd.args {
		if props, ok := amf0.Properties(a); ok {
			o := amf0.Object(props)
			level, _ = o.GetString("level")
			code, _ = o.GetString("code")
			desc, _ = o.GetString("description")
			return
		}
	}
	return
}

func statusObject(level, code, desc string, extra ...amf0.Property) amf0.Object {
	o := amf0.Object{{Key: "level", Value: level}, {Key: "code", Value: code}, {Key: "description", Value: desc}}
	return append(o, extra...)
}

// closeGracefully closes nc after letting the peer read what was sent:
// closing with unread input would reset the connection and could discard
// our last message (e.g. an error onStatus) before the peer reads it.
func closeGracefully(nc net.Conn, linger time.Duration) error {
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err == nil {
			_ = nc.SetReadDeadline(time.Now().Add(linger))
			_, _ = io.Copy(io.Discard, io.LimitReader(nc, 1<<20))
		}
	}
	return nc.Close()
}

// isTimeout reports whether err is a deadline expiry.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
