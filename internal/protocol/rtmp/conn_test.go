package rtmp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/protocol/amf0"
)

// serve listens on loopback and runs handler for each accepted connection.
func serve(t *testing.T, handler func(s *ServerConn), opts ...Option) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := NewServerConn(nc, opts...)
				defer s.Close()
				handler(s)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return "rtmp://" + ln.Addr().String()
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type testMsg struct {
	typ uint8
	ts  uint32
	p   []byte
}

func testMessages() []testMsg {
	meta, _ := amf0.Append(nil, "@setDataFrame", "onMetaData", amf0.ECMAArray{{Key: "width", Value: 1280.0}})
	return []testMsg{
		{MsgDataAMF0, 0, meta},
		{MsgVideo, 0, payloadOf(40, 1)},
		{MsgAudio, 0, payloadOf(7, 2)},
		{MsgVideo, 33, payloadOf(5000, 3)},      // crosses 128 and 4096 chunks
		{MsgVideo, 66, payloadOf(200000, 4)},    // crosses 60000 chunks, grows buffer
		{MsgAudio, 0xfffffe, payloadOf(300, 5)}, // just below extended
		{MsgVideo, 0xffffff, payloadOf(9000, 6)},
		{MsgAudio, 0x1000000, payloadOf(10, 7)},
		{MsgVideo, 0xffffffff, payloadOf(70000, 8)},
		{MsgAudio, 5, nil}, // empty payload
	}
}

func TestPublishRoundTrip(t *testing.T) {
	for _, cs := range []int{128, 4096, 60000} {
		t.Run(fmt.Sprint(cs), func(t *testing.T) {
			type result struct {
				req  *Request
				msgs []*Message
				err  error
			}
			done := make(chan result, 1)
			base := serve(t, func(s *ServerConn) {
				var r result
				defer func() { done <- r }()
				r.req, r.err = s.Accept(testCtx(t))
				if r.err != nil {
					return
				}
				if r.err = s.AcceptPublish(); r.err != nil {
					return
				}
				for {
					m, err := s.ReadMessage()
					if err != nil {
						r.err = err
						return
					}
					r.msgs = append(r.msgs, m)
				}
			})
			ctx := testCtx(t)
			c, err := Dial(ctx, base+"/live/stream?k=v&x=1", WithChunkSize(cs))
			require.NoError(t, err)
			require.NoError(t, c.Publish(ctx))
			assert.Equal(t, PlayStreamID, c.StreamID())
			want := testMessages()
			for i, m := range want {
				if i == 5 {
					// change the chunk size mid-stream
					require.NoError(t, c.setChunkSize(1000))
				}
				require.NoError(t, c.WriteMessage(m.typ, m.ts, m.p))
			}
			require.NoError(t, c.Close())
			r := <-done
			assert.ErrorIs(t, r.err, io.EOF)
			require.NotNil(t, r.req)
			assert.Equal(t, ActionPublish, r.req.Action)
			assert.Equal(t, "live", r.req.App)
			assert.Equal(t, "stream", r.req.Name)
			assert.Equal(t, "k=v&x=1", r.req.Query)
			assert.Equal(t, "live", r.req.PublishType)
			assert.Equal(t, base+"/live", r.req.TcURL)
			assert.NotNil(t, r.req.RemoteAddr)
			var got []Message
			for _, m := range r.msgs {
				got = append(got, *m)
			}
			assertMessages(t, want, got)
		})
	}
}

func assertMessages(t *testing.T, want []testMsg, got []Message) {
	t.Helper()
	require.Len(t, got, len(want))
	for i, m := range got {
		assert.Equal(t, want[i].typ, m.Type, "msg %d", i)
		assert.Equal(t, want[i].ts, m.Timestamp, "msg %d", i)
		assert.Equal(t, PlayStreamID, m.StreamID, "msg %d", i)
		assert.Equal(t, len(want[i].p), len(m.Payload), "msg %d", i)
		assert.True(t, bytes.Equal(want[i].p, m.Payload), "msg %d payload differs", i)
	}
}

