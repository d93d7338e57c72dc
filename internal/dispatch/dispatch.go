// Package dispatch chooses the node a client should connect to and builds
// the URL it connects with. It is pure selection logic over a snapshot of
// cluster.Node values: no I/O, no clock, no shared state.
package dispatch

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/config"
	"github.com/quasipaa/quasipaa/internal/streampath"
)

// Actions a client asks to be dispatched for.
const (
	// ActionPlay sends a viewer to a pull node.
	ActionPlay = "play"
	// ActionPublish sends a publisher to a publish node.
	ActionPublish = "publish"
)

// Protocols a client may be dispatched for.
const (
	// ProtoRTMP is RTMP, for play and publish.
	ProtoRTMP = "rtmp"
	// ProtoFLV is HTTP-FLV playback.
	ProtoFLV = "flv"
	// ProtoWSFLV is FLV over WebSocket playback.
	ProtoWSFLV = "ws-flv"
	// ProtoHLS is HLS/LL-HLS playback.
	ProtoHLS = "hls"
	// ProtoWHEP is WebRTC playback (WHEP).
	ProtoWHEP = "whep"
	// ProtoWHIP is WebRTC ingest (WHIP).
	ProtoWHIP = "whip"
	// ProtoSRT is SRT; no node announces an SRT listener yet.
	ProtoSRT = "srt"
)

// Policy kinds.
const (
	// PolicyLeastLoaded picks the node with the lowest weighted load score.
	PolicyLeastLoaded = "least_loaded"
	// PolicyRandom picks a random node, with probability proportional to its weight.
	PolicyRandom = "random"
)

// Normalisation references of the load score: a node with this many
// connections, or this much ingress+egress bit rate, scores 1 on that term,
// the same as a node whose every core is busy.
const (
	// ConnectionsRef is the connection count that scores 1.
	ConnectionsRef = 1000
	// BandwidthRef is the ingress+egress bit rate that scores 1 (1 Gbit/s).
	BandwidthRef = 1e9
	// TieTolerance is how close to the lowest score a node must be to count
	// as equally loaded; least_loaded picks among those at random, so that a
	// burst of clients between two heartbeats spreads over idle nodes.
	TieTolerance = 0.01
)

// Sentinel errors.
var (
	// ErrNoNode means no node is suitable for the request.
	ErrNoNode = errors.New("dispatch: no suitable node")
	// ErrBadRequest wraps every invalid Request field.
	ErrBadRequest = errors.New("dispatch: bad request")
)

// Request is what a client asks to be dispatched for.
type Request struct {
	// Path is the stream path, "app/stream".
	Path string
	// Action is ActionPlay or ActionPublish.
	Action string
	// Protocol is one of the Proto* constants.
	Protocol string
	// Region is the client's region; nodes of that region are preferred. "" is none.
	Region string
	// ClientIP is the client's address; it makes the choice among equally
	// loaded nodes stable for one client when no random source is given.
	ClientIP string
	// Query is the raw query string kept on the produced URL (e.g. "token=…"), without '?'.
	Query string
	// Owner is the node holding the stream's route lease, for a publish;
	// "" when the stream has no route. See Select.
	Owner string
}

// Policy is how Select ranks suitable nodes.
type Policy struct {
	// Kind is PolicyLeastLoaded or PolicyRandom.
	Kind string
	// CPUWeight, ConnectionsWeight and BandwidthWeight are the shares (percent)
	// of each term in the load score; all zero means the defaults 50/25/25.
	CPUWeight, ConnectionsWeight, BandwidthWeight int
	// Fresh ignores nodes whose last heartbeat (Node.Seen) is older than
	// this, so a killed node leaves dispatch before its heartbeat key
	// expires; 0 keeps every node the registry lists.
	Fresh time.Duration
}

// FromConfig returns the policy of cluster.dispatch, with Fresh set to two
// thirds of cluster.ttl.
func FromConfig(c config.Cluster) Policy {
	return Policy{
		Kind:              c.Dispatch.Policy,
		CPUWeight:         c.Dispatch.CPUWeight,
		ConnectionsWeight: c.Dispatch.ConnectionsWeight,
		BandwidthWeight:   c.Dispatch.BandwidthWeight,
		Fresh:             c.TTL * 2 / 3,
	}
}

// protocolAction tells which actions accept each protocol.
var protocolAction = map[string]struct{ play, publish bool }{
	ProtoRTMP:  {true, true},
	ProtoFLV:   {true, false},
	ProtoWSFLV: {true, false},
	ProtoHLS:   {true, false},
	ProtoWHEP:  {true, false},
	ProtoWHIP:  {false, true},
	ProtoSRT:   {true, true},
}

