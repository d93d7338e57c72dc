package rtmp

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newReader(b []byte, cfg ReaderConfig) *ChunkReader {
	return NewChunkReader(bufio.NewReader(bytes.NewReader(b)), cfg)
}

func payloadOf(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i)*7 + seed
	}
	return p
}

func setChunkSizeMsg(n uint32) []byte {
	var p [4]byte
	binary.BigEndian.PutUint32(p[:], n)
	return AppendMessage(nil, CSIDControl, MsgSetChunkSize, 0, 0, p[:], DefaultChunkSize)
}

func TestAppendMessageRoundTrip(t *testing.T) {
	csids := []uint32{2, 3, 63, 64, 100, 319, 320, 1000, MaxCSID}
	timestamps := []uint32{0, 40, 0xfffffe, 0xffffff, 0x1000000, 0xffffffff}
	sizes := []int{0, 1, 127, 128, 129, 4096, 10000, 60001}
	chunkSizes := []int{1, 128, 4096, 60000}
	for _, cs := range chunkSizes {
		var stream []byte
		stream = append(stream, setChunkSizeMsg(uint32(cs))...)
		type want struct {
			typ uint8
			sid uint32
			ts  uint32
			p   []byte
		}
		var wants []want
		i := 0
		for _, csid := range csids {
			for _, ts := range timestamps {
				n := sizes[i%len(sizes)]
				if cs == 1 && n > 4096 {
					n = 300
				}
				i++
				w := want{MsgVideo, uint32(i), ts, payloadOf(n, byte(i))}
				before := len(stream)
				stream = AppendMessage(stream, csid, w.typ, w.sid, w.ts, w.p, cs)
				require.Equal(t, ChunkedSize(csid, ts, n, cs), len(stream)-before)
				wants = append(wants, w)
			}
		}
		r := newReader(stream, ReaderConfig{})
		for _, w := range wants {
			m, err := r.ReadMessage()
			require.NoError(t, err, "chunk size %d", cs)
			assert.Equal(t, w.typ, m.Type)
			assert.Equal(t, w.sid, m.StreamID)
			assert.Equal(t, w.ts, m.Timestamp)
			assert.Equal(t, len(w.p), len(m.Payload))
			assert.True(t, bytes.Equal(w.p, m.Payload))
		}
		assert.Equal(t, uint32(cs), r.ChunkSize())
		_, err := r.ReadMessage()
		assert.ErrorIs(t, err, io.EOF)
	}
}

func TestAppendMessageLayout(t *testing.T) {
	p := payloadOf(300, 1)
	b := AppendMessage(nil, 6, MsgAudio, 1, 0x01000000, p, 128)
	// fmt0 header: csid 6, ts field 0xffffff, len 300, type 8, sid 1 LE, ext ts
	assert.Equal(t, []byte{0x06, 0xff, 0xff, 0xff, 0x00, 0x01, 0x2c, 0x08, 1, 0, 0, 0, 1, 0, 0, 0}, b[:16])
	// first continuation: fmt3 basic header + repeated extended timestamp
	assert.Equal(t, []byte{0xc6, 1, 0, 0, 0}, b[16+128:16+128+5])
	assert.Len(t, b, 16+300+2*5)

	// 2- and 3-byte basic headers
	assert.Equal(t, []byte{0x00, 0x00}, AppendMessage(nil, 64, 8, 0, 0, nil, 128)[:2])
	assert.Equal(t, []byte{0x01, 0x00, 0x01}, AppendMessage(nil, 320, 8, 0, 0, nil, 128)[:3])
	// chunk size <= 0 means 128
	assert.Equal(t, AppendMessage(nil, 3, 8, 0, 0, p, 128), AppendMessage(nil, 3, 8, 0, 0, p, 0))
}

