// Package testmedia extracts codec configurations and samples from the small
// container files (MP4, FLV, Ogg) that ffmpeg produced for the codec
// packages' tests. It is test support only: it trusts its input and handles
// just the layouts ffmpeg writes for a single-track file.
package testmedia

import (
	"encoding/binary"
	"fmt"
)

// MP4Track is the single track of an MP4 file.
type MP4Track struct {
	// SampleEntry is the sample entry's four-character code (avc1, hvc1, av01, vp09, mp4a, Opus).
	SampleEntry string
	// Boxes are the sample entry's child boxes by type, payload only (avcC, hvcC, av1C, vpcC, esds, dOps).
	Boxes map[string][]byte
	// Samples are the track's samples in decoding order.
	Samples [][]byte
	// Sync lists the indexes of the sync samples (stss); nil when every sample is one.
	Sync []int
}

type box struct {
	typ  string
	data []byte
}

func readBoxes(b []byte) ([]box, error) {
	var out []box
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, fmt.Errorf("truncated box header")
		}
		size := int(binary.BigEndian.Uint32(b))
		typ := string(b[4:8])
		hdr := 8
		if size == 1 {
			if len(b) < 16 {
				return nil, fmt.Errorf("truncated large box header")
			}
			size = int(binary.BigEndian.Uint64(b[8:]))
			hdr = 16
		} else if size == 0 {
			size = len(b)
		}
		if size < hdr || size > len(b) {
			return nil, fmt.Errorf("box %q size %d out of range", typ, size)
		}
		out = append(out, box{typ, b[hdr:size]})
		b = b[size:]
	}
	return out, nil
}

func find(b []byte, path ...string) ([]byte, error) {
	for _, name := range path {
		boxes, err := readBoxes(b)
		if err != nil {
			return nil, err
		}
		found := false
		for _, bx := range boxes {
			if bx.typ == name {
				b, found = bx.data, true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("box %q not found", name)
		}
	}
	return b, nil
}

// ReadMP4 returns the first track of an MP4 file.
func ReadMP4(file []byte) (*MP4Track, error) {
	stbl, err := find(file, "moov", "trak", "mdia", "minf", "stbl")
	if err != nil {
		return nil, err
	}
	stsd, err := find(stbl, "stsd")
	if err != nil {
		return nil, err
	}
	// stsd: version/flags(4) entry_count(4), then the first sample entry box.
	entries, err := readBoxes(stsd[8:])
	if err != nil || len(entries) == 0 {
		return nil, fmt.Errorf("stsd: %v", err)
	}
	entry := entries[0]
	t := &MP4Track{SampleEntry: entry.typ, Boxes: map[string][]byte{}}
	// SampleEntry(8 bytes) + VisualSampleEntry fields (70) or AudioSampleEntry fields (20).
	skip := 8 + 70
	switch entry.typ {
	case "mp4a", "Opus", "mp3 ", ".mp3":
		skip = 8 + 20
	}
	children, err := readBoxes(entry.data[skip:])
	if err != nil {
		return nil, fmt.Errorf("sample entry children: %v", err)
	}
	for _, c := range children {
		t.Boxes[c.typ] = c.data
	}

	stsz, err := find(stbl, "stsz")
	if err != nil {
		return nil, err
	}
	sampleSize := binary.BigEndian.Uint32(stsz[4:])
	count := int(binary.BigEndian.Uint32(stsz[8:]))
	sizes := make([]int, count)
	for i := range sizes {
		if sampleSize != 0 {
			sizes[i] = int(sampleSize)
		} else {
			sizes[i] = int(binary.BigEndian.Uint32(stsz[12+4*i:]))
		}
	}
	chunks, err := chunkOffsets(stbl)
	if err != nil {
		return nil, err
	}
	stsc, err := find(stbl, "stsc")
	if err != nil {
		return nil, err
	}
	// stsc runs: first_chunk(1-based), samples_per_chunk, sample_description_index.
	n := int(binary.BigEndian.Uint32(stsc[4:]))
	sample := 0
	for chunk := range chunks {
		perChunk := 0
		for i := range n {
			first := int(binary.BigEndian.Uint32(stsc[8+12*i:]))
			if first-1 <= chunk {
				perChunk = int(binary.BigEndian.Uint32(stsc[8+12*i+4:]))
			}
		}
		off := chunks[chunk]
		for range perChunk {
			if sample >= count {
				break
			}
			end := off + sizes[sample]
			if end > len(file) {
				return nil, fmt.Errorf("sample %d past end of file", sample)
			}
			t.Samples = append(t.Samples, file[off:end])
			off = end
			sample++
		}
	}
	if sample != count {
		return nil, fmt.Errorf("read %d of %d samples", sample, count)
	}
	if stss, err := find(stbl, "stss"); err == nil {
		n := int(binary.BigEndian.Uint32(stss[4:]))
		t.Sync = []int{}
		for i := range n {
			t.Sync = append(t.Sync, int(binary.BigEndian.Uint32(stss[8+4*i:]))-1)
		}
	}
	return t, nil
}

func chunkOffsets(stbl []byte) ([]int, error) {
	if stco, err := find(stbl, "stco"); err == nil {
		n := int(binary.BigEndian.Uint32(stco[4:]))
		out := make([]int, n)
		for i := range out {
			out[i] = int(binary.BigEndian.Uint32(stco[8+4*i:]))
		}
		return out, nil
	}
	co64, err := find(stbl, "co64")
	if err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(co64[4:]))
	out := make([]int, n)
	for i := range out {
		out[i] = int(binary.BigEndian.Uint64(co64[8+8*i:]))
	}
	return out, nil
}