// Validate checks the action, the protocol (and that it fits the action) and
// the path, which must be "app/stream" (the shape every playback URL has).
// Its errors wrap ErrBadRequest and name the bad field.
func (r Request) Validate() error {
	if r.Action != ActionPlay && r.Action != ActionPublish {
		return fmt.Errorf("%w: action %q must be play or publish", ErrBadRequest, r.Action)
	}
	pa, ok := protocolAction[r.Protocol]
	if !ok {
		return fmt.Errorf("%w: protocol %q must be one of rtmp, flv, ws-flv, hls, whep, whip, srt", ErrBadRequest, r.Protocol)
	}
	if (r.Action == ActionPlay && !pa.play) || (r.Action == ActionPublish && !pa.publish) {
		return fmt.Errorf("%w: protocol %s cannot %s", ErrBadRequest, r.Protocol, r.Action)
	}
	if err := streampath.Validate(r.Path); err != nil {
		return fmt.Errorf("%w: path: %v", ErrBadRequest, err)
	}
	if strings.Count(r.Path, "/") != 1 {
		return fmt.Errorf("%w: path %q must be app/stream", ErrBadRequest, r.Path)
	}
	return nil
}

// role is the role a node needs to take the request.
func (r Request) role() string {
	if r.Action == ActionPublish {
		return cluster.RolePublish
	}
	return cluster.RolePull
}

// Serves reports whether n has a listener for protocol: RTMP needs
// Node.RTMP, SRT is served by no node yet (nodes announce no SRT
// listener), every other protocol needs Node.HTTP.
func Serves(n *cluster.Node, protocol string) bool {
	switch protocol {
	case ProtoRTMP:
		return n.RTMP != ""
	case ProtoSRT:
		return false
	case ProtoFLV, ProtoWSFLV, ProtoHLS, ProtoWHEP, ProtoWHIP:
		return n.HTTP != ""
	}
	return false
}

// fresh reports whether n heartbeated within p.Fresh of now.
func (p Policy) fresh(n *cluster.Node, now time.Time) bool {
	return p.Fresh <= 0 || now.Sub(n.Seen) <= p.Fresh
}

// weights returns the three term weights, defaulted when all are zero.
func (p Policy) weights() (cpu, conns, bw float64) {
	if p.CPUWeight <= 0 && p.ConnectionsWeight <= 0 && p.BandwidthWeight <= 0 {
		return 50, 25, 25
	}
	return float64(max(p.CPUWeight, 0)), float64(max(p.ConnectionsWeight, 0)), float64(max(p.BandwidthWeight, 0))
}

// nodeWeight is n's relative capacity, 1 when unset.
func nodeWeight(n *cluster.Node) float64 {
	if n.Weight > 0 {
		return n.Weight
	}
	return 1
}

// Score is n's load under p divided by its weight; lower is less loaded:
//
//	load  = (cpu·CPU/Cores + conns·Connections/ConnectionsRef + bw·(IngressBps+EgressBps)/BandwidthRef) / (cpu+conns+bw)
//	score = load / Weight
//
// An idle node scores 0; one at every reference scores 1/Weight.
func Score(n *cluster.Node, p Policy) float64 {
	cw, nw, bw := p.weights()
	cores := float64(n.Load.Cores)
	if cores <= 0 {
		cores = 1
	}
	cpu := max(n.Load.CPU, 0) / cores
	conns := float64(max(n.Load.Connections, 0)) / ConnectionsRef
	bits := float64(max(n.Load.IngressBps, 0)+max(n.Load.EgressBps, 0)) / BandwidthRef
	load := (cw*cpu + nw*conns + bw*bits) / (cw + nw + bw)
	return load / nodeWeight(n)
}

// Select returns the node req should connect to among nodes:
//
//   - suitable nodes run the role of the action (pull for play, publish for
//     publish), are not draining, heartbeated within p.Fresh of now, and
//     have a listener for req.Protocol;
//   - for a publish whose stream has a route (req.Owner), the owner is
//     returned when it is among the suitable nodes: one publisher per path
//     cluster-wide, so a reconnecting encoder lands where the route is. An
//     owner that is gone, stale or draining is ignored. An owner that is
//     alive but has no listener for the protocol is an ErrNoNode;
//   - nodes of req.Region are preferred; other regions are used only when
//     none of req.Region is suitable;
//   - least_loaded picks the lowest Score, at random among the nodes within
//     TieTolerance of it (by a hash of ClientIP and Path when rnd is nil);
//     random picks at random with probability proportional to Node.Weight.
//
// The error wraps ErrNoNode and says why no node fits.
func Select(nodes []cluster.Node, req Request, p Policy, now time.Time, rnd *rand.Rand) (cluster.Node, error) {
	if req.Protocol == ProtoSRT {
		return cluster.Node{}, fmt.Errorf("%w: no node serves srt", ErrNoNode)
	}
	role := req.role()
	// Indexes of suitable nodes, split by region; counts say why others were skipped.
	var local, other []int
	var wrongRole, draining, stale, noListener int
	for i := range nodes {
		n := &nodes[i]
		switch {
		case !n.HasRole(role):
			wrongRole++
			continue
		case n.Draining:
			draining++
			continue
		case !p.fresh(n, now):
			stale++
			continue
		case !Serves(n, req.Protocol):
			noListener++
			if req.Owner != "" && n.ID == req.Owner {
				return cluster.Node{}, fmt.Errorf("%w: %s is published on node %s, which does not serve %s", ErrNoNode, req.Path, n.ID, req.Protocol)
			}
			continue
		}
		if req.Owner != "" && n.ID == req.Owner {
			return *n, nil
		}
		if req.Region != "" && n.Region == req.Region {
			local = append(local, i)
		} else {
			other = append(other, i)
		}
	}
	cands := other
	if len(local) > 0 {
		cands = local
	}
	if len(cands) == 0 {
		return cluster.Node{}, fmt.Errorf("%w: no %s node serves %s (%d nodes: %d without the role, %d draining, %d stale, %d without a %s listener)",
			ErrNoNode, role, req.Protocol, len(nodes), wrongRole, draining, stale, noListener, req.Protocol)
	}
	if p.Kind == PolicyRandom {
		return nodes[pickWeighted(nodes, cands, req, rnd)], nil
	}
	return nodes[pickLeastLoaded(nodes, cands, req, p, rnd)], nil
}

