#!/usr/bin/env bash
# Whole-server performance measurement: how much CPU and memory a server
# spends to deliver one 2.5 Mbit/s 720p30 stream to many players, Quasipaa
# against nginx-rtmp. It takes minutes and needs two cores; it is not run in
# CI. See docs/bench.md.
#
# The input is a 2.5 Mbit/s 720p30 H.264 + AAC FLV file generated once with
# ffmpeg (libx264, 2 s GOP) and cached; it lasts DURATION + 30 s.
#
# For each server (Quasipaa with the defaults, Quasipaa with
# hub.write_merge=100ms, nginx-rtmp) and protocol (RTMP; HTTP-FLV for
# Quasipaa), it starts the server pinned to core 0, an ffmpeg publisher
# (-re -stream_loop -1 -c copy) and `quasipaa bench` pinned to core 1, and
# measures the server's CPU time (utime+stime of its processes, from
# /proc/PID/stat) over the steady part of the run (after the ramp and a short
# warm-up, until one second before the end) and its resident memory at the
# end. A 20 s CPU profile of Quasipaa is taken through its pprof endpoint.
#
# Environment:
#   PLAYERS=1000     players per run
#   DURATION=60      seconds per run (bench -duration)
#   RAMP=2           seconds over which the players connect
#   SERVERS="quasipaa quasipaa-merge nginx-rtmp"   which servers to run
#   PERF_CACHE=/tmp/quasipaa-perf   where the test file is generated once
#   OUT=...          where logs, JSON summaries and profiles go (default: a new temp dir)
#
# Everything listens on 127.0.0.1 only; the script kills only the processes
# it started.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH="/usr/local/go/bin:$PATH"
fi

PLAYERS="${PLAYERS:-1000}"
DURATION="${DURATION:-60}"
RAMP="${RAMP:-2}"
SERVERS="${SERVERS:-quasipaa quasipaa-merge nginx-rtmp}"
PERF_CACHE="${PERF_CACHE:-${TMPDIR:-/tmp}/quasipaa-perf}"
OUT="${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/quasipaa-perf-run.XXXXXX")}"
WARMUP=$((RAMP + 3))
# The profile is taken inside the measured window.
PROFILE_SECONDS=$((DURATION - WARMUP - 2))
[ "$PROFILE_SECONDS" -le 20 ] || PROFILE_SECONDS=20

