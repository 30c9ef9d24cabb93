#!/usr/bin/env bash
# Builds the Kubernetes control plane the tests run against: kube-apiserver,
# kube-controller-manager and kubectl from k8s.io/kubernetes, etcd from
# go.etcd.io/etcd/server/v3, all from the Go modules pinned in tools/control-plane/*/go.mod
# (no Docker, no downloaded release binaries).
#
# The binaries go to a cache folder keyed by the versions and a hash of the go.mod/go.sum
# files, so a second run is a no-op. The last line printed is always the bin directory:
#
#   bin_dir=$(tools/build-control-plane.sh | tail -n1)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
modules="$repo/tools/control-plane"
cache_root="${CVM_OPERATOR_CACHE:-$HOME/.cache/cvm-operator}/control-plane"

export GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -mod=readonly"

log() { echo "build-control-plane: $*" >&2; }

module_version() { # module-dir module-path
	(cd "$1" && go mod edit -json) | python3 -c '
import json, sys
path = sys.argv[1]
print(next(r["Version"] for r in json.load(sys.stdin)["Require"] if r["Path"] == path))' "$2"
}

command -v go >/dev/null || {
	log "Go is not installed (need go >= 1.26)"
	exit 1
}

kubernetes_version=$(module_version "$modules/kubernetes" k8s.io/kubernetes)
etcd_version=$(module_version "$modules/etcd" go.etcd.io/etcd/server/v3)
inputs_hash=$(cat "$modules"/kubernetes/go.mod "$modules"/kubernetes/go.sum \
	"$modules"/etcd/go.mod "$modules"/etcd/go.sum "$0" | sha256sum | cut -c1-12)
dest="$cache_root/k8s-$kubernetes_version-etcd-$etcd_version-$inputs_hash"
bin="$dest/bin"

mkdir -p "$dest"
# Test binaries may call this script concurrently (cargo nextest); one builds, others wait.
exec 9>"$dest/.lock"
if ! flock -n 9; then
	log "waiting for another build of $dest"
	flock 9
fi

kubernetes_commands=(kube-apiserver kube-controller-manager kubectl)
all_built() {
	local binary
	for binary in "${kubernetes_commands[@]}" etcd; do
		[[ -x $bin/$binary ]] || return 1
	done
}

if all_built; then
	log "using cached control plane in $bin"
	echo "$bin"
	exit 0
fi

log "building kubernetes $kubernetes_version (${kubernetes_commands[*]}) and etcd $etcd_version"
log "with $(go version); the first build takes many minutes, later runs reuse $dest"
started=$SECONDS
staging="$dest/bin.partial"
rm -rf "$staging"
mkdir -p "$staging"

# Same version stamps as kubernetes' hack/lib/version.sh, so /version and `kubectl version`
# report the real release instead of v0.0.0-master.
minor=${kubernetes_version#v1.}
minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=$kubernetes_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
	ldflags+=" -X $pkg.gitTreeState=clean"
done

(
	cd "$modules/kubernetes"
	for cmd in "${kubernetes_commands[@]}"; do
		log "go build k8s.io/kubernetes/cmd/$cmd"
		go build -trimpath -ldflags "$ldflags" -o "$staging/$cmd" "k8s.io/kubernetes/cmd/$cmd"
	done
)
(
	cd "$modules/etcd"
	log "go build go.etcd.io/etcd/server/v3"
	go build -trimpath -ldflags "-s -w" -o "$staging/etcd" go.etcd.io/etcd/server/v3
)

# Publish atomically so an interrupted build never looks like a cached one.
rm -rf "$bin"
mv "$staging" "$bin"
log "built in $((SECONDS - started)) s: $("$bin/kube-apiserver" --version), $("$bin/etcd" --version | head -n1)"
echo "$bin"