func TestPlayRoundTrip(t *testing.T) {
	want := testMessages()
	serveErr := make(chan error, 1)
	var req *Request
	base := serve(t, func(s *ServerConn) {
		var err error
		req, err = s.Accept(testCtx(t))
		if err != nil {
			serveErr <- err
			return
		}
		if err := s.AcceptPlay(); err != nil {
			serveErr <- err
			return
		}
		done := make(chan error, 1)
		go func() { done <- s.ServePlayer(context.Background()) }()
		// Serialise once, write with writev like the hub does.
		var frames [][]byte
		for _, m := range want {
			frames = append(frames, AppendMessage(nil, CSIDForType(m.typ), m.typ, PlayStreamID, m.ts, m.p, s.ChunkSize()))
		}
		bufs := net.Buffers(frames)
		if _, err := s.WriteBuffers(&bufs); err != nil {
			serveErr <- err
			return
		}
		serveErr <- <-done
	})
	ctx := testCtx(t)
	c, err := Dial(ctx, base+"/app/name?token=abc")
	require.NoError(t, err)
	require.NoError(t, c.Play(ctx))
	var got []Message
	for i := 0; len(got) < len(want); i++ {
		var m Message
		if i%2 == 0 {
			m, err = c.ReadMessage()
		} else {
			m, err = c.ReadMessageBorrowed()
			m.Payload = append([]byte(nil), m.Payload...)
		}
		require.NoError(t, err)
		if m.Type == MsgDataAMF0 {
			// |RtmpSampleAccess precedes the media.
			if vals, _ := amf0.Decode(m.Payload); len(vals) > 0 && vals[0] != "@setDataFrame" {
				continue
			}
		}
		got = append(got, m)
	}
	assertMessages(t, want, got)
	require.NoError(t, c.Close())
	assert.ErrorIs(t, <-serveErr, io.EOF)
	assert.Equal(t, ActionPlay, req.Action)
	assert.Equal(t, "app", req.App)
	assert.Equal(t, "name", req.Name)
	assert.Equal(t, "token=abc", req.Query)
}

func TestPlaySequence(t *testing.T) {
	// The exact sequence a player receives after play.
	base := serve(t, func(s *ServerConn) {
		if _, err := s.Accept(testCtx(t)); err == nil {
			_ = s.AcceptPlay()
			_ = s.ServePlayer(testCtx(t))
		}
	})
	ctx := testCtx(t)
	c, err := Dial(ctx, base+"/live/x")
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.createStream(ctx))
	require.NoError(t, c.writeAMF(CSIDData, MsgCommandAMF0, 1, "play", 0, nil, "x"))
	var got []string
	for len(got) < 4 {
		m, err := c.cr.ReadMessage()
		require.NoError(t, err)
		switch m.Type {
		case MsgUserControl:
			assert.Equal(t, []byte{0, 0, 0, 0, 0, 1}, m.Payload)
			got = append(got, "StreamBegin")
		case MsgCommandAMF0, MsgDataAMF0:
			vals, err := amf0.Decode(m.Payload)
			require.NoError(t, err)
			name := vals[0].(string)
			for _, v := range vals {
				if o, ok := v.(amf0.Object); ok {
					code, _ := o.GetString("code")
					name += " " + code
				}
			}
			got = append(got, name)
		}
	}
	assert.Equal(t, []string{
		"StreamBegin",
		"onStatus NetStream.Play.Reset",
		"onStatus NetStream.Play.Start",
		"|RtmpSampleAccess",
	}, got)
}

func TestReject(t *testing.T) {
	cases := []struct {
		publish bool
		code    string
	}{
		{false, CodePlayStreamNotFound},
		{true, CodePublishBadName},
		{true, CodePublishUnauthorized},
		{false, CodeConnectRejected},
	}
	for _, tc := range cases {
		t.Run(tc.code, func(t *testing.T) {
			base := serve(t, func(s *ServerConn) {
				if _, err := s.Accept(testCtx(t)); err == nil {
					_ = s.Reject(tc.code, "nope")
					assert.ErrorIs(t, s.AcceptPlay(), ErrState)
				}
			})
			ctx := testCtx(t)
			c, err := Dial(ctx, base+"/live/missing")
			require.NoError(t, err)
			defer c.Close()
			if tc.publish {
				err = c.Publish(ctx)
			} else {
				err = c.Play(ctx)
			}
			var se *StatusError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tc.code, se.Code)
			assert.Equal(t, "error", se.Level)
			assert.Equal(t, "nope", se.Description)
			assert.Contains(t, se.Error(), tc.code)
		})
	}
}

