package rtmp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/quasipaa/quasipaa/internal/protocol/amf0"
)

// Action is what a client asked to do with a stream.
type Action uint8

// Actions a Request can carry.
const (
	ActionPublish Action = iota + 1 // ActionPublish: the client sends a stream.
	ActionPlay                      // ActionPlay: the client receives a stream.
)

// String returns "publish" or "play".
func (a Action) String() string {
	switch a {
	case ActionPublish:
		return "publish"
	case ActionPlay:
		return "play"
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Request is what a client asked for once the command exchange reached
// publish or play.
type Request struct {
	Action Action
	// App is the application name from connect, without any query.
	App string
	// Name is the stream name from publish/play, without any query.
	Name string
	// Query is the raw text after '?' in the stream name, or else in the app,
	// or else in tcUrl (kept raw for authentication).
	Query string
	// TcURL is the tcUrl the client sent with connect.
	TcURL string
	// RemoteAddr is the peer's address.
	RemoteAddr net.Addr
	// PublishType is publish's type argument ("live", "record", "append").
	PublishType string
	// FlashVer is the client's flashVer from connect (its software).
	FlashVer string
	// ObjectEncoding is the AMF version the client asked for in connect.
	ObjectEncoding float64
}

type serverState uint8

const (
	stateNew serverState = iota
	stateRequested
	statePublishing
	statePlaying
	stateClosed
)

// ServerConn is the server side of one RTMP connection.
//
// Sequence: Accept, then AcceptPublish + ReadMessage loop, or AcceptPlay +
// media writes (WriteBuffers/Write, or NetConn under WriteLock) with
// ServePlayer running in its own goroutine; or Reject.
//
// Write serialisation: every write the ServerConn makes itself (pong,
// acknowledgement, onStatus) takes an internal mutex. The media writer must
// take the same mutex: either through WriteBuffers/Write, or by holding
// WriteLock/WriteUnlock around writes to NetConn. Reads happen on one
// goroutine only (Accept, ReadMessage or ServePlayer).
type ServerConn struct {
	conn
	state  serverState
	req    *Request
	paused atomic.Bool
	closed atomic.Bool
}

// NewServerConn wraps an accepted connection.
func NewServerConn(nc net.Conn, opts ...Option) *ServerConn {
	s := &ServerConn{}
	s.init(nc, newConfig(DefaultServerChunkSize, opts))
	return s
}

// NetConn returns the underlying connection, for pre-serialised media writes.
// Hold WriteLock while writing to it, or use WriteBuffers.
func (s *ServerConn) NetConn() net.Conn { return s.nc }

// ChunkSize returns the chunk size this connection sends with: media written
// to a player must be serialised with it (AppendMessage's chunkSize).
func (s *ServerConn) ChunkSize() int { return s.cfg.chunkSize }

// Request returns the request Accept returned, or nil before.
func (s *ServerConn) Request() *Request { return s.req }

// Paused reports whether the player asked to pause (NetStream.pause); the
// media writer may skip frames while it is true.
func (s *ServerConn) Paused() bool { return s.paused.Load() }

// WriteLock locks the connection's write side, for writes to NetConn.
func (s *ServerConn) WriteLock() { s.wmu.Lock() }

// WriteUnlock releases WriteLock.
func (s *ServerConn) WriteUnlock() { s.wmu.Unlock() }

// WriteBuffers writes pre-serialised chunk bytes with one writev under the
// write lock and the write timeout. It consumes bufs like net.Buffers.WriteTo.
func (s *ServerConn) WriteBuffers(bufs *net.Buffers) (int64, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.armWrite()
	return bufs.WriteTo(s.nc)
}

// Write writes pre-serialised chunk bytes under the write lock and the write timeout.
func (s *ServerConn) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.armWrite()
	return s.nc.Write(p)
}

// CSIDForType returns the chunk stream id the server uses for a message type.
func CSIDForType(msgType uint8) uint32 {
	switch msgType {
	case MsgAudio:
		return CSIDAudio
	case MsgVideo:
		return CSIDVideo
	case MsgDataAMF0, MsgDataAMF3, MsgCommandAMF0, MsgCommandAMF3, MsgSharedObjAMF0, MsgSharedObjAMF3, MsgAggregate:
		return CSIDData
	}
	return CSIDControl
}

// WriteMessage serialises and writes one message (for control and command
// use, not the media hot path), on the chunk stream CSIDForType picks.
func (s *ServerConn) WriteMessage(m Message) error {
	return s.writeMsg(CSIDForType(m.Type), m.Type, m.StreamID, m.Timestamp, m.Payload)
}

// WriteStatus sends an onStatus command on the play/publish stream, e.g.
// NetStream.Play.UnpublishNotify.
func (s *ServerConn) WriteStatus(level, code, description string) error {
	return s.writeAMF(CSIDData, MsgCommandAMF0, PlayStreamID, "onStatus", 0, nil, statusObject(level, code, description))
}

// Close closes the connection.
func (s *ServerConn) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.nc.Close()
}

