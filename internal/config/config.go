// Package config holds Quasipaa's one configuration struct: its defaults, the
// YAML file format, the QUASIPAA_* environment overrides and validation.
//
// Precedence, lowest to highest: Default() ← the YAML file ← the environment.
// The environment variable of a key is derived from its YAML path by
// reflection (see EnvName), so a key added to Config gets one automatically.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	pathpkg "path"
	"strconv"
	"strings"
	"time"
)

// Config is the whole server configuration.
type Config struct {
	RTMP    RTMP    `yaml:"rtmp"`
	HTTP    HTTP    `yaml:"http"`
	Storage Storage `yaml:"storage"`
	Log     Log     `yaml:"log"`
	Hub     Hub     `yaml:"hub"`
	HLS     HLS     `yaml:"hls"`
	WebRTC  WebRTC  `yaml:"webrtc"`
	TURN    TURN    `yaml:"turn"`
	Cluster Cluster `yaml:"cluster"`
	API     API     `yaml:"api"`
	Auth    Auth    `yaml:"auth"`
	Metrics Metrics `yaml:"metrics"`
	Debug   Debug   `yaml:"debug"`
	// Apps are per-application policies, matched against a stream path in
	// order; the first match applies and a stream no entry matches gets the
	// defaults of the sections above (no recording).
	Apps []App `yaml:"apps"`
}

// App is the policy of the streams whose path matches Match.
type App struct {
	// Match is a path pattern: "live/cam1", "live/*" ('*' stays within one
	// path segment, as in path.Match), "live/**" (everything under live/) or "**".
	Match string `yaml:"match" json:"match"`
	// Record writes the streams to storage as fMP4 segments.
	Record bool `yaml:"record" json:"record"`
	// RecordSegment is the target length of a recorded segment; a segment
	// ends at the first video keyframe after it.
	RecordSegment time.Duration `yaml:"record_segment" json:"record_segment"`
	// Retention deletes recorded segments older than this; 0 keeps them forever.
	Retention time.Duration `yaml:"retention" json:"retention"`
	// DVRWindow is how far back the DVR playlist of a recorded live stream
	// reaches (/vod/{app}/{stream}/index.m3u8 without from and to).
	DVRWindow time.Duration `yaml:"dvr_window" json:"dvr_window"`
	// HLSVariant overrides hls.variant for these streams; "" keeps it.
	HLSVariant string `yaml:"hls_variant" json:"hls_variant"`
	// PublishProtocols are the comma-separated protocols that may publish
	// (rtmp, whip, srt, relay); "" allows all.
	PublishProtocols string `yaml:"publish_protocols" json:"publish_protocols"`
	// PlayProtocols are the comma-separated protocols that may play (rtmp,
	// flv, ws-flv, hls, whep, srt); "" allows all.
	PlayProtocols string `yaml:"play_protocols" json:"play_protocols"`
	// Auth is how publishers and viewers are authorised: none, token or webhook.
	Auth string `yaml:"auth" json:"auth"`
	// MaxPublishers bounds the streams of this app published at once on a node; 0 is unlimited.
	MaxPublishers int `yaml:"max_publishers" json:"max_publishers"`
	// MaxViewers bounds the viewers of one stream on a node; 0 is unlimited.
	MaxViewers int `yaml:"max_viewers" json:"max_viewers"`
	// MaxBitrate disconnects a publisher whose ingress bit rate stays above it, bit/s; 0 is unlimited.
	MaxBitrate int `yaml:"max_bitrate" json:"max_bitrate"`
}

// Values accepted by App.Auth.
const (
	AuthNone    = "none"
	AuthToken   = "token"
	AuthWebhook = "webhook"
)

// DefaultApp returns the values an apps entry starts from before its keys
// are applied.
func DefaultApp() App {
	return App{RecordSegment: 4 * time.Second, DVRWindow: 2 * time.Hour, Auth: AuthNone}
}

// AppFor returns the policy of the first apps entry matching path.
func (c *Config) AppFor(path string) (App, bool) {
	for _, a := range c.Apps {
		if MatchPath(a.Match, path) {
			return a, true
		}
	}
	return App{}, false
}

// MatchPath reports whether the stream path p matches pattern: "**" matches
// everything, a pattern ending in "/**" matches everything below its
// prefix, and any other pattern is a path.Match glob.
func MatchPath(pattern, p string) bool {
	if pattern == "**" {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, "/**"); ok {
		// The prefix (which may hold globs) must match the first segments of p,
		// and p must go deeper.
		k := strings.Count(prefix, "/") + 1
		segs := strings.SplitN(p, "/", k+1)
		if len(segs) <= k {
			return false
		}
		ok, _ := pathpkg.Match(prefix, strings.Join(segs[:k], "/"))
		return ok
	}
	ok, _ := pathpkg.Match(pattern, p)
	return ok
}