func TestServerPongAndAck(t *testing.T) {
	got := make(chan error, 1)
	base := serve(t, func(s *ServerConn) {
		if _, err := s.Accept(testCtx(t)); err != nil {
			got <- err
			return
		}
		_ = s.AcceptPublish()
		for {
			if _, err := s.ReadMessage(); err != nil {
				got <- err
				return
			}
		}
	}, WithWindowAckSize(5000))
	ctx := testCtx(t)
	c, err := Dial(ctx, base+"/live/s")
	require.NoError(t, err)
	require.NoError(t, c.Publish(ctx))
	require.NoError(t, c.writeUserControl(EventPingRequest, 0xdeadbeef))
	require.NoError(t, c.WriteMessage(MsgVideo, 0, payloadOf(20000, 0)))
	var pong, ack bool
	for !pong || !ack {
		m, err := c.cr.ReadMessage()
		require.NoError(t, err)
		switch m.Type {
		case MsgUserControl:
			assert.Equal(t, []byte{0, 7, 0xde, 0xad, 0xbe, 0xef}, m.Payload)
			pong = true
		case MsgAck:
			assert.GreaterOrEqual(t, binary.BigEndian.Uint32(m.Payload), uint32(5000))
			ack = true
		}
	}
	require.NoError(t, c.Close())
	assert.ErrorIs(t, <-got, io.EOF)
}

func TestServePlayerPauseAndCancel(t *testing.T) {
	paused := make(chan bool, 2)
	result := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sc *ServerConn
	ready := make(chan struct{})
	base := serve(t, func(s *ServerConn) {
		if _, err := s.Accept(testCtx(t)); err != nil {
			result <- err
			return
		}
		_ = s.AcceptPlay()
		sc = s
		close(ready)
		result <- s.ServePlayer(ctx)
	})
	tctx := testCtx(t)
	c, err := Dial(tctx, base+"/live/p")
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Play(tctx))
	<-ready
	require.NoError(t, c.writeAMF(CSIDData, MsgCommandAMF0, 1, "pause", 0, nil, true, 1000.0))
	// The server answers with Pause.Notify; read it raw.
	for {
		m, err := c.cr.ReadMessage()
		require.NoError(t, err)
		if m.Type != MsgCommandAMF0 {
			continue
		}
		cmd, _, _ := c.parseCommand(m)
		if _, code, _ := cmd.statusInfo(); code == CodePauseNotify {
			break
		}
	}
	paused <- sc.Paused()
	assert.True(t, <-paused)
	start := time.Now()
	cancel()
	select {
	case err := <-result:
		assert.ErrorIs(t, err, context.Canceled)
		assert.Less(t, time.Since(start), 2*time.Second)
	case <-time.After(5 * time.Second):
		t.Fatal("ServePlayer did not return after cancel")
	}
}

func TestServePlayerDeleteStream(t *testing.T) {
	result := make(chan error, 1)
	base := serve(t, func(s *ServerConn) {
		if _, err := s.Accept(testCtx(t)); err != nil {
			result <- err
			return
		}
		_ = s.AcceptPlay()
		result <- s.ServePlayer(context.Background())
	})
	ctx := testCtx(t)
	c, err := Dial(ctx, base+"/live/p")
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Play(ctx))
	require.NoError(t, c.writeUserControl(EventSetBufferLength, 1, 100))
	require.NoError(t, c.writeControl(MsgAck, 1234))
	require.NoError(t, c.writeAMF(CSIDCommand, MsgCommandAMF0, 0, "deleteStream", 0, nil, 1.0))
	assert.ErrorIs(t, <-result, io.EOF)
}

