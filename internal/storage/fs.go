package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// tmpMarker is part of every temporary file name. It holds "%", which
// ValidateKey rejects, so a temporary file can never be mistaken for an
// object, listed, or collide with a key.
const tmpMarker = ".put%"

// FS is a Store on a local directory. Each object is one file at its key's
// path under the directory. All access goes through an os.Root, so neither a
// key nor a symbolic link planted in the directory can reach outside it.
type FS struct {
	dir  string
	root *os.Root
}

var _ Store = (*FS)(nil)

// NewFS opens (creating it if needed) the directory dir as a Store.
func NewFS(dir string) (*FS, error) {
	if dir == "" {
		return nil, errors.New("storage: empty directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return &FS{dir: dir, root: root}, nil
}

// Dir returns the directory the store was opened on.
func (s *FS) Dir() string { return s.dir }

// Close releases the directory handle.
func (s *FS) Close() error { return s.root.Close() }

// Put writes the object to a temporary file in the key's directory, fsyncs
// it, renames it over the key and fsyncs the directory, so a crash leaves
// either the old object or the whole new one under key, never a part.
func (s *FS) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("storage: put %q: negative size %d", key, size)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := path.Dir(key)
	var (
		f   *os.File
		tmp string
		err error
	)
	// A concurrent Delete may remove an emptied parent directory between
	// MkdirAll and OpenFile: try again a few times.
	for range 3 {
		if dir != "." {
			if err = s.root.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("storage: put %q: %w", key, err)
			}
		}
		tmp = path.Join(dir, tmpMarker+randomSuffix())
		f, err = s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("storage: put %q: %w", key, err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			_ = s.root.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, io.LimitReader(ctxReader{ctx, r}, size))
	if err != nil {
		return fmt.Errorf("storage: put %q: %w", key, err)
	}
	if n != size {
		return fmt.Errorf("storage: put %q: got %d of %d bytes: %w", key, n, size, io.ErrUnexpectedEOF)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("storage: put %q: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("storage: put %q: %w", key, err)
	}
	if err := s.root.Rename(tmp, key); err != nil {
		return fmt.Errorf("storage: put %q: %w", key, err)
	}
	ok = true
	if err := s.syncDir(dir); err != nil {
		return fmt.Errorf("storage: put %q: sync directory: %w", key, err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func (s *FS) syncDir(dir string) error {
	d, err := s.root.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Get opens key and returns the requested byte range of it.
func (s *FS) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if err := checkRange(offset, length); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := s.root.Open(key)
	if err != nil {
		return nil, s.mapErr("get", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, s.mapErr("get", key, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("storage: get %q: %w", key, ErrNotFound)
	}
	if offset > fi.Size() {
		f.Close()
		return nil, fmt.Errorf("%w: offset %d beyond size %d of %q", ErrInvalidRange, offset, fi.Size(), key)
	}
	n := fi.Size() - offset
	if length >= 0 && length < n {
		n = length
	}
	return &sectionFile{SectionReader: io.NewSectionReader(f, offset, n), f: f}, nil
}

// Stat describes key.
func (s *FS) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, err
	}
	fi, err := s.root.Stat(key)
	if err != nil {
		return ObjectInfo{}, s.mapErr("stat", key, err)
	}
	if !fi.Mode().IsRegular() {
		return ObjectInfo{}, fmt.Errorf("storage: stat %q: %w", key, ErrNotFound)
	}
	return ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List walks the directory under prefix and returns its objects sorted by key.
func (s *FS) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, err
	}
	// Walk only the deepest directory that prefix fully names.
	start := "."
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = prefix[:i]
	}
	out := []ObjectInfo{}
	err := fs.WalkDir(s.root.FS(), start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			// Prune directories that cannot hold a match.
			if p != "." && !strings.HasPrefix(p+"/", prefix) && !strings.HasPrefix(prefix, p+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(p, prefix) || ValidateKey(p) != nil {
			return nil // temporary files, symlinks, anything not an object
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted meanwhile
		} else if err != nil {
			return err
		}
		out = append(out, ObjectInfo{Key: p, Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: list %q: %w", prefix, err)
	}
	slices.SortFunc(out, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Delete removes key, then the directories it leaves empty.
func (s *FS) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fi, err := s.root.Lstat(key)
	if err != nil {
		return s.mapErr("delete", key, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("storage: delete %q: %w", key, ErrNotFound)
	}
	if err := s.root.Remove(key); err != nil {
		return s.mapErr("delete", key, err)
	}
	for dir := path.Dir(key); dir != "."; dir = path.Dir(dir) {
		if s.root.Remove(dir) != nil {
			break // not empty (or in use): stop
		}
	}
	return nil
}

// mapErr turns "no such file" (also "not a directory" for a key below a
// file) into ErrNotFound.
func (s *FS) mapErr(op, key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || isNotDir(err) {
		return fmt.Errorf("storage: %s %q: %w", op, key, ErrNotFound)
	}
	return fmt.Errorf("storage: %s %q: %w", op, key, err)
}

// sectionFile is a byte range of an open file.
type sectionFile struct {
	*io.SectionReader
	f *os.File
}

// Close closes the underlying file.
func (r *sectionFile) Close() error { return r.f.Close() }

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func randomSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
