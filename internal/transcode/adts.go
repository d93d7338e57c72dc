package transcode

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/quasipaa/quasipaa/internal/codec/aac"
)

// adtsReader reads ADTS frames, as ffmpeg's adts muxer writes them, from a
// byte stream.
type adtsReader struct {
	r   *bufio.Reader
	buf []byte
}

func newADTSReader(r io.Reader) *adtsReader {
	return &adtsReader{r: bufio.NewReaderSize(r, 16<<10), buf: make([]byte, 0, 2048)}
}

// errADTS is wrapped by every ADTS stream error.
var errADTS = errors.New("transcode: invalid ADTS stream")

// ReadFrame returns the next frame's header and access unit. The access
// unit is valid until the next call. It returns io.EOF at the end of the
// stream on a frame boundary and io.ErrUnexpectedEOF inside a frame.
func (a *adtsReader) ReadFrame() (aac.ADTSHeader, []byte, error) {
	hdr, err := a.r.Peek(aac.ADTSHeaderSize)
	if err != nil {
		if len(hdr) == 0 && err == io.EOF {
			return aac.ADTSHeader{}, nil, io.EOF
		}
		if err == io.EOF {
			return aac.ADTSHeader{}, nil, io.ErrUnexpectedEOF
		}
		return aac.ADTSHeader{}, nil, err
	}
	h, err := aac.ParseADTSHeader(hdr)
	if err != nil {
		return aac.ADTSHeader{}, nil, fmt.Errorf("%w: %w", errADTS, err)
	}
	if h.RawDataBlocks != 1 {
		return aac.ADTSHeader{}, nil, fmt.Errorf("%w: %d raw data blocks", errADTS, h.RawDataBlocks)
	}
	if cap(a.buf) < h.FrameLength {
		a.buf = make([]byte, h.FrameLength)
	}
	a.buf = a.buf[:h.FrameLength]
	if _, err := io.ReadFull(a.r, a.buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return aac.ADTSHeader{}, nil, err
	}
	return h, a.buf[h.HeaderLength():], nil
}
