package rtmp

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/quasipaa/quasipaa/internal/protocol/amf0"
)

// memConn is a net.Conn that reads a fixed input and discards writes.
type memConn struct {
	r *bytes.Reader
}

func (c *memConn) Read(p []byte) (int, error)         { return c.r.Read(p) }
func (c *memConn) Write(p []byte) (int, error)        { return len(p), nil }
func (c *memConn) Close() error                       { return nil }
func (c *memConn) LocalAddr() net.Addr                { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1935} }
func (c *memConn) RemoteAddr() net.Addr               { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000} }
func (c *memConn) SetDeadline(t time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { return nil }

// simpleHandshake is a valid C0C1 + C2.
func simpleHandshake() []byte {
	b := make([]byte, 1+2*handshakeSize)
	b[0] = rtmpVersion
	return b
}

func cmdMsg(csid, sid uint32, values ...any) []byte {
	p, err := amf0.Append(nil, values...)
	if err != nil {
		panic(err)
	}
	return AppendMessage(nil, csid, MsgCommandAMF0, sid, 0, p, DefaultChunkSize)
}

func serverConnSeeds() [][]byte {
	connect := cmdMsg(3, 0, "connect", 1, amf0.Object{
		{Key: "app", Value: "live?x=1"}, {Key: "tcUrl", Value: "rtmp://h/live"}, {Key: "objectEncoding", Value: 0.0}})
	var pub []byte
	pub = append(pub, setChunkSizeMsg(4096)...)
	pub = append(pub, connect...)
	pub = append(pub, cmdMsg(3, 0, "releaseStream", 2, nil, "s")...)
	pub = append(pub, cmdMsg(3, 0, "FCPublish", 3, nil, "s")...)
	pub = append(pub, cmdMsg(3, 0, "createStream", 4, nil)...)
	pub = append(pub, cmdMsg(5, 1, "publish", 5, nil, "s?k=v", "live")...)
	meta, _ := amf0.Append(nil, "@setDataFrame", "onMetaData", amf0.ECMAArray{{Key: "width", Value: 640.0}})
	pub = AppendMessage(pub, 5, MsgDataAMF0, 1, 0, meta, 4096)
	pub = AppendMessage(pub, 6, MsgAudio, 1, 0, payloadOf(20, 1), 4096)
	pub = AppendMessage(pub, 7, MsgVideo, 1, 0xffffff, payloadOf(9000, 2), 4096)
	pub = AppendMessage(pub, 2, MsgUserControl, 0, 0, []byte{0, 6, 0, 0, 0, 9}, 4096)
	pub = AppendMessage(pub, 2, MsgWindowAckSize, 0, 0, []byte{0, 0, 0x10, 0}, 4096)
	agg := append([]byte{MsgVideo, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 'x'}, 0, 0, 0, 12)
	pub = AppendMessage(pub, 7, MsgAggregate, 1, 0, agg, 4096)
	pub = append(pub, cmdMsg(3, 0, "FCUnpublish", 6, nil, "s")...)
	pub = append(pub, cmdMsg(3, 0, "deleteStream", 7, nil, 1)...)

	var play []byte
	play = append(play, connect...)
	play = append(play, cmdMsg(3, 0, "_checkbw", 2, nil)...)
	play = append(play, cmdMsg(3, 0, "getStreamLength", 3, nil, "s")...)
	play = append(play, cmdMsg(3, 0, "createStream", 4, nil)...)
	play = append(play, cmdMsg(5, 1, "play", 5, nil, "s", -2000.0)...)
	play = AppendMessage(play, 2, MsgUserControl, 0, 0, []byte{0, 3, 0, 0, 0, 1, 0, 0, 0x0b, 0xb8}, 128)
	play = AppendMessage(play, 2, MsgAck, 0, 0, []byte{0, 0, 0x10, 0}, 128)
	play = append(play, cmdMsg(5, 1, "pause", 0, nil, true, 10.0)...)
	play = append(play, cmdMsg(5, 1, "pause", 0, nil, false, 10.0)...)
	play = append(play, cmdMsg(5, 1, "closeStream", 0, nil)...)

	amf3 := append([]byte{0}, must(amf0.Append(nil, "connect", 1, amf0.Object{{Key: "app", Value: "a"}}))...)
	amf3Msg := AppendMessage(nil, 3, MsgCommandAMF3, 0, 0, amf3, 128)
	return [][]byte{pub, play, amf3Msg, connect, {0xc3}}
}

func FuzzServerConn(f *testing.F) {
	for _, s := range serverConnSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := append(simpleHandshake(), b...)
		s := NewServerConn(&memConn{r: bytes.NewReader(in)},
			WithMaxMessageSize(1<<20), WithMaxChunkStreams(16))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, err := s.Accept(ctx)
		if err != nil {
			return
		}
		switch req.Action {
		case ActionPublish:
			if err := s.AcceptPublish(); err != nil {
				t.Fatal(err)
			}
			for i := 0; i <= len(b); i++ {
				m, err := s.ReadMessage()
				if err != nil {
					return
				}
				if len(m.Payload) > 1<<20 {
					t.Fatalf("payload of %d bytes", len(m.Payload))
				}
			}
			t.Fatal("more messages than input bytes")
		case ActionPlay:
			if err := s.AcceptPlay(); err != nil {
				t.Fatal(err)
			}
			_ = s.ServePlayer(ctx)
		default:
			t.Fatalf("unknown action %v", req.Action)
		}
	})
}

// TestWriteSeedCorpus regenerates testdata/fuzz seed files when
// RTMP_WRITE_CORPUS=1; the committed files are what `go test` replays.
func TestWriteSeedCorpus(t *testing.T) {
	if os.Getenv("RTMP_WRITE_CORPUS") != "1" {
		t.Skip("set RTMP_WRITE_CORPUS=1 to regenerate testdata/fuzz")
	}
	write := func(name string, seeds [][]byte) {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			var buf bytes.Buffer
			buf.WriteString("go test fuzz v1\n[]byte(")
			buf.WriteString(quoteBytes(s))
			buf.WriteString(")\n")
			if err := os.WriteFile(filepath.Join(dir, "seed"+string(rune('a'+i))), buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("FuzzChunkReader", chunkSeeds())
	write("FuzzServerConn", serverConnSeeds())
	simple := make([]byte, 1+handshakeSize)
	simple[0] = 3
	write("FuzzHandshakeC0C1", [][]byte{flashC0C1(8, 0), flashC0C1(772, 5), simple})
}

func quoteBytes(b []byte) string {
	const hex = "0123456789abcdef"
	var sb bytes.Buffer
	sb.WriteByte('"')
	for _, c := range b {
		sb.WriteString(`\x`)
		sb.WriteByte(hex[c>>4])
		sb.WriteByte(hex[c&15])
	}
	sb.WriteByte('"')
	return sb.String()
}
