package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/quasipaa/quasipaa/internal/protocol/flv"
	"github.com/quasipaa/quasipaa/internal/protocol/rtmp"
	"github.com/quasipaa/quasipaa/internal/protocol/ws"
)

// Buffer sizes of the HTTP and WebSocket players: a small one under the
// HTTP response (headers, chunk lines; large reads bypass it) and the FLV
// reader's, which batches many tags per read syscall.
const (
	connBufferSize = 16 << 10
	flvBufferSize  = 64 << 10
)

// errNoVideo ends a player that played without receiving any video frame.
var errNoVideo = errors.New("no video frame received")

// player is one simulated viewer.
type player struct {
	url   string
	proto Protocol
	hc    *http.Client // HLS only
	done  chan struct{}
	hls   *hlsStats // HLS only, set when it ended

	wc   *whepClient // WHEP only
	sent *sendLog    // WHEP only: the send log of the stream's publisher (nil: none)
	rtc  *whepStats  // WHEP only

	accounting
	started   time.Time // dial start
	playing   time.Time // connected and playing (zero if never)
	ended     time.Time
	attempted bool
	err       error
}

// run waits until at, then plays until ctx ends or the connection fails.
func (p *player) run(ctx context.Context, at time.Time, timeout time.Duration, log *slog.Logger) {
	defer close(p.done)
	if d := time.Until(at); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return // never started: the run ended during the ramp
		}
	}
	p.attempted = true
	p.c.state.Store(stateConnecting)
	p.started = time.Now()
	var err error
	switch p.proto {
	case RTMP:
		err = p.playRTMP(ctx, timeout)
	case HLS:
		err = p.playHLS(ctx, p.hc, timeout, log)
	case WHEP:
		err = p.playWHEP(ctx, timeout)
	default:
		err = p.playHTTP(ctx, timeout)
	}
	p.ended = time.Now()
	if p.proto != HLS {
		p.finish(p.ended) // stalls are not measured for HLS
	}
	switch {
	case p.playing.IsZero():
		if err == nil || ctx.Err() != nil {
			err = fmt.Errorf("connect: not playing when the run ended (%v)", err)
		}
	case ctx.Err() != nil:
		err = nil // the run is over
		if !p.haveVideo {
			err = errNoVideo
			if p.proto == HLS {
				err = errNoMedia
			}
		}
	case err == nil || errors.Is(err, io.EOF):
		err = errors.New("stream ended before the run did")
	default:
		err = fmt.Errorf("read: %w", err)
	}
	p.err = err
	if err != nil {
		p.c.state.Store(stateFailed)
		log.Debug("player failed", "url", p.url, "err", err)
		return
	}
	p.c.state.Store(stateDone)
}

func (p *player) setPlaying() {
	p.playing = time.Now()
	p.c.state.Store(stateConnected)
}

// playRTMP plays over RTMP, reading messages into the client's reused buffers.
func (p *player) playRTMP(ctx context.Context, timeout time.Duration) error {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := rtmp.Dial(dctx, p.url, rtmp.WithReadTimeout(timeout), rtmp.WithWriteTimeout(timeout))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	if err := c.Play(dctx); err != nil {
		return fmt.Errorf("play: %w", err)
	}
	cancel()
	p.setPlaying()
	for {
		m, err := c.ReadMessageBorrowed()
		if err != nil {
			return err
		}
		p.message(m.Type, m.Timestamp, m.Payload, time.Now())
	}
}

