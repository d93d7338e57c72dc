package vod

import (
	"fmt"
	"sort"
)

// scanHead is how much of a fragment one first read fetches: a whole moof
// of a few seconds of media fits easily, and so does a small fragment.
const scanHead = 64 << 10

// maxMoof bounds the size of a moof box the download buffers.
const maxMoof = 16 << 20

// region is a stretch of a fragment held in memory, rewritten as served.
type region struct {
	off int64
	b   []byte
}

// fragLayout is how the download serves one fragment (a segment's bytes
// after its init): the regions it rewrites are held in memory, everything
// else (the mdat payload) is streamed from the store.
type fragLayout struct {
	regions []region // sorted by off, not overlapping
	moofs   [][]byte // each moof box, aliasing a region
}

// keepBox lists the top-level boxes left as they are in a fragment;
// any other (styp, sidx, …) would be wrong in the middle of a single file
// and is renamed to "free" in place.
var keepBox = map[string]bool{"moof": true, "mdat": true, "free": true, "skip": true, "prft": true, "emsg": true}

// scanFragment finds the top-level boxes of a fragment of n bytes, reading it
// through get (off and length within the fragment). The moof boxes are read
// whole; the mdat payloads are not read at all unless the whole fragment is
// small enough to come with the first read. Boxes outside keepBox are renamed
// "free" in the returned regions.
func scanFragment(get func(off, n int64) ([]byte, error), n int64) (*fragLayout, error) {
	if n < 8 {
		return nil, fmt.Errorf("%w: fragment of %d bytes", errBox, n)
	}
	head, err := get(0, min(n, scanHead))
	if err != nil {
		return nil, err
	}
	// at returns the fragment's bytes [off, off+k): from head (aliased, so
	// edits show in head) when it holds them, else read from the store.
	at := func(off, k int64) ([]byte, error) {
		if off+k <= int64(len(head)) {
			return head[off : off+k], nil
		}
		return get(off, k)
	}
	lay := &fragLayout{}
	boxes := 0
	for off := int64(0); off < n; {
		if boxes++; boxes > maxBoxes {
			return nil, fmt.Errorf("%w: more than %d boxes in a fragment", errBox, maxBoxes)
		}
		hb, err := at(off, min(16, n-off))
		if err != nil {
			return nil, err
		}
		size, _, typ, err := boxHeader(hb, n-off)
		if err != nil {
			return nil, err
		}
		switch {
		case typ == "moof":
			if size > maxMoof {
				return nil, fmt.Errorf("%w: moof of %d bytes", errBox, size)
			}
			b, err := at(off, size)
			if err != nil {
				return nil, err
			}
			// Validate now so a bad moof fails the request before any byte is sent.
			if _, err := moofTimes(b); err != nil {
				return nil, err
			}
			lay.regions = append(lay.regions, region{off, b})
			lay.moofs = append(lay.moofs, b)
		case !keepBox[typ]:
			copy(hb[4:8], "free")
			lay.regions = append(lay.regions, region{off, hb[:8]})
		}
		off += size
	}
	if len(lay.moofs) == 0 {
		return nil, fmt.Errorf("%w: fragment without moof", errBox)
	}
	if int64(len(head)) == n {
		// Everything is in head, edits included: serve it from memory.
		lay.regions = []region{{0, head}}
	}
	sort.Slice(lay.regions, func(i, j int) bool { return lay.regions[i].off < lay.regions[j].off })
	return lay, nil
}

// patch rewrites the layout's moofs: tfdt minus bases, and sequence numbers
// from seq on.
func (l *fragLayout) patch(bases map[uint32]uint64, seq uint32) error {
	for i, m := range l.moofs {
		if err := patchMoof(m, bases, seq+uint32(i)); err != nil {
			return err
		}
	}
	return nil
}

// find returns the region holding fragment offset x, or nil and the offset
// of the next region (end when none follows).
func (l *fragLayout) find(x, end int64) (*region, int64) {
	i := sort.Search(len(l.regions), func(i int) bool {
		r := l.regions[i]
		return r.off+int64(len(r.b)) > x
	})
	if i == len(l.regions) {
		return nil, end
	}
	if r := &l.regions[i]; r.off <= x {
		return r, 0
	}
	return nil, l.regions[i].off
}