// HLS configures live HLS packaging (served at /{app}/{stream}/index.m3u8).
type HLS struct {
	// Variant is lowLatency (LL-HLS, fMP4 parts), fmp4 or mpegts (classic, for old players).
	Variant string `yaml:"variant"`
	// SegmentCount is the number of segments in the live playlist.
	SegmentCount int `yaml:"segment_count"`
	// SegmentMinDuration is the shortest segment; a segment ends at the first keyframe after it.
	SegmentMinDuration time.Duration `yaml:"segment_min_duration"`
	// PartMinDuration is the shortest partial segment of Low-Latency HLS.
	PartMinDuration time.Duration `yaml:"part_min_duration"`
	// IdleTimeout stops packaging a stream nobody requested over HLS for this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// WebRTC configures WHIP ingest and WHEP playback (ICE transport).
type WebRTC struct {
	// UDPListen is the one UDP host:port every WebRTC session shares (ICE UDP mux); "" disables UDP candidates.
	UDPListen string `yaml:"udp_listen"`
	// TCPListen is the host:port of passive ICE-TCP candidates; "" disables ICE-TCP.
	TCPListen string `yaml:"tcp_listen"`
	// PublicIPs are comma-separated IPs advertised instead of the local ones (1:1 NAT); "" advertises local addresses.
	PublicIPs string `yaml:"public_ips"`
	// Interfaces are comma-separated network interface names candidates are gathered on; "" uses all.
	Interfaces string `yaml:"interfaces"`
	// HandshakeTimeout ends a session whose ICE and DTLS do not complete in time.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// MaxSessions bounds the WHIP plus WHEP sessions of the node.
	MaxSessions int `yaml:"max_sessions"`
}

// TURN configures the built-in STUN and TURN server.
type TURN struct {
	// Listen is the host:port of STUN and TURN over UDP and TCP; "" disables both.
	Listen string `yaml:"listen"`
	// TLSListen is the host:port of TURN over TLS, used when TLSCert is set.
	TLSListen string `yaml:"tls_listen"`
	// TLSCert is a PEM certificate (chain) file for TURN over TLS; "" disables TLS.
	TLSCert string `yaml:"tls_cert"`
	// TLSKey is the PEM private key file of TLSCert.
	TLSKey string `yaml:"tls_key"`
	// Realm is the TURN realm.
	Realm string `yaml:"realm"`
	// Secret is the shared secret of time-limited credentials (coturn's use-auth-secret); "" makes a random one at start.
	Secret string `yaml:"secret"`
	// CredentialTTL is how long credentials handed to WHIP/WHEP clients stay valid.
	CredentialTTL time.Duration `yaml:"credential_ttl"`
	// PublicHost is the host name or IP clients reach this server at (in ICE server URLs); "" uses the HTTP request's host.
	PublicHost string `yaml:"public_host"`
	// RelayIP is the IP of relayed addresses given to clients; "" uses the listen IP, or the first non-loopback one.
	RelayIP string `yaml:"relay_ip"`
	// RelayPortMin is the lowest UDP port used for relays.
	RelayPortMin int `yaml:"relay_port_min"`
	// RelayPortMax is the highest UDP port used for relays.
	RelayPortMax int `yaml:"relay_port_max"`
	// MaxAllocationsPerUser bounds the concurrent allocations of one username.
	MaxAllocationsPerUser int `yaml:"max_allocations_per_user"`
	// AllowPrivatePeers permits relaying to loopback, private and link-local addresses.
	AllowPrivatePeers bool `yaml:"allow_private_peers"`
}

// Cluster makes the process one node of a cluster (with Redis) and chooses
// its roles.
type Cluster struct {
	// Roles are the comma-separated roles this node runs: publish, exchange, pull, core.
	Roles string `yaml:"roles"`
	// Redis is the registry's address, redis://[user:pass@]host:port/db; "" keeps state in memory (a single node).
	Redis string `yaml:"redis"`
	// NodeID names the node in the cluster; "" uses the host name.
	NodeID string `yaml:"node_id"`
	// Advertise is the host or IP other nodes and redirected clients reach this node at; "" uses the first non-loopback IP.
	Advertise string `yaml:"advertise"`
	// Secret authenticates relay and internal requests between nodes; required with redis.
	Secret string `yaml:"secret"`
	// TTL is how long a node's heartbeat, routes and job leases outlive it.
	TTL time.Duration `yaml:"ttl"`
	// Region labels the node's location; dispatch prefers nodes of the client's region.
	Region string `yaml:"region"`
	// Weight is the node's relative capacity for dispatch, in percent (100 is normal).
	Weight int `yaml:"weight"`
	// RelayIdle closes a pull node's relay upstream this long after its last viewer left.
	RelayIdle time.Duration `yaml:"relay_idle"`
	// Dispatch configures how core chooses a node.
	Dispatch Dispatch `yaml:"dispatch"`
}

// Dispatch configures node selection by core.
type Dispatch struct {
	// Policy is least_loaded (lowest weighted load) or random (weighted random among the suitable).
	Policy string `yaml:"policy"`
	// CPUWeight is the share of CPU use in a node's load score, in percent.
	CPUWeight int `yaml:"cpu_weight"`
	// ConnectionsWeight is the share of connections in a node's load score, in percent.
	ConnectionsWeight int `yaml:"connections_weight"`
	// BandwidthWeight is the share of egress plus ingress bit rate in a node's load score, in percent.
	BandwidthWeight int `yaml:"bandwidth_weight"`
}

// Role names of cluster.roles.
const (
	RolePublish  = "publish"
	RoleExchange = "exchange"
	RolePull     = "pull"
	RoleCore     = "core"
)

// HasRole reports whether cluster.roles includes role.
func (c *Cluster) HasRole(role string) bool {
	for _, r := range splitList(c.Roles) {
		if r == role {
			return true
		}
	}
	return false
}

// API configures the HTTP control API under /api/v1.
type API struct {
	// Listen is a separate host:port for the API (and the console); "" serves it on http.listen.
	Listen string `yaml:"listen"`
	// Keys are the bearer API keys; with none, the API is open to anyone who reaches it.
	Keys []APIKey `yaml:"keys"`
}

// APIKey is one bearer key of the API.
type APIKey struct {
	// Name identifies the key in logs.
	Name string `yaml:"name" json:"name"`
	// Key is the secret sent as "Authorization: Bearer KEY" (at least 16 characters).
	Key string `yaml:"key" json:"key"`
	// Scope is read (GET only) or admin (everything).
	Scope string `yaml:"scope" json:"scope"`
}

// Values accepted by APIKey.Scope.
const (
	ScopeRead  = "read"
	ScopeAdmin = "admin"
)

// Auth configures publish/play authorisation for apps with auth token or webhook.
type Auth struct {
	// JWTSecret verifies HS256 tokens; "" accepts none.
	JWTSecret string `yaml:"jwt_secret"`
	// JWTPublicKey is a PEM file with an RSA public key that verifies RS256 tokens; "" accepts none.
	JWTPublicKey string `yaml:"jwt_public_key"`
	// JWKSFile is a JSON Web Key Set file whose RSA keys verify RS256 tokens (by kid); "" accepts none.
	JWKSFile string `yaml:"jwks_file"`
	// Webhook configures the webhook calls.
	Webhook Webhook `yaml:"webhook"`
	// FailLimit is how many refused attempts one client IP may make within FailWindow before it is refused outright.
	FailLimit int `yaml:"fail_limit"`
	// FailWindow is the window FailLimit is counted over.
	FailWindow time.Duration `yaml:"fail_window"`
}

// Webhook configures the HTTP endpoints told about publishers and viewers.
type Webhook struct {
	// OnPublish is asked before a publisher is accepted (apps with auth webhook); 2xx allows.
	OnPublish string `yaml:"on_publish"`
	// OnPlay is asked before a viewer is accepted (apps with auth webhook); 2xx allows.
	OnPlay string `yaml:"on_play"`
	// OnUnpublish is told when a publisher stops.
	OnUnpublish string `yaml:"on_unpublish"`
	// OnStop is told when a viewer stops.
	OnStop string `yaml:"on_stop"`
	// OnRecordSegment is told when a recorded segment is stored.
	OnRecordSegment string `yaml:"on_record_segment"`
	// Secret signs every body with HMAC-SHA256 in the X-Quasipaa-Signature header; "" sends no signature.
	Secret string `yaml:"secret"`
	// Timeout bounds each call; a publish/play question that times out refuses.
	Timeout time.Duration `yaml:"timeout"`
	// Retries is how many times a notification is retried after a failure.
	Retries int `yaml:"retries"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Enabled serves /metrics on the HTTP listener (and on api.listen when set).
	Enabled bool `yaml:"enabled"`
}

// Debug configures diagnostics that are off by default.
type Debug struct {
	// PprofListen is the host:port of a Go pprof HTTP endpoint; "" disables it.
	// Bind it to loopback: profiles reveal internals.
	PprofListen string `yaml:"pprof_listen"`
}

// RTMP configures the RTMP listener (publish and play).
type RTMP struct {
	// Listen is the host:port to bind; empty disables RTMP.
	Listen string `yaml:"listen"`
	// ChunkSize is the outgoing chunk size announced to peers, in bytes.
	ChunkSize int `yaml:"chunk_size"`
	// MaxMessageSize is the largest incoming message accepted, in bytes.
	MaxMessageSize int `yaml:"max_message_size"`
	// HandshakeTimeout bounds the handshake and the connect/publish/play exchange.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
}

// HTTP configures the HTTP listener (HTTP-FLV, WS-FLV, API).
type HTTP struct {
	// Listen is the host:port to bind.
	Listen string `yaml:"listen"`
	// CORSOrigin is sent as Access-Control-Allow-Origin; empty sends none.
	CORSOrigin string `yaml:"cors_origin"`
}

// Storage configures where files (recordings, snapshots) are kept.
type Storage struct {
	// Dir is the local storage directory; relative paths are relative to the working directory.
	Dir string `yaml:"dir"`
	// S3 selects an S3-compatible object store instead of Dir when its Endpoint is set.
	S3 S3 `yaml:"s3"`
}

// S3 configures an S3-compatible object store (AWS S3, MinIO, Ceph, R2, versitygw…).
type S3 struct {
	// Endpoint is the host[:port] of the S3 API, without scheme; "" keeps files on local disk.
	Endpoint string `yaml:"endpoint"`
	// Bucket holds the objects; required when Endpoint is set.
	Bucket string `yaml:"bucket"`
	// AccessKey is the access key id.
	AccessKey string `yaml:"access_key"`
	// SecretKey is the secret access key.
	SecretKey string `yaml:"secret_key"`
	// Region is the bucket's region; "" lets the client discover it.
	Region string `yaml:"region"`
	// UseSSL talks https to Endpoint instead of http.
	UseSSL bool `yaml:"use_ssl"`
	// PathStyle puts the bucket in the URL path (endpoint/bucket/key) instead of the host name.
	PathStyle bool `yaml:"path_style"`
}

// Log configures the process logger.
type Log struct {
	// Level is the minimum level logged: debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

// Hub configures the per-stream fan-out from one publisher to many viewers.
type Hub struct {
	// GOPCache keeps the frames since the last keyframe so new viewers start at once.
	GOPCache bool `yaml:"gop_cache"`
	// QueueSize is the number of frames in each stream's ring buffer.
	QueueSize int `yaml:"queue_size"`
	// PublisherGrace is how long viewers stay connected after the publisher drops; 0 disables.
	PublisherGrace time.Duration `yaml:"publisher_grace"`
	// Conflict decides what happens when a second publisher claims a live stream: refuse or takeover.
	Conflict string `yaml:"conflict"`
	// MaxDrops is how many skips to the next keyframe within DropWindow disconnect a viewer.
	MaxDrops int `yaml:"max_drops"`
	// DropWindow is the sliding window MaxDrops is counted over.
	DropWindow time.Duration `yaml:"drop_window"`
	// WriteTimeout disconnects a viewer whose socket accepts nothing for this long.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// WriteMerge batches frames per viewer into one write for up to this long; 0 writes each frame.
	WriteMerge time.Duration `yaml:"write_merge"`
}

// Values accepted by Hub.Conflict.
const (
	ConflictRefuse   = "refuse"
	ConflictTakeover = "takeover"
)

// Limits enforced by Validate.
const (
	MinChunkSize   = 128
	MaxChunkSize   = 16777215 // a chunk never exceeds a message, whose length field is 24 bits
	MinMessageSize = 1024
	MaxMessageSize = 16777216
	MinQueueSize   = 16
	MaxQueueSize   = 65536
	MaxMaxDrops    = 1 << 20
	MaxWriteMerge  = time.Second
	MaxApps        = 1000
	MaxPatternLen  = 256
)

// Default returns the embedded default configuration: every role in one
// process, RTMP on :1935, HTTP on :8080, storage under ./data.
func Default() *Config {
	return &Config{
		RTMP: RTMP{
			Listen:           ":1935",
			ChunkSize:        60000,
			MaxMessageSize:   16777216,
			HandshakeTimeout: 10 * time.Second,
		},
		HTTP: HTTP{
			Listen:     ":8080",
			CORSOrigin: "*",
		},
		HLS: HLS{
			Variant:            "lowLatency",
			SegmentCount:       7,
			SegmentMinDuration: time.Second,
			PartMinDuration:    200 * time.Millisecond,
			IdleTimeout:        30 * time.Second,
		},
		WebRTC: WebRTC{
			UDPListen:        ":8189",
			TCPListen:        ":8189",
			HandshakeTimeout: 10 * time.Second,
			MaxSessions:      10000,
		},
		TURN: TURN{
			Listen:                ":3478",
			TLSListen:             ":5349",
			Realm:                 "quasipaa",
			CredentialTTL:         time.Hour,
			RelayPortMin:          49152,
			RelayPortMax:          65535,
			MaxAllocationsPerUser: 10,
		},
		Storage: Storage{Dir: "./data", S3: S3{PathStyle: true}},
		Cluster: Cluster{
			Roles:     "publish,exchange,pull,core",
			TTL:       10 * time.Second,
			Weight:    100,
			RelayIdle: 10 * time.Second,
			Dispatch:  Dispatch{Policy: "least_loaded", CPUWeight: 50, ConnectionsWeight: 25, BandwidthWeight: 25},
		},
		Auth: Auth{
			Webhook:    Webhook{Timeout: 3 * time.Second, Retries: 3},
			FailLimit:  10,
			FailWindow: time.Minute,
		},
		Metrics: Metrics{Enabled: true},
		Log:     Log{Level: "info", Format: "text"},
		Hub: Hub{
			GOPCache:       true,
			QueueSize:      1024,
			PublisherGrace: 5 * time.Second,
			Conflict:       ConflictRefuse,
			MaxDrops:       8,
			DropWindow:     30 * time.Second,
			WriteTimeout:   10 * time.Second,
			WriteMerge:     0,
		},
	}
}

// Validate checks every key and returns all problems found, one per line,
// each naming the key, or nil.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}

	if c.RTMP.Listen != "" {
		if err := checkAddr(c.RTMP.Listen); err != nil {
			bad("rtmp.listen", "%v", err)
		}
	}
	if c.RTMP.ChunkSize < MinChunkSize || c.RTMP.ChunkSize > MaxChunkSize {
		bad("rtmp.chunk_size", "%d out of range %d..%d", c.RTMP.ChunkSize, MinChunkSize, MaxChunkSize)
	}
	if c.RTMP.MaxMessageSize < MinMessageSize || c.RTMP.MaxMessageSize > MaxMessageSize {
		bad("rtmp.max_message_size", "%d out of range %d..%d", c.RTMP.MaxMessageSize, MinMessageSize, MaxMessageSize)
	}
	positive(bad, "rtmp.handshake_timeout", c.RTMP.HandshakeTimeout)

	if c.HTTP.Listen == "" {
		bad("http.listen", "must not be empty")
	} else if err := checkAddr(c.HTTP.Listen); err != nil {
		bad("http.listen", "%v", err)
	}
	if err := checkOrigin(c.HTTP.CORSOrigin); err != nil {
		bad("http.cors_origin", "%v", err)
	}

	if strings.TrimSpace(c.Storage.Dir) == "" {
		bad("storage.dir", "must not be empty")
	}
	checkS3(bad, &c.Storage.S3)

	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", `must be "debug", "info", "warn" or "error", got %q`, c.Log.Level)
	}
	switch strings.ToLower(c.Log.Format) {
	case "text", "json":
	default:
		bad("log.format", `must be "text" or "json", got %q`, c.Log.Format)
	}

	if c.Hub.QueueSize < MinQueueSize || c.Hub.QueueSize > MaxQueueSize {
		bad("hub.queue_size", "%d out of range %d..%d", c.Hub.QueueSize, MinQueueSize, MaxQueueSize)
	}
	if c.Hub.PublisherGrace < 0 {
		bad("hub.publisher_grace", "must not be negative (0 disables), got %s", c.Hub.PublisherGrace)
	}
	if c.Hub.Conflict != ConflictRefuse && c.Hub.Conflict != ConflictTakeover {
		bad("hub.conflict", `must be "refuse" or "takeover", got %q`, c.Hub.Conflict)
	}
	if c.Hub.MaxDrops < 1 || c.Hub.MaxDrops > MaxMaxDrops {
		bad("hub.max_drops", "%d out of range 1..%d", c.Hub.MaxDrops, MaxMaxDrops)
	}
	positive(bad, "hub.drop_window", c.Hub.DropWindow)
	positive(bad, "hub.write_timeout", c.Hub.WriteTimeout)
	if c.Hub.WriteMerge < 0 || c.Hub.WriteMerge > MaxWriteMerge {
		bad("hub.write_merge", "%s out of range 0s..%s", c.Hub.WriteMerge, MaxWriteMerge)
	}

	switch c.HLS.Variant {
	case "lowLatency", "fmp4", "mpegts":
	default:
		bad("hls.variant", `must be "lowLatency", "fmp4" or "mpegts", got %q`, c.HLS.Variant)
	}
	if c.HLS.SegmentCount < 3 || c.HLS.SegmentCount > 100 {
		bad("hls.segment_count", "%d out of range 3..100", c.HLS.SegmentCount)
	} else if c.HLS.Variant == "lowLatency" && c.HLS.SegmentCount < 7 {
		bad("hls.segment_count", "Low-Latency HLS needs at least 7 segments, got %d", c.HLS.SegmentCount)
	}
	positive(bad, "hls.segment_min_duration", c.HLS.SegmentMinDuration)
	positive(bad, "hls.part_min_duration", c.HLS.PartMinDuration)
	positive(bad, "hls.idle_timeout", c.HLS.IdleTimeout)

	checkWebRTC(bad, &c.WebRTC)
	checkTURN(bad, &c.TURN)

	if c.Debug.PprofListen != "" {
		if err := checkAddr(c.Debug.PprofListen); err != nil {
			bad("debug.pprof_listen", "%v", err)
		}
	}

	checkCluster(bad, &c.Cluster)
	checkAPI(bad, &c.API)
	checkAuth(bad, &c.Auth)

	if len(c.Apps) > MaxApps {
		bad("apps", "%d entries, at most %d", len(c.Apps), MaxApps)
	}
	firstMatch := map[string]int{}
	for i := range c.Apps {
		checkApp(bad, fmt.Sprintf("apps[%d]", i), &c.Apps[i])
		if j, dup := firstMatch[c.Apps[i].Match]; dup {
			bad(fmt.Sprintf("apps[%d].match", i), "%q is already the match of apps[%d]", c.Apps[i].Match, j)
		} else {
			firstMatch[c.Apps[i].Match] = i
		}
	}

	return errors.Join(errs...)
}

// ValidateApp checks one apps entry on its own (not its place in a list)
// and returns every problem found, each naming the field ("match: ...",
// "record_segment: ..."), or nil. The run-time apps store uses it.
func ValidateApp(a *App) error {
	var errs []error
	checkApp(func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{strings.TrimPrefix(key, ".")}, args...)...))
	}, "", a)
	return errors.Join(errs...)
}

// checkApp validates one apps entry; key is its "apps[i]" prefix.
func checkApp(bad func(string, string, ...any), key string, a *App) {
	switch {
	case a.Match == "":
		bad(key+".match", "required: a path pattern like \"live/*\" or \"**\"")
	case len(a.Match) > MaxPatternLen:
		bad(key+".match", "longer than %d bytes", MaxPatternLen)
	default:
		glob := strings.TrimSuffix(a.Match, "/**")
		if _, err := pathpkg.Match(glob, ""); err != nil && a.Match != "**" {
			bad(key+".match", "invalid pattern %q: %v", a.Match, err)
		}
	}
	if a.RecordSegment < time.Second || a.RecordSegment > 10*time.Minute {
		bad(key+".record_segment", "%s out of range 1s..10m", a.RecordSegment)
	}
	if a.Retention < 0 {
		bad(key+".retention", "must not be negative (0 keeps recordings forever), got %s", a.Retention)
	} else if a.Retention > 0 && a.Retention < time.Minute {
		bad(key+".retention", "at least 1m (0 keeps recordings forever), got %s", a.Retention)
	}
	if a.DVRWindow < 0 {
		bad(key+".dvr_window", "must not be negative, got %s", a.DVRWindow)
	}
	switch a.HLSVariant {
	case "", "lowLatency", "fmp4", "mpegts":
	default:
		bad(key+".hls_variant", `must be "", "lowLatency", "fmp4" or "mpegts", got %q`, a.HLSVariant)
	}
	checkProtocols(bad, key+".publish_protocols", a.PublishProtocols, PublishProtocols)
	checkProtocols(bad, key+".play_protocols", a.PlayProtocols, PlayProtocols)
	switch a.Auth {
	case AuthNone, AuthToken, AuthWebhook:
	default:
		bad(key+".auth", `must be "none", "token" or "webhook", got %q`, a.Auth)
	}
	for k, v := range map[string]int{".max_publishers": a.MaxPublishers, ".max_viewers": a.MaxViewers, ".max_bitrate": a.MaxBitrate} {
		if v < 0 {
			bad(key+k, "must not be negative (0 is unlimited), got %d", v)
		}
	}
}

// Protocol names accepted by apps[].publish_protocols and apps[].play_protocols.
var (
	PublishProtocols = []string{"rtmp", "whip", "srt", "relay"}
	PlayProtocols    = []string{"rtmp", "flv", "ws-flv", "hls", "whep", "srt"}
)

func checkProtocols(bad func(string, string, ...any), key, list string, known []string) {
	for _, p := range splitList(list) {
		ok := false
		for _, k := range known {
			ok = ok || p == k
		}
		if !ok {
			bad(key, "unknown protocol %q (known: %s)", p, strings.Join(known, ", "))
		}
	}
}

// AllowsProtocol reports whether list (a publish_protocols or
// play_protocols value) allows protocol; "" allows every protocol.
func AllowsProtocol(list, protocol string) bool {
	if strings.TrimSpace(list) == "" {
		return true
	}
	for _, p := range splitList(list) {
		if p == protocol {
			return true
		}
	}
	return false
}

// checkCluster validates cluster.*.
func checkCluster(bad func(string, string, ...any), c *Cluster) {
	roles := splitList(c.Roles)
	if len(roles) == 0 {
		bad("cluster.roles", "at least one of publish, exchange, pull, core")
	}
	for _, r := range roles {
		switch r {
		case RolePublish, RoleExchange, RolePull, RoleCore:
		default:
			bad("cluster.roles", "unknown role %q (publish, exchange, pull, core)", r)
		}
	}
	if c.Redis != "" {
		u, err := url.Parse(c.Redis)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			bad("cluster.redis", "must be redis://host:port/db or rediss://…, got %q", c.Redis)
		}
		if len(c.Secret) < 16 {
			bad("cluster.secret", "required with cluster.redis, at least 16 characters")
		}
	}
	if len(c.NodeID) > 64 || strings.ContainsAny(c.NodeID, " /\\\t\n:") {
		bad("cluster.node_id", "at most 64 characters without spaces, slashes or colons, got %q", c.NodeID)
	}
	if c.TTL < 2*time.Second || c.TTL > 5*time.Minute {
		bad("cluster.ttl", "%s out of range 2s..5m", c.TTL)
	}
	if c.Weight < 1 || c.Weight > 10000 {
		bad("cluster.weight", "%d out of range 1..10000", c.Weight)
	}
	positive(bad, "cluster.relay_idle", c.RelayIdle)
	switch c.Dispatch.Policy {
	case "least_loaded", "random":
	default:
		bad("cluster.dispatch.policy", `must be "least_loaded" or "random", got %q`, c.Dispatch.Policy)
	}
	for k, v := range map[string]int{"cluster.dispatch.cpu_weight": c.Dispatch.CPUWeight, "cluster.dispatch.connections_weight": c.Dispatch.ConnectionsWeight, "cluster.dispatch.bandwidth_weight": c.Dispatch.BandwidthWeight} {
		if v < 0 || v > 100 {
			bad(k, "%d out of range 0..100", v)
		}
	}
}

// checkAPI validates api.*.
func checkAPI(bad func(string, string, ...any), a *API) {
	if a.Listen != "" {
		if err := checkAddr(a.Listen); err != nil {
			bad("api.listen", "%v", err)
		}
	}
	seen := map[string]bool{}
	for i, k := range a.Keys {
		key := fmt.Sprintf("api.keys[%d]", i)
		if len(k.Key) < 16 {
			bad(key+".key", "at least 16 characters")
		} else if seen[k.Key] {
			bad(key+".key", "the same key is listed twice")
		}
		seen[k.Key] = true
		if k.Scope != ScopeRead && k.Scope != ScopeAdmin {
			bad(key+".scope", `must be "read" or "admin", got %q`, k.Scope)
		}
	}
}

// checkAuth validates auth.*.
func checkAuth(bad func(string, string, ...any), a *Auth) {
	for k, u := range map[string]string{
		"auth.webhook.on_publish": a.Webhook.OnPublish, "auth.webhook.on_play": a.Webhook.OnPlay,
		"auth.webhook.on_unpublish": a.Webhook.OnUnpublish, "auth.webhook.on_stop": a.Webhook.OnStop,
		"auth.webhook.on_record_segment": a.Webhook.OnRecordSegment,
	} {
		if u == "" {
			continue
		}
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			bad(k, "must be an http:// or https:// URL, got %q", u)
		}
	}
	positive(bad, "auth.webhook.timeout", a.Webhook.Timeout)
	if a.Webhook.Retries < 0 || a.Webhook.Retries > 100 {
		bad("auth.webhook.retries", "%d out of range 0..100", a.Webhook.Retries)
	}
	if a.FailLimit < 0 {
		bad("auth.fail_limit", "must not be negative (0 disables), got %d", a.FailLimit)
	}
	positive(bad, "auth.fail_window", a.FailWindow)
}

// checkWebRTC validates webrtc.*.
func checkWebRTC(bad func(string, string, ...any), w *WebRTC) {
	for key, addr := range map[string]string{"webrtc.udp_listen": w.UDPListen, "webrtc.tcp_listen": w.TCPListen} {
		if addr != "" {
			if err := checkAddr(addr); err != nil {
				bad(key, "%v", err)
			}
		}
	}
	for _, ip := range splitList(w.PublicIPs) {
		if net.ParseIP(ip) == nil {
			bad("webrtc.public_ips", "%q is not an IP address", ip)
		}
	}
	positive(bad, "webrtc.handshake_timeout", w.HandshakeTimeout)
	if w.MaxSessions < 1 || w.MaxSessions > 1_000_000 {
		bad("webrtc.max_sessions", "%d out of range 1..1000000", w.MaxSessions)
	}
}

// checkTURN validates turn.*.
func checkTURN(bad func(string, string, ...any), t *TURN) {
	if t.Listen == "" {
		return
	}
	if err := checkAddr(t.Listen); err != nil {
		bad("turn.listen", "%v", err)
	}
	if (t.TLSCert == "") != (t.TLSKey == "") {
		bad("turn.tls_key", "turn.tls_cert and turn.tls_key must be set together")
	}
	if t.TLSCert != "" {
		if err := checkAddr(t.TLSListen); err != nil {
			bad("turn.tls_listen", "%v", err)
		}
	}
	if t.Realm == "" {
		bad("turn.realm", "must not be empty")
	}
	if t.CredentialTTL < time.Minute {
		bad("turn.credential_ttl", "at least 1m, got %s", t.CredentialTTL)
	}
	if t.RelayIP != "" && net.ParseIP(t.RelayIP) == nil {
		bad("turn.relay_ip", "%q is not an IP address", t.RelayIP)
	}
	if t.RelayPortMin < 1024 || t.RelayPortMin > 65535 {
		bad("turn.relay_port_min", "%d out of range 1024..65535", t.RelayPortMin)
	}
	if t.RelayPortMax < t.RelayPortMin || t.RelayPortMax > 65535 {
		bad("turn.relay_port_max", "%d out of range turn.relay_port_min (%d)..65535", t.RelayPortMax, t.RelayPortMin)
	}
	if t.MaxAllocationsPerUser < 1 {
		bad("turn.max_allocations_per_user", "must be at least 1, got %d", t.MaxAllocationsPerUser)
	}
}

// splitList splits a comma-separated setting, dropping blanks.
func splitList(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// List returns the items of a comma-separated setting such as webrtc.public_ips.
func List(s string) []string { return splitList(s) }

// checkS3 validates storage.s3.*; with no endpoint the other keys are ignored.
func checkS3(bad func(string, string, ...any), s *S3) {
	if s.Endpoint == "" {
		return
	}
	if err := checkEndpoint(s.Endpoint); err != nil {
		bad("storage.s3.endpoint", "%v", err)
	}
	if s.Bucket == "" {
		bad("storage.s3.bucket", "required when storage.s3.endpoint is set")
	} else if !validBucket(s.Bucket) {
		bad("storage.s3.bucket", "invalid bucket name %q: 3..63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit", s.Bucket)
	}
	if (s.AccessKey == "") != (s.SecretKey == "") {
		bad("storage.s3.secret_key", "storage.s3.access_key and storage.s3.secret_key must be set together (both empty for anonymous access)")
	}
}

// checkEndpoint accepts host or host:port, without a scheme or path.
func checkEndpoint(e string) error {
	if strings.Contains(e, "://") || strings.ContainsAny(e, "/?#@ ") {
		return fmt.Errorf("must be host or host:port without scheme or path (use storage.s3.use_ssl for https), got %q", e)
	}
	if _, _, err := net.SplitHostPort(e); err == nil {
		return checkAddr(e)
	}
	return nil
}

// validBucket follows the S3 bucket naming rules.
func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 || strings.Contains(b, "..") {
		return false
	}
	for i, r := range b {
		alnum := (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9')
		if !alnum && ((r != '.' && r != '-') || i == 0 || i == len(b)-1) {
			return false
		}
	}
	return true
}

func positive(bad func(string, string, ...any), key string, d time.Duration) {
	if d <= 0 {
		bad(key, "must be a positive duration like \"5s\", got %s", d)
	}
}

// checkAddr accepts host:port with an optional host and a numeric port 0..65535.
func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			err = errors.New(ae.Err)
		}
		return fmt.Errorf("invalid address %q: %w", addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("invalid address %q: port must be a number 0..65535", addr)
	}
	return nil
}

// checkOrigin accepts "", "*" or a scheme://host[:port] origin.
func checkOrigin(o string) error {
	if o == "" || o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf(`must be "*", "" or an origin like "https://example.com", got %q`, o)
	}
	return nil
}