func TestAppendMessageOversizedPayloadIsCut(t *testing.T) {
	p := make([]byte, MaxMessageLength+10)
	b := AppendMessage(nil, CSIDVideo, MsgVideo, 1, 0, p, 60000)
	assert.Equal(t, ChunkedSize(CSIDVideo, 0, len(p), 60000), len(b))
	m, err := newReader(append(setChunkSizeMsg(60000), b...), ReaderConfig{MaxMessageSize: MaxMessageLength}).ReadMessage()
	require.NoError(t, err)
	assert.Len(t, m.Payload, MaxMessageLength)
}

func TestAppendMessageZeroAlloc(t *testing.T) {
	p := payloadOf(10000, 3)
	buf := make([]byte, 0, ChunkedSize(CSIDVideo, 0x1000000, len(p), 4096))
	allocs := testing.AllocsPerRun(100, func() {
		buf = AppendMessage(buf[:0], CSIDVideo, MsgVideo, 1, 0x1000000, p, 4096)
	})
	assert.Zero(t, allocs)
}

// hdr builds chunk headers by hand for the compressed formats.
func hdr(fmtBits byte, csid byte, fields ...byte) []byte {
	return append([]byte{fmtBits<<6 | csid}, fields...)
}

func TestCompressedHeaders(t *testing.T) {
	var s []byte
	// fmt0: ts 1000, len 3, type 9, sid 1
	s = append(s, hdr(0, 4, 0, 0x03, 0xe8, 0, 0, 3, 9, 1, 0, 0, 0)...)
	s = append(s, 'a', 'b', 'c')
	// fmt1: delta 40, len 2, type 8
	s = append(s, hdr(1, 4, 0, 0, 40, 0, 0, 2, 8)...)
	s = append(s, 'd', 'e')
	// fmt2: delta 20
	s = append(s, hdr(2, 4, 0, 0, 20)...)
	s = append(s, 'f', 'g')
	// fmt3: new message, same delta 20
	s = append(s, hdr(3, 4)...)
	s = append(s, 'h', 'i')
	// fmt2 with extended delta 0x01000000
	s = append(s, hdr(2, 4, 0xff, 0xff, 0xff, 0x01, 0, 0, 0)...)
	s = append(s, 'j', 'k')
	// fmt3 new message: repeats the extended delta
	s = append(s, hdr(3, 4, 0x01, 0, 0, 0)...)
	s = append(s, 'l', 'm')

	r := newReader(s, ReaderConfig{})
	want := []struct {
		typ uint8
		ts  uint32
		p   string
	}{
		{9, 1000, "abc"}, {8, 1040, "de"}, {8, 1060, "fg"}, {8, 1080, "hi"},
		{8, 1080 + 0x01000000, "jk"}, {8, 1080 + 0x02000000, "lm"},
	}
	for _, w := range want {
		m, err := r.ReadMessage()
		require.NoError(t, err)
		assert.Equal(t, w.typ, m.Type)
		assert.Equal(t, w.ts, m.Timestamp)
		assert.Equal(t, uint32(1), m.StreamID)
		assert.Equal(t, w.p, string(m.Payload))
	}
}

func TestExtendedTimestampContinuationTolerance(t *testing.T) {
	// A sender that omits the extended timestamp on continuation chunks.
	p := payloadOf(200, 9)
	var s []byte
	s = append(s, hdr(0, 5, 0xff, 0xff, 0xff, 0, 0, 200, 9, 1, 0, 0, 0, 0x02, 0, 0, 0)...)
	s = append(s, p[:128]...)
	s = append(s, hdr(3, 5)...)
	s = append(s, p[128:]...)
	m, err := newReader(s, ReaderConfig{}).ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, uint32(0x02000000), m.Timestamp)
	assert.Equal(t, p, m.Payload)
}

func TestInterleavedChunkStreams(t *testing.T) {
	a := AppendMessage(nil, CSIDAudio, MsgAudio, 1, 10, payloadOf(300, 1), 128)
	v := AppendMessage(nil, CSIDVideo, MsgVideo, 1, 20, payloadOf(300, 2), 128)
	// split each at chunk boundaries: first chunk 12+128, then 1+128, 1+44
	var s []byte
	s = append(s, a[:140]...)
	s = append(s, v[:140]...)
	s = append(s, a[140:269]...)
	s = append(s, v[140:]...)
	s = append(s, a[269:]...)
	r := newReader(s, ReaderConfig{})
	m1, err := r.ReadMessage()
	require.NoError(t, err)
	m2, err := r.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, MsgVideo, m1.Type)
	assert.Equal(t, payloadOf(300, 2), m1.Payload)
	assert.Equal(t, MsgAudio, m2.Type)
	assert.Equal(t, payloadOf(300, 1), m2.Payload)
}

