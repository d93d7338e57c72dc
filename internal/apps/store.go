// Package apps keeps the per-app policy list (config "apps") at run time:
// editable through the API, stored in the cluster registry with
// compare-and-set so every core agrees, and read lock-free on the hot path
// (every publish and play asks For).
package apps

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/config"
)

// Sentinel errors of the store.
var (
	// ErrInvalid means an app or its JSON is invalid; the message names the field.
	ErrInvalid = errors.New("invalid app")
	// ErrNotFound means no entry has the given match pattern.
	ErrNotFound = errors.New("no app with this match pattern")
	// ErrDuplicate means another entry already has the match pattern.
	ErrDuplicate = errors.New("an app with this match pattern already exists")
	// ErrTooMany means the list would exceed config.MaxApps entries.
	ErrTooMany = errors.New("too many apps")
	// ErrBusy means the registry kept changing under the store (too many
	// concurrent writers) and the change was not applied.
	ErrBusy = errors.New("apps changed concurrently too often, try again")
)

// maxAttempts bounds the compare-and-set retries of one change.
const maxAttempts = 16

// RefreshInterval is how often Run reloads the list from the registry.
const RefreshInterval = time.Second

type snapshot struct {
	apps    []config.App
	version int64
}

// Store is the run-time per-app policy list. Safe for concurrent use.
type Store struct {
	reg  cluster.Registry
	log  *slog.Logger
	snap atomic.Pointer[snapshot]
	// mu serialises this node's writers and refreshes, so an older read
	// never replaces a newer snapshot (the registry's CAS serialises nodes).
	mu sync.Mutex
}

// NewStore returns the store over reg. When reg holds no apps document yet,
// seed (the config file's apps) is validated and stored; otherwise the
// registry's list wins, so a restarted node joins the cluster's current policy.
func NewStore(ctx context.Context, reg cluster.Registry, seed []config.App, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Store{reg: reg, log: log}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		doc, version, err := reg.Apps(ctx)
		if err != nil {
			return nil, fmt.Errorf("apps: loading from the registry: %w", err)
		}
		if version != 0 {
			list, err := decodeDoc(doc)
			if err != nil {
				return nil, err
			}
			s.snap.Store(&snapshot{apps: list, version: version})
			return s, nil
		}
		if err := validateList(seed); err != nil {
			return nil, err
		}
		list := append([]config.App(nil), seed...)
		b, err := encodeDoc(list)
		if err != nil {
			return nil, err
		}
		v, err := reg.SetApps(ctx, b, 0)
		if errors.Is(err, cluster.ErrConflict) {
			continue // another node seeded first: load its list
		}
		if err != nil {
			return nil, fmt.Errorf("apps: seeding the registry: %w", err)
		}
		s.snap.Store(&snapshot{apps: list, version: v})
		return s, nil
	}
	return nil, ErrBusy
}

// For returns the policy of the first entry matching the stream path. It
// reads an immutable snapshot without locking.
func (s *Store) For(path string) (config.App, bool) {
	for _, a := range s.snap.Load().apps {
		if config.MatchPath(a.Match, path) {
			return a, true
		}
	}
	return config.App{}, false
}

// List returns a copy of the entries, in match order, and their version.
func (s *Store) List() ([]config.App, int64) {
	sn := s.snap.Load()
	return append([]config.App(nil), sn.apps...), sn.version
}

// Get returns the entry whose match pattern is match and its position.
func (s *Store) Get(match string) (config.App, int, bool) {
	list := s.snap.Load().apps
	if i := index(list, match); i >= 0 {
		return list[i], i, true
	}
	return config.App{}, -1, false
}

// Create inserts a at position (0 is first, so it is matched before the
// others; a negative position or one past the end appends) and returns
// its position.
func (s *Store) Create(ctx context.Context, a config.App, position int) (int, error) {
	if err := Validate(&a); err != nil {
		return -1, err
	}
	var at int
	err := s.change(ctx, func(list []config.App) ([]config.App, error) {
		if index(list, a.Match) >= 0 {
			return nil, fmt.Errorf("%w: %q", ErrDuplicate, a.Match)
		}
		if len(list) >= config.MaxApps {
			return nil, fmt.Errorf("%w: at most %d", ErrTooMany, config.MaxApps)
		}
		at = position
		if at < 0 || at > len(list) {
			at = len(list)
		}
		out := make([]config.App, 0, len(list)+1)
		out = append(out, list[:at]...)
		out = append(out, a)
		return append(out, list[at:]...), nil
	})
	return at, err
}

