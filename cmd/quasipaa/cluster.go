package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/config"
	"github.com/quasipaa/quasipaa/internal/hub"
	"github.com/quasipaa/quasipaa/internal/relay"
)

// admitFunc is one check of hub.Options.Admit.
type admitFunc func(ctx context.Context, action hub.Action, path string, info hub.ClientInfo) error

// ErrRoleNotServed refuses a client asking a node for what its roles do not do.
var ErrRoleNotServed = errors.New("this node does not serve that")

// clustered reports whether the node is one node of a cluster (a shared
// registry) rather than a single process.
func clustered(cfg *config.Config) bool { return cfg.Cluster.Redis != "" }

// openRegistry returns the Redis registry of cluster.redis, or the in-memory
// one of a single process.
func openRegistry(ctx context.Context, cfg *config.Config) (cluster.Registry, error) {
	if !clustered(cfg) {
		return cluster.NewMemory(), nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	reg, err := cluster.NewRedis(ctx, cfg.Cluster.Redis)
	if err != nil {
		return nil, fmt.Errorf("cluster.redis: %w", err)
	}
	return reg, nil
}

// nodeID is cluster.node_id, or the host name.
func nodeID(cfg *config.Config) string {
	if cfg.Cluster.NodeID != "" {
		return cfg.Cluster.NodeID
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return strings.NewReplacer(" ", "-", "/", "-", ":", "-").Replace(h)
	}
	return "quasipaa"
}

// advertiseHost is cluster.advertise, else the listen host when it is a
// specific address, else the first non-loopback IP, else 127.0.0.1.
func advertiseHost(cfg *config.Config, listen net.Addr) string {
	if cfg.Cluster.Advertise != "" {
		return cfg.Cluster.Advertise
	}
	if ta, ok := listen.(*net.TCPAddr); ok && !ta.IP.IsUnspecified() {
		return ta.IP.String()
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	return "127.0.0.1"
}

// roleGate refuses publishers on nodes without the publish role and viewers
// on nodes without the pull role (relays and internal readers do not pass
// through it).
func roleGate(cfg *config.Config) admitFunc {
	publish, pull := cfg.Cluster.HasRole(config.RolePublish), cfg.Cluster.HasRole(config.RolePull)
	return func(_ context.Context, action hub.Action, _ string, _ hub.ClientInfo) error {
		switch {
		case action == hub.ActionPublish && !publish:
			return fmt.Errorf("%w: no publish role here; ask core's /api/v1/dispatch", ErrRoleNotServed)
		case action == hub.ActionPlay && !pull:
			return fmt.Errorf("%w: no pull role here; ask core's /api/v1/dispatch", ErrRoleNotServed)
		}
		return nil
	}
}

// loadMeter measures the node's load for its heartbeats.
type loadMeter struct {
	hub *hub.Hub
	cpu *cluster.CPUSampler

	mu      sync.Mutex
	last    time.Time
	lastIn  uint64
	lastOut uint64
	inBps   int64
	outBps  int64
	latest  cluster.Load
}

// Last returns the load measured by the latest Load call.
func (m *loadMeter) Last() cluster.Load {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.latest
}

func newLoadMeter(h *hub.Hub) *loadMeter {
	return &loadMeter{hub: h, cpu: cluster.NewCPUSampler()}
}

// Load returns the node's load since the previous call.
func (m *loadMeter) Load() cluster.Load {
	infos := m.hub.Streams()
	var l cluster.Load
	var in, out uint64
	l.Streams = len(infos)
	for _, s := range infos {
		in += s.BytesIn
		out += s.BytesOut
		if s.Publisher != nil && s.Publisher.Protocol != relay.ProtocolRelay {
			l.Publishers++
		}
		for proto, n := range s.Viewers {
			switch proto {
			case "record", "transcode", "hls":
			default:
				l.Viewers += n
			}
		}
	}
	l.Connections = l.Publishers + l.Viewers
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if wall := now.Sub(m.last); !m.last.IsZero() && wall > 0 {
		if in >= m.lastIn {
			m.inBps = int64(float64(in-m.lastIn) * 8 / wall.Seconds())
		}
		if out >= m.lastOut {
			m.outBps = int64(float64(out-m.lastOut) * 8 / wall.Seconds())
		}
	}
	m.last, m.lastIn, m.lastOut = now, in, out
	l.CPU, l.Cores, l.IngressBps, l.EgressBps = m.cpu.Sample(), runtime.GOMAXPROCS(0), m.inBps, m.outBps
	m.latest = l
	return l
}

// splitRoles returns cluster.roles as a list.
func splitRoles(cfg *config.Config) []string { return config.List(cfg.Cluster.Roles) }

// resolveRoute returns the relay's Resolve: the HTTP base URL of the node
// holding the route of a path, or an error wrapping hub.ErrStreamNotFound
// when no other live node publishes it.
func resolveRoute(reg cluster.Registry, self string) func(ctx context.Context, path string) (string, error) {
	return func(ctx context.Context, path string) (string, error) {
		owner, base, err := cluster.HolderHTTP(ctx, reg, cluster.KindRoute, path, self)
		switch {
		case errors.Is(err, cluster.ErrNotFound):
			return "", fmt.Errorf("%w: no node publishes %s", hub.ErrStreamNotFound, path)
		case err != nil:
			return "", fmt.Errorf("cluster registry: %w", err)
		case owner == self:
			return "", fmt.Errorf("%w: %s is routed to this node but not published here", hub.ErrStreamNotFound, path)
		case base == "":
			return "", fmt.Errorf("%w: %s is routed to node %s, which is gone", hub.ErrStreamNotFound, path, owner)
		}
		return base, nil
	}
}

// self describes this node for its heartbeats.
func (n *node) self() cluster.Node {
	host := advertiseHost(n.cfg, n.httpLn.Addr())
	node := cluster.Node{
		ID:      n.id,
		Roles:   splitRoles(n.cfg),
		Region:  n.cfg.Cluster.Region,
		Weight:  float64(n.cfg.Cluster.Weight) / 100,
		HTTP:    "http://" + net.JoinHostPort(host, portOf(n.httpLn.Addr())),
		Version: version,
		Started: n.started,
		Load:    n.load.Load(),
	}
	if n.rtmpLn != nil {
		node.RTMP = net.JoinHostPort(host, portOf(n.rtmpLn.Addr()))
	}
	return node
}

// portOf returns the port of a listener's address.
func portOf(a net.Addr) string {
	_, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return ""
	}
	return port
}
