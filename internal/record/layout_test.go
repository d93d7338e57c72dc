package record

import (
	"bytes"
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/storage"
)

func TestKeyRoundTrip(t *testing.T) {
	start := time.Date(2026, 11, 23, 23, 59, 58, 123e6, time.UTC)
	s := Segment{Path: "live/cam1", Start: start, Duration: 4004 * time.Millisecond, InitLen: 812, Run: start.Add(-time.Hour)}
	assert.Equal(t, "recordings/live/cam1/2026-11-23/"+s.Name(), s.Key())
	require.NoError(t, storage.ValidateKey(s.Key()))
	got, err := ParseKey("live/cam1", s.Key())
	require.NoError(t, err)
	assert.Equal(t, s, got)
	assert.Equal(t, start.Add(4004*time.Millisecond), got.End())
}

func TestParseKeyRejects(t *testing.T) {
	good := Segment{Path: "live/cam1", Start: time.UnixMilli(1763935200000), Duration: time.Second, Run: time.UnixMilli(1763935200000)}
	for _, key := range []string{
		"recordings/live/cam2/2025-11-23/" + good.Name(),                     // other stream
		"recordings/live/cam1/sub/2025-11-23/" + good.Name(),                 // nested stream
		"recordings/live/cam1/2025-11-24/" + good.Name(),                     // wrong day
		"recordings/live/cam1/2025-11-23/1763935200000_1000_0_1763935200000", // no extension
		"recordings/live/cam1/2025-11-23/01763935200000_1000_0_1763935200000.mp4",
		"recordings/live/cam1/2025-11-23/1763935200000_-1_0_1763935200000.mp4",
		"recordings/live/cam1/2025-11-23/1763935200000_1000_0_1763935200001.mp4", // run after start
		"recordings/live/cam1/2025-11-23/1_2_3.mp4",
		"recordings/live/cam1/2025-11-23/99999999999999999999_1_0_0.mp4",
	} {
		_, err := ParseKey("live/cam1", key)
		assert.ErrorIs(t, err, ErrBadKey, key)
	}
}

func put(t *testing.T, st storage.Store, s Segment) {
	t.Helper()
	body := bytes.Repeat([]byte{1}, 100)
	require.NoError(t, st.Put(context.Background(), s.Key(), bytes.NewReader(body), int64(len(body))))
}

func TestIndexAndSpans(t *testing.T) {
	fs, err := storage.NewFS(t.TempDir())
	require.NoError(t, err)
	defer fs.Close()
	ctx := context.Background()
	// Two runs across midnight UTC, with a 10 s gap between them.
	run1 := time.Date(2026, 11, 23, 23, 59, 52, 0, time.UTC)
	var segs []Segment
	for i := range 4 {
		segs = append(segs, Segment{Path: "live/a", Start: run1.Add(time.Duration(i) * 4 * time.Second), Duration: 4 * time.Second, InitLen: 10, Run: run1})
	}
	run2 := run1.Add(26 * time.Second)
	for i := range 2 {
		segs = append(segs, Segment{Path: "live/a", Start: run2.Add(time.Duration(i) * 4 * time.Second), Duration: 4 * time.Second, InitLen: 10, Run: run2})
	}
	for _, s := range segs {
		put(t, fs, s)
	}
	// Noise: another stream, a nested stream, a stray file.
	put(t, fs, Segment{Path: "live/b", Start: run1, Duration: time.Second, Run: run1})
	put(t, fs, Segment{Path: "live/a/sub", Start: run1, Duration: time.Second, Run: run1})
	require.NoError(t, fs.Put(ctx, "recordings/live/a/2026-11-23/notes.txt", bytes.NewReader(nil), 0))

	ix := NewIndex(fs)
	all, err := ix.Segments(ctx, "live/a", time.Time{}, time.Time{})
	require.NoError(t, err)
	require.Len(t, all, 6)
	for i := range all {
		assert.Equal(t, segs[i].Key(), all[i].Key())
		assert.EqualValues(t, 100, all[i].Size)
	}
	spans := Spans(all)
	require.Len(t, spans, 2)
	assert.Equal(t, 16*time.Second, spans[0].Duration())
	assert.Equal(t, 4, spans[0].Segments)
	assert.EqualValues(t, 400, spans[0].Size)
	assert.Equal(t, run2, spans[1].Start)

	// A range selects overlapping segments, via the day folders.
	some, err := ix.Segments(ctx, "live/a", run1.Add(5*time.Second), run1.Add(9*time.Second))
	require.NoError(t, err)
	require.Len(t, some, 2)
	assert.Equal(t, segs[1].Start, some[0].Start)

	_, err = ix.Segments(ctx, "live/a", run2, run1)
	assert.ErrorIs(t, err, ErrBadRange)
	_, err = ix.Segments(ctx, "../etc", time.Time{}, time.Time{})
	assert.Error(t, err)

	// Delete takes whole segments inside the range only.
	gone, err := ix.Delete(ctx, "live/a", run1.Add(2*time.Second), run1.Add(12*time.Second))
	require.NoError(t, err)
	require.Len(t, gone, 2)
	left, err := ix.Segments(ctx, "live/a", time.Time{}, time.Time{})
	require.NoError(t, err)
	assert.Len(t, left, 4)
}