// Accept performs the handshake and the command exchange up to publish or
// play, and returns what the client asked for. The caller then calls
// AcceptPublish, AcceptPlay or Reject. ctx bounds the whole exchange.
func (s *ServerConn) Accept(ctx context.Context) (*Request, error) {
	if s.state != stateNew {
		return nil, ErrState
	}
	stop := s.watchContext(ctx)
	defer stop()
	req, err := s.accept(ctx)
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	s.req = req
	s.state = stateRequested
	return req, nil
}

func (s *ServerConn) accept(ctx context.Context) (*Request, error) {
	if d := s.cfg.handshakeTimeout; d > 0 {
		s.setDeadline(time.Now().Add(d))
	}
	complexHS, err := serverHandshake(s.br, s.nc, 0)
	if err != nil {
		return nil, err
	}
	s.setDeadline(time.Time{})
	s.log.Debug("rtmp handshake done", "remote", s.nc.RemoteAddr(), "complex", complexHS)

	var (
		connected bool
		app       string
		appQuery  string
		hasAppQ   bool
		tcURL     string
		flashVer  string
		objEnc    float64
	)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s.setReadTimeout(s.cfg.readTimeout)
		m, err := s.readMessage(true)
		if err != nil {
			return nil, err
		}
		cmd, ok, err := s.parseCommand(m)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if cmd.name != "connect" && !connected {
			return nil, fmt.Errorf("%w: %q before connect", ErrProtocol, cmd.name)
		}
		switch cmd.name {
		case "connect":
			if connected {
				return nil, fmt.Errorf("%w: second connect", ErrProtocol)
			}
			if cmd.obj == nil {
				return nil, fmt.Errorf("%w: connect without command object", ErrBadMessage)
			}
			connected = true
			app, _ = cmd.obj.GetString("app")
			app, appQuery, hasAppQ = strings.Cut(app, "?")
			tcURL, _ = cmd.obj.GetString("tcUrl")
			flashVer, _ = cmd.obj.GetString("flashVer")
			objEnc, _ = cmd.obj.GetNumber("objectEncoding")
			if err := s.replyConnect(cmd.txn, objEnc); err != nil {
				return nil, err
			}
		case "createStream":
			if err := s.writeAMF(CSIDCommand, MsgCommandAMF0, 0, "_result", cmd.txn, nil, float64(PlayStreamID)); err != nil {
				return nil, err
			}
		case "releaseStream", "FCPublish", "FCUnpublish", "_checkbw":
			if cmd.txn != 0 {
				if err := s.writeAMF(CSIDCommand, MsgCommandAMF0, 0, "_result", cmd.txn, nil, amf0.Undefined{}); err != nil {
					return nil, err
				}
			}
		case "getStreamLength":
			if cmd.txn != 0 {
				if err := s.writeAMF(CSIDCommand, MsgCommandAMF0, 0, "_result", cmd.txn, nil, 0.0); err != nil {
					return nil, err
				}
			}
		case "publish", "play":
			raw := cmd.argString(0)
			name, query, hasQ := strings.Cut(raw, "?")
			if !hasQ {
				query, hasQ = appQuery, hasAppQ
			}
			if !hasQ {
				_, query, _ = strings.Cut(tcURL, "?")
			}
			req := &Request{
				App:            app,
				Name:           name,
				Query:          query,
				TcURL:          tcURL,
				RemoteAddr:     s.nc.RemoteAddr(),
				FlashVer:       flashVer,
				ObjectEncoding: objEnc,
			}
			if cmd.name == "publish" {
				req.Action = ActionPublish
				req.PublishType = cmd.argString(1)
				if req.PublishType == "" {
					req.PublishType = "live"
				}
			} else {
				req.Action = ActionPlay
			}
			return req, nil
		default:
			// deleteStream, FCSubscribe, receiveAudio… need no answer here.
		}
	}
}

func (s *ServerConn) replyConnect(txn, objEnc float64) error {
	if err := s.writeControl(MsgWindowAckSize, s.cfg.windowAckSize); err != nil {
		return err
	}
	bw := [5]byte{byte(s.cfg.windowAckSize >> 24), byte(s.cfg.windowAckSize >> 16), byte(s.cfg.windowAckSize >> 8), byte(s.cfg.windowAckSize), 2}
	if err := s.writeMsg(CSIDControl, MsgSetPeerBandwidth, 0, 0, bw[:]); err != nil {
		return err
	}
	if err := s.setChunkSize(s.cfg.chunkSize); err != nil {
		return err
	}
	return s.writeAMF(CSIDCommand, MsgCommandAMF0, 0, "_result", txn,
		amf0.Object{{Key: "fmsVer", Value: "FMS/3,0,1,123"}, {Key: "capabilities", Value: 31.0}},
		statusObject("status", CodeConnectSuccess, "Connection succeeded.",
			amf0.Property{Key: "objectEncoding", Value: objEnc}))
}

// AcceptPublish answers the publish request with NetStream.Publish.Start.
func (s *ServerConn) AcceptPublish() error {
	if s.state != stateRequested || s.req.Action != ActionPublish {
		return ErrState
	}
	if err := s.writeAMF(CSIDData, MsgCommandAMF0, PlayStreamID, "onStatus", 0, nil,
		statusObject("status", CodePublishStart, s.req.Name+" is now published.")); err != nil {
		return err
	}
	s.state = statePublishing
	return nil
}

