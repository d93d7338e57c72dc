#!/usr/bin/env bash
# Installs what the test suite needs, only when it is missing. Safe to run again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Go itself: use /usr/local/go when it is installed but not on PATH.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH="/usr/local/go/bin:$PATH"
fi
if ! command -v go >/dev/null 2>&1; then
	echo "deps: Go is not installed; get it from https://go.dev/dl/ (version in go.mod)" >&2
	exit 1
fi

# command → Debian package providing it. Add rows here as tests need more tools.
declare -A need=(
	[ffmpeg]=ffmpeg
	[ffprobe]=ffmpeg
	[chromium]=chromium
	[turnutils_uclient]=coturn
	[chromedriver]=chromium-driver
	[redis-server]=redis-server
	[prometheus]=prometheus
)

missing=()
for cmd in "${!need[@]}"; do
	if ! command -v "$cmd" >/dev/null 2>&1; then
		missing+=("${need[$cmd]}")
	fi
done

if [ "${#missing[@]}" -gt 0 ]; then
	# Unique package names.
	mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "deps: missing ${pkgs[*]} and apt-get is not available; install them by hand" >&2
		exit 1
	fi
	sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		sudo=(sudo)
	fi
	echo "deps: installing ${pkgs[*]}"
	"${sudo[@]}" apt-get update
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${pkgs[@]}"
fi

go mod download

# versitygw: the real S3 server the storage tests run (internal/storage/storagetest).
# Pinned; installed into $(go env GOPATH)/bin, where the tests also look for it.
VERSITYGW_VERSION=v1.8.0
gobin="$(go env GOPATH | cut -d: -f1)/bin"
if ! command -v versitygw >/dev/null 2>&1 && [ ! -x "$gobin/versitygw" ]; then
	echo "deps: installing versitygw $VERSITYGW_VERSION into $gobin"
	go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
fi