func TestAbortMessage(t *testing.T) {
	a := AppendMessage(nil, CSIDAudio, MsgAudio, 1, 10, payloadOf(300, 1), 128)
	var s []byte
	s = append(s, a[:140]...) // partial message on csid 6
	s = append(s, AppendMessage(nil, CSIDControl, MsgAbort, 0, 0, []byte{0, 0, 0, byte(CSIDAudio)}, 128)...)
	s = append(s, AppendMessage(nil, CSIDAudio, MsgAudio, 1, 30, []byte("ok"), 128)...)
	m, err := newReader(s, ReaderConfig{}).ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, "ok", string(m.Payload))
	assert.Equal(t, uint32(30), m.Timestamp)
}

func TestBorrowedReuse(t *testing.T) {
	var s []byte
	for i := range 3 {
		s = AppendMessage(s, CSIDVideo, MsgVideo, 1, uint32(i), payloadOf(1000, byte(i)), 128)
	}
	r := newReader(s, ReaderConfig{})
	for i := range 3 {
		m, err := r.ReadMessageBorrowed()
		require.NoError(t, err)
		assert.Equal(t, payloadOf(1000, byte(i)), m.Payload)
	}
}

func TestChunkReaderErrors(t *testing.T) {
	big := AppendMessage(nil, CSIDVideo, MsgVideo, 1, 0, payloadOf(2000, 0), 128)
	var tooMany []byte
	for c := uint32(2); c < 12; c++ {
		tooMany = AppendMessage(tooMany, c, MsgAudio, 1, 0, []byte{1}, 128)
	}
	cases := []struct {
		name string
		in   []byte
		cfg  ReaderConfig
		err  error
	}{
		{"chunk size zero", setChunkSizeMsg(0), ReaderConfig{}, ErrInvalidChunkSize},
		{"chunk size bit 31", setChunkSizeMsg(0x80000080), ReaderConfig{}, ErrInvalidChunkSize},
		{"chunk size above max", setChunkSizeMsg(1 << 20), ReaderConfig{MaxChunkSize: 65536}, ErrChunkSizeTooLarge},
		{"chunk size default max", setChunkSizeMsg(DefaultMaxChunkSize + 1), ReaderConfig{}, ErrChunkSizeTooLarge},
		{"short set chunk size", AppendMessage(nil, 2, MsgSetChunkSize, 0, 0, []byte{1}, 128), ReaderConfig{}, ErrBadMessage},
		{"short abort", AppendMessage(nil, 2, MsgAbort, 0, 0, []byte{1}, 128), ReaderConfig{}, ErrBadMessage},
		{"message too large", big, ReaderConfig{MaxMessageSize: 1000}, ErrMessageTooLarge},
		{"declared 16MiB+1", hdr(0, 4, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0), ReaderConfig{MaxMessageSize: 1 << 20}, ErrMessageTooLarge},
		{"too many csids", tooMany, ReaderConfig{MaxChunkStreams: 5}, ErrTooManyChunkStreams},
		{"fmt3 first", hdr(3, 4, 1, 2, 3), ReaderConfig{}, ErrNoPreviousHeader},
		{"fmt2 first", hdr(2, 4, 0, 0, 1), ReaderConfig{}, ErrNoPreviousHeader},
		{"header mid-message", append(big[:140:140], big[:12]...), ReaderConfig{}, ErrUnexpectedHeader},
		{"truncated header", []byte{0x04, 0, 0}, ReaderConfig{}, io.ErrUnexpectedEOF},
		{"truncated payload", big[:100], ReaderConfig{}, io.ErrUnexpectedEOF},
		{"truncated 3-byte basic header", []byte{0x01, 5}, ReaderConfig{}, io.ErrUnexpectedEOF},
		{"truncated ext ts", hdr(0, 4, 0xff, 0xff, 0xff, 0, 0, 1, 9, 0, 0, 0, 0, 1), ReaderConfig{}, io.ErrUnexpectedEOF},
		{"empty", nil, ReaderConfig{}, io.EOF},
	}
	for _, c := range cases {
		r := newReader(c.in, c.cfg)
		var err error
		for err == nil {
			_, err = r.ReadMessage()
		}
		assert.ErrorIs(t, err, c.err, c.name)
		assert.NotEmpty(t, err.Error())
	}
}