// AcceptPlay answers the play request with the sequence players expect:
// StreamBegin, NetStream.Play.Reset, NetStream.Play.Start and
// |RtmpSampleAccess. Media follows on PlayStreamID at ChunkSize. (No
// NetStream.Data.Start data message: ffmpeg turns any script data it does not
// know into an extra "data" stream.)
func (s *ServerConn) AcceptPlay() error {
	if s.state != stateRequested || s.req.Action != ActionPlay {
		return ErrState
	}
	name := s.req.Name
	if err := s.writeUserControl(EventStreamBegin, PlayStreamID); err != nil {
		return err
	}
	if err := s.writeAMF(CSIDData, MsgCommandAMF0, PlayStreamID, "onStatus", 0, nil,
		statusObject("status", CodePlayReset, "Playing and resetting "+name+".",
			amf0.Property{Key: "details", Value: name})); err != nil {
		return err
	}
	if err := s.writeAMF(CSIDData, MsgCommandAMF0, PlayStreamID, "onStatus", 0, nil,
		statusObject("status", CodePlayStart, "Started playing "+name+".",
			amf0.Property{Key: "details", Value: name})); err != nil {
		return err
	}
	if err := s.writeAMF(CSIDData, MsgDataAMF0, PlayStreamID, "|RtmpSampleAccess", true, true); err != nil {
		return err
	}
	s.state = statePlaying
	return nil
}

// Reject answers the request with an error-level onStatus carrying code (e.g.
// CodePublishBadName, CodePlayStreamNotFound, CodePublishUnauthorized,
// CodeConnectRejected) and closes the connection, giving the peer a moment
// to read the status first.
func (s *ServerConn) Reject(code, description string) error {
	if s.state == stateNew || s.state == stateClosed {
		_ = s.Close()
		return ErrState
	}
	s.state = stateClosed
	err := s.writeAMF(CSIDData, MsgCommandAMF0, PlayStreamID, "onStatus", 0, nil,
		statusObject("error", code, description))
	if s.closed.Swap(true) {
		return err
	}
	if cerr := closeGracefully(s.nc, 500*time.Millisecond); err == nil {
		err = cerr
	}
	return err
}

// ReadMessage returns the publisher's next audio (MsgAudio), video
// (MsgVideo) or data (MsgDataAMF0/MsgDataAMF3: @setDataFrame, onMetaData)
// message; the payload belongs to the caller. Protocol control, pings,
// acknowledgements and commands are handled internally; deleteStream,
// FCUnpublish and closeStream (and a closed connection) return io.EOF.
func (s *ServerConn) ReadMessage() (*Message, error) {
	m, err := s.readPublished(false)
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// ReadMessageBorrowed is ReadMessage without a copy: the payload is valid
// only until the next call, for callers that copy what they keep (the FLV
// demuxer does).
func (s *ServerConn) ReadMessageBorrowed() (Message, error) {
	return s.readPublished(true)
}

func (s *ServerConn) readPublished(borrow bool) (Message, error) {
	if s.state != statePublishing {
		return Message{}, ErrState
	}
	for {
		s.setReadTimeout(s.cfg.readTimeout)
		m, err := s.readMessage(borrow)
		if err != nil {
			return Message{}, err
		}
		switch m.Type {
		case MsgAudio, MsgVideo, MsgDataAMF0, MsgDataAMF3:
			return m, nil
		}
		cmd, ok, err := s.parseCommand(m)
		if err != nil {
			return Message{}, err
		}
		if !ok {
			continue
		}
		switch cmd.name {
		case "deleteStream", "FCUnpublish", "closeStream":
			s.log.Debug("rtmp publisher stopped", "remote", s.nc.RemoteAddr(), "command", cmd.name)
			return Message{}, io.EOF
		}
	}
}

// ServePlayer consumes what a player sends (acknowledgements, ping
// responses, setBufferLength, pause) until the player leaves or ctx ends,
// and returns why: io.EOF when the player closed or sent
// closeStream/deleteStream, ctx's error, or a protocol/transport error.
// Media is written concurrently by the caller (see ServerConn); ServePlayer
// applies no read timeout because an idle player is normal.
func (s *ServerConn) ServePlayer(ctx context.Context) error {
	if s.state != statePlaying {
		return ErrState
	}
	stop := s.watchContext(ctx)
	defer stop()
	s.setReadTimeout(0)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := s.readMessage(true)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// A player closing with unread media in its buffers resets
			// the connection: that is leaving too.
			if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || s.closed.Load() {
				return io.EOF
			}
			return err
		}
		cmd, ok, err := s.parseCommand(m)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		switch cmd.name {
		case "closeStream", "deleteStream":
			return io.EOF
		case "pause":
			paused, _ := cmd.argBool(0)
			s.paused.Store(paused)
			code, desc := CodeUnpauseNotify, "Unpaused."
			if paused {
				code, desc = CodePauseNotify, "Paused."
			}
			if err := s.WriteStatus("status", code, desc); err != nil {
				return err
			}
		}
	}
}