// pickLeastLoaded returns the index of a node within TieTolerance of the lowest score.
func pickLeastLoaded(nodes []cluster.Node, cands []int, req Request, p Policy, rnd *rand.Rand) int {
	scores := make([]float64, len(cands))
	for k, i := range cands {
		scores[k] = Score(&nodes[i], p)
	}
	best := slices.Min(scores)
	tied := cands[:0:0]
	for k, i := range cands {
		if scores[k] <= best+TieTolerance {
			tied = append(tied, i)
		}
	}
	return tied[pick(len(tied), req, rnd)]
}

// pickWeighted returns the index of a candidate drawn with probability
// proportional to its weight.
func pickWeighted(nodes []cluster.Node, cands []int, req Request, rnd *rand.Rand) int {
	var total float64
	for _, i := range cands {
		total += nodeWeight(&nodes[i])
	}
	var x float64
	if rnd != nil {
		x = rnd.Float64() * total
	} else {
		x = float64(stableHash(req)%1_000_000) / 1_000_000 * total
	}
	for _, i := range cands {
		x -= nodeWeight(&nodes[i])
		if x < 0 {
			return i
		}
	}
	return cands[len(cands)-1]
}

// pick returns an index below n: random, or stable for the client when rnd is nil.
func pick(n int, req Request, rnd *rand.Rand) int {
	if n == 1 {
		return 0
	}
	if rnd != nil {
		return rnd.IntN(n)
	}
	return int(stableHash(req) % uint64(n))
}

// stableHash hashes the client address and the stream path.
func stableHash(req Request) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(req.ClientIP))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(req.Path))
	return h.Sum64()
}

// URL returns the URL a client of req uses on node n, with req.Query kept:
//
//	rtmp    rtmp://{RTMP}/{app}/{stream}
//	flv     {HTTP}/{app}/{stream}.flv
//	ws-flv  ws(s)://{HTTP host}/{app}/{stream}.flv
//	hls     {HTTP}/{app}/{stream}/index.m3u8
//	whep    {HTTP}/{app}/{stream}/whep
//	whip    {HTTP}/{app}/{stream}/whip
//
// srt, and a protocol n has no listener for, are ErrNoNode.
func URL(n cluster.Node, req Request) (string, error) {
	if req.Protocol == ProtoSRT {
		return "", fmt.Errorf("%w: no node serves srt", ErrNoNode)
	}
	if !Serves(&n, req.Protocol) {
		return "", fmt.Errorf("%w: node %s has no %s listener", ErrNoNode, n.ID, req.Protocol)
	}
	base := strings.TrimRight(n.HTTP, "/")
	var u string
	switch req.Protocol {
	case ProtoRTMP:
		u = "rtmp://" + n.RTMP + "/" + req.Path
	case ProtoFLV:
		u = base + "/" + req.Path + ".flv"
	case ProtoWSFLV:
		switch {
		case strings.HasPrefix(base, "https://"):
			base = "wss://" + strings.TrimPrefix(base, "https://")
		case strings.HasPrefix(base, "http://"):
			base = "ws://" + strings.TrimPrefix(base, "http://")
		default:
			return "", fmt.Errorf("%w: node %s has an HTTP address %q that is not http(s)://", ErrNoNode, n.ID, n.HTTP)
		}
		u = base + "/" + req.Path + ".flv"
	case ProtoHLS:
		u = base + "/" + req.Path + "/index.m3u8"
	case ProtoWHEP:
		u = base + "/" + req.Path + "/whep"
	case ProtoWHIP:
		u = base + "/" + req.Path + "/whip"
	default:
		return "", fmt.Errorf("%w: unknown protocol %q", ErrBadRequest, req.Protocol)
	}
	if req.Query != "" {
		u += "?" + req.Query
	}
	return u, nil
}
