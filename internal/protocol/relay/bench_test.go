package relay

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/media"
)

// benchFrame is a typical 720p inter frame.
func benchFrame() *media.Frame {
	return &media.Frame{Track: 0, Key: false, DTS: 123456 * time.Millisecond, PTS: 123489 * time.Millisecond,
		Ingest: time.Now(), Payload: bytes.Repeat([]byte{0x5a}, 12000)}
}

func BenchmarkWriteFrame(b *testing.B) {
	f := benchFrame()
	w := NewWriter(io.Discard)
	b.SetBytes(int64(len(f.Payload)))
	b.ReportAllocs()
	for b.Loop() {
		if err := w.WriteFrame(f); err != nil {
			b.Fatal(err)
		}
	}
}

// loopReader replays one encoded message forever.
type loopReader struct {
	msg []byte
	off int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.msg[l.off:])
	l.off = (l.off + n) % len(l.msg)
	return n, nil
}

func BenchmarkReadFrame(b *testing.B) {
	f := benchFrame()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	require.NoError(b, w.WriteFrame(f))
	msg := buf.Bytes()[headerLen:]
	r := NewReader(io.MultiReader(bytes.NewReader(header()), &loopReader{msg: msg}), 0)
	b.SetBytes(int64(len(f.Payload)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := r.Next()
		if err != nil || m.Frame == nil {
			b.Fatal(err)
		}
	}
}
