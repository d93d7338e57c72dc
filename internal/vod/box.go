package vod

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// errBox is wrapped by every error about malformed MP4 boxes.
var errBox = errors.New("vod: malformed MP4")

// maxBoxes bounds how many boxes one walk visits, so a hostile file cannot
// make a scan (and its store round trips) unbounded.
const maxBoxes = 10000

// box is one ISO BMFF box inside a buffer: data[start:end] is the whole box,
// data[start+hdr:end] its payload.
type box struct {
	typ        string
	start, end int
	hdr        int
}

// boxHeader parses the header of a box starting at b[0] that may extend at
// most avail bytes (size 0 means "to the end": avail). It returns the box
// size, the header length and the type.
func boxHeader(b []byte, avail int64) (size int64, hdr int, typ string, err error) {
	if len(b) < 8 || avail < 8 {
		return 0, 0, "", fmt.Errorf("%w: truncated box header", errBox)
	}
	size, hdr, typ = int64(binary.BigEndian.Uint32(b)), 8, string(b[4:8])
	switch size {
	case 0:
		size = avail
	case 1:
		if len(b) < 16 || avail < 16 {
			return 0, 0, "", fmt.Errorf("%w: truncated large box header", errBox)
		}
		large := binary.BigEndian.Uint64(b[8:16])
		if large > math.MaxInt64 {
			return 0, 0, "", fmt.Errorf("%w: %q box too large", errBox, typ)
		}
		size, hdr = int64(large), 16
	}
	if size < int64(hdr) || size > avail {
		return 0, 0, "", fmt.Errorf("%w: %q box size %d outside 8..%d", errBox, typ, size, avail)
	}
	return size, hdr, typ, nil
}

// children lists the boxes that fill data[from:to] back to back.
func children(data []byte, from, to int) ([]box, error) {
	var out []box
	for off := from; off < to; {
		if len(out) >= maxBoxes {
			return nil, fmt.Errorf("%w: more than %d boxes", errBox, maxBoxes)
		}
		size, hdr, typ, err := boxHeader(data[off:to], int64(to-off))
		if err != nil {
			return nil, err
		}
		out = append(out, box{typ: typ, start: off, end: off + int(size), hdr: hdr})
		off += int(size)
	}
	return out, nil
}

// fullBox returns the payload of a full box (after version and flags) and
// its version, or an error when the payload is shorter than need bytes.
func fullBox(data []byte, b box, need0, need1 int) ([]byte, byte, error) {
	p := data[b.start+b.hdr : b.end]
	if len(p) < 4 {
		return nil, 0, fmt.Errorf("%w: %q box too short", errBox, b.typ)
	}
	v, p := p[0], p[4:]
	need := need0
	if v == 1 {
		need = need1
	}
	if len(p) < need {
		return nil, 0, fmt.Errorf("%w: %q version %d box too short", errBox, b.typ, v)
	}
	return p, v, nil
}

// initInfo is what the download needs from an init segment.
type initInfo struct {
	// timescales maps each track ID to its media timescale.
	timescales map[uint32]uint32
	// movieTimescale is the mvhd timescale.
	movieTimescale uint32
}

