package cluster

import "context"

// HolderHTTP returns the owner of the lease kind/path in reg and, unless
// that owner is self, the HTTP base URL (Node.HTTP) of its last heartbeat:
// "" when the owner is not a live node or announces no HTTP address. Errors
// are reg's; ErrNotFound when nobody holds the lease. It is how a node finds
// the node serving a stream (its route) or running one of its jobs.
func HolderHTTP(ctx context.Context, reg Registry, kind, path, self string) (owner, httpBase string, err error) {
	l, err := reg.Lease(ctx, kind, path)
	if err != nil {
		return "", "", err
	}
	if l.Owner == self {
		return l.Owner, "", nil
	}
	nodes, err := reg.Nodes(ctx)
	if err != nil {
		return l.Owner, "", err
	}
	for i := range nodes {
		if nodes[i].ID == l.Owner {
			return l.Owner, nodes[i].HTTP, nil
		}
	}
	return l.Owner, "", nil
}