// IsSync reports whether sample i is a sync sample.
func (t *MP4Track) IsSync(i int) bool {
	if t.Sync == nil {
		return true
	}
	for _, s := range t.Sync {
		if s == i {
			return true
		}
	}
	return false
}

// FLVTag is one tag of an FLV file.
type FLVTag struct {
	Type      uint8  // 8 audio, 9 video, 18 script
	Timestamp uint32 // in milliseconds
	Data      []byte // the tag body
}

// ReadFLV returns the tags of an FLV file.
func ReadFLV(file []byte) ([]FLVTag, error) {
	if len(file) < 13 || string(file[:3]) != "FLV" {
		return nil, fmt.Errorf("not an FLV file")
	}
	off := int(binary.BigEndian.Uint32(file[5:])) + 4
	var tags []FLVTag
	for off+11 <= len(file) {
		typ := file[off] & 0x1F
		size := int(file[off+1])<<16 | int(file[off+2])<<8 | int(file[off+3])
		ts := uint32(file[off+4])<<16 | uint32(file[off+5])<<8 | uint32(file[off+6]) | uint32(file[off+7])<<24
		start := off + 11
		if start+size > len(file) {
			return nil, fmt.Errorf("tag past end of file")
		}
		tags = append(tags, FLVTag{Type: typ, Timestamp: ts, Data: file[start : start+size]})
		off = start + size + 4
	}
	return tags, nil
}

// ReadOgg returns the packets of the first logical stream of an Ogg file.
func ReadOgg(file []byte) ([][]byte, error) {
	var packets [][]byte
	var cur []byte
	for off := 0; off < len(file); {
		if off+27 > len(file) || string(file[off:off+4]) != "OggS" {
			return nil, fmt.Errorf("bad page at %d", off)
		}
		nseg := int(file[off+26])
		table := file[off+27 : off+27+nseg]
		data := off + 27 + nseg
		for _, l := range table {
			cur = append(cur, file[data:data+int(l)]...)
			data += int(l)
			if l < 255 {
				packets = append(packets, cur)
				cur = nil
			}
		}
		off = data
	}
	return packets, nil
}
