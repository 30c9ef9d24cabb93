#!/usr/bin/env bash
# Builds the pod-sandbox ("pause") image the container-runtime tests give containerd, as a
# docker-archive named $NAME (default registry.k8s.io/pause:3.10, containerd's default
# sandbox image): tools/image/pause.c, static, user 65535, on an empty base.
#
#   tools/image/build-pause-image.sh OUT.tar [NAME]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
out=$1 name=${2:-registry.k8s.io/pause:3.10}
crane="$(tools/build-go-tools.sh | tail -n1)/crane"

work=$(mktemp -d)
# shellcheck source=loopback-registry.sh
. tools/image/loopback-registry.sh
trap 'registry_stop; rm -rf "$work"' EXIT

mkdir -p "$work/rootfs"
cc -Os -static -o "$work/rootfs/pause" tools/image/pause.c
SOURCE_DATE_EPOCH=0 python3 tools/image/layer.py "$work/rootfs" "$work/layer.tar"
registry_start "$crane" "$work"
ref="$registry/pause:build"
"$crane" append --insecure --oci-empty-base --platform linux/amd64 -f "$work/layer.tar" -t "$ref" >/dev/null
"$crane" mutate --insecure "$ref" -t "$ref" --set-platform linux/amd64 \
	--entrypoint /pause --user 65535:65535 >/dev/null
"$crane" pull --insecure --format=tarball "$ref" "$work/pause.tar"
python3 tools/image/retag-archive.py "$work/pause.tar" "$out" "$name"
echo "$out"
