// Package storage is where Quasipaa keeps files (recordings, playlists,
// snapshots): one Store interface with a local-disk implementation (FS) and
// an S3-compatible one (S3). Both pass the same contract suite in
// storagetest. Spool uploads finished files to a Store with retries, so an
// unreachable object store delays uploads without losing anything.
//
// Keys are "/"-separated relative paths such as "live/cam1/000001.ts". Every
// implementation checks every key with ValidateKey before touching anything,
// so no key can name something outside the store's root.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrNotFound is returned (wrapped) when a key has no object.
var ErrNotFound = errors.New("storage: object not found")

// ErrInvalidKey is returned (wrapped) for a key that ValidateKey rejects.
var ErrInvalidKey = errors.New("storage: invalid key")

// ErrInvalidRange is returned (wrapped) for a negative offset or a length below -1.
var ErrInvalidRange = errors.New("storage: invalid range")

// MaxKeyLen is the longest key accepted, in bytes (the S3 limit is 1024).
const MaxKeyLen = 1024

// maxSegmentLen keeps each path element within common filesystem limits.
const maxSegmentLen = 255

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key     string    // the object's key
	Size    int64     // length in bytes
	ModTime time.Time // last modification time
}

// Store is a flat namespace of immutable-once-written objects.
type Store interface {
	// Put stores size bytes read from r under key, replacing any previous
	// object; a reader ends before size bytes is an error and stores nothing.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get returns length bytes of key from offset; length -1 reads to the end.
	Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// Stat describes key.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// List returns every object whose key starts with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// Delete removes key; deleting a missing key returns ErrNotFound.
	Delete(ctx context.Context, key string) error
}

// ValidateKey reports whether key is a safe object key: non-empty, at most
// MaxKeyLen bytes, valid UTF-8, "/"-separated segments that are neither
// empty, "." nor "..", with no leading or trailing "/", no backslash, no
// NUL or other control character, and no "%" (so no percent-encoded form
// of any of these can be decoded into one later).
func ValidateKey(key string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, why)
	}
	switch {
	case key == "":
		return bad("empty")
	case len(key) > MaxKeyLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxKeyLen))
	case !utf8.ValidString(key):
		return bad("not valid UTF-8")
	}
	for _, r := range key {
		switch {
		case r < 0x20 || r == 0x7f:
			return bad("control character")
		case r == '\\':
			return bad("backslash")
		case r == '%':
			return bad("percent sign")
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return bad("empty path segment (leading, trailing or double slash)")
		case seg == "." || seg == "..":
			return bad("dot segment")
		case len(seg) > maxSegmentLen:
			return bad(fmt.Sprintf("path segment longer than %d bytes", maxSegmentLen))
		}
	}
	return nil
}

// validatePrefix accepts "" (everything) or a prefix that is a valid key
// or a valid key followed by "/".
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := ValidateKey(strings.TrimSuffix(prefix, "/")); err != nil {
		return fmt.Errorf("prefix: %w", err)
	}
	return nil
}

// checkRange validates Get's offset and length.
func checkRange(offset, length int64) error {
	if offset < 0 || length < -1 {
		return fmt.Errorf("%w: offset %d length %d", ErrInvalidRange, offset, length)
	}
	return nil
}