func TestFreshCSIDFmt1Accepted(t *testing.T) {
	// librtmp may start a chunk stream with a type 1 header.
	s := append(hdr(1, 2, 0, 0, 0, 0, 0, 6, MsgUserControl), 0, 6, 0, 0, 0, 1)
	m, err := newReader(s, ReaderConfig{}).ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, MsgUserControl, m.Type)
	assert.Equal(t, uint32(0), m.StreamID)
}

func TestDeclaredSizeIsNotAllocatedUpFront(t *testing.T) {
	// A header declaring 15 MiB followed by a few bytes must not cost 15 MiB.
	s := hdr(0, 4, 0, 0, 0, 0xf0, 0, 0, 9, 1, 0, 0, 0)
	s = append(s, payloadOf(128, 0)...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 10 {
		_, err := newReader(s, ReaderConfig{}).ReadMessage()
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	}
	runtime.ReadMemStats(&after)
	perRead := (after.TotalAlloc - before.TotalAlloc) / 10
	assert.Less(t, perRead, uint64(256<<10), "allocated %d bytes per read", perRead)
}

func chunkSeeds() [][]byte {
	var seeds [][]byte
	var s []byte
	s = append(s, setChunkSizeMsg(4096)...)
	s = AppendMessage(s, CSIDVideo, MsgVideo, 1, 0, payloadOf(5000, 1), 4096)
	s = AppendMessage(s, CSIDAudio, MsgAudio, 1, 0xffffff, payloadOf(300, 2), 4096)
	seeds = append(seeds, s)
	seeds = append(seeds, AppendMessage(nil, 400, MsgDataAMF0, 1, 0x01000000, payloadOf(300, 3), 128))
	var c []byte
	c = append(c, hdr(0, 4, 0, 0x03, 0xe8, 0, 0, 3, 9, 1, 0, 0, 0)...)
	c = append(c, 'a', 'b', 'c')
	c = append(c, hdr(1, 4, 0, 0, 40, 0, 0, 2, 8)...)
	c = append(c, 'd', 'e')
	c = append(c, hdr(2, 4, 0xff, 0xff, 0xff, 0x01, 0, 0, 0)...)
	c = append(c, 'f', 'g')
	c = append(c, hdr(3, 4, 0x01, 0, 0, 0)...)
	c = append(c, 'h', 'i')
	seeds = append(seeds, c)
	seeds = append(seeds, append(AppendMessage(nil, 6, 8, 1, 10, payloadOf(300, 1), 128)[:140],
		AppendMessage(nil, CSIDControl, MsgAbort, 0, 0, []byte{0, 0, 0, 6}, 128)...))
	seeds = append(seeds, setChunkSizeMsg(0), setChunkSizeMsg(0x80000000))
	return seeds
}

func FuzzChunkReader(f *testing.F) {
	for _, s := range chunkSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, borrow := range []bool{false, true} {
			r := newReader(b, ReaderConfig{MaxMessageSize: 1 << 20, MaxChunkStreams: 16})
			for i := 0; ; i++ {
				var m Message
				var err error
				if borrow {
					m, err = r.ReadMessageBorrowed()
				} else {
					m, err = r.ReadMessage()
				}
				if err != nil {
					if errors.Is(err, io.EOF) && i > len(b) {
						t.Fatalf("more messages than input bytes")
					}
					break
				}
				if len(m.Payload) > 1<<20 {
					t.Fatalf("payload above limit: %d", len(m.Payload))
				}
				// Re-serialising a parsed message must parse back to itself.
				out := AppendMessage(nil, 3, m.Type, m.StreamID, m.Timestamp, m.Payload, 128)
				m2, err := newReader(out, ReaderConfig{MaxMessageSize: 1 << 20}).ReadMessage()
				if m.Type == MsgSetChunkSize || m.Type == MsgAbort {
					continue
				}
				if err != nil || m2.Type != m.Type || m2.Timestamp != m.Timestamp || m2.StreamID != m.StreamID || !bytes.Equal(m2.Payload, m.Payload) {
					t.Fatalf("re-serialised message differs: %v", err)
				}
			}
		}
	})
}