func TestClientAggregateAndPing(t *testing.T) {
	base := serve(t, func(s *ServerConn) {
		if _, err := s.Accept(testCtx(t)); err != nil {
			return
		}
		_ = s.AcceptPlay()
		// An aggregate of two FLV-tag-shaped sub-messages with timestamps
		// 1000 and 1040, sent with aggregate timestamp 0.
		var agg []byte
		for i, p := range [][]byte{[]byte("vid"), []byte("audio")} {
			typ := MsgVideo
			if i == 1 {
				typ = MsgAudio
			}
			ts := uint32(1000 + 40*i)
			agg = append(agg, typ, 0, 0, byte(len(p)), byte(ts>>16), byte(ts>>8), byte(ts), byte(ts>>24), 0, 0, 0)
			agg = append(agg, p...)
			agg = binary.BigEndian.AppendUint32(agg, uint32(11+len(p)))
		}
		_ = s.writeUserControl(EventPingRequest, 77)
		_ = s.WriteMessage(Message{Type: MsgAggregate, StreamID: 1, Timestamp: 0, Payload: agg})
		_ = s.WriteStatus("error", CodeStreamFailed, "bye")
		_ = s.ServePlayer(testCtx(t))
	})
	ctx := testCtx(t)
	c, err := Dial(ctx, base+"/live/p")
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Play(ctx))
	m, err := c.ReadMessage()
	require.NoError(t, err)
	for m.Type == MsgDataAMF0 {
		m, err = c.ReadMessage()
		require.NoError(t, err)
	}
	assert.Equal(t, MsgVideo, m.Type)
	assert.Equal(t, uint32(0), m.Timestamp)
	assert.Equal(t, "vid", string(m.Payload))
	m, err = c.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, MsgAudio, m.Type)
	assert.Equal(t, uint32(40), m.Timestamp)
	assert.Equal(t, "audio", string(m.Payload))
	_, err = c.ReadMessage()
	var se *StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, CodeStreamFailed, se.Code)
}

func TestStateErrors(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	s := NewServerConn(a)
	_, err := s.ReadMessage()
	assert.ErrorIs(t, err, ErrState)
	assert.ErrorIs(t, s.AcceptPlay(), ErrState)
	assert.ErrorIs(t, s.AcceptPublish(), ErrState)
	assert.ErrorIs(t, s.ServePlayer(context.Background()), ErrState)
	c := &ClientConn{}
	assert.ErrorIs(t, c.WriteMessage(MsgVideo, 0, nil), ErrState)
}

func TestParseURL(t *testing.T) {
	addr, app, name, q, err := ParseURL("rtmp://example.com/live/a/b?x=1")
	require.NoError(t, err)
	assert.Equal(t, "example.com:1935", addr)
	assert.Equal(t, "live", app)
	assert.Equal(t, "a/b", name)
	assert.Equal(t, "x=1", q)
	for _, bad := range []string{"http://h/a/b", "rtmp:///a/b", "rtmp://h/a", "rtmp://h", "::"} {
		_, _, _, _, err := ParseURL(bad)
		assert.ErrorIs(t, err, ErrBadURL, bad)
	}
	_, err = Dial(context.Background(), "rtmp://h/onlyapp")
	assert.ErrorIs(t, err, ErrBadURL)
}

func TestQueryFromAppOrTcURL(t *testing.T) {
	cases := []struct{ app, tcURL, name, wantQuery string }{
		{"live?sign=1", "", "s", "sign=1"},
		{"live", "rtmp://h/live?tc=2", "s", "tc=2"},
		{"live?sign=1", "rtmp://h/live?sign=1", "s?own=3", "own=3"},
	}
	for _, tc := range cases {
		reqs := make(chan *Request, 1)
		base := serve(t, func(s *ServerConn) {
			req, err := s.Accept(testCtx(t))
			if err != nil {
				reqs <- nil
				return
			}
			_ = s.AcceptPublish()
			reqs <- req
			for err == nil {
				_, err = s.ReadMessage()
			}
		})
		ctx := testCtx(t)
		nc, err := net.Dial("tcp", base[len("rtmp://"):])
		require.NoError(t, err)
		c := &ClientConn{app: tc.app, name: tc.name, tcURL: tc.tcURL}
		c.init(nc, newConfig(DefaultClientChunkSize, nil))
		require.NoError(t, c.connect(ctx))
		require.NoError(t, c.Publish(ctx))
		req := <-reqs
		require.NotNil(t, req)
		assert.Equal(t, "live", req.App)
		assert.Equal(t, "s", req.Name)
		assert.Equal(t, tc.wantQuery, req.Query)
		_ = c.Close()
	}
}

// rawConn dials the server and optionally completes the handshake.
func rawConn(t *testing.T, base string, handshake bool) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", base[len("rtmp://"):])
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	if handshake {
		require.NoError(t, clientHandshake(bufio.NewReader(nc), nc, 0))
	}
	return nc
}

