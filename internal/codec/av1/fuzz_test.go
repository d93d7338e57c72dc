package av1

import (
	"bytes"
	"testing"
)

func seedRecords(f *testing.F) [][]byte {
	var out [][]byte
	for _, file := range []string{"av1_720p.mp4", "av1_svt_720p.mp4", "av1_10bit.mp4"} {
		out = append(out, readMP4(f, file).Boxes["av1C"])
	}
	return out
}

// seedUnits returns small temporal units cut from the real vectors: each
// OBU of the .obu files is cut to its first bytes (and its size field
// rewritten), keeping the seeds short for the fuzzer.
func seedUnits(f *testing.F) [][]byte {
	var out [][]byte
	for _, file := range []string{"av1_720p.obu", "av1_decmodel.obu", "av1_still.obu"} {
		for _, u := range temporalUnits(f, readFile(f, file)) {
			var cut []byte
			err := ForEachOBU(u, func(o OBU) bool {
				p := o.Payload[:min(len(o.Payload), 48)]
				cut = append(cut, o.Raw[0]|0x02)
				if o.HasExtension {
					cut = append(cut, o.Raw[1])
				}
				cut = appendLEB128(cut, uint64(len(p)))
				cut = append(cut, p...)
				return true
			})
			if err != nil {
				f.Fatal(err)
			}
			out = append(out, cut)
		}
	}
	return out
}

func FuzzParseSequenceHeader(f *testing.F) {
	for _, av1C := range seedRecords(f) {
		o, _, err := NextOBU(av1C[4:])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(o.Payload)
	}
	for _, name := range []string{"av1_decmodel.obu", "av1_still.obu"} {
		o, _, err := NextOBU(SequenceHeaderOBU(readFile(f, name)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(o.Payload)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		h, err := ParseSequenceHeader(payload)
		if err != nil {
			return
		}
		if h.MaxWidth <= 0 || h.MaxHeight <= 0 || h.MaxWidth > 1<<16 || h.MaxHeight > 1<<16 {
			t.Fatalf("size %dx%d", h.MaxWidth, h.MaxHeight)
		}
		if h.Profile > 2 || (h.BitDepth != 8 && h.BitDepth != 10 && h.BitDepth != 12) || h.OperatingPoints < 1 {
			t.Fatalf("implausible header %+v", h)
		}
		// A record built from it describes it.
		obu := append([]byte{0x0A}, appendLEB128(nil, uint64(len(payload)))...)
		obu = append(obu, payload...)
		av1C, err := BuildConfigRecord(obu)
		if err != nil {
			t.Fatalf("BuildConfigRecord: %v", err)
		}
		c, err := ParseConfigRecord(av1C)
		if err != nil {
			t.Fatalf("built record does not parse: %v", err)
		}
		if c.Profile != h.Profile || c.Level != h.Level || c.HighTier != h.HighTier || c.BitDepth() != h.BitDepth ||
			c.MonoChrome != h.MonoChrome || c.SubsamplingX != h.SubsamplingX || c.SubsamplingY != h.SubsamplingY ||
			!bytes.Equal(c.ConfigOBUs, obu) {
			t.Fatalf("record %+v does not match header %+v", c, h)
		}
	})
}

func FuzzParseConfigRecord(f *testing.F) {
	for _, av1C := range seedRecords(f) {
		f.Add(av1C)
	}
	f.Fuzz(func(t *testing.T, av1C []byte) {
		c, err := ParseConfigRecord(av1C)
		if err != nil {
			return
		}
		tr, err := TrackFromConfigRecord(av1C)
		if err != nil {
			return
		}
		if tr.Width < 0 || tr.Height < 0 || tr.Profile == "" || tr.Level == "" {
			t.Fatalf("bad track %+v", tr)
		}
		obu := SequenceHeaderOBU(c.ConfigOBUs)
		if obu == nil {
			return
		}
		// Round trip: rebuilding from the sequence header is stable.
		built, err := BuildConfigRecord(obu)
		if err != nil {
			t.Fatalf("BuildConfigRecord fails on a header TrackFromConfigRecord accepted: %v", err)
		}
		c2, err := ParseConfigRecord(built)
		if err != nil {
			t.Fatalf("rebuilt record does not parse: %v", err)
		}
		again, err := BuildConfigRecord(SequenceHeaderOBU(c2.ConfigOBUs))
		if err != nil || !bytes.Equal(again, built) {
			t.Fatalf("BuildConfigRecord is not stable: %v", err)
		}
	})
}

func FuzzOBUs(f *testing.F) {
	for _, u := range seedUnits(f) {
		f.Add(u)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		total := 0
		err := ForEachOBU(data, func(o OBU) bool {
			if len(o.Raw) == 0 || len(o.Payload) > len(o.Raw) || !bytes.HasSuffix(o.Raw, o.Payload) {
				t.Fatalf("inconsistent OBU %+v", o)
			}
			total += len(o.Raw)
			return true
		})
		if err == nil && total != len(data) {
			t.Fatalf("OBUs cover %d of %d bytes", total, len(data))
		}
		if s := SequenceHeaderOBU(data); s != nil {
			if o, _, err := NextOBU(s); err != nil || o.Type != OBUTypeSequenceHeader {
				t.Fatalf("SequenceHeaderOBU returned %v, %v", o.Type, err)
			}
		}
	})
}

func FuzzIsKeyframe(f *testing.F) {
	for _, u := range seedUnits(f) {
		f.Add(u)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Reference: the first frame header decides, read through ForEachOBU.
		want, reduced, decided := false, false, false
		_ = ForEachOBU(data, func(o OBU) bool {
			switch o.Type {
			case OBUTypeSequenceHeader:
				reduced = len(o.Payload) > 0 && o.Payload[0]>>3&1 == 1
			case OBUTypeFrame, OBUTypeFrameHeader:
				decided = true
				want = reduced || len(o.Payload) > 0 && o.Payload[0]>>7 == 0 && o.Payload[0]>>5&3 == 0
				return false
			}
			return true
		})
		if !decided {
			want = false
		}
		// IsKeyframe stops at the first malformed OBU, the reference too.
		if got := IsKeyframe(data); got != want {
			t.Fatalf("IsKeyframe = %v, reference %v", got, want)
		}
	})
}