log() { printf '[perf %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

for tool in ffmpeg taskset jq curl; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done
[ "$(nproc)" -ge 2 ] || die "two cores are needed (server on core 0, load on core 1)"
[ "$DURATION" -ge $((WARMUP + 5)) ] || die "DURATION must be at least $((WARMUP + 5)) s"

# Many sockets per process: raise the open-file limit as far as allowed.
ulimit -n 65536 2>/dev/null || {
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	log "ulimit -n 65536 refused; using $(ulimit -n)"
}
[ "$(ulimit -n)" -gt $((PLAYERS + 100)) ] || die "open-file limit $(ulimit -n) is too low for $PLAYERS players"

mkdir -p "$PERF_CACHE" "$OUT"
log "results in $OUT"

# --- processes we started, killed on exit ------------------------------------

PIDS=()
started() { PIDS+=("$1"); }

# stop PID: SIGTERM, then SIGKILL after 10 s.
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
	local pid
	for pid in "${PIDS[@]}"; do
		stop "$pid"
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- inputs --------------------------------------------------------------------

mkdir -p "$OUT/bin"
BIN="$OUT/bin/quasipaa"
log "building quasipaa"
CGO_ENABLED=0 go build -o "$BIN" ./cmd/quasipaa

# The file is longer than a run, so that ffmpeg never loops during the
# measurement: at each -stream_loop restart ffmpeg offsets the timestamps by
# the longest stream (AAC, with its priming frame, outlasts the video by a
# frame), which every player rightly counts as one dropped video frame.
FILE_SECONDS=$((DURATION + 30))
[ "$FILE_SECONDS" -ge 30 ] || FILE_SECONDS=30
FILE="$PERF_CACHE/720p30-2500k-${FILE_SECONDS}s.flv"
if [ ! -s "$FILE" ]; then
	log "generating $FILE (${FILE_SECONDS}s, 720p30 H.264 2.4 Mbit/s + AAC 128 kbit/s)"
	timeout 1200 ffmpeg -hide_banner -loglevel error -y \
		-f lavfi -i testsrc2=size=1280x720:rate=30 \
		-f lavfi -i sine=frequency=440:sample_rate=48000 -t "$FILE_SECONDS" \
		-c:v libx264 -preset veryfast -b:v 2400k -maxrate 2400k -bufsize 4800k \
		-g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p \
		-c:a aac -b:a 128k -ac 2 -f flv "$FILE.tmp"
	mv "$FILE.tmp" "$FILE"
fi

NGINX_MODULE=""
if command -v nginx >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then
	NGINX_MODULE="$(dpkg -L libnginx-mod-rtmp 2>/dev/null | grep '/ngx_rtmp_module\.so$' | head -1 || true)"
fi

# --- helpers -------------------------------------------------------------------

# free_port prints a TCP port nothing listens on at 127.0.0.1, below the
# kernel's ephemeral range (so that no client connection holds it).
free_port() {
	local p low
	low="$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
	for _ in $(seq 100); do
		p=$((10000 + RANDOM % (low - 10000)))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	die "no free port"
}

# wait_port PORT PID: until something accepts on 127.0.0.1:PORT (10 s at
# most), failing at once if process PID exits.
wait_port() {
	local i
	for ((i = 0; i < 100; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# pids_of PID: PID and its direct children (nginx's workers).
pids_of() {
	echo "$1"
	pgrep -P "$1" 2>/dev/null || true
}

# cpu_ticks PID: utime+stime of PID and its children, in clock ticks.
cpu_ticks() {
	local total=0 p
	for p in $(pids_of "$1"); do
		[ -r "/proc/$p/stat" ] || continue
		# After the ")" that ends the command name, utime and stime are
		# the 12th and 13th fields.
		total=$((total + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
	done
	echo "$total"
}

# rss_kib PID: VmRSS of PID and its children, in KiB.
rss_kib() {
	local total=0 p v
	for p in $(pids_of "$1"); do
		v="$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)"
		total=$((total + ${v:-0}))
	done
	echo "$total"
}

now() { date +%s.%N; }

CLK_TCK="$(getconf CLK_TCK)"

# start_server NAME: starts it pinned to core 0 and sets SERVER_PID,
# RTMP_PORT, HTTP_PORT (0 if none), PPROF_PORT (0 if none).
start_server() {
	local name=$1 dir="$OUT/$1"
	mkdir -p "$dir"
	RTMP_PORT="$(free_port)"
	HTTP_PORT=0
	PPROF_PORT=0
	case "$name" in
	quasipaa | quasipaa-merge)
		HTTP_PORT="$(free_port)"
		PPROF_PORT="$(free_port)"
		local merge=0s
		[ "$name" = quasipaa-merge ] && merge=100ms
		env QUASIPAA_RTMP_LISTEN="127.0.0.1:$RTMP_PORT" \
			QUASIPAA_HTTP_LISTEN="127.0.0.1:$HTTP_PORT" \
			QUASIPAA_DEBUG_PPROF_LISTEN="127.0.0.1:$PPROF_PORT" \
			QUASIPAA_HUB_WRITE_MERGE="$merge" \
			QUASIPAA_STORAGE_DIR="$dir/data" \
			QUASIPAA_LOG_LEVEL=warn \
			taskset -c 0 "$BIN" serve >"$dir/server.log" 2>&1 &
		SERVER_PID=$!
		;;
	nginx-rtmp)
		cat >"$dir/nginx.conf" <<EOF
load_module $NGINX_MODULE;
worker_processes 1;
worker_rlimit_nofile 65536;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 65536; }
rtmp {
    server {
        listen 127.0.0.1:$RTMP_PORT;
        chunk_size 4096;
        application live { live on; }
    }
}
EOF
		taskset -c 0 nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;' >"$dir/server.log" 2>&1 &
		SERVER_PID=$!
		;;
	*) die "unknown server $name" ;;
	esac
	started "$SERVER_PID"
	wait_port "$RTMP_PORT" "$SERVER_PID" || {
		cat "$dir/server.log" >&2
		die "$name did not listen on 127.0.0.1:$RTMP_PORT"
	}
}

# run_one SERVER PROTOCOL: one measurement; appends a row to $OUT/results.tsv.
run_one() {
	local name=$1 proto=$2 dir="$OUT/$1" tag="$1-$2"
	log "== $name, $proto: $PLAYERS players for ${DURATION}s"
	start_server "$name"

	local pub_url="rtmp://127.0.0.1:$RTMP_PORT/live/perf" url
	case "$proto" in
	rtmp) url="$pub_url" ;;
	flv) url="http://127.0.0.1:$HTTP_PORT/live/perf.flv" ;;
	esac

	taskset -c 1 ffmpeg -hide_banner -loglevel error -nostdin -re -stream_loop -1 -i "$FILE" \
		-c copy -f flv "$pub_url" >"$dir/ffmpeg-$proto.log" 2>&1 &
	local ffmpeg_pid=$!
	started "$ffmpeg_pid"

	# Wait until one probe player gets video (15 tries of 2 s).
	local ok=0
	for _ in $(seq 15); do
		if taskset -c 1 "$BIN" bench -url "$url" -players 1 -duration 2s -ramp 0s -progress 0 >/dev/null 2>&1; then
			ok=1
			break
		fi
		kill -0 "$ffmpeg_pid" 2>/dev/null || break
	done
	if [ "$ok" != 1 ]; then
		log "stream never played; see $dir"
		stop "$ffmpeg_pid"
		stop "$SERVER_PID"
		printf '%s\t%s\tnot measured (stream never played)\n' "$name" "$proto" >>"$OUT/results.tsv"
		return
	fi

	taskset -c 1 "$BIN" bench -url "$url" -players "$PLAYERS" -duration "${DURATION}s" -ramp "${RAMP}s" \
		-progress 10s -json >"$OUT/$tag.json" 2>"$OUT/$tag.log" &
	local bench_pid=$!
	started "$bench_pid"

	sleep "$WARMUP"
	local t0 c0 b0
	t0="$(now)"
	c0="$(cpu_ticks "$SERVER_PID")"
	b0="$(cpu_ticks "$bench_pid")"

	local prof_pid=""
	if [ "$PPROF_PORT" != 0 ]; then
		curl -sS -m $((PROFILE_SECONDS + 15)) -o "$OUT/$tag.cpu.pprof" \
			"http://127.0.0.1:$PPROF_PORT/debug/pprof/profile?seconds=$PROFILE_SECONDS" 2>>"$OUT/$tag.log" &
		prof_pid=$!
		started "$prof_pid"
	fi

	sleep $((DURATION - WARMUP - 1))
	local t1 c1 b1 rss
	t1="$(now)"
	c1="$(cpu_ticks "$SERVER_PID")"
	b1="$(cpu_ticks "$bench_pid")"
	rss="$(rss_kib "$SERVER_PID")"

	# The bench stops by itself at DURATION; allow 30 s more.
	local i
	for ((i = 0; i < 300; i++)); do
		kill -0 "$bench_pid" 2>/dev/null || break
		sleep 0.1
	done
	stop "$bench_pid"
	if [ -n "$prof_pid" ]; then
		for ((i = 0; i < 300; i++)); do
			kill -0 "$prof_pid" 2>/dev/null || break
			sleep 0.1
		done
		stop "$prof_pid"
	fi
	stop "$ffmpeg_pid"
	stop "$SERVER_PID"

	if ! jq -e . "$OUT/$tag.json" >/dev/null 2>&1; then
		log "bench produced no summary; see $OUT/$tag.log"
		printf '%s\t%s\tnot measured (no bench summary)\n' "$name" "$proto" >>"$OUT/results.tsv"
		return
	fi
	local secs cpu bench_cpu
	secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')"
	cpu="$(awk -v c0="$c0" -v c1="$c1" -v hz="$CLK_TCK" -v s="$secs" 'BEGIN {print (c1 - c0) / hz / s * 100}')"
	bench_cpu="$(awk -v c0="$b0" -v c1="$b1" -v hz="$CLK_TCK" -v s="$secs" 'BEGIN {print (c1 - c0) / hz / s * 100}')"
	jq -r --arg server "$name" --arg proto "$proto" --arg cpu "$cpu" --arg rss "$rss" --arg bcpu "$bench_cpu" '
		(.mbit_per_s / 1000) as $gbps |
		[$server, $proto,
		 "\(.connected)/\(.failed)",
		 ($gbps * 1000 | round / 1000 | tostring),
		 ($cpu | tonumber * 10 | round / 10 | tostring),
		 (if $gbps > 0 then ($cpu | tonumber) / $gbps * 10 | round / 10 | tostring else "-" end),
		 ($rss | tonumber / 1024 | round | tostring),
		 (.startup_ms.p50 | tostring),
		 (.drop_percent * 100 | round / 100 | tostring),
		 ($bcpu | tonumber | round | tostring)] | @tsv' "$OUT/$tag.json" >>"$OUT/results.tsv"
	tail -n 12 "$OUT/$tag.log" | sed 's/^/    /' >&2
}

