#!/usr/bin/env bash
# Builds tools/gitops-health (kstatus from sigs.k8s.io/cli-utils and Argo CD's Lua health
# engine, gopher-lua) from the Go modules pinned in its go.mod/go.sum.
#
# The binary goes to a cache folder keyed by the versions and a hash of the sources, so a
# second run is a no-op. The last line printed is always the binary's path:
#
#   gitops_health=$(tools/build-gitops-health.sh | tail -n1)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
module="$repo/tools/gitops-health"
cache_root="${CVM_OPERATOR_CACHE:-$HOME/.cache/cvm-operator}/gitops-health"

log() { echo "build-gitops-health: $*" >&2; }

command -v go >/dev/null || {
	log "Go is not installed (need go >= 1.26)"
	exit 1
}

required_version() { # module-path: its version in go.mod's require lines
	awk -v path="$1" '$1 == path { print $2; exit }' "$module/go.mod"
}

cli_utils=$(required_version sigs.k8s.io/cli-utils)
gopher_lua=$(required_version github.com/yuin/gopher-lua)
inputs_hash=$(cat "$module"/go.mod "$module"/go.sum "$module"/*.go "$0" | sha256sum | cut -c1-12)
dest="$cache_root/cli-utils-$cli_utils-gopher-lua-$gopher_lua-$inputs_hash"
binary="$dest/gitops-health"

mkdir -p "$dest"
# Test binaries may call this script concurrently; one builds, others wait.
exec 9>"$dest/.lock"
flock 9

if [[ -x $binary ]]; then
	log "using cached $binary"
	echo "$binary"
	exit 0
fi

log "building gitops-health (cli-utils $cli_utils, gopher-lua $gopher_lua) with $(GOTOOLCHAIN=local go version)"
started=$SECONDS
(cd "$module" && GOTOOLCHAIN=local CGO_ENABLED=0 \
	go build -mod=readonly -trimpath -ldflags "-s -w" -o "$binary.partial" .)
# Publish atomically so an interrupted build never looks like a cached one.
mv "$binary.partial" "$binary"
log "built in $((SECONDS - started)) s"
echo "$binary"
