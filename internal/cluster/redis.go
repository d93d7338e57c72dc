package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// DefaultPrefix starts every key the Redis registry writes.
const DefaultPrefix = "quasipaa:"

// Redis is the cluster Registry, kept in one Redis server (see the package
// comment for the key layout). Leases and heartbeats are keys with a TTL;
// every read-modify-write is one Lua script, so it is atomic.
type Redis struct {
	client *redis.Client
	prefix string
	closed atomic.Bool
}

var _ Registry = (*Redis)(nil)

// RedisOption configures NewRedis.
type RedisOption func(*redisConfig)

// redisConfig is what RedisOptions set.
type redisConfig struct {
	prefix string
}

// WithPrefix sets the prefix of every key (default DefaultPrefix), so that
// several clusters can share one Redis database.
func WithPrefix(prefix string) RedisOption {
	return func(c *redisConfig) { c.prefix = prefix }
}

// NewRedis connects to the Redis server at url (redis://[user:pass@]host:port/db
// or rediss://…) and checks it answers PING within ctx. Commands are bounded
// by their context; a lost connection is re-dialled by the next command.
func NewRedis(ctx context.Context, url string, opts ...RedisOption) (*Redis, error) {
	cfg := redisConfig{prefix: DefaultPrefix}
	for _, o := range opts {
		o(&cfg)
	}
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("cluster: redis url: %w", err)
	}
	o.ContextTimeoutEnabled = true
	// One quick dial attempt per command: a node whose Redis is down keeps
	// retrying on its own timers (heartbeats, lease renewals).
	o.DialerRetries = 1
	if o.DialTimeout == 0 {
		o.DialTimeout = 2 * time.Second
	}
	// Maintenance push notifications need RESP3 and a Redis Enterprise /
	// Redis 8 server; the registry does not use them.
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	redisLogOnce.Do(func() { redis.SetLogger(slogRedis{}) })
	r := &Redis{client: redis.NewClient(o), prefix: cfg.prefix}
	if err := r.client.Ping(ctx).Err(); err != nil {
		_ = r.client.Close()
		return nil, fmt.Errorf("cluster: redis %s: ping: %w", o.Addr, err)
	}
	return r, nil
}

// redisLogOnce routes go-redis's own messages to slog once per process.
var redisLogOnce sync.Once

// slogRedis passes go-redis's messages (one per failed dial while Redis is
// down, among others) to slog.Default at debug level: the registry's callers
// report the errors themselves, rate-limited.
type slogRedis struct{}

// Printf implements go-redis's logger.
func (slogRedis) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().Log(ctx, slog.LevelDebug, fmt.Sprintf(format, v...), "component", "go-redis")
}

// Prefix is the prefix of every key this registry writes.
func (r *Redis) Prefix() string { return r.prefix }

// Keys of the layout.
func (r *Redis) leaseKey(kind, path string) string { return r.prefix + "lease:" + kind + ":" + path }
func (r *Redis) leaseIndex(kind string) string     { return r.prefix + "leases:" + kind }
func (r *Redis) nodeKey(id string) string          { return r.prefix + "node:" + id }
func (r *Redis) drainKey(id string) string         { return r.prefix + "drain:" + id }
func (r *Redis) nodeIndex() string                 { return r.prefix + "nodes" }
func (r *Redis) appsKey() string                   { return r.prefix + "apps" }

// begin returns ErrClosed after Close, or ctx's error.
func (r *Redis) begin(ctx context.Context) error {
	if r.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// wrap names the failed operation; a client closed under a running call
// becomes ErrClosed.
func (r *Redis) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, redis.ErrClosed) || r.closed.Load() {
		return fmt.Errorf("%w (%s: %v)", ErrClosed, op, err)
	}
	return fmt.Errorf("cluster: redis %s: %w", op, err)
}

// nowMS is the server's clock in milliseconds: index scores compare with it,
// so clock skew between nodes does not shift expiries.
const nowMS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// claimScript takes or extends a lease (Acquire and Renew).
// KEYS: lease, index. ARGV: owner, value to store if created, ttl ms, path.
// Returns {1, value, pttl} when the caller holds it now, {0, value, pttl}
// with the other holder's value otherwise.
var claimScript = redis.NewScript(nowMS + `
local ttl = tonumber(ARGV[3])
local cur = redis.call('GET', KEYS[1])
if cur then
  local d = cjson.decode(cur)
  if d.owner ~= ARGV[1] then
    return {0, cur, redis.call('PTTL', KEYS[1])}
  end
  redis.call('PEXPIRE', KEYS[1], ttl)
else
  cur = ARGV[2]
  redis.call('SET', KEYS[1], cur, 'NX', 'PX', ttl)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], now + ttl, ARGV[4])
return {1, cur, ttl}
`)

