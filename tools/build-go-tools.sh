#!/usr/bin/env bash
# Builds the packaging tools the image and chart tests use, from the Go module proxy (no
# downloaded release binaries): crane (OCI images without a daemon), crictl (drives
# containerd through the CRI, the calls a kubelet makes) and helm.
#
# Each tool is pinned below by module version; `go install module@version` checks the
# module against the Go checksum database. Binaries are cached in
# ~/.cache/cvm-operator/tools/<tool>-<version>/, so a second run is a no-op.
# The last line printed is the directory holding all three (symlinks to the cached builds):
#
#   tools_bin=$(tools/build-go-tools.sh | tail -n1)
set -euo pipefail

# tool  module/package@version  version stamp (-ldflags -X), so `--version` tells the truth
tools=(
	"crane github.com/google/go-containerregistry/cmd/crane@v0.22.1 -"
	"crictl sigs.k8s.io/cri-tools/cmd/crictl@v1.37.0 sigs.k8s.io/cri-tools/pkg/version.Version=v1.37.0"
	"helm helm.sh/helm/v4/cmd/helm@v4.3.1 helm.sh/helm/v4/internal/version.version=v4.3.1"
)

cache_root="${CVM_OPERATOR_CACHE:-$HOME/.cache/cvm-operator}/tools"
export GOTOOLCHAIN=local CGO_ENABLED=0

log() { echo "build-go-tools: $*" >&2; }

command -v go >/dev/null || {
	log "Go is not installed (need go >= 1.26)"
	exit 1
}

script_hash=$(sha256sum "$0" | cut -c1-12)
links="$cache_root/bin-$script_hash"
mkdir -p "$cache_root" "$links"
for entry in "${tools[@]}"; do
	read -r name package stamp <<<"$entry"
	version=${package##*@}
	dest="$cache_root/$name-$version"
	mkdir -p "$dest"
	# Test binaries and several checkouts may call this concurrently: one builds, others wait.
	exec 9>"$dest/.lock"
	flock 9
	if [[ ! -x $dest/bin/$name ]]; then
		log "go install $package (first run only)"
		started=$SECONDS
		ldflags="-s -w"
		[[ $stamp == - ]] || ldflags+=" -X $stamp"
		rm -rf "$dest/bin.partial"
		GOBIN="$dest/bin.partial" go install -trimpath -ldflags "$ldflags" "$package"
		# Publish atomically so an interrupted build never looks like a cached one.
		mv "$dest/bin.partial" "$dest/bin"
		log "built $name $version in $((SECONDS - started)) s"
	fi
	exec 9>&-
	ln -sfn "$dest/bin/$name" "$links/$name"
done
echo "$links"
