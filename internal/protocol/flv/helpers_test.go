package flv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// This file holds test-only readers for the real media files in testdata:
// FLV tags, one-video-track MP4 files (to get real H265/AV1/VP9 bitstreams
// and their ISO-BMFF configuration records, written by ffmpeg) and Ogg Opus.

// readFLVFile returns the header and every tag of an FLV file.
func readFLVFile(t testing.TB, name string) (Header, []Tag) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return readFLVBytes(t, data)
}

func readFLVBytes(t testing.TB, data []byte) (Header, []Tag) {
	t.Helper()
	r := NewReader(bytes.NewReader(data), ReaderOptions{})
	h, err := r.ReadHeader()
	require.NoError(t, err)
	var tags []Tag
	for {
		tag, err := r.ReadTag()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		tag.Body = append([]byte(nil), tag.Body...)
		tags = append(tags, tag)
	}
	return h, tags
}

// mp4Sample is one sample of an MP4 track, times in the track's timescale.
type mp4Sample struct {
	data []byte
	dts  int64
	cto  int64 // composition time offset
	sync bool
}

// mp4Track is the first track of an MP4 file.
type mp4Track struct {
	format    string // sample entry type: hvc1, av01, vp09...
	config    []byte // payload of the entry's configuration box (hvcC, av1C, vpcC)
	timescale uint32
	samples   []mp4Sample
}

type box struct {
	typ  string
	body []byte
}

func boxes(t testing.TB, p []byte) []box {
	t.Helper()
	var out []box
	for len(p) >= 8 {
		size := uint64(binary.BigEndian.Uint32(p))
		typ := string(p[4:8])
		hdr := uint64(8)
		switch size {
		case 1:
			require.GreaterOrEqual(t, len(p), 16)
			size, hdr = binary.BigEndian.Uint64(p[8:]), 16
		case 0:
			size = uint64(len(p))
		}
		require.LessOrEqual(t, size, uint64(len(p)), "box %s", typ)
		out = append(out, box{typ, p[hdr:size]})
		p = p[size:]
	}
	return out
}

func child(t testing.TB, p []byte, path ...string) []byte {
	t.Helper()
	for _, name := range path {
		found := false
		for _, b := range boxes(t, p) {
			if b.typ == name {
				p, found = b.body, true
				break
			}
		}
		if !found {
			return nil
		}
	}
	return p
}

// readMP4Track reads the first track of an MP4 file.
func readMP4Track(t testing.TB, name string) mp4Track {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	trak := child(t, data, "moov", "trak")
	require.NotNil(t, trak)
	var tr mp4Track
	mdhd := child(t, trak, "mdia", "mdhd")
	if mdhd[0] == 1 {
		tr.timescale = binary.BigEndian.Uint32(mdhd[20:])
	} else {
		tr.timescale = binary.BigEndian.Uint32(mdhd[12:])
	}
	stbl := child(t, trak, "mdia", "minf", "stbl")
	require.NotNil(t, stbl)

	stsd := child(t, stbl, "stsd")
	entry := boxes(t, stsd[8:])[0]
	tr.format = entry.typ
	for _, b := range boxes(t, entry.body[78:]) { // VisualSampleEntry fields
		switch b.typ {
		case "hvcC", "avcC", "av1C", "vpcC":
			tr.config = b.body
		}
	}

	u32 := func(p []byte, i int) uint32 { return binary.BigEndian.Uint32(p[i*4:]) }
	// sizes
	stsz := child(t, stbl, "stsz")
	n := int(u32(stsz, 2))
	sizes := make([]int, n)
	for i := range sizes {
		if s := u32(stsz, 1); s != 0 {
			sizes[i] = int(s)
		} else {
			sizes[i] = int(u32(stsz, 3+i))
		}
	}
	// chunk offsets
	var chunks []int64
	if stco := child(t, stbl, "stco"); stco != nil {
		for i := 0; i < int(u32(stco, 1)); i++ {
			chunks = append(chunks, int64(u32(stco, 2+i)))
		}
	} else {
		co64 := child(t, stbl, "co64")
		for i := 0; i < int(u32(co64, 1)); i++ {
			chunks = append(chunks, int64(binary.BigEndian.Uint64(co64[8+8*i:])))
		}
	}
	stsc := child(t, stbl, "stsc")
	type run struct{ first, per int }
	var runs []run
	for i := 0; i < int(u32(stsc, 1)); i++ {
		runs = append(runs, run{int(u32(stsc, 2+3*i)), int(u32(stsc, 3+3*i))})
	}
	tr.samples = make([]mp4Sample, n)
	s := 0
	for c := range chunks {
		per := 0
		for _, r := range runs {
			if c+1 >= r.first {
				per = r.per
			}
		}
		off := chunks[c]
		for j := 0; j < per && s < n; j++ {
			tr.samples[s].data = data[off : off+int64(sizes[s])]
			off += int64(sizes[s])
			s++
		}
	}
	require.Equal(t, n, s)
	// decoding times
	stts := child(t, stbl, "stts")
	s = 0
	var dts int64
	for i := 0; i < int(u32(stts, 1)); i++ {
		count, delta := int(u32(stts, 2+2*i)), int64(u32(stts, 3+2*i))
		for j := 0; j < count && s < n; j++ {
			tr.samples[s].dts = dts
			dts += delta
			s++
		}
	}
	// composition offsets
	if ctts := child(t, stbl, "ctts"); ctts != nil {
		s = 0
		for i := 0; i < int(u32(ctts, 1)); i++ {
			count := int(u32(ctts, 2+2*i))
			off := int64(int32(u32(ctts, 3+2*i)))
			for j := 0; j < count && s < n; j++ {
				tr.samples[s].cto = off
				s++
			}
		}
	}
	// sync samples
	if stss := child(t, stbl, "stss"); stss != nil {
		for i := 0; i < int(u32(stss, 1)); i++ {
			tr.samples[u32(stss, 2+i)-1].sync = true
		}
	} else {
		for i := range tr.samples {
			tr.samples[i].sync = true
		}
	}
	return tr
}

// readOggPackets returns the packets of the first logical stream of an Ogg file.
func readOggPackets(t testing.TB, name string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	var packets [][]byte
	var cur []byte
	for len(data) > 0 {
		require.GreaterOrEqual(t, len(data), 27)
		require.Equal(t, "OggS", string(data[:4]))
		nseg := int(data[26])
		segs := data[27 : 27+nseg]
		p := data[27+nseg:]
		for _, l := range segs {
			cur = append(cur, p[:l]...)
			p = p[l:]
			if l < 255 {
				packets = append(packets, cur)
				cur = nil
			}
		}
		data = p
	}
	return packets
}