: >"$OUT/results.tsv"
for server in $SERVERS; do
	case "$server" in
	nginx-rtmp)
		if [ -z "$NGINX_MODULE" ] || [ ! -f "$NGINX_MODULE" ]; then
			log "skipping nginx-rtmp: nginx or libnginx-mod-rtmp is not installed"
			continue
		fi
		run_one "$server" rtmp
		;;
	quasipaa | quasipaa-merge)
		run_one "$server" rtmp
		run_one "$server" flv
		;;
	*) die "unknown server $server (want quasipaa, quasipaa-merge, nginx-rtmp)" ;;
	esac
done

echo
echo "$PLAYERS players × ${DURATION}s, one 2.5 Mbit/s 720p30 stream; server pinned to core 0, publisher and bench to core 1"
echo "(CPU: server utime+stime over the steady window, % of one core; RSS at the end; bench CPU: the load generator's own)"
echo
{
	printf 'server\tprotocol\tplayers ok/failed\tGbit/s\tserver CPU %%\tCPU %%/Gbit/s\tRSS MiB\tstartup p50 ms\tdrop %%\tbench CPU %%\n'
	cat "$OUT/results.tsv"
} | if command -v column >/dev/null 2>&1; then column -t -s $'\t'; else cat; fi
echo

for prof in "$OUT"/quasipaa-*.cpu.pprof; do
	[ -s "$prof" ] || continue
	echo "== CPU profile $(basename "$prof") (${PROFILE_SECONDS}s), top functions:"
	go tool pprof -top -nodecount=25 "$BIN" "$prof" 2>/dev/null | sed -n '1,32p' || true
	echo
done
if ! ls "$OUT"/quasipaa-*.cpu.pprof >/dev/null 2>&1; then
	echo "no CPU profile was captured (pprof endpoint unavailable)"
fi
echo "logs, JSON summaries and profiles: $OUT"
