package vod

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/record"
	"github.com/quasipaa/quasipaa/internal/storage"
	"github.com/quasipaa/quasipaa/internal/streampath"
)

// mkbox builds a box from its type and payload parts.
func mkbox(typ string, parts ...[]byte) []byte {
	n := 8
	for _, p := range parts {
		n += len(p)
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(n))
	b = append(b, typ...)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// mkfull builds a full box (version, zero flags).
func mkfull(typ string, v byte, parts ...[]byte) []byte {
	return mkbox(typ, append([][]byte{{v, 0, 0, 0}}, parts...)...)
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// mktraf builds a traf of track with a tfdt of the given version.
func mktraf(track uint32, v byte, t uint64) []byte {
	tfdt := u64(t)
	if v == 0 {
		tfdt = u32(uint32(t))
	}
	return mkbox("traf", mkfull("tfhd", 0, u32(track)), mkfull("tfdt", v, tfdt), mkfull("trun", 0, u32(0)))
}

// mkfragment builds styp+sidx+moof+mdat with a traf per time.
func mkfragment(seq uint32, mdat int, trafs ...[]byte) []byte {
	moof := mkbox("moof", append([][]byte{mkfull("mfhd", 0, u32(seq))}, trafs...)...)
	out := mkbox("styp", []byte("msdh"), u32(0))
	out = append(out, mkfull("sidx", 0, make([]byte, 24))...)
	out = append(out, moof...)
	return append(out, mkbox("mdat", bytes.Repeat([]byte{0xAB}, mdat))...)
}

// mkinit builds ftyp+moov with a mvhd (version v, timescale 1000), the
// given tracks (ID → timescale) and a mehd.
func mkinit(v byte, tracks map[uint32]uint32) []byte {
	mvhd := mkfull("mvhd", 0, u32(0), u32(0), u32(1000), u32(0), make([]byte, 80))
	if v == 1 {
		mvhd = mkfull("mvhd", 1, u64(0), u64(0), u32(1000), u64(0), make([]byte, 80))
	}
	parts := [][]byte{mvhd}
	for id, ts := range tracks {
		tkhd := mkfull("tkhd", 0, u32(0), u32(0), u32(id), make([]byte, 68))
		mdhd := mkfull("mdhd", 0, u32(0), u32(0), u32(ts), u32(0), u32(0))
		parts = append(parts, mkbox("trak", tkhd, mkbox("mdia", mdhd)))
	}
	parts = append(parts, mkbox("mvex", mkfull("mehd", v, make([]byte, 4+4*int(v)))))
	return append(mkbox("ftyp", []byte("iso6"), u32(0)), mkbox("moov", parts...)...)
}

// memGet reads a fragment held in memory, as scanFragment's get.
func memGet(frag []byte) func(off, n int64) ([]byte, error) {
	return func(off, n int64) ([]byte, error) {
		if off < 0 || n < 0 || off+n > int64(len(frag)) {
			return nil, fmt.Errorf("out of range %d+%d of %d", off, n, len(frag))
		}
		return append([]byte(nil), frag[off:off+n]...), nil
	}
}

// rewrite applies a layout's regions over a copy of frag.
func rewrite(frag []byte, lay *fragLayout) []byte {
	out := append([]byte(nil), frag...)
	for _, r := range lay.regions {
		copy(out[r.off:], r.b)
	}
	return out
}

func TestPatchInit(t *testing.T) {
	for _, v := range []byte{0, 1} {
		init := mkinit(v, map[uint32]uint32{1: 90000, 2: 48000})
		n := len(init)
		info, err := patchInit(init, 12345)
		require.NoError(t, err)
		assert.Len(t, init, n)
		assert.Equal(t, map[uint32]uint32{1: 90000, 2: 48000}, info.timescales)
		assert.Equal(t, uint32(1000), info.movieTimescale)
		// mvhd and mehd durations now read 12345 (timescale 1000).
		moov := bytes.Index(init, []byte("mvhd"))
		mehd := bytes.Index(init, []byte("mehd"))
		if v == 1 {
			assert.Equal(t, uint64(12345), binary.BigEndian.Uint64(init[moov+4+4+20:]))
			assert.Equal(t, uint64(12345), binary.BigEndian.Uint64(init[mehd+4+4:]))
		} else {
			assert.Equal(t, uint32(12345), binary.BigEndian.Uint32(init[moov+4+4+12:]))
			assert.Equal(t, uint32(12345), binary.BigEndian.Uint32(init[mehd+4+4:]))
		}
	}
	_, err := patchInit(mkbox("ftyp", u32(0)), 1)
	assert.ErrorIs(t, err, errBox)
	_, err = patchInit([]byte{0, 0, 0, 9, 'm', 'o', 'o', 'v'}, 1)
	assert.ErrorIs(t, err, errBox)
}

func TestTimeBases(t *testing.T) {
	ts := map[uint32]uint32{1: 90000, 2: 48000, 3: 1000}
	// Video at 10.0 s, audio at 9.98 s: audio is the reference, video keeps its 20 ms lead.
	bases := timeBases(ts, []trackTime{{1, 900000}, {2, 479040}})
	assert.Equal(t, map[uint32]uint64{1: 898200, 2: 479040, 3: 9980}, bases)
	assert.Empty(t, timeBases(ts, nil))
	assert.Empty(t, timeBases(ts, []trackTime{{9, 5}}), "unknown track")
	// Huge times do not overflow.
	big := timeBases(map[uint32]uint32{1: 1 << 31, 2: 3}, []trackTime{{1, 1 << 62}})
	assert.Equal(t, uint64(1<<62), big[1])
	assert.Equal(t, uint64(3<<31), big[2])
}

func TestScanAndPatchFragment(t *testing.T) {
	for _, mdat := range []int{100, 3 * scanHead} { // whole in the first read, or not
		frag := mkfragment(7, mdat, mktraf(1, 1, 900000), mktraf(2, 0, 479040))
		lay, err := scanFragment(memGet(frag), int64(len(frag)))
		require.NoError(t, err)
		require.Len(t, lay.moofs, 1)
		if mdat > scanHead {
			held := 0
			for _, r := range lay.regions {
				held += len(r.b)
			}
			assert.Less(t, held, 1000, "the mdat is not held")
		}
		require.NoError(t, lay.patch(map[uint32]uint64{1: 898200, 2: 479040}, 3))
		out := rewrite(frag, lay)
		require.Len(t, out, len(frag))
		top, err := children(out, 0, len(out))
		require.NoError(t, err)
		var types []string
		for _, b := range top {
			types = append(types, b.typ)
		}
		assert.Equal(t, []string{"free", "free", "moof", "mdat"}, types)
		times := readTimes(t, out)
		assert.Equal(t, [][]trackTime{{{1, 1800}, {2, 0}}}, times)
		assert.Equal(t, uint32(3), binary.BigEndian.Uint32(out[bytes.Index(out, []byte("mfhd"))+8:]))
		assert.True(t, bytes.HasSuffix(out, bytes.Repeat([]byte{0xAB}, mdat)))
	}

	// A base beyond a track's time clamps at 0.
	frag := mkfragment(1, 10, mktraf(1, 0, 5))
	lay, err := scanFragment(memGet(frag), int64(len(frag)))
	require.NoError(t, err)
	require.NoError(t, lay.patch(map[uint32]uint64{1: 99}, 1))
	assert.Equal(t, [][]trackTime{{{1, 0}}}, readTimes(t, rewrite(frag, lay)))

	// 64-bit and to-the-end box sizes.
	moof := mkbox("moof", mkfull("mfhd", 0, u32(1)), mktraf(1, 1, 10))
	large := append(u32(1), "mdat"...)
	large = append(large, u64(16+4)...)
	large = append(large, 1, 2, 3, 4)
	toEnd := append(u32(0), "mdat"...)
	for _, tail := range [][]byte{large, append(toEnd, 9, 9)} {
		frag := append(append([]byte(nil), moof...), tail...)
		lay, err := scanFragment(memGet(frag), int64(len(frag)))
		require.NoError(t, err)
		require.NoError(t, lay.patch(map[uint32]uint64{1: 10}, 1))
		assert.Equal(t, [][]trackTime{{{1, 0}}}, readTimes(t, rewrite(frag, lay)))
	}

	bad := [][]byte{
		nil,
		mkbox("mdat", make([]byte, 10)), // no moof
		append(mkbox("moof"), 0, 0, 0, 99, 'x', 'x', 'x', 'x'),                             // box past the end
		mkbox("moof", mkbox("traf", mkfull("tfdt", 1, u64(1)))),                            // tfdt without tfhd
		mkbox("moof", mkbox("traf", mkfull("tfhd", 0, u32(1)), mkfull("tfdt", 1, u32(1)))), // short tfdt
	}
	for i, b := range bad {
		_, err := scanFragment(memGet(b), int64(len(b)))
		assert.ErrorIs(t, err, errBox, "case %d", i)
	}
}

// fuzzSeeds are fragments, inits and names to start fuzzing from; real
// ffmpeg-made ones when ffmpeg is available.
func fuzzSeeds() (frags, inits [][]byte, names []string) {
	frags = [][]byte{
		mkfragment(1, 100, mktraf(1, 1, 900000), mktraf(2, 0, 479040)),
		mkfragment(2, 10, mktraf(1, 0, 1<<31)),
		append(mkbox("moof", mkfull("mfhd", 0, u32(1)), mktraf(1, 1, 10)), append(u32(0), "mdat"...)...),
	}
	inits = [][]byte{mkinit(0, map[uint32]uint32{1: 90000}), mkinit(1, map[uint32]uint32{1: 90000, 2: 44100})}
	names = []string{"1772359200000_2000_1333_1772359200000.mp4", "0_0_0_0.mp4", "01_2_3_4.mp4", "1_2_3.mp4", "a/../b.mp4", "-1_2_3_4.mp4", "99999999999999999999_1_1_1.mp4", ""}
	if haveFFmpeg() {
		if runs, err := loadFixtureRuns(); err == nil {
			// Real boxes, with a short mdat: big inputs slow fuzzing down to a crawl.
			for _, r := range runs {
				inits = append(inits, r.init)
				for _, seg := range r.segs[:2] {
					i := bytes.Index(seg, []byte("mdat")) - 4
					frags = append(frags, append(seg[:i:i], mkbox("mdat", seg[i+8:i+72])...))
				}
			}
		}
	}
	return frags, inits, names
}

// FuzzPatchFragment checks that fragment scanning and tfdt patching, init
// patching and segment name parsing never panic, never change a length,
// and patch exactly the fields they should.
func FuzzPatchFragment(f *testing.F) {
	frags, inits, names := fuzzSeeds()
	for i, fr := range frags {
		f.Add(fr, inits[i%len(inits)], uint64(i*1000), names[i%len(names)])
	}
	for i, n := range names {
		f.Add(frags[0], inits[i%len(inits)], uint64(479040), n)
	}
	f.Fuzz(func(t *testing.T, frag, init []byte, base uint64, name string) {
		// Fragment: scan from memory, patch, compare.
		lay, err := scanFragment(memGet(frag), int64(len(frag)))
		if err == nil {
			bases := map[uint32]uint64{}
			var before [][]trackTime
			for _, m := range lay.moofs {
				tt, err := moofTimes(m)
				require.NoError(t, err)
				before = append(before, tt)
				for _, x := range tt {
					bases[x.track] = base
				}
			}
			require.NoError(t, lay.patch(bases, 1))
			out := rewrite(frag, lay)
			require.Len(t, out, len(frag))
			var after [][]trackTime
			for _, m := range lay.moofs {
				tt, err := moofTimes(m)
				require.NoError(t, err)
				after = append(after, tt)
			}
			require.Equal(t, len(before), len(after))
			for i := range before {
				require.Equal(t, len(before[i]), len(after[i]))
				for j, b := range before[i] {
					require.Equal(t, b.track, after[i][j].track)
					require.Equal(t, b.time-min(b.time, base), after[i][j].time)
				}
			}
		}

		// Init: same length, and patching twice changes nothing more.
		in := append([]byte(nil), init...)
		dur := int64(base % (1 << 40))
		if info, err := patchInit(in, dur); err == nil {
			require.Len(t, in, len(init))
			again := append([]byte(nil), in...)
			info2, err := patchInit(again, dur)
			require.NoError(t, err)
			require.Equal(t, info, info2)
			require.Equal(t, in, again)
		}

		// Names: a parsed name is canonical and makes a valid key.
		if seg, err := record.ParseName(testPath, name); err == nil {
			require.Equal(t, name, seg.Name())
			require.NoError(t, storage.ValidateKey(seg.Key()))
		}
		// Routes: whatever the URL, a route names a valid stream path.
		if u, err := url.Parse(Prefix + name); err == nil {
			if rt, aerr := parseRoute(u); aerr == nil {
				require.NoError(t, streampath.Validate(rt.path))
				for _, seg := range strings.Split(rt.path, "/") {
					require.NotContains(t, []string{".", ".."}, seg, "dot segment in %q", rt.path)
				}
				require.NotContains(t, rt.name, "/")
				require.False(t, strings.Contains(u.EscapedPath(), "%"))
			}
		}
	})
}

func TestParseRoute(t *testing.T) {
	cases := map[string]route{
		"/vod/live/cam1/index.m3u8":           {kind: routePlaylist, path: "live/cam1"},
		"/vod/live/index.m3u8/index.m3u8":     {kind: routePlaylist, path: "live/index.m3u8"},
		"/vod/live/cam1/init/1_2_3_0.mp4":     {kind: routeInit, path: "live/cam1", name: "1_2_3_0.mp4"},
		"/vod/a/b/c/seg/1_2_3_0.mp4":          {kind: routeSegment, path: "a/b/c", name: "1_2_3_0.mp4"},
		"/vod/live/seg/x/seg/1_2_3_0.mp4":     {kind: routeSegment, path: "live/seg/x", name: "1_2_3_0.mp4"},
		"/vod/live/cam1.mp4":                  {kind: routeDownload, path: "live/cam1"},
		"/vod/live/cam1.mp4.mp4":              {kind: routeDownload, path: "live/cam1.mp4"},
		"/vod/live/seg/x/index.m3u8":          {kind: routePlaylist, path: "live/seg/x"},
		"/vod/live.v2/cam_1~a-b/index.m3u8":   {kind: routePlaylist, path: "live.v2/cam_1~a-b"},
		"/vod/live/cam1/seg/whatever-it-says": {kind: routeSegment, path: "live/cam1", name: "whatever-it-says"},
	}
	for target, want := range cases {
		u, err := url.Parse(target)
		require.NoError(t, err)
		got, aerr := parseRoute(u)
		require.Nil(t, aerr, target)
		assert.Equal(t, want, got, target)
	}
	bad := map[string]int{
		"/vod/":                          404,
		"/vod/index.m3u8":                404,
		"/vod/live/cam1":                 404,
		"/other/live/cam1/index.m3u8":    404,
		"/vod/live/../cam1/index.m3u8":   400,
		"/vod/live/%63am1/index.m3u8":    400,
		"/vod/live/cam1%2findex.m3u8":    400,
		"/vod/live/c%5cam1/index.m3u8":   400,
		"/vod/live/ca m1/index.m3u8":     400,
		"/vod/live//cam1/index.m3u8":     400,
		"/vod/live/cam1/./index.m3u8":    400,
		"/vod/live/cam1/seg/..":          400,
		"/vod/.mp4":                      400,
		"/vod/live/cam%00/index.m3u8":    400,
		"/vod/live/cam\u00e9/index.m3u8": 400,
	}
	for target, status := range bad {
		u, err := url.Parse(target)
		require.NoError(t, err, target)
		_, aerr := parseRoute(u)
		require.NotNil(t, aerr, target)
		assert.Equal(t, status, aerr.status, target)
	}
}
