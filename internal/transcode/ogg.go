package transcode

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Ogg (RFC 3533) is how Opus goes into ffmpeg and comes back out: one packet
// per page, with a granule position (the sample count) on every page.

// Ogg header_type flags.
const (
	oggContinued = 0x01
	oggBOS       = 0x02
	oggEOS       = 0x04
)

const (
	oggHeaderSize = 27
	// oggMaxPacket bounds the packets the reader assembles: an Opus packet
	// is at most 120 ms of 6 frames of 1275 bytes per stream.
	oggMaxPacket = 1 << 20
)

// errOgg is wrapped by every Ogg parsing error.
var errOgg = errors.New("transcode: invalid Ogg stream")

// oggCRCTable is the table of the Ogg CRC-32: polynomial 0x04C11DB7, no
// reflection, initial value and final XOR 0.
var oggCRCTable = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04C11DB7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return t
}()

func oggCRC(crc uint32, b []byte) uint32 {
	for _, c := range b {
		crc = crc<<8 ^ oggCRCTable[byte(crc>>24)^c]
	}
	return crc
}

// oggPacket is one packet of a logical bitstream.
type oggPacket struct {
	// Data is the packet, valid until the next read.
	Data []byte
	// Granule is the granule position of the page the packet ends on, -1
	// when another packet ends after it on that page.
	Granule int64
	// BOS is set on the first packet of the stream.
	BOS bool
}

// oggReader reads the packets of the first logical bitstream of an Ogg
// stream; pages of other streams are skipped. It checks every page's CRC.
type oggReader struct {
	r       *bufio.Reader
	serial  uint32
	started bool
	hdr     [oggHeaderSize + 255]byte
	body    []byte
	// The packets of the current page, as offsets in body.
	segs    []int
	next    int
	granule int64
	bos     bool
	partial []byte // packet continued on the next page
	// dropping is set while the segments of an oversized packet are skipped.
	dropping bool
	packet   []byte
}

func newOggReader(r io.Reader) *oggReader {
	return &oggReader{r: bufio.NewReaderSize(r, 16<<10), body: make([]byte, 0, 255*255)}
}

// ReadPacket returns the next packet. It returns io.EOF at the end of the
// stream on a page boundary, an error wrapping errOgg for malformed data
// and io.ErrUnexpectedEOF for a truncated page.
func (o *oggReader) ReadPacket() (oggPacket, error) {
	for {
		if o.next < len(o.segs) {
			if p, ok := o.nextPacket(); ok {
				return p, nil
			}
			continue
		}
		if err := o.readPage(); err != nil {
			return oggPacket{}, err
		}
	}
}

// nextPacket assembles the next packet from the lacing values of the
// current page; ok is false when the page ends inside a packet.
func (o *oggReader) nextPacket() (p oggPacket, ok bool) {
	lacing := o.hdr[oggHeaderSize : oggHeaderSize+len(o.segs)]
	start := o.segs[o.next]
	end := start
	i := o.next
	for ; i < len(o.segs); i++ {
		end += int(lacing[i])
		if lacing[i] < 255 {
			break
		}
	}
	complete := i < len(o.segs)
	if complete {
		i++
	}
	o.next = i
	if o.dropping || len(o.partial)+end-start > oggMaxPacket {
		// Too large: consume its segments and drop it when it ends.
		o.partial = o.partial[:0]
		o.dropping = !complete
		return oggPacket{}, false
	}
	if !complete {
		o.partial = append(o.partial, o.body[start:end]...)
		return oggPacket{}, false
	}
	data := o.body[start:end]
	if len(o.partial) > 0 {
		o.partial = append(o.partial, data...)
		o.packet = append(o.packet[:0], o.partial...)
		o.partial = o.partial[:0]
		data = o.packet
	}
	p = oggPacket{Data: data, Granule: -1, BOS: o.bos}
	o.bos = false
	if o.next == len(o.segs) {
		p.Granule = o.granule
	}
	return p, true
}