// patchInit reads the track timescales of an ftyp+moov init segment and, when
// durMs > 0, sets the movie duration (mvhd, and mehd when present) to durMs
// in place; the length of init never changes.
func patchInit(init []byte, durMs int64) (initInfo, error) {
	info := initInfo{timescales: map[uint32]uint32{}}
	top, err := children(init, 0, len(init))
	if err != nil {
		return info, err
	}
	var moov *box
	for i := range top {
		if top[i].typ == "moov" {
			moov = &top[i]
			break
		}
	}
	if moov == nil {
		return info, fmt.Errorf("%w: no moov box", errBox)
	}
	boxes, err := children(init, moov.start+moov.hdr, moov.end)
	if err != nil {
		return info, err
	}
	var mehd *box
	for _, b := range boxes {
		switch b.typ {
		case "mvhd":
			// v0: creation(4) modification(4) timescale(4) duration(4); v1: 8 8 4 8.
			p, v, err := fullBox(init, b, 16, 28)
			if err != nil {
				return info, err
			}
			if v == 1 {
				info.movieTimescale = binary.BigEndian.Uint32(p[16:])
			} else {
				info.movieTimescale = binary.BigEndian.Uint32(p[8:])
			}
			if durMs > 0 {
				d := scaleMs(durMs, info.movieTimescale)
				if v == 1 {
					binary.BigEndian.PutUint64(p[20:], d)
				} else {
					binary.BigEndian.PutUint32(p[12:], uint32(min(d, math.MaxUint32)))
				}
			}
		case "trak":
			id, ts, err := trackTimescale(init, b)
			if err != nil {
				return info, err
			}
			info.timescales[id] = ts
		case "mvex":
			kids, err := children(init, b.start+b.hdr, b.end)
			if err != nil {
				return info, err
			}
			for i := range kids {
				if kids[i].typ == "mehd" {
					mehd = &kids[i]
				}
			}
		}
	}
	if info.movieTimescale == 0 {
		return info, fmt.Errorf("%w: no mvhd timescale", errBox)
	}
	if mehd != nil && durMs > 0 {
		// v0: fragment_duration(4); v1: fragment_duration(8).
		p, v, err := fullBox(init, *mehd, 4, 8)
		if err != nil {
			return info, err
		}
		d := scaleMs(durMs, info.movieTimescale)
		if v == 1 {
			binary.BigEndian.PutUint64(p, d)
		} else {
			binary.BigEndian.PutUint32(p, uint32(min(d, math.MaxUint32)))
		}
	}
	return info, nil
}

// trackTimescale returns the track ID (tkhd) and media timescale (mdhd) of a trak.
func trackTimescale(data []byte, trak box) (uint32, uint32, error) {
	kids, err := children(data, trak.start+trak.hdr, trak.end)
	if err != nil {
		return 0, 0, err
	}
	var id, ts uint32
	for _, b := range kids {
		switch b.typ {
		case "tkhd":
			// v0: creation(4) modification(4) track_ID(4); v1: 8 8 4.
			p, v, err := fullBox(data, b, 12, 20)
			if err != nil {
				return 0, 0, err
			}
			if v == 1 {
				id = binary.BigEndian.Uint32(p[16:])
			} else {
				id = binary.BigEndian.Uint32(p[8:])
			}
		case "mdia":
			mk, err := children(data, b.start+b.hdr, b.end)
			if err != nil {
				return 0, 0, err
			}
			for _, m := range mk {
				if m.typ != "mdhd" {
					continue
				}
				p, v, err := fullBox(data, m, 12, 20)
				if err != nil {
					return 0, 0, err
				}
				if v == 1 {
					ts = binary.BigEndian.Uint32(p[16:])
				} else {
					ts = binary.BigEndian.Uint32(p[8:])
				}
			}
		}
	}
	if id == 0 || ts == 0 {
		return 0, 0, fmt.Errorf("%w: trak without track ID or timescale", errBox)
	}
	return id, ts, nil
}

// scaleMs converts milliseconds to units of timescale, saturating.
func scaleMs(ms int64, timescale uint32) uint64 {
	if ms <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(ms), uint64(timescale))
	if hi >= 1000 {
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, 1000)
	return q
}

// trackTime is the decode time (tfdt) of one traf.
type trackTime struct {
	track uint32
	time  uint64
}

// moofTimes lists the tfdt of every traf of a moof box (the whole box,
// header included) in order.
func moofTimes(moof []byte) ([]trackTime, error) {
	var out []trackTime
	err := walkMoof(moof, func(track uint32, tfdt []byte, v byte) {
		t := uint64(binary.BigEndian.Uint32(tfdt))
		if v == 1 {
			t = binary.BigEndian.Uint64(tfdt)
		}
		out = append(out, trackTime{track, t})
	}, nil)
	return out, err
}

