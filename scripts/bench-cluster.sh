#!/usr/bin/env bash
# Cluster performance measurement on one machine: horizontal scale of pull
# nodes, relay overhead (latency and CPU per relayed stream) and the dispatch
# API's throughput. It takes about 5 minutes and needs two cores; it is not run
# in CI. See docs/bench.md#cluster.
#
# It builds quasipaa, starts its own redis-server on a free 127.0.0.1 port and
# five nodes on loopback addresses (core-1 127.0.0.11, pub-1 .12 and pub-2 .13
# with publish+exchange, pull-1 .14 and pull-2 .15), all on the same free
# RTMP/HTTP ports, then:
#
#   1. relay cost: 10 streams published on pub-1 by the bench; CPU of pub-1
#      and pull-1 (utime+stime from /proc/PID/stat) with no viewer, then with
#      one HTTP-FLV viewer per stream on pull-1 (10 relayed streams);
#   2. relay latency: two bench processes at the same time, each publishing
#      its own stream (the same file) to pub-1 over RTMP with 20 WHEP players,
#      one on pub-1 itself (direct), one on pull-1 (relayed); the latency is
#      publisher write -> last packet of each frame at the player;
#   3. horizontal scale: one 2.5 Mbit/s stream on pub-1; HTTP-FLV players on
#      pull-1 alone (pinned to core 0, the bench to core 1), then split over
#      pull-1 (core 0) and pull-2 (core 1), the bench on both cores;
#   4. dispatch: a small Go load loop (stdlib only, written to $OUT) asks
#      core-1 GET /api/v1/dispatch over keep-alive HTTP, with the 5 nodes
#      registered in Redis; core-1 pinned to core 0, Redis and the loop to
#      core 1.
#
# Environment:
#   SCALE_STEPS="1:1000 1:2000 1:3000 2:2000 2:3000 2:4000"   pull nodes:players per scale run
#   SCALE_SECONDS=22   seconds per scale run (bench -duration)
#   LAT_PLAYERS=20     WHEP players per latency bench
#   RELAY_STREAMS=20   streams of the relay cost phase
#   DISPATCH_SECONDS=15 DISPATCH_WORKERS=8
#   PERF_CACHE=/tmp/quasipaa-perf   where the test files are generated once
#   PHASES="relay latency scale dispatch"   which phases to run
#   OUT=...            logs and JSON summaries (default: a new temp dir)
#
# The script kills only the processes it started, by PID; every phase is
# bounded in time (timeout on each bench/load process).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH="/usr/local/go/bin:$PATH"
fi

SCALE_STEPS="${SCALE_STEPS:-1:1000 1:2000 1:3000 2:2000 2:3000 2:4000}"
SCALE_SECONDS="${SCALE_SECONDS:-22}"
LAT_PLAYERS="${LAT_PLAYERS:-20}"
RELAY_STREAMS="${RELAY_STREAMS:-20}"
DISPATCH_SECONDS="${DISPATCH_SECONDS:-15}"
DISPATCH_WORKERS="${DISPATCH_WORKERS:-8}"
PERF_CACHE="${PERF_CACHE:-${TMPDIR:-/tmp}/quasipaa-perf}"
OUT="${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/quasipaa-cluster-bench.XXXXXX")}"
PHASES="${PHASES:-relay latency scale dispatch}"
SECONDS=0