// readPage reads the next page of the followed stream into hdr and body.
func (o *oggReader) readPage() error {
	for {
		h := o.hdr[:oggHeaderSize]
		n, err := io.ReadFull(o.r, h)
		if err != nil {
			if n == 0 && err == io.EOF {
				return io.EOF
			}
			return io.ErrUnexpectedEOF
		}
		if string(h[:4]) != "OggS" {
			return fmt.Errorf("%w: no capture pattern", errOgg)
		}
		if h[4] != 0 {
			return fmt.Errorf("%w: version %d", errOgg, h[4])
		}
		flags := h[5]
		granule := int64(binary.LittleEndian.Uint64(h[6:]))
		serial := binary.LittleEndian.Uint32(h[14:])
		crc := binary.LittleEndian.Uint32(h[22:])
		nsegs := int(h[26])
		lacing := o.hdr[oggHeaderSize : oggHeaderSize+nsegs]
		if _, err := io.ReadFull(o.r, lacing); err != nil {
			return io.ErrUnexpectedEOF
		}
		size := 0
		for _, l := range lacing {
			size += int(l)
		}
		o.body = o.body[:size]
		if _, err := io.ReadFull(o.r, o.body); err != nil {
			return io.ErrUnexpectedEOF
		}
		binary.LittleEndian.PutUint32(h[22:], 0)
		sum := oggCRC(oggCRC(0, o.hdr[:oggHeaderSize+nsegs]), o.body)
		binary.LittleEndian.PutUint32(h[22:], crc)
		if sum != crc {
			return fmt.Errorf("%w: CRC mismatch", errOgg)
		}
		if !o.started {
			if flags&oggBOS == 0 {
				return fmt.Errorf("%w: first page without BOS", errOgg)
			}
			o.started, o.serial = true, serial
			o.bos = true
		} else if serial != o.serial {
			continue
		}
		if flags&oggContinued == 0 {
			// A packet left unfinished on the previous page never ends: drop it.
			o.partial = o.partial[:0]
			o.dropping = false
		}
		if flags&oggContinued != 0 && len(o.partial) == 0 && !o.dropping {
			// Continuation of a packet we do not have: skip its segments.
			skip := 0
			for skip < nsegs && lacing[skip] == 255 {
				skip++
			}
			if skip < nsegs {
				skip++
			}
			o.setSegments(nsegs, skip)
		} else {
			o.setSegments(nsegs, 0)
		}
		o.granule = granule
		return nil
	}
}

// setSegments records the body offset of every segment of the page and
// starts reading at segment from.
func (o *oggReader) setSegments(nsegs, from int) {
	o.segs = o.segs[:0]
	off := 0
	lacing := o.hdr[oggHeaderSize : oggHeaderSize+nsegs]
	for _, l := range lacing {
		o.segs = append(o.segs, off)
		off += int(l)
	}
	o.next = from
}

// oggWriter writes one logical bitstream. Every packet gets a page of its
// own (or several, when it needs more than 255 segments), so a reader sees
// a packet as soon as it is written.
type oggWriter struct {
	serial uint32
	seq    uint32
	buf    []byte
}

// appendPacket appends the pages of one packet to dst. granule is the
// granule position of the page the packet ends on; flags may hold oggBOS
// and oggEOS.
func (o *oggWriter) appendPacket(dst, packet []byte, granule int64, flags byte) []byte {
	first := true
	for {
		// A page holds 255 segments: 254 full ones and the final short one
		// if the packet ends there.
		n := len(packet)
		ends := n < 255*255
		if !ends {
			n = 255 * 255
		}
		page := flags &^ oggEOS
		if !first {
			page = oggContinued
		}
		if ends {
			page |= flags & oggEOS
		}
		g := int64(-1)
		if ends {
			g = granule
		}
		dst = o.appendPage(dst, page, g, packet[:n], ends)
		packet = packet[n:]
		first = false
		if ends {
			return dst
		}
		flags &^= oggBOS
	}
}

// appendPage appends one page holding data; last says whether the packet
// ends on it (a final lacing value below 255).
func (o *oggWriter) appendPage(dst []byte, flags byte, granule int64, data []byte, last bool) []byte {
	start := len(dst)
	nsegs := len(data) / 255
	if last {
		nsegs++
	}
	dst = append(dst, "OggS"...)
	dst = append(dst, 0, flags)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(granule))
	dst = binary.LittleEndian.AppendUint32(dst, o.serial)
	dst = binary.LittleEndian.AppendUint32(dst, o.seq)
	dst = append(dst, 0, 0, 0, 0, byte(nsegs))
	for range len(data) / 255 {
		dst = append(dst, 255)
	}
	if last {
		dst = append(dst, byte(len(data)%255))
	}
	dst = append(dst, data...)
	binary.LittleEndian.PutUint32(dst[start+22:], oggCRC(0, dst[start:]))
	o.seq++
	return dst
}
