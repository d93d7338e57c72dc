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
	Match string `yaml:"match"`
	// Record writes the streams to storage as fMP4 segments.
	Record bool `yaml:"record"`
	// RecordSegment is the target length of a recorded segment; a segment
	// ends at the first video keyframe after it.
	RecordSegment time.Duration `yaml:"record_segment"`
	// Retention deletes recorded segments older than this; 0 keeps them forever.
	Retention time.Duration `yaml:"retention"`
	// DVRWindow is how far back the DVR playlist of a recorded live stream
	// reaches (/vod/{app}/{stream}/index.m3u8 without from and to).
	DVRWindow time.Duration `yaml:"dvr_window"`
	// HLSVariant overrides hls.variant for these streams; "" keeps it.
	HLSVariant string `yaml:"hls_variant"`
}

// DefaultApp returns the values an apps entry starts from before its keys
// are applied.
func DefaultApp() App {
	return App{RecordSegment: 4 * time.Second, DVRWindow: 2 * time.Hour}
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

	if len(c.Apps) > MaxApps {
		bad("apps", "%d entries, at most %d", len(c.Apps), MaxApps)
	}
	for i := range c.Apps {
		checkApp(bad, fmt.Sprintf("apps[%d]", i), &c.Apps[i])
	}

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