// Update replaces the entry whose pattern is match with a (which may rename
// it) and moves it to position when position >= 0 (clamped to the last
// place); it returns the entry's position.
func (s *Store) Update(ctx context.Context, match string, a config.App, position int) (int, error) {
	if err := Validate(&a); err != nil {
		return -1, err
	}
	var at int
	err := s.change(ctx, func(list []config.App) ([]config.App, error) {
		i := index(list, match)
		if i < 0 {
			return nil, fmt.Errorf("%w: %q", ErrNotFound, match)
		}
		if j := index(list, a.Match); j >= 0 && j != i {
			return nil, fmt.Errorf("%w: %q", ErrDuplicate, a.Match)
		}
		out := make([]config.App, 0, len(list))
		out = append(out, list[:i]...)
		out = append(out, list[i+1:]...)
		at = i
		if position >= 0 {
			at = min(position, len(out))
		}
		return slices.Insert(out, at, a), nil
	})
	return at, err
}

// Delete removes the entry whose pattern is match.
func (s *Store) Delete(ctx context.Context, match string) error {
	return s.change(ctx, func(list []config.App) ([]config.App, error) {
		i := index(list, match)
		if i < 0 {
			return nil, fmt.Errorf("%w: %q", ErrNotFound, match)
		}
		out := make([]config.App, 0, len(list)-1)
		out = append(out, list[:i]...)
		return append(out, list[i+1:]...), nil
	})
}

// change applies fn to the registry's current list with compare-and-set,
// retrying from a fresh read when another node wrote in between. Nothing is
// stored when fn fails.
func (s *Store) change(ctx context.Context, fn func([]config.App) ([]config.App, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 0; attempt < maxAttempts; attempt++ {
		list, version, err := s.load(ctx)
		if err != nil {
			return err
		}
		next, err := fn(list)
		if err != nil {
			return err
		}
		if err := validateList(next); err != nil {
			return err
		}
		doc, err := encodeDoc(next)
		if err != nil {
			return err
		}
		v, err := s.reg.SetApps(ctx, doc, version)
		if errors.Is(err, cluster.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("apps: storing in the registry: %w", err)
		}
		s.snap.Store(&snapshot{apps: next, version: v})
		return nil
	}
	return ErrBusy
}

// load reads the registry's list and updates the snapshot with it; s.mu is held.
func (s *Store) load(ctx context.Context) ([]config.App, int64, error) {
	doc, version, err := s.reg.Apps(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("apps: loading from the registry: %w", err)
	}
	if version == 0 {
		// The registry lost its document (e.g. Redis flushed): start from
		// what this node knows rather than from nothing.
		return s.snap.Load().apps, 0, nil
	}
	if cur := s.snap.Load(); cur.version == version {
		return cur.apps, version, nil
	}
	list, err := decodeDoc(doc)
	if err != nil {
		return nil, 0, err
	}
	s.snap.Store(&snapshot{apps: list, version: version})
	return list, version, nil
}

// Refresh reloads the list from the registry.
func (s *Store) Refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _, err := s.load(ctx)
	return err
}

// Run refreshes the list every RefreshInterval until ctx ends, so this
// node sees the changes made through another core.
func (s *Store) Run(ctx context.Context) {
	t := time.NewTicker(RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, RefreshInterval)
			if err := s.Refresh(rctx); err != nil && ctx.Err() == nil {
				s.log.Warn("refreshing apps from the registry", "err", err)
			}
			cancel()
		}
	}
}

// Validate checks one app for the store: config.ValidateApp plus a match
// pattern of printable characters without spaces. Errors wrap ErrInvalid.
func Validate(a *config.App) error {
	if strings.IndexFunc(a.Match, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }) >= 0 {
		return fmt.Errorf("%w: match: must not contain spaces or control characters", ErrInvalid)
	}
	if err := config.ValidateApp(a); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return nil
}

func validateList(list []config.App) error {
	if len(list) > config.MaxApps {
		return fmt.Errorf("%w: %d entries, at most %d", ErrTooMany, len(list), config.MaxApps)
	}
	seen := make(map[string]bool, len(list))
	for i := range list {
		if err := Validate(&list[i]); err != nil {
			return fmt.Errorf("apps[%d]: %w", i, err)
		}
		if seen[list[i].Match] {
			return fmt.Errorf("apps[%d]: %w: %q", i, ErrDuplicate, list[i].Match)
		}
		seen[list[i].Match] = true
	}
	return nil
}

func index(list []config.App, match string) int {
	for i, a := range list {
		if a.Match == match {
			return i
		}
	}
	return -1
}