// takeoverScript replaces the lease held by ARGV[1] (or by nobody, or
// already by ARGV[2]) with one held by ARGV[2].
// KEYS: lease, index. ARGV: from, to, value to store if replaced, ttl ms, path.
// Returns {1, value, pttl} when to holds it now, {0, value, pttl} with the
// other holder's value otherwise.
var takeoverScript = redis.NewScript(nowMS + `
local ttl = tonumber(ARGV[4])
local cur = redis.call('GET', KEYS[1])
if cur then
  local d = cjson.decode(cur)
  if d.owner == ARGV[2] then
    redis.call('PEXPIRE', KEYS[1], ttl)
  elseif d.owner == ARGV[1] then
    cur = ARGV[3]
    redis.call('SET', KEYS[1], cur, 'PX', ttl)
  else
    return {0, cur, redis.call('PTTL', KEYS[1])}
  end
else
  cur = ARGV[3]
  redis.call('SET', KEYS[1], cur, 'PX', ttl)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], now + ttl, ARGV[5])
return {1, cur, ttl}
`)

// releaseScript deletes a lease if owner holds it.
// KEYS: lease, index. ARGV: owner, path.
var releaseScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local d = cjson.decode(cur)
  if d.owner ~= ARGV[1] then return 0 end
  redis.call('DEL', KEYS[1])
end
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
`)

// getLeaseScript returns {value, pttl} of a lease, or nil.
// KEYS: lease.
var getLeaseScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return false end
return {cur, redis.call('PTTL', KEYS[1])}
`)

// pruneScript drops the expired members of an index and returns the others.
// KEYS: index.
var pruneScript = redis.NewScript(nowMS + `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
`)

// heartbeatScript stores a node for ttl; a node that was not alive loses
// its old draining flag. The stored JSON object gets a "seen_ms" member,
// the server's clock in ms, so that the Seen of all nodes come from one
// clock. KEYS: node, drain, index. ARGV: value (a JSON object), ttl ms, id.
var heartbeatScript = redis.NewScript(nowMS + `
local ttl = tonumber(ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
end
local ms = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
local value = string.sub(ARGV[1], 1, -2) .. ',"seen_ms":' .. ms .. '}'
redis.call('SET', KEYS[1], value, 'PX', ttl)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
redis.call('ZADD', KEYS[3], now + ttl, ARGV[3])
return 1
`)

// drainScript sets ("1") or clears ("0") the draining flag of a live node;
// 0 when the node is not alive. KEYS: node, drain. ARGV: flag.
var drainScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '1' then
  redis.call('SET', KEYS[2], '1')
else
  redis.call('DEL', KEYS[2])
