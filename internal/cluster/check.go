package cluster

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on the names a Registry accepts.
const (
	maxKindLen  = 64
	maxPathLen  = 1024
	maxOwnerLen = 256
	maxIDLen    = 256
)

// checkKey validates a lease's kind and path.
func checkKey(kind, path string) error {
	if kind == "" || len(kind) > maxKindLen || strings.ContainsAny(kind, ": \t\r\n") {
		return fmt.Errorf("cluster: lease kind %q: want 1..%d characters without colons or spaces", kind, maxKindLen)
	}
	if path == "" || len(path) > maxPathLen {
		return fmt.Errorf("cluster: lease path of %d bytes: want 1..%d", len(path), maxPathLen)
	}
	return nil
}

// checkOwner validates a lease owner.
func checkOwner(owner string) error {
	if owner == "" || len(owner) > maxOwnerLen || !utf8.ValidString(owner) {
		return fmt.Errorf("cluster: lease owner of %d bytes: want 1..%d bytes of UTF-8", len(owner), maxOwnerLen)
	}
	return nil
}

// checkID validates a node ID.
func checkID(id string) error {
	if id == "" || len(id) > maxIDLen || !utf8.ValidString(id) {
		return fmt.Errorf("cluster: node id of %d bytes: want 1..%d bytes of UTF-8", len(id), maxIDLen)
	}
	return nil
}

// checkTTL validates a heartbeat or lease TTL (Redis counts in milliseconds).
func checkTTL(ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("cluster: ttl %s: want at least 1ms", ttl)
	}
	return nil
}

// checkLease validates the arguments of Acquire and Renew.
func checkLease(ctx context.Context, kind, path, owner string, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkKey(kind, path); err != nil {
		return err
	}
	if err := checkOwner(owner); err != nil {
		return err
	}
	return checkTTL(ttl)
}

// heldError wraps sentinel (ErrLeaseHeld or ErrLeaseLost) with the holder.
func heldError(sentinel error, l Lease) error {
	return fmt.Errorf("%w: %s %q is held by %q until %s", sentinel, l.Kind, l.Path, l.Owner, l.Expires.Format(time.RFC3339Nano))
}

// copyNode returns n with its own Roles slice.
func copyNode(n Node) Node {
	n.Roles = append([]string(nil), n.Roles...)
	return n
}
