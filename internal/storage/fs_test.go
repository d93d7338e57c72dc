package storage_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/storage"
)

func TestValidateKeyAccepts(t *testing.T) {
	for _, k := range []string{"a", "a/b", "live/cam1/000001.ts", ".hidden", "a..b", "...", "a b/ü", "x:y", strings.Repeat("k", 255)} {
		assert.NoError(t, storage.ValidateKey(k), k)
	}
}

// A symbolic link planted inside the directory cannot lead outside it.
func TestFSSymlinkCannotEscape(t *testing.T) {
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644))
	dir := t.TempDir()
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "link")))
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "file")))
	s, err := storage.NewFS(dir)
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()

	_, err = s.Get(ctx, "link/secret", 0, -1)
	assert.Error(t, err)
	_, err = s.Stat(ctx, "link/secret")
	assert.Error(t, err)
	assert.Error(t, s.Put(ctx, "link/new", strings.NewReader("x"), 1))
	assert.Error(t, s.Delete(ctx, "link/secret"))
	assert.ErrorIs(t, s.Delete(ctx, "file"), storage.ErrNotFound, "a symlink is not an object")
	_, err = os.Stat(filepath.Join(outside, "new"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = os.Stat(filepath.Join(outside, "secret"))
	assert.NoError(t, err)
	all, err := s.List(ctx, "")
	require.NoError(t, err)
	assert.Empty(t, all, "symlinks are not listed")
}

// A temporary file left by a crash mid-Put is neither listed nor readable
// as an object, and the previous object under the key is intact.
func TestFSCrashLeftoverIgnored(t *testing.T) {
	dir := t.TempDir()
	s, err := storage.NewFS(dir)
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	require.NoError(t, s.Put(ctx, "rec/seg1.ts", bytes.NewReader([]byte("whole")), 5))
	// What a crash between create and rename leaves behind.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rec", ".put%deadbeef"), []byte("par"), 0o644))
	all, err := s.List(ctx, "")
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, "rec/seg1.ts", all[0].Key)
	b, err := os.ReadFile(filepath.Join(dir, "rec", "seg1.ts"))
	require.NoError(t, err)
	assert.Equal(t, "whole", string(b))
	// Objects are plain files at their key's path.
	assert.Equal(t, dir, s.Dir())
}

// Delete removes the directories it empties, but not the store's own.
func TestFSDeletePrunesDirs(t *testing.T) {
	dir := t.TempDir()
	s, err := storage.NewFS(dir)
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	require.NoError(t, s.Put(ctx, "a/b/c/d", strings.NewReader("x"), 1))
	require.NoError(t, s.Put(ctx, "a/keep", strings.NewReader("y"), 1))
	require.NoError(t, s.Delete(ctx, "a/b/c/d"))
	_, err = os.Stat(filepath.Join(dir, "a", "b"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = os.Stat(filepath.Join(dir, "a", "keep"))
	assert.NoError(t, err)
	_, err = os.Stat(dir)
	assert.NoError(t, err)
}

// FuzzValidateKey: a key that passes always stays inside the root and is
// already in clean form.
func FuzzValidateKey(f *testing.F) {
	for _, k := range []string{"a/b", "../x", "a/./b", `a\b`, "%2e%2e", "a//b", "/a", "ü/ß"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if storage.ValidateKey(key) != nil {
			return
		}
		root := filepath.FromSlash("/srv/root")
		joined := filepath.Join(root, filepath.FromSlash(key))
		if !strings.HasPrefix(joined, root+string(filepath.Separator)) {
			t.Fatalf("%q escapes: %s", key, joined)
		}
		if filepath.ToSlash(filepath.Clean(filepath.FromSlash(key))) != key {
			t.Fatalf("%q is not clean", key)
		}
		if strings.ContainsAny(key, "\\\x00%") {
			t.Fatalf("%q holds a forbidden character", key)
		}
	})
}
