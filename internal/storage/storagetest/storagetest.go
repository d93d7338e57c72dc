// Package storagetest is the contract every storage.Store must meet, as a
// test suite, plus a helper that runs a real S3 server (versitygw).
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/storage"
)

// Run checks that the stores made by newStore behave as storage.Store
// promises. Each subtest gets a fresh, empty store.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	t.Run("PutGet", func(t *testing.T) { testPutGet(t, newStore(t)) })
	t.Run("Overwrite", func(t *testing.T) { testOverwrite(t, newStore(t)) })
	t.Run("Empty", func(t *testing.T) { testEmpty(t, newStore(t)) })
	t.Run("Range", func(t *testing.T) { testRange(t, newStore(t)) })
	t.Run("Stat", func(t *testing.T) { testStat(t, newStore(t)) })
	t.Run("List", func(t *testing.T) { testList(t, newStore(t)) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, newStore(t)) })
	t.Run("NotFound", func(t *testing.T) { testNotFound(t, newStore(t)) })
	t.Run("ShortReader", func(t *testing.T) { testShortReader(t, newStore(t)) })
	t.Run("InvalidKeys", func(t *testing.T) { testInvalidKeys(t, newStore(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newStore(t)) })
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func put(t *testing.T, s storage.Store, key string, data []byte) {
	t.Helper()
	require.NoError(t, s.Put(ctx(t), key, bytes.NewReader(data), int64(len(data))), key)
}

func get(t *testing.T, s storage.Store, key string, off, n int64) []byte {
	t.Helper()
	rc, err := s.Get(ctx(t), key, off, n)
	require.NoError(t, err, "%s [%d,%d]", key, off, n)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func testPutGet(t *testing.T, s storage.Store) {
	data := payload(300_000)
	put(t, s, "live/cam1/000001.ts", data)
	assert.Equal(t, data, get(t, s, "live/cam1/000001.ts", 0, -1))
	put(t, s, "top", []byte("x"))
	assert.Equal(t, []byte("x"), get(t, s, "top", 0, -1))
	put(t, s, "a b/ünïcode-名前.m3u8", []byte("#EXTM3U\n"))
	assert.Equal(t, []byte("#EXTM3U\n"), get(t, s, "a b/ünïcode-名前.m3u8", 0, -1))
}

func testOverwrite(t *testing.T, s storage.Store) {
	put(t, s, "k/v", []byte("first version, longer"))
	put(t, s, "k/v", []byte("second"))
	assert.Equal(t, []byte("second"), get(t, s, "k/v", 0, -1))
	info, err := s.Stat(ctx(t), "k/v")
	require.NoError(t, err)
	assert.Equal(t, int64(6), info.Size)
}

func testEmpty(t *testing.T, s storage.Store) {
	put(t, s, "empty", nil)
	assert.Empty(t, get(t, s, "empty", 0, -1))
	assert.Empty(t, get(t, s, "empty", 0, 0))
	info, err := s.Stat(ctx(t), "empty")
	require.NoError(t, err)
	assert.Equal(t, int64(0), info.Size)
}

func testRange(t *testing.T, s storage.Store) {
	data := payload(1000)
	put(t, s, "r", data)
	for _, c := range []struct{ off, n int64 }{
		{0, 1}, {0, 1000}, {0, -1}, {1, -1}, {999, -1}, {999, 1}, {10, 90}, {500, 500},
		{0, 0}, {10, 0}, {1000, -1}, {1000, 0},
		{990, 100}, // beyond the end: clamped
	} {
		end := int64(len(data))
		if c.n >= 0 && c.off+c.n < end {
			end = c.off + c.n
		}
		assert.Equal(t, data[c.off:end], get(t, s, "r", c.off, c.n), "offset %d length %d", c.off, c.n)
	}
	for _, c := range []struct{ off, n int64 }{{-1, 5}, {0, -2}, {1001, -1}, {5000, 10}} {
		rc, err := s.Get(ctx(t), "r", c.off, c.n)
		if err == nil {
			rc.Close()
		}
		assert.ErrorIs(t, err, storage.ErrInvalidRange, "offset %d length %d", c.off, c.n)
	}
}

func testStat(t *testing.T, s storage.Store) {
	before := time.Now().Add(-time.Minute)
	put(t, s, "dir/obj", payload(1234))
	info, err := s.Stat(ctx(t), "dir/obj")
	require.NoError(t, err)
	assert.Equal(t, "dir/obj", info.Key)
	assert.Equal(t, int64(1234), info.Size)
	assert.True(t, info.ModTime.After(before) && info.ModTime.Before(time.Now().Add(time.Minute)), "mod time %s", info.ModTime)
}

func keysOf(infos []storage.ObjectInfo) []string {
	out := []string{}
	for _, i := range infos {
		out = append(out, i.Key)
	}
	return out
}

func testList(t *testing.T, s storage.Store) {
	all, err := s.List(ctx(t), "")
	require.NoError(t, err)
	assert.Empty(t, all)

	// Insertion order differs from key order on purpose; "a.txt" sorts
	// before "a/b" ('.' < '/') although a directory walk meets "a" first.
	for _, k := range []string{"z", "a/b/c", "a.txt", "ab", "a/c", "live/s1/2.ts", "live/s1/1.ts", "live/s10/1.ts"} {
		put(t, s, k, []byte(k))
	}
	all, err = s.List(ctx(t), "")
	require.NoError(t, err)
	assert.Equal(t, []string{"a.txt", "a/b/c", "a/c", "ab", "live/s1/1.ts", "live/s1/2.ts", "live/s10/1.ts", "z"}, keysOf(all))
	for _, i := range all {
		assert.Equal(t, int64(len(i.Key)), i.Size, i.Key)
	}

	cases := map[string][]string{
		"a":         {"a.txt", "a/b/c", "a/c", "ab"},
		"a/":        {"a/b/c", "a/c"},
		"a/b":       {"a/b/c"},
		"live/s1":   {"live/s1/1.ts", "live/s1/2.ts", "live/s10/1.ts"},
		"live/s1/":  {"live/s1/1.ts", "live/s1/2.ts"},
		"live/s1/2": {"live/s1/2.ts"},
		"nope":      {},
		"nope/":     {},
		"z":         {"z"},
		"z/":        {},
	}
	for prefix, want := range cases {
		got, err := s.List(ctx(t), prefix)
		require.NoError(t, err, prefix)
		assert.Equal(t, want, keysOf(got), "prefix %q", prefix)
	}
}

func testDelete(t *testing.T, s storage.Store) {
	put(t, s, "d/1", []byte("1"))
	put(t, s, "d/2", []byte("2"))
	require.NoError(t, s.Delete(ctx(t), "d/1"))
	_, err := s.Stat(ctx(t), "d/1")
	assert.ErrorIs(t, err, storage.ErrNotFound)
	assert.Equal(t, []byte("2"), get(t, s, "d/2", 0, -1))
	require.NoError(t, s.Delete(ctx(t), "d/2"))
	all, err := s.List(ctx(t), "")
	require.NoError(t, err)
	assert.Empty(t, all)
	assert.ErrorIs(t, s.Delete(ctx(t), "d/2"), storage.ErrNotFound)
	// The key can be written again after its directory was emptied.
	put(t, s, "d/1", []byte("again"))
	assert.Equal(t, []byte("again"), get(t, s, "d/1", 0, -1))
}

func testNotFound(t *testing.T, s storage.Store) {
	put(t, s, "file", []byte("f"))
	put(t, s, "dir/x", []byte("x"))
	for _, k := range []string{"missing", "no/such/key", "file/below", "dir"} {
		_, err := s.Stat(ctx(t), k)
		assert.ErrorIs(t, err, storage.ErrNotFound, "stat %s", k)
		rc, err := s.Get(ctx(t), k, 0, -1)
		if err == nil {
			rc.Close()
		}
		assert.ErrorIs(t, err, storage.ErrNotFound, "get %s", k)
		rc, err = s.Get(ctx(t), k, 1, 1)
		if err == nil {
			rc.Close()
		}
		assert.ErrorIs(t, err, storage.ErrNotFound, "get range %s", k)
		assert.ErrorIs(t, s.Delete(ctx(t), k), storage.ErrNotFound, "delete %s", k)
	}
}

// errReader fails after giving n bytes.
type errReader struct{ n int }

func (r *errReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errors.New("source broke")
	}
	k := min(len(p), r.n)
	clear(p[:k])
	r.n -= k
	return k, nil
}

func testShortReader(t *testing.T, s storage.Store) {
	// A source that ends early or fails stores nothing, and leaves an
	// existing object as it was.
	err := s.Put(ctx(t), "short", strings.NewReader("abc"), 10)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	err = s.Put(ctx(t), "broken", &errReader{n: 100}, 1000)
	assert.Error(t, err)
	put(t, s, "kept", []byte("old"))
	assert.Error(t, s.Put(ctx(t), "kept", strings.NewReader("new"), 100))
	assert.Equal(t, []byte("old"), get(t, s, "kept", 0, -1))
	all, err := s.List(ctx(t), "")
	require.NoError(t, err)
	assert.Equal(t, []string{"kept"}, keysOf(all))
}

// InvalidKeys lists keys every Store must refuse; exported for other suites.
var InvalidKeys = []string{
	"", "/", "/abs", "/etc/passwd", "a/", "a//b", ".", "..", "../x", "a/../../x", "a/..", "./a", "a/./b",
	`a\b`, `..\..\x`, "a\x00b", "a\nb", "a\x7fb",
	"%2e%2e/x", "..%2fx", "a/%2e%2e/%2e%2e/x", "%2E%2E%2F", "a%00b", "%5c..",
	strings.Repeat("k", storage.MaxKeyLen+1),
	strings.Repeat("s", 256) + "/x",
	"bad\xffutf8",
}

func testInvalidKeys(t *testing.T, s storage.Store) {
	c := ctx(t)
	for _, k := range InvalidKeys {
		name := fmt.Sprintf("%.40q", k)
		assert.ErrorIs(t, s.Put(c, k, strings.NewReader("x"), 1), storage.ErrInvalidKey, "put %s", name)
		rc, err := s.Get(c, k, 0, -1)
		if err == nil {
			rc.Close()
		}
		assert.ErrorIs(t, err, storage.ErrInvalidKey, "get %s", name)
		_, err = s.Stat(c, k)
		assert.ErrorIs(t, err, storage.ErrInvalidKey, "stat %s", name)
		assert.ErrorIs(t, s.Delete(c, k), storage.ErrInvalidKey, "delete %s", name)
		if k != "" && k != "a/" { // valid prefixes: everything, and the "directory" a
			_, err = s.List(c, k)
			assert.ErrorIs(t, err, storage.ErrInvalidKey, "list %s", name)
		}
	}
	all, err := s.List(c, "")
	require.NoError(t, err)
	assert.Empty(t, all, "nothing was written")
}

func testConcurrent(t *testing.T, s storage.Store) {
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			key := fmt.Sprintf("c/%d", i%2) // two writers per key
			data := bytes.Repeat([]byte{byte(i % 2)}, 10_000)
			for range 3 {
				assert.NoError(t, s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data))))
			}
		})
	}
	wg.Wait()
	for i := range 2 {
		got := get(t, s, fmt.Sprintf("c/%d", i), 0, -1)
		assert.Equal(t, bytes.Repeat([]byte{byte(i)}, 10_000), got)
	}
}