// playHTTP plays over HTTP-FLV or WS-FLV with a minimal HTTP/1.1 client: one
// connection and one goroutine per player.
func (p *player) playHTTP(ctx context.Context, timeout time.Duration) error {
	u, err := url.Parse(p.url)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	defer stop()
	_ = nc.SetDeadline(time.Now().Add(timeout))

	key := ""
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUser-Agent: quasipaa-bench\r\nAccept: */*\r\n"
	if p.proto == WSFLV {
		var k [16]byte
		_, _ = rand.Read(k[:])
		key = base64.StdEncoding.EncodeToString(k[:])
		req += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + "\r\n"
	}
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	br := bufio.NewReaderSize(nc, connBufferSize)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	var body io.Reader = resp.Body
	if p.proto == WSFLV {
		if resp.StatusCode != http.StatusSwitchingProtocols {
			return fmt.Errorf("connect: HTTP %s", resp.Status)
		}
		if got := resp.Header.Get("Sec-WebSocket-Accept"); got != ws.AcceptKey(key) {
			return fmt.Errorf("connect: bad Sec-WebSocket-Accept %q", got)
		}
		body = &wsReader{br: br, nc: nc}
	} else if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("connect: HTTP %s", resp.Status)
	}
	_ = nc.SetWriteDeadline(time.Time{})
	p.setPlaying()

	fr := flv.NewReader(body, flv.ReaderOptions{BufferSize: flvBufferSize})
	if _, err := fr.ReadHeader(); err != nil {
		return err
	}
	// The read deadline is pushed back lazily, a few times per timeout.
	deadline := time.Now().Add(timeout)
	_ = nc.SetReadDeadline(deadline)
	for {
		tag, err := fr.ReadTag()
		if err != nil {
			return err
		}
		now := time.Now()
		p.message(tag.Type, tag.Timestamp, tag.Body, now)
		if deadline.Sub(now) < timeout-timeout/4 {
			deadline = now.Add(timeout)
			_ = nc.SetReadDeadline(deadline)
		}
	}
}

// wsReader turns the binary messages a WebSocket server sends into one byte
// stream. It answers pings and ends with io.EOF at a close frame. It does not
// allocate.
type wsReader struct {
	br     *bufio.Reader
	nc     net.Conn
	remain uint64 // payload bytes left in the current data frame
	hdr    [8]byte
	ctl    [2 + 4 + 125]byte
}

// Read reads payload bytes of data frames.
func (w *wsReader) Read(p []byte) (int, error) {
	for w.remain == 0 {
		if err := w.nextFrame(); err != nil {
			return 0, err
		}
	}
	if uint64(len(p)) > w.remain {
		p = p[:w.remain]
	}
	n, err := w.br.Read(p)
	w.remain -= uint64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (w *wsReader) nextFrame() error {
	if _, err := io.ReadFull(w.br, w.hdr[:2]); err != nil {
		return err
	}
	op, b1 := w.hdr[0]&0x0f, w.hdr[1]
	if b1&0x80 != 0 {
		return errors.New("websocket: masked frame from server")
	}
	n := uint64(b1 & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(w.br, w.hdr[:2]); err != nil {
			return err
		}
		n = uint64(w.hdr[0])<<8 | uint64(w.hdr[1])
	case 127:
		if _, err := io.ReadFull(w.br, w.hdr[:8]); err != nil {
			return err
		}
		n = 0
		for _, b := range w.hdr[:8] {
			n = n<<8 | uint64(b)
		}
	}
	switch op {
	case ws.OpContinuation, ws.OpBinary, ws.OpText:
		w.remain = n
		return nil
	}
	if n > 125 {
		return fmt.Errorf("websocket: control frame of %d bytes", n)
	}
	// A control frame: its payload goes after a masked client header in
	// ctl, so that a pong or close echo is ready to send. The mask key is
	// zero, which leaves the payload as it is.
	payload := w.ctl[6 : 6+n]
	if _, err := io.ReadFull(w.br, payload); err != nil {
		return err
	}
	switch op {
	case ws.OpPing:
		return w.send(ws.OpPong, int(n))
	case ws.OpClose:
		if n > 2 {
			n = 2 // echo the status code only
		}
		_ = w.send(ws.OpClose, int(n))
		return io.EOF
	case ws.OpPong:
		return nil
	}
	return fmt.Errorf("websocket: opcode %d", op)
}

// send writes a masked control frame whose payload is already in ctl[6:].
func (w *wsReader) send(op byte, n int) error {
	w.ctl[0] = 0x80 | op
	w.ctl[1] = 0x80 | byte(n)
	w.ctl[2], w.ctl[3], w.ctl[4], w.ctl[5] = 0, 0, 0, 0
	_ = w.nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, err := w.nc.Write(w.ctl[:6+n])
	return err
}