func TestJanitor(t *testing.T) {
	fs, err := storage.NewFS(t.TempDir())
	require.NoError(t, err)
	defer fs.Close()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	old := Segment{Path: "live/a", Start: now.Add(-2 * time.Hour), Duration: 4 * time.Second, Run: now.Add(-2 * time.Hour)}
	fresh := Segment{Path: "live/a", Start: now.Add(-10 * time.Minute), Duration: 4 * time.Second, Run: now.Add(-10 * time.Minute)}
	kept := Segment{Path: "keep/a", Start: now.Add(-48 * time.Hour), Duration: 4 * time.Second, Run: now.Add(-48 * time.Hour)}
	for _, s := range []Segment{old, fresh, kept} {
		put(t, fs, s)
	}
	j := NewJanitor(fs, func(path string) time.Duration {
		if path == "live/a" {
			return time.Hour
		}
		return 0
	}, time.Minute, slogDiscard())
	j.now = func() time.Time { return now }
	n, err := j.Sweep(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	_, err = fs.Stat(context.Background(), old.Key())
	assert.ErrorIs(t, err, storage.ErrNotFound)
	for _, s := range []Segment{fresh, kept} {
		_, err = fs.Stat(context.Background(), s.Key())
		assert.NoError(t, err)
	}
}

func TestParseRange(t *testing.T) {
	from, to, err := ParseRange(url.Values{"from": {"2026-11-23T10:00:00Z"}, "to": {"2026-11-23T11:00:00.5+01:00"}})
	require.NoError(t, err)
	assert.Equal(t, time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), from.UTC())
	assert.Equal(t, time.Date(2026, 11, 23, 10, 0, 0, 5e8, time.UTC), to.UTC())
	_, _, err = ParseRange(url.Values{"from": {"yesterday"}})
	assert.ErrorIs(t, err, ErrBadTime)
	assert.Contains(t, err.Error(), "from=")
	_, _, err = ParseRange(url.Values{"from": {"2026-11-23T10:00:00Z"}, "to": {"2026-11-23T09:00:00Z"}})
	assert.ErrorIs(t, err, ErrBadRange)
	from, to, err = ParseRange(url.Values{})
	require.NoError(t, err)
	assert.True(t, from.IsZero() && to.IsZero())
}

func FuzzParseName(f *testing.F) {
	f.Add("1763935200000_4000_812_1763935100000.mp4")
	f.Add("1_2_3_0.mp4")
	f.Add("../x.mp4")
	f.Fuzz(func(t *testing.T, name string) {
		s, err := ParseName("live/a", name)
		if err != nil {
			return
		}
		// A name that parses names exactly that segment.
		if s.Name() != name {
			t.Fatalf("%q parsed to %+v which names %q", name, s, s.Name())
		}
		if err := storage.ValidateKey(s.Key()); err != nil {
			t.Fatalf("%q: invalid key %q: %v", name, s.Key(), err)
		}
	})
}

func TestParseNameRefusesADurationThatWouldOverflow(t *testing.T) {
	// 9,227,000,000,000 ms is more than time.Duration holds in nanoseconds.
	_, err := ParseName("live/a", "1_9227000000000_0_0.mp4")
	require.ErrorIs(t, err, ErrBadKey)
	seg, err := ParseName("live/a", "1_86400000_0_0.mp4")
	require.NoError(t, err, "a day is the longest segment")
	require.Equal(t, 24*time.Hour, seg.Duration)
}