// patchMoof rewrites, in place, the mfhd sequence number of a moof box to seq
// and each traf's tfdt to tfdt − bases[track] (0 if that would be negative;
// tracks without a base keep their time). Version 0 and 1 tfdt are handled.
func patchMoof(moof []byte, bases map[uint32]uint64, seq uint32) error {
	return walkMoof(moof, func(track uint32, tfdt []byte, v byte) {
		base, ok := bases[track]
		if !ok {
			return
		}
		if v == 1 {
			t := binary.BigEndian.Uint64(tfdt)
			binary.BigEndian.PutUint64(tfdt, t-min(t, base))
			return
		}
		t := uint64(binary.BigEndian.Uint32(tfdt))
		binary.BigEndian.PutUint32(tfdt, uint32(t-min(t, base)))
	}, func(mfhdSeq []byte) {
		binary.BigEndian.PutUint32(mfhdSeq, seq)
	})
}

// walkMoof calls onTfdt with the track ID, the tfdt time field and the tfdt
// version of every traf, and onSeq (when not nil) with the mfhd sequence
// number field. The moof is validated completely before any call, so an
// error means nothing was visited.
func walkMoof(moof []byte, onTfdt func(track uint32, tfdt []byte, v byte), onSeq func([]byte)) error {
	size, hdr, typ, err := boxHeader(moof, int64(len(moof)))
	if err != nil {
		return err
	}
	if typ != "moof" || size != int64(len(moof)) {
		return fmt.Errorf("%w: not a whole moof box", errBox)
	}
	kids, err := children(moof, hdr, len(moof))
	if err != nil {
		return err
	}
	type hit struct {
		track uint32
		tfdt  []byte
		v     byte
	}
	var (
		hits []hit
		seq  []byte
	)
	for _, k := range kids {
		switch k.typ {
		case "mfhd":
			p, _, err := fullBox(moof, k, 4, 4)
			if err != nil {
				return err
			}
			seq = p[:4]
		case "traf":
			tk, err := children(moof, k.start+k.hdr, k.end)
			if err != nil {
				return err
			}
			var (
				track uint32
				have  bool
			)
			for _, b := range tk {
				switch b.typ {
				case "tfhd":
					p, _, err := fullBox(moof, b, 4, 4)
					if err != nil {
						return err
					}
					track, have = binary.BigEndian.Uint32(p), true
				case "tfdt":
					p, v, err := fullBox(moof, b, 4, 8)
					if err != nil {
						return err
					}
					if !have {
						return fmt.Errorf("%w: tfdt before tfhd", errBox)
					}
					if v == 1 {
						p = p[:8]
					} else {
						p = p[:4]
					}
					hits = append(hits, hit{track, p, v})
				}
			}
		}
	}
	for _, h := range hits {
		onTfdt(h.track, h.tfdt, h.v)
	}
	if onSeq != nil && seq != nil {
		onSeq(seq)
	}
	return nil
}

// timeBases returns, for every track of the init, the tfdt to subtract so
// that the earliest track of first (the traf times of the first fragment)
// starts at 0 and every other track keeps its offset to it. Tracks absent
// from the first fragment are shifted by the same amount of time.
func timeBases(timescales map[uint32]uint32, first []trackTime) map[uint32]uint64 {
	// The reference is the track whose first time, in seconds, is smallest.
	var (
		ref   trackTime
		refTS uint32
		found bool
	)
	seen := map[uint32]bool{}
	for _, tt := range first {
		ts := timescales[tt.track]
		if ts == 0 || seen[tt.track] {
			continue
		}
		seen[tt.track] = true
		// tt.time/ts < ref.time/refTS  ⇔  tt.time·refTS < ref.time·ts
		if !found || less128(tt.time, uint64(refTS), ref.time, uint64(ts)) {
			ref, refTS, found = tt, ts, true
		}
	}
	bases := map[uint32]uint64{}
	if !found {
		return bases
	}
	for id, ts := range timescales {
		// floor(ref.time · ts / refTS), which never exceeds the track's own first time.
		hi, lo := bits.Mul64(ref.time, uint64(ts))
		if hi >= uint64(refTS) {
			continue // cannot happen for a consistent file; leave the track alone
		}
		q, _ := bits.Div64(hi, lo, uint64(refTS))
		bases[id] = q
	}
	return bases
}

// less128 reports whether a·b < c·d without overflow.
func less128(a, b, c, d uint64) bool {
	h1, l1 := bits.Mul64(a, b)
	h2, l2 := bits.Mul64(c, d)
	return h1 < h2 || h1 == h2 && l1 < l2
}