log() { printf '[bench-cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

for tool in ffmpeg taskset jq curl redis-server go; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done
[ "$(nproc)" -ge 2 ] || die "two cores are needed"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
mkdir -p "$PERF_CACHE" "$OUT"
log "results in $OUT"

# --- processes we started, killed on exit ------------------------------------

PIDS=()
started() { PIDS+=("$1"); }

stop() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local i
	# Nodes first (in reverse order of start), Redis last.
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		stop "${PIDS[$i]}"
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- inputs --------------------------------------------------------------------

BIN="$OUT/quasipaa"
log "building quasipaa"
CGO_ENABLED=0 go build -o "$BIN" ./cmd/quasipaa

# The stream of the scale and relay-cost phases: the scripts/perf.sh encoding
# (720p30 H.264 2.4 Mbit/s + AAC 128 kbit/s, 2 s GOP), 60 s; the bench's
# publisher loops it without a timestamp jump.
FILE="$PERF_CACHE/720p30-2500k-60s.flv"
if [ ! -s "$FILE" ]; then
	log "generating $FILE"
	timeout 600 ffmpeg -hide_banner -loglevel error -y \
		-f lavfi -i testsrc2=size=1280x720:rate=30 \
		-f lavfi -i sine=frequency=440:sample_rate=48000 -t 60 \
		-c:v libx264 -preset veryfast -b:v 2400k -maxrate 2400k -bufsize 4800k \
		-g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p \
		-c:a aac -b:a 128k -ac 2 -f flv "$FILE.tmp"
	mv "$FILE.tmp" "$FILE"
fi
# The latency phase's: the same video without B-frames (WHEP refuses them)
# and without audio (no AAC->Opus converter on the nodes).
LFILE="$PERF_CACHE/720p30-2400k-bf0-noaudio-90s.flv"
if [ ! -s "$LFILE" ]; then
	log "generating $LFILE"
	timeout 600 ffmpeg -hide_banner -loglevel error -y \
		-f lavfi -i testsrc2=size=1280x720:rate=30 -t 90 \
		-c:v libx264 -preset veryfast -b:v 2400k -maxrate 2400k -bufsize 4800k \
		-g 60 -keyint_min 60 -sc_threshold 0 -bf 0 -pix_fmt yuv420p -an \
		-f flv "$LFILE.tmp"
	mv "$LFILE.tmp" "$LFILE"
fi

# --- helpers -------------------------------------------------------------------

# port_free IP PORT: nothing accepts on IP:PORT.
port_free() { ! (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# free_port IP...: a TCP port free on every IP, below the ephemeral range.
free_port() {
	local p low ip ok
	low="$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
	for _ in $(seq 100); do
		p=$((10000 + RANDOM % (low - 10000)))
		ok=1
		for ip in "$@"; do
			port_free "$ip" "$p" || ok=0
		done
		if [ "$ok" = 1 ]; then
			echo "$p"
			return
		fi
	done
	die "no free port"
}

# wait_port IP PORT PID: until something accepts (15 s at most).
wait_port() {
	local i
	for ((i = 0; i < 150; i++)); do
		if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then
			return 0
		fi
		kill -0 "$3" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# cpu_ticks PID: utime+stime of PID and its direct children, in clock ticks.
cpu_ticks() {
	local total=0 p
	for p in $1 $(pgrep -P "$1" 2>/dev/null || true); do
		[ -r "/proc/$p/stat" ] || continue
		total=$((total + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
	done
	echo "$total"
}
rss_mib() { awk '/^VmRSS:/ {printf "%d", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo 0; }
now() { date +%s.%N; }
CLK_TCK="$(getconf CLK_TCK)"
# pct T0 T1 TICKS: TICKS over the wall time T1-T0, in % of one core.
pct() { awk -v a="$1" -v b="$2" -v t="$3" -v hz="$CLK_TCK" 'BEGIN {printf "%.1f", t / hz / (b - a) * 100}'; }

# snap TAG PID...: records the time, the machine's busy ticks and each PID's
# ticks under TAG.
declare -A TICKS
snap() {
	local tag=$1 p
	shift
	TICKS["$tag.t"]="$(now)"
	# The whole machine's busy time (user, nice, system, irq, softirq, steal).
	TICKS["$tag.machine"]="$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat)"
	for p in "$@"; do
		TICKS["$tag.$p"]="$(cpu_ticks "$p")"
	done
}
# usage TAG0 TAG1 PID: CPU % of PID between the two snapshots.
usage() { pct "${TICKS[$1.t]}" "${TICKS[$2.t]}" $((${TICKS[$2.$3]} - ${TICKS[$1.$3]})); }
# machine TAG0 TAG1: the machine's busy CPU between the snapshots (of 200 %
# on two cores: ours and the other processes'), and the load average.
machine() { echo "machine_cpu=$(usage "$1" "$2" machine) loadavg=$(cut -d' ' -f1 /proc/loadavg)"; }

# --- Redis and the nodes ----------------------------------------------------------

REDIS_PORT="$(free_port 127.0.0.1)"
mkdir -p "$OUT/redis"
taskset -c 1 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
	--dir "$OUT/redis" >"$OUT/redis/redis.log" 2>&1 &
REDIS=$!
started "$REDIS"
wait_port 127.0.0.1 "$REDIS_PORT" "$REDIS" || die "redis-server did not start"

declare -A IP=([core-1]=127.0.0.11 [pub-1]=127.0.0.12 [pub-2]=127.0.0.13 [pull-1]=127.0.0.14 [pull-2]=127.0.0.15)
# pub-1 also has the pull role, so that viewers can play on the publish node
# itself (the latency phase's direct viewers).
declare -A ROLES=([core-1]=core [pub-1]=publish,exchange,pull [pub-2]=publish,exchange [pull-1]=pull [pull-2]=pull)
# Cores: pub-1 and pull-1 on core 0, pull-2 on core 1; core-1 on core 0 (idle
# but for the dispatch phase), pub-2 on core 1 (idle).
declare -A CORE=([core-1]=0 [pub-1]=0 [pub-2]=1 [pull-1]=0 [pull-2]=1)
RTMP_PORT="$(free_port "${IP[@]}")"
HTTP_PORT="$(free_port "${IP[@]}")"
declare -A PID

start_node() {
	local id=$1 ip=${IP[$1]} dir="$OUT/$1" webrtc=""
	mkdir -p "$dir"
	# WHEP on the nodes that serve the latency phase's players.
	case "$id" in pub-1 | pull-1) webrtc="$ip:0" ;; esac
	env QUASIPAA_CLUSTER_REDIS="redis://127.0.0.1:$REDIS_PORT/0" \
		QUASIPAA_CLUSTER_SECRET=bench-cluster-secret-0123456789 \
		QUASIPAA_CLUSTER_TTL=6s QUASIPAA_CLUSTER_RELAY_IDLE=2s \
		QUASIPAA_CLUSTER_NODE_ID="$id" QUASIPAA_CLUSTER_ROLES="${ROLES[$id]}" \
		QUASIPAA_CLUSTER_ADVERTISE="$ip" \
		QUASIPAA_RTMP_LISTEN="$ip:$RTMP_PORT" QUASIPAA_HTTP_LISTEN="$ip:$HTTP_PORT" \
		QUASIPAA_WEBRTC_UDP_LISTEN="$webrtc" QUASIPAA_WEBRTC_TCP_LISTEN= QUASIPAA_TURN_LISTEN= \
		QUASIPAA_STORAGE_DIR="$OUT/data" QUASIPAA_LOG_LEVEL="${NODE_LOG_LEVEL:-warn}" \
		taskset -c "${CORE[$id]}" "$BIN" serve >"$dir/node.log" 2>&1 &
	PID[$id]=$!
	started "${PID[$id]}"
	wait_port "$ip" "$HTTP_PORT" "${PID[$id]}" || {
		cat "$dir/node.log" >&2
		die "$id did not start"
	}
}

CORE_URL="http://${IP[core-1]}:$HTTP_PORT"
# wait_nodes N: until N nodes are in the registry (20 s at most).
wait_nodes() {
	local i n=0
	for ((i = 0; i < 100; i++)); do
		n="$(curl -s "$CORE_URL/api/v1/nodes" | jq '.nodes | length' 2>/dev/null || echo 0)"
		[ "$n" = "$1" ] && return 0
		sleep 0.2
	done
	die "only $n nodes registered, $1 expected"
}
# pub-2 starts only before the dispatch phase: an exchange node claims the HLS
# job of any stream, and pub-2 would pull half of pub-1's streams over the
# relay, blurring the relay figures. Until then pub-1 packages its own streams.
for id in core-1 pub-1 pull-1 pull-2; do
	start_node "$id"
done
wait_nodes 4
log "4 nodes up (redis :$REDIS_PORT, rtmp :$RTMP_PORT, http :$HTTP_PORT)"

PUB="rtmp://${IP[pub-1]}:$RTMP_PORT"
HTTP_PUB="http://${IP[pub-1]}:$HTTP_PORT"
HTTP_PULL1="http://${IP[pull-1]}:$HTTP_PORT"
HTTP_PULL2="http://${IP[pull-2]}:$HTTP_PORT"

# bench NAME SECONDS CORES ARGS...: runs quasipaa bench in the background
# (JSON to $OUT/NAME.json, text to $OUT/NAME.log), bounded by a timeout; sets
# BENCH_PID.
bench() {
	local name=$1 secs=$2 cores=$3
	shift 3
	timeout -s KILL $((secs + 30)) taskset -c "$cores" "$BIN" bench -duration "${secs}s" -progress 5s -json "$@" \
		>"$OUT/$name.json" 2>"$OUT/$name.log" &
	BENCH_PID=$!
	started "$BENCH_PID"
}
# finish: waits for BENCH_PID (its exit status 1 = some player failed is reported, not fatal).
finish() { wait "$1" 2>/dev/null || true; }

RESULTS="$OUT/results.txt"
: >"$RESULTS"
out() { printf '%s\n' "$*" | tee -a "$RESULTS"; }

phase() { case " $PHASES " in *" $1 "*) return 0 ;; esac; return 1; }

# --- 1. relay cost ----------------------------------------------------------------
if phase relay; then

log "relay cost: $RELAY_STREAMS streams on pub-1, 0 then $RELAY_STREAMS relayed to pull-1"
bench relay-feed 52 1 -publish "$FILE" -publishers "$RELAY_STREAMS" -publish-url "$PUB/live/r{i}" -players 0
FEED=$BENCH_PID
sleep 6
snap r0 "${PID[pub-1]}" "${PID[pull-1]}"
sleep 14
snap r1 "${PID[pub-1]}" "${PID[pull-1]}"
urls=""
for ((i = 1; i <= RELAY_STREAMS; i++)); do
	urls+="${urls:+,}$HTTP_PULL1/live/r$i.flv"
done
bench relay-view 28 1 -url "$urls" -players "$RELAY_STREAMS" -ramp 0s
VIEW=$BENCH_PID
sleep 6
snap r2 "${PID[pub-1]}" "${PID[pull-1]}"
sleep 20
snap r3 "${PID[pub-1]}" "${PID[pull-1]}"
finish "$VIEW"
finish "$FEED"
pub0="$(usage r0 r1 "${PID[pub-1]}")" pub1="$(usage r2 r3 "${PID[pub-1]}")"
pull0="$(usage r0 r1 "${PID[pull-1]}")" pull1="$(usage r2 r3 "${PID[pull-1]}")"
out "relay-cost streams=$RELAY_STREAMS pub1_cpu_0relay=$pub0 pub1_cpu_relay=$pub1 pull1_cpu_0relay=$pull0 pull1_cpu_relay=$pull1 (0 relayed: $(machine r0 r1); relayed: $(machine r2 r3))" \
	"$(awk -v s="$RELAY_STREAMS" -v a="$pub0" -v b="$pub1" -v c="$pull0" -v d="$pull1" \
		'BEGIN {printf "relay-cost per_stream_pub1=%.2f per_stream_pull1=%.2f (%% of a core)", (b - a) / s, (d - c) / s}')" \
	"relay-cost viewers: $(jq -c '{connected, failed, drop_percent, mbit_per_s}' "$OUT/relay-view.json")"
sleep 3
fi

# --- 2. relay latency ----------------------------------------------------------------
if phase latency; then
log "relay latency: $LAT_PLAYERS WHEP players on pub-1 (direct) and $LAT_PLAYERS on pull-1 (relayed), same time"
bench lat-direct 30 1 -publish "$LFILE" -publish-url "$PUB/live/lat-direct" \
	-url "$HTTP_PUB/live/lat-direct/whep" -players "$LAT_PLAYERS" -ramp 5s
LD=$BENCH_PID
bench lat-relay 30 1 -publish "$LFILE" -publish-url "$PUB/live/lat-relay" \
	-url "$HTTP_PULL1/live/lat-relay/whep" -players "$LAT_PLAYERS" -ramp 5s
LR=$BENCH_PID
sleep 8
snap l0
sleep 20
snap l1
finish "$LD"
finish "$LR"
for name in lat-direct lat-relay; do
	out "$name $(machine l0 l1) $(jq -c '{connected, failed, drop_percent, latency_ms: .webrtc.latency_ms, frames: .webrtc.latency_frames, loss: .webrtc.loss_percent, startup_ms: .startup_ms.p50}' "$OUT/$name.json")"
done
sleep 3
fi

# --- 3. horizontal scale ------------------------------------------------------------
if phase scale; then
log "scale: one 2.5 Mbit/s stream on pub-1, HTTP-FLV players on 1 or 2 pull nodes"
bench scale-feed 400 1 -publish "$FILE" -publish-url "$PUB/live/cam" -players 0
SFEED=$BENCH_PID
sleep 4
for step in $SCALE_STEPS; do
	nodes=${step%%:*} players=${step##*:}
	if [ "$nodes" = 1 ]; then
		urls="$HTTP_PULL1/live/cam.flv" cores=1
	else
		urls="$HTTP_PULL1/live/cam.flv,$HTTP_PULL2/live/cam.flv" cores=0,1
	fi
	name="scale-${nodes}x-$players"
	log "scale: $players players on $nodes pull node(s), bench on core(s) $cores"
	bench "$name" "$SCALE_SECONDS" "$cores" -url "$urls" -players "$players" -ramp 5s
	B=$BENCH_PID
	sleep 8
	snap s0 "${PID[pull-1]}" "${PID[pull-2]}" "${PID[pub-1]}" "$B"
	sleep $((SCALE_SECONDS - 10))
	snap s1 "${PID[pull-1]}" "${PID[pull-2]}" "${PID[pub-1]}" "$B"
	finish "$B"
	out "$name pull1_cpu=$(usage s0 s1 "${PID[pull-1]}") pull2_cpu=$(usage s0 s1 "${PID[pull-2]}") pub1_cpu=$(usage s0 s1 "${PID[pub-1]}") bench_cpu=$(usage s0 s1 "$B") pull1_rss=$(rss_mib "${PID[pull-1]}") pull2_rss=$(rss_mib "${PID[pull-2]}") $(machine s0 s1) $(jq -c '{connected, failed, gbit: (.mbit_per_s / 1000), drop_percent, stalls, startup_p50: .startup_ms.p50, startup_p99: .startup_ms.p99}' "$OUT/$name.json")"
	sleep 3
done
stop "$SFEED"
fi

# --- 4. dispatch API -----------------------------------------------------------------
if phase dispatch; then
log "dispatch: ${DISPATCH_SECONDS}s of GET /api/v1/dispatch on core-1, $DISPATCH_WORKERS workers"
LOADDIR="$OUT/dispatchload"
mkdir -p "$LOADDIR"
start_node pub-2
wait_nodes 5
cat >"$LOADDIR/go.mod" <<'EOF'
module dispatchload

go 1.22
EOF
cat >"$LOADDIR/main.go" <<'EOF'
// Command dispatchload sends GET requests to one URL from W keep-alive
// workers for D (or at most N requests) and prints the rate and latency
// percentiles as JSON.
package main

import (
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	url := flag.String("url", "", "URL to GET")
	workers := flag.Int("workers", 8, "concurrent keep-alive connections")
	dur := flag.Duration("duration", 15*time.Second, "length of the run")
	maxRequests := flag.Int64("max", 2_000_000, "at most this many requests")
	flag.Parse()
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: *workers, MaxConnsPerHost: *workers},
	}
	var n atomic.Int64
	var errs atomic.Int64
	lat := make([][]time.Duration, *workers)
	status := make([]map[int]int, *workers)
	start := time.Now()
	deadline := start.Add(*dur)
	var wg sync.WaitGroup
	for w := range *workers {
		status[w] = map[int]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && n.Add(1) <= *maxRequests {
				t0 := time.Now()
				resp, err := client.Get(*url)
				if err != nil {
					errs.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[w] = append(lat[w], time.Since(t0))
				status[w][resp.StatusCode]++
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	var all []time.Duration
	codes := map[int]int{}
	for w := range lat {
		all = append(all, lat[w]...)
		for c, k := range status[w] {
			codes[c] += k
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		i := int(p*float64(len(all))+0.999999) - 1
		if i < 0 {
			i = 0
		}
		return float64(all[i].Microseconds()) / 1000
	}
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{
		"requests": len(all), "errors": errs.Load(), "seconds": secs,
		"rps": float64(len(all)) / secs, "status": codes,
		"p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99), "max_ms": pct(1),
	})
}
EOF
(cd "$LOADDIR" && GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 go build -o dispatchload .)
for action in play publish; do
	proto=flv
	[ "$action" = publish ] && proto=rtmp
	url="$CORE_URL/api/v1/dispatch?path=live/d1&action=$action&protocol=$proto"
	curl -s "$url" >"$OUT/dispatch-$action.sample.json"
	snap d0 "${PID[core-1]}" "$REDIS"
	timeout -s KILL $((DISPATCH_SECONDS + 20)) taskset -c 1 "$LOADDIR/dispatchload" -url "$url" \
		-workers "$DISPATCH_WORKERS" -duration "${DISPATCH_SECONDS}s" >"$OUT/dispatch-$action.json" &
	L=$!
	started "$L"
	finish "$L"
	snap d1 "${PID[core-1]}" "$REDIS"
	c="$(usage d0 d1 "${PID[core-1]}")"
	out "dispatch-$action core1_cpu=$c redis_cpu=$(usage d0 d1 "$REDIS") $(machine d0 d1) $(jq -c --arg c "$c" '. + {rps_per_core: (if ($c | tonumber) > 0 then .rps / (($c | tonumber) / 100) else null end)}' "$OUT/dispatch-$action.json")"
	out "dispatch-$action sample answer: $(cat "$OUT/dispatch-$action.sample.json")"
done
fi

log "done in ${SECONDS}s; results in $RESULTS"
cat "$RESULTS"