end
return 1
`)

// setAppsScript stores the apps document if the version is still ARGV[2].
// KEYS: apps. ARGV: doc, expected version. Returns {1, new} or {0, current}.
var setAppsScript = redis.NewScript(`
local v = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if v ~= tonumber(ARGV[2]) then return {0, v} end
v = v + 1
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'version', v)
return {1, v}
`)

// nodeValue is what a node key holds: the Node, and the Redis server's
// clock at the heartbeat, in ms since the Unix epoch (0 if written by a
// version that did not set it).
type nodeValue struct {
	Node
	SeenMS int64 `json:"seen_ms,omitempty"`
}

// leaseValue is what a lease key holds.
type leaseValue struct {
	Owner string    `json:"owner"`
	Since time.Time `json:"since"`
}

// decodeLease builds a Lease from a key's value and its PTTL in ms, read
// at about now.
func decodeLease(kind, path, value string, pttl int64, now time.Time) (Lease, error) {
	var v leaseValue
	if err := json.Unmarshal([]byte(value), &v); err != nil {
		return Lease{}, fmt.Errorf("cluster: redis lease %s %q: %w", kind, path, err)
	}
	return Lease{Kind: kind, Path: path, Owner: v.Owner, Since: v.Since, Expires: now.Add(time.Duration(pttl) * time.Millisecond)}, nil
}

// Heartbeat implements Registry.
func (r *Redis) Heartbeat(ctx context.Context, n Node, ttl time.Duration) error {
	if err := checkID(n.ID); err != nil {
		return err
	}
	if err := checkTTL(ttl); err != nil {
		return err
	}
	if err := r.begin(ctx); err != nil {
		return err
	}
	n.Seen = time.Now()
	n.Draining = false
	b, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("cluster: node %q: %w", n.ID, err)
	}
	err = heartbeatScript.Run(ctx, r.client, []string{r.nodeKey(n.ID), r.drainKey(n.ID), r.nodeIndex()},
		b, ttl.Milliseconds(), n.ID).Err()
	return r.wrap("heartbeat", err)
}

// Leave implements Registry.
func (r *Redis) Leave(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := r.begin(ctx); err != nil {
		return err
	}
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, r.nodeKey(id), r.drainKey(id))
		p.ZRem(ctx, r.nodeIndex(), id)
		return nil
	})
	return r.wrap("leave", err)
}

// Nodes implements Registry.
func (r *Redis) Nodes(ctx context.Context) ([]Node, error) {
	if err := r.begin(ctx); err != nil {
		return nil, err
	}
	ids, err := pruneScript.Run(ctx, r.client, []string{r.nodeIndex()}).StringSlice()
	if err != nil {
		return nil, r.wrap("nodes", err)
	}
	if len(ids) == 0 {
		return []Node{}, nil
	}
	values := make([]*redis.StringCmd, len(ids))
	drains := make([]*redis.IntCmd, len(ids))
	_, err = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			values[i] = p.Get(ctx, r.nodeKey(id))
			drains[i] = p.Exists(ctx, r.drainKey(id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, r.wrap("nodes", err)
	}
	out := make([]Node, 0, len(ids))
	for i, id := range ids {
		b, err := values[i].Bytes()
		if errors.Is(err, redis.Nil) {
			continue // expired since the index was read
		}
		if err != nil {
			return nil, r.wrap("nodes", err)
		}
		var v nodeValue
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("cluster: redis node %q: %w", id, err)
		}
		n := v.Node
		if v.SeenMS > 0 {
			n.Seen = time.UnixMilli(v.SeenMS)
		}
		n.Draining = drains[i].Val() > 0
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// SetDraining implements Registry.
func (r *Redis) SetDraining(ctx context.Context, id string, draining bool) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := r.begin(ctx); err != nil {
		return err
	}
	flag := "0"
	if draining {
		flag = "1"
	}
	ok, err := drainScript.Run(ctx, r.client, []string{r.nodeKey(id), r.drainKey(id)}, flag).Int()
	if err != nil {
		return r.wrap("set draining", err)
	}
	if ok == 0 {
		return fmt.Errorf("%w: node %q", ErrNotFound, id)
	}
	return nil
}

// claim runs claimScript for Acquire and Renew.
func (r *Redis) claim(ctx context.Context, op, kind, path, owner string, ttl time.Duration, sentinel error) (Lease, error) {
	if err := checkLease(ctx, kind, path, owner, ttl); err != nil {
		return Lease{}, err
	}
	if err := r.begin(ctx); err != nil {
		return Lease{}, err
	}
	now := time.Now()
	fresh, err := json.Marshal(leaseValue{Owner: owner, Since: now})
	if err != nil {
		return Lease{}, fmt.Errorf("cluster: lease value: %w", err)
	}
	res, err := claimScript.Run(ctx, r.client, []string{r.leaseKey(kind, path), r.leaseIndex(kind)},
		owner, fresh, ttl.Milliseconds(), path).Slice()
	if err != nil {
		return Lease{}, r.wrap(op, err)
	}
	return r.claimResult(op, kind, path, res, now, sentinel)
}

// claimResult decodes the {won, value, pttl} reply of a claim or takeover
// script, read at about now; sentinel is the error when another owner holds
// the lease.
func (r *Redis) claimResult(op, kind, path string, res []any, now time.Time, sentinel error) (Lease, error) {
	if len(res) != 3 {
		return Lease{}, fmt.Errorf("cluster: redis %s: unexpected reply %v", op, res)
	}
	won, _ := res[0].(int64)
	value, _ := res[1].(string)
	pttl, _ := res[2].(int64)
	l, err := decodeLease(kind, path, value, pttl, now)
	if err != nil {
		return Lease{}, err
	}
	if won != 1 {
		return l, heldError(sentinel, l)
	}
	return l, nil
}

// Acquire implements Registry.
func (r *Redis) Acquire(ctx context.Context, kind, path, owner string, ttl time.Duration) (Lease, error) {
	return r.claim(ctx, "acquire", kind, path, owner, ttl, ErrLeaseHeld)
}

// Renew implements Registry.
func (r *Redis) Renew(ctx context.Context, kind, path, owner string, ttl time.Duration) (Lease, error) {
	return r.claim(ctx, "renew", kind, path, owner, ttl, ErrLeaseLost)
}

// Takeover implements Registry.
func (r *Redis) Takeover(ctx context.Context, kind, path, from, to string, ttl time.Duration) (Lease, error) {
	if err := checkLease(ctx, kind, path, to, ttl); err != nil {
		return Lease{}, err
	}
	if err := checkOwner(from); err != nil {
		return Lease{}, err
	}
	if err := r.begin(ctx); err != nil {
		return Lease{}, err
	}
	now := time.Now()
	fresh, err := json.Marshal(leaseValue{Owner: to, Since: now})
	if err != nil {
		return Lease{}, fmt.Errorf("cluster: lease value: %w", err)
	}
	res, err := takeoverScript.Run(ctx, r.client, []string{r.leaseKey(kind, path), r.leaseIndex(kind)},
		from, to, fresh, ttl.Milliseconds(), path).Slice()
	if err != nil {
		return Lease{}, r.wrap("takeover", err)
	}
	return r.claimResult("takeover", kind, path, res, now, ErrLeaseHeld)
}

// Release implements Registry.
func (r *Redis) Release(ctx context.Context, kind, path, owner string) error {
	if err := checkKey(kind, path); err != nil {
		return err
	}
	if err := checkOwner(owner); err != nil {
		return err
	}
	if err := r.begin(ctx); err != nil {
		return err
	}
	err := releaseScript.Run(ctx, r.client, []string{r.leaseKey(kind, path), r.leaseIndex(kind)}, owner, path).Err()
	return r.wrap("release", err)
}

// Lease implements Registry.
func (r *Redis) Lease(ctx context.Context, kind, path string) (Lease, error) {
	if err := checkKey(kind, path); err != nil {
		return Lease{}, err
	}
	if err := r.begin(ctx); err != nil {
		return Lease{}, err
	}
	now := time.Now()
	res, err := getLeaseScript.Run(ctx, r.client, []string{r.leaseKey(kind, path)}).Slice()
	if errors.Is(err, redis.Nil) {
		return Lease{}, fmt.Errorf("%w: %s lease %q", ErrNotFound, kind, path)
	}
	if err != nil {
		return Lease{}, r.wrap("lease", err)
	}
	if len(res) != 2 {
		return Lease{}, fmt.Errorf("cluster: redis lease: unexpected reply %v", res)
	}
	value, _ := res[0].(string)
	pttl, _ := res[1].(int64)
	return decodeLease(kind, path, value, pttl, now)
}

// Leases implements Registry.
func (r *Redis) Leases(ctx context.Context, kind string) ([]Lease, error) {
	if err := checkKey(kind, "-"); err != nil {
		return nil, err
	}
	if err := r.begin(ctx); err != nil {
		return nil, err
	}
	paths, err := pruneScript.Run(ctx, r.client, []string{r.leaseIndex(kind)}).StringSlice()
	if err != nil {
		return nil, r.wrap("leases", err)
	}
	if len(paths) == 0 {
		return []Lease{}, nil
	}
	now := time.Now()
	values := make([]*redis.StringCmd, len(paths))
	pttls := make([]*redis.DurationCmd, len(paths))
	_, err = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, path := range paths {
			values[i] = p.Get(ctx, r.leaseKey(kind, path))
			pttls[i] = p.PTTL(ctx, r.leaseKey(kind, path))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, r.wrap("leases", err)
	}
	out := make([]Lease, 0, len(paths))
	for i, path := range paths {
		value, err := values[i].Result()
		if errors.Is(err, redis.Nil) {
			continue // released or expired since the index was read
		}
		if err != nil {
			return nil, r.wrap("leases", err)
		}
		pttl := pttls[i].Val()
		if pttl <= 0 {
			continue // expired between the GET and the PTTL
		}
		l, err := decodeLease(kind, path, value, pttl.Milliseconds(), now)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// Apps implements Registry.
func (r *Redis) Apps(ctx context.Context) ([]byte, int64, error) {
	if err := r.begin(ctx); err != nil {
		return nil, 0, err
	}
	res, err := r.client.HMGet(ctx, r.appsKey(), "doc", "version").Result()
	if err != nil {
		return nil, 0, r.wrap("apps", err)
	}
	doc, _ := res[0].(string)
	vs, _ := res[1].(string)
	if vs == "" {
		return nil, 0, nil
	}
	v, err := strconv.ParseInt(vs, 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("cluster: redis apps version %q: %w", vs, err)
	}
	return []byte(doc), v, nil
}

// SetApps implements Registry.
func (r *Redis) SetApps(ctx context.Context, doc []byte, ifVersion int64) (int64, error) {
	if err := r.begin(ctx); err != nil {
		return 0, err
	}
	res, err := setAppsScript.Run(ctx, r.client, []string{r.appsKey()}, doc, ifVersion).Int64Slice()
	if err != nil {
		return 0, r.wrap("set apps", err)
	}
	if len(res) != 2 {
		return 0, fmt.Errorf("cluster: redis set apps: unexpected reply %v", res)
	}
	if res[0] != 1 {
		return 0, fmt.Errorf("%w: apps are at version %d, not %d", ErrConflict, res[1], ifVersion)
	}
	return res[1], nil
}

// Close implements Registry: it closes the connections.
func (r *Redis) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	return r.client.Close()
}
