package config

// defaultYAML is kept equal to Default() by TestDefaultYAMLMatchesDefault.
const defaultYAML = `# Quasipaa configuration (the built-in defaults).
# Every key is optional: a key left out keeps the value shown here.
# Every key can also be set from the environment as QUASIPAA_<SECTION>_<KEY>,
# e.g. QUASIPAA_RTMP_LISTEN=":1935"; the environment wins over this file.
# Durations are written with a unit: "500ms", "5s", "1m".

rtmp:
  # Address the RTMP listener binds (publish and play), host:port; "" disables RTMP.
  listen: ":1935"
  # Size in bytes of the RTMP chunks we send (128..16777215); bigger means less overhead.
  chunk_size: 60000
  # Largest RTMP message accepted from a peer, in bytes (1024..16777216); a bigger one closes the connection.
  max_message_size: 16777216
  # Time a client has for the handshake and connect/publish/play before it is dropped.
  handshake_timeout: 10s

http:
  # Address the HTTP listener binds (HTTP-FLV, WS-FLV, API), host:port.
  listen: ":8080"
  # Access-Control-Allow-Origin sent on playback and API responses: "*", an origin, or "" for none.
  cors_origin: "*"

storage:
  # Directory for recordings and other files; a relative path is relative to the working directory.
  dir: ./data
  s3:
    # Host[:port] of an S3-compatible object store (AWS S3, MinIO, Ceph, R2…), no scheme; "" keeps files in dir on local disk.
    endpoint: ""
    # Bucket holding the objects; required when endpoint is set.
    bucket: ""
    # Access key id; set it with secret_key, or leave both empty for anonymous access.
    access_key: ""
    # Secret access key; prefer the environment variable QUASIPAA_STORAGE_S3_SECRET_KEY to writing it here.
    secret_key: ""
    # Region of the bucket, e.g. "us-east-1"; "" lets the client discover it.
    region: ""
    # Use https to reach endpoint.
    use_ssl: false
    # Address the bucket in the URL path (endpoint/bucket/key), as MinIO and most self-hosted stores expect; false uses bucket.endpoint host names.
    path_style: true

log:
  # Lowest level logged: debug, info, warn or error.
  level: info
  # Log line format: text (key=value) or json (one object per line).
  format: text

hub:
  # Keep the frames since the last keyframe so a new viewer starts playing at once.
  gop_cache: true
  # Frames held per stream in its ring buffer (16..65536); a viewer further behind skips to the next keyframe.
  queue_size: 1024
  # How long viewers stay connected waiting for a publisher that dropped to come back; 0s disables.
  publisher_grace: 5s
  # A second publisher on a live stream: refuse (the first keeps it) or takeover (the newcomer replaces it).
  conflict: refuse
  # A slow viewer that had to skip to the next keyframe this many times within drop_window is disconnected.
  max_drops: 8
  # The sliding window max_drops is counted over.
  drop_window: 30s
  # A viewer whose socket accepts nothing for this long is disconnected.
  write_timeout: 10s
  # 0s writes every frame as it arrives; e.g. 100ms batches a viewer's frames into one write, adding at most that much latency (max 1s).
  write_merge: 0s

hls:
  # Live HLS packaging: lowLatency (LL-HLS with fMP4 parts), fmp4, or mpegts (classic, for old players).
  variant: lowLatency
  # Segments listed in the live playlist (3..100; at least 7 for lowLatency).
  segment_count: 7
  # Shortest segment; a segment ends at the first keyframe after this long.
  segment_min_duration: 1s
  # Shortest partial segment of Low-Latency HLS.
  part_min_duration: 200ms
  # Packaging of a stream stops when nobody requested it over HLS for this long; the next request restarts it.
  idle_timeout: 30s

webrtc:
  # One UDP host:port shared by every WHIP/WHEP session (ICE UDP mux); "" disables UDP candidates.
  udp_listen: ":8189"
  # Passive ICE-TCP candidates on this host:port, for networks that block UDP; "" disables ICE-TCP.
  tcp_listen: ":8189"
  # Comma-separated public IPs advertised as candidates instead of local ones (server behind 1:1 NAT); "" advertises local addresses.
  public_ips: ""
  # Comma-separated network interface names to gather candidates on, e.g. "eth0"; "" uses all.
  interfaces: ""
  # A WebRTC session whose ICE and DTLS handshakes do not complete within this is closed.
  handshake_timeout: 10s
  # Most WHIP plus WHEP sessions at once on this node; more are refused with 503.
  max_sessions: 10000

turn:
  # Host:port of the built-in STUN and TURN server, UDP and TCP; "" disables both.
  listen: ":3478"
  # Host:port of TURN over TLS, used only when tls_cert is set.
  tls_listen: ":5349"
  # PEM certificate (chain) file for TURN over TLS; "" disables TLS.
  tls_cert: ""
  # PEM private key of tls_cert.
  tls_key: ""
  # TURN realm.
  realm: quasipaa
  # Shared secret of the time-limited credentials (coturn's use-auth-secret); "" makes a random one at each start (set it for a cluster or an external TURN).
  secret: ""
  # Validity of the credentials handed to WHIP/WHEP clients in Link headers.
  credential_ttl: 1h
  # Host or IP clients reach this server at, used in the advertised stun:/turn: URLs; "" uses the host of each HTTP request.
  public_host: ""
  # IP of the relayed addresses given to clients; "" uses the listen IP, or the first non-loopback address.
  relay_ip: ""
  # Lowest UDP port used for relayed addresses.
  relay_port_min: 49152
  # Highest UDP port used for relayed addresses.
  relay_port_max: 65535
  # Concurrent allocations one username may hold.
  max_allocations_per_user: 10
  # Allow relaying to loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7) and link-local peers; keep false on a public server.
  allow_private_peers: false

cluster:
  # Roles this node runs, comma-separated: publish, exchange, pull, core.
  roles: publish,exchange,pull,core
  # Redis of the cluster's registry, redis://[user:pass@]host:port/db; "" keeps state in memory (one node).
  redis: ""
  # Name of this node in the cluster; "" uses the host name.
  node_id: ""
  # Host or IP other nodes and redirected clients reach this node at; "" uses the first non-loopback IP.
  advertise: ""
  # Shared secret of relay and internal requests between nodes (at least 16 characters); required with redis.
  secret: ""
  # How long a node's heartbeat, stream routes and job leases outlive it (2s..5m).
  ttl: 10s
  # Location label of this node; dispatch prefers nodes of the client's region.
  region: ""
  # Relative capacity of this node for dispatch, in percent (100 is normal).
  weight: 100
  # A pull node closes its relay upstream of a stream this long after its last viewer left.
  relay_idle: 10s
  dispatch:
    # How core picks a node: least_loaded (lowest weighted load score) or random (weighted by capacity).
    policy: least_loaded
    # Share of CPU use in the load score, percent.
    cpu_weight: 50
    # Share of connections in the load score, percent.
    connections_weight: 25
    # Share of egress plus ingress bit rate in the load score, percent.
    bandwidth_weight: 25

api:
  # Separate host:port for the API and the console; "" serves them on http.listen.
  listen: ""
  # Bearer API keys ("Authorization: Bearer KEY"); with none the API is open to anyone who reaches it.
  # Entries: {name: ops, key: "at-least-16-characters", scope: read|admin}
  keys: []

auth:
  # Secret verifying HS256 publish/play tokens (apps with auth: token); "" accepts no HS256 token.
  jwt_secret: ""
  # PEM file with an RSA public key verifying RS256 tokens; "" accepts none.
  jwt_public_key: ""
  # JSON Web Key Set file whose RSA keys verify RS256 tokens, chosen by kid; "" accepts none.
  jwks_file: ""
  webhook:
    # URL asked (POST JSON) before accepting a publisher of an app with auth: webhook; 2xx allows.
    on_publish: ""
    # URL asked before accepting a viewer of an app with auth: webhook; 2xx allows.
    on_play: ""
    # URL told when a publisher stops.
    on_unpublish: ""
    # URL told when a viewer stops.
    on_stop: ""
    # URL told when a recorded segment is stored.
    on_record_segment: ""
    # Signs each body with HMAC-SHA256, sent hex-encoded in X-Quasipaa-Signature; "" sends none.
    secret: ""
    # Time limit of each call; a publish/play question that times out refuses.
    timeout: 3s
    # Retries of a failed notification (on_unpublish, on_stop, on_record_segment).
    retries: 3
  # Refused attempts one client IP may make within fail_window before it is refused outright; 0 disables.
  fail_limit: 10
  # Window of fail_limit.
  fail_window: 1m

metrics:
  # Serve Prometheus metrics at /metrics.
  enabled: true

debug:
  # Address of a Go pprof HTTP endpoint (/debug/pprof/), e.g. "127.0.0.1:6060"; "" disables it. Keep it on loopback.
  pprof_listen: ""

# Per-application policies, matched in order against the stream path ("app/stream");
# the first match applies, and a stream nothing matches is live only (not recorded).
# Set the whole list from the environment as YAML/JSON: QUASIPAA_APPS='[{match: "live/*", record: true}]'.
# Keys of an entry (only match is required):
#   match: "live/*"          path pattern: '*' within one segment, "live/**" everything under live/, "**" everything
#   record: false            record the streams to storage as fMP4 segments (storage.dir or storage.s3)
#   record_segment: 4s       target segment length (1s..10m); a segment ends at the first keyframe after it
#   retention: 0s            delete segments older than this (at least 1m); 0s keeps them forever
#   dvr_window: 2h           how far back /vod/{app}/{stream}/index.m3u8 (no from/to) reaches while live
#   hls_variant: ""          lowLatency, fmp4 or mpegts for these streams; "" keeps hls.variant
#   publish_protocols: ""    comma-separated protocols that may publish (rtmp, whip, srt, relay); "" allows all
#   play_protocols: ""       comma-separated protocols that may play (rtmp, flv, ws-flv, hls, whep, srt); "" allows all
#   auth: none               none, token (JWT in ?token= or Authorization: Bearer) or webhook (auth.webhook.on_publish/on_play)
#   max_publishers: 0        streams of this app published at once on a node; 0 is unlimited
#   max_viewers: 0           viewers of one stream on a node; 0 is unlimited
#   max_bitrate: 0           a publisher above this ingress bit rate (bit/s) is disconnected; 0 is unlimited
apps: []
`

// DefaultYAML returns the documented default configuration file, with a
// comment on every key; loading it yields exactly Default().
func DefaultYAML() string {
	return defaultYAML
}