func TestRobustness(t *testing.T) {
	connect := func() []byte {
		p, _ := amf0.Append(nil, "connect", 1, amf0.Object{{Key: "app", Value: "live"}})
		return AppendMessage(nil, CSIDCommand, MsgCommandAMF0, 0, 0, p, 128)
	}
	var manyCSIDs []byte
	for c := uint32(2); c < 200; c++ {
		manyCSIDs = AppendMessage(manyCSIDs, c, MsgAudio, 1, 0, []byte{1}, 128)
	}
	cases := []struct {
		name      string
		handshake bool
		send      []byte
		closeW    bool
		err       error
	}{
		{"garbage C0", false, []byte("GET / HTTP/1.1\r\n\r\n"), false, ErrHandshake},
		{"RTMPE C0", false, append([]byte{6}, make([]byte, 1536)...), false, ErrHandshake},
		{"truncated handshake then close", false, append([]byte{3}, make([]byte, 100)...), true, ErrHandshake},
		{"truncated handshake stalls", false, append([]byte{3}, make([]byte, 100)...), false, ErrHandshake},
		{"oversized set chunk size", true, setChunkSizeMsg(1 << 30), false, ErrChunkSizeTooLarge},
		{"set chunk size zero", true, setChunkSizeMsg(0), false, ErrInvalidChunkSize},
		{"oversized message", true, hdr(0, 3, 0, 0, 0, 0xff, 0xff, 0xff, MsgCommandAMF0, 0, 0, 0, 0), false, ErrMessageTooLarge},
		{"too many csids", true, manyCSIDs, false, ErrTooManyChunkStreams},
		{"publish before connect", true, AppendMessage(nil, 3, MsgCommandAMF0, 0, 0, must(amf0.Append(nil, "publish", 0, nil, "x")), 128), false, ErrProtocol},
		{"second connect", true, append(connect(), connect()...), false, ErrProtocol},
		{"bad command", true, AppendMessage(nil, 3, MsgCommandAMF0, 0, 0, []byte{0xff}, 128), false, ErrBadMessage},
		{"garbage after handshake", true, []byte{0xc3, 0xc3, 0x02, 0x03}, false, ErrNoPreviousHeader},
		{"silence after handshake", true, nil, false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errc := make(chan error, 1)
			base := serve(t, func(s *ServerConn) {
				_, err := s.Accept(context.Background())
				errc <- err
			}, WithHandshakeTimeout(300*time.Millisecond), WithReadTimeout(300*time.Millisecond),
				WithMaxMessageSize(1<<20), WithMaxChunkSize(1<<20), WithMaxChunkStreams(32))
			nc := rawConn(t, base, tc.handshake)
			start := time.Now()
			_, _ = nc.Write(tc.send)
			if tc.closeW {
				_ = nc.(*net.TCPConn).CloseWrite()
			}
			select {
			case err := <-errc:
				require.Error(t, err)
				if tc.err != nil {
					assert.ErrorIs(t, err, tc.err)
				} else {
					assert.True(t, isTimeout(err), "want timeout, got %v", err)
				}
				assert.Less(t, time.Since(start), 2*time.Second)
			case <-time.After(5 * time.Second):
				t.Fatal("Accept hung")
			}
		})
	}
}

func TestAcceptContextCancel(t *testing.T) {
	errc := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	base := serve(t, func(s *ServerConn) {
		_, err := s.Accept(ctx)
		errc <- err
	}, WithHandshakeTimeout(0), WithReadTimeout(0))
	rawConn(t, base, true)
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("Accept ignored cancel")
	}
}

func TestDialErrors(t *testing.T) {
	// A server that answers the handshake with a bad version.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		_, _ = io.ReadFull(nc, make([]byte, 1537))
		_, _ = nc.Write(make([]byte, 3073))
		_, _ = io.Copy(io.Discard, nc)
	}()
	_, err = Dial(testCtx(t), "rtmp://"+ln.Addr().String()+"/a/b")
	assert.ErrorIs(t, err, ErrHandshake)

	// Nothing listening.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln2.Addr().String()
	ln2.Close()
	_, err = Dial(testCtx(t), "rtmp://"+addr+"/a/b")
	assert.Error(t, err)

	// A server that never answers: ctx ends the dial.
	ln3, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln3.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = Dial(ctx, "rtmp://"+ln3.Addr().String()+"/a/b", WithHandshakeTimeout(0))
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