// cycleReader repeats a byte slice forever.
type cycleReader struct {
	b   []byte
	off int
}

func (c *cycleReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], c.b[c.off:])
		n += k
		c.off = (c.off + k) % len(c.b)
	}
	return n, nil
}

func benchChunkRead(b *testing.B, chunkSize int, borrow bool) {
	const size = 10 * 1024
	var stream []byte
	for i := range 64 {
		stream = AppendMessage(stream, CSIDVideo, MsgVideo, 1, uint32(i*33), payloadOf(size, byte(i)), chunkSize)
	}
	r := NewChunkReader(bufio.NewReaderSize(&cycleReader{b: stream}, 64<<10), ReaderConfig{})
	r.chunkSize = uint32(chunkSize)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if borrow {
			_, err = r.ReadMessageBorrowed()
		} else {
			_, err = r.ReadMessage()
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChunkRead4096(b *testing.B)          { benchChunkRead(b, 4096, false) }
func BenchmarkChunkRead60000(b *testing.B)         { benchChunkRead(b, 60000, false) }
func BenchmarkChunkRead4096Borrowed(b *testing.B)  { benchChunkRead(b, 4096, true) }
func BenchmarkChunkRead60000Borrowed(b *testing.B) { benchChunkRead(b, 60000, true) }

func benchAppend(b *testing.B, chunkSize int) {
	p := payloadOf(10*1024, 1)
	buf := make([]byte, 0, ChunkedSize(CSIDVideo, 0, len(p), chunkSize))
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendMessage(buf[:0], CSIDVideo, MsgVideo, PlayStreamID, 1234, p, chunkSize)
	}
}

func BenchmarkAppendMessage4096(b *testing.B)  { benchAppend(b, 4096) }
func BenchmarkAppendMessage60000(b *testing.B) { benchAppend(b, 60000) }

// cycleConn is a net.Conn reading a repeated byte stream and discarding writes.
type cycleConn struct {
	memConn
	cr cycleReader
}

func (c *cycleConn) Read(p []byte) (int, error) { return c.cr.Read(p) }

func videoStream(chunkSize int) []byte {
	var stream []byte
	for i := range 64 {
		stream = AppendMessage(stream, CSIDVideo, MsgVideo, 1, uint32(i*33), payloadOf(10*1024, byte(i)), chunkSize)
	}
	return stream
}

// BenchmarkClientReadBorrowed is the load generator's player read path.
func BenchmarkClientReadBorrowed(b *testing.B) {
	c := &ClientConn{}
	c.init(&cycleConn{cr: cycleReader{b: videoStream(DefaultServerChunkSize)}}, newConfig(DefaultClientChunkSize, nil))
	c.cr.chunkSize = DefaultServerChunkSize
	c.playing = true
	b.SetBytes(10 * 1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.ReadMessageBorrowed(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServerReadMessage is a publisher's ingest path.
func BenchmarkServerReadMessage(b *testing.B) {
	s := NewServerConn(&cycleConn{cr: cycleReader{b: videoStream(4096)}})
	s.cr.chunkSize = 4096
	s.state = statePublishing
	s.req = &Request{Action: ActionPublish}
	b.SetBytes(10 * 1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
}
