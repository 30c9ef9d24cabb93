#!/usr/bin/env bash
# Builds the cvm-operator container image without a daemon and without any registry:
# a static binary (glibc static-pie, see docs/operations.md), the files of
# tools/image/rootfs.sh in one layer on an empty base, and the image config (user 65532,
# entrypoint, labels). The same sources give the same digest, wherever and whenever they
# are built (a test builds it twice, in two directories).
#
#   tools/build-image.sh [OUT_DIR]        (default: $CARGO_TARGET_DIR/image)
#
# OUT_DIR/oci/           an OCI image layout (skopeo copy oci:OUT_DIR/oci ..., crane push)
# OUT_DIR/image.tar      a docker-archive tagged $IMAGE (docker/podman load, ctr images import)
# OUT_DIR/digest         the manifest digest, also printed as the last line
#
# Tools: crane, built from the Go module proxy by tools/build-go-tools.sh (cached), and the
# ca-certificates .deb pinned in tools/image/ca-certificates.env, fetched with
# `apt-get download` and cached in ~/.cache/cvm-operator/debs. The image's only name
# appears in image.tar; the OCI layout is untagged so that any registry path can be used.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
cache="${CVM_OPERATOR_CACHE:-$HOME/.cache/cvm-operator}"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
out=${1:-$CARGO_TARGET_DIR/image}
log() { echo "build-image: $*" >&2; }

# One place for the version: Cargo.toml. The chart, deploy/ and the image labels follow it
# (tests/packaging checks that they agree).
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
source_url=$(sed -n 's/^repository = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
revision=${CVM_OPERATOR_REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
image=${IMAGE:-ghcr.io/cvm-operator/cvm-operator:$version}
# shellcheck source=image/ca-certificates.env
. tools/image/ca-certificates.env

crane="$(tools/build-go-tools.sh | tail -n1)/crane"

# 1. The static binary. RUSTFLAGS go in the environment, not .cargo/config.toml, and only
#    with an explicit --target: build scripts and proc-macros are then built for the host
#    without crt-static (proc-macros cannot be static). The cargo home is remapped so that
#    the paths of dependency sources compiled into panic messages do not depend on it.
#    Run from `cargo test` (tests/packaging), this script inherits what cargo sets for test
#    binaries (CARGO_MANIFEST_DIR, CARGO_PKG_*, OUT_DIR...). Build scripts such as ring's
#    declare rerun-if-env-changed on some of them, so half the dependencies would be rebuilt
#    each time the script alternates between tools/test.sh and a test: drop them.
for var in $(compgen -e); do
	case $var in
	CARGO_PKG_* | CARGO_MANIFEST_* | CARGO_BIN_* | CARGO_CRATE_NAME | CARGO_PRIMARY_PACKAGE | \
		CARGO_TARGET_TMPDIR | CARGO_RUSTC_CURRENT_DIR | OUT_DIR | SOURCE_DATE_EPOCH) unset "$var" ;;
	esac
done
target=x86_64-unknown-linux-gnu
log "cargo build --release --target $target (static)"
RUSTFLAGS="-C target-feature=+crt-static --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo" \
	cargo build --release --locked --target "$target" --bin cvm-operator
binary="$CARGO_TARGET_DIR/$target/release/cvm-operator"
if ! file "$binary" | grep -q 'static-pie linked\|statically linked'; then
	log "$binary is not statically linked: $(file -b "$binary")"
	exit 1
fi

# 2. The CA bundle's package, checked against its pinned sha256.
debs="$cache/debs"
deb="$debs/ca-certificates_${CA_CERTIFICATES_VERSION}_all.deb"
mkdir -p "$debs"
if [[ ! -f $deb ]]; then
	log "apt-get download ca-certificates=$CA_CERTIFICATES_VERSION"
	# A fresh machine may have no package lists yet: fetch them once (as root) and retry.
	(cd "$debs" && { apt-get download -q "ca-certificates=$CA_CERTIFICATES_VERSION" >&2 ||
		{ [[ $(id -u) == 0 ]] && apt-get update -q >&2 &&
			apt-get download -q "ca-certificates=$CA_CERTIFICATES_VERSION" >&2; }; }) || {
		log "ca-certificates $CA_CERTIFICATES_VERSION is not in the apt archive (run apt-get update;"
		log "if Debian replaced it, bump tools/image/ca-certificates.env and the Dockerfile)"
		exit 1
	}
fi
if ! echo "$CA_CERTIFICATES_SHA256  $deb" | sha256sum --check --quiet; then
	log "$deb does not match the sha256 pinned in tools/image/ca-certificates.env"
	exit 1
fi

work=$(mktemp -d)
# shellcheck source=image/loopback-registry.sh
. tools/image/loopback-registry.sh
trap 'registry_stop; rm -rf "$work"' EXIT

# 3. The layer: sorted, fixed mtimes and owners, so its bytes depend only on the files.
tools/image/rootfs.sh "$work/rootfs" "$binary" "$deb"
SOURCE_DATE_EPOCH=0 python3 tools/image/layer.py "$work/rootfs" "$work/layer.tar" \
	--owned-by-nonroot home/nonroot

# 4. The image, assembled in a registry private to this script.
registry_start "$crane" "$work"
ref="$registry/cvm-operator:build"
"$crane" append --insecure --oci-empty-base --platform linux/amd64 -f "$work/layer.tar" -t "$ref" >/dev/null
"$crane" mutate --insecure "$ref" -t "$ref" --set-platform linux/amd64 \
	--entrypoint /cvm-operator --cmd run,--leader-election \
	--user 65532:65532 --workdir / --exposed-ports 8080/tcp \
	--env PATH=/ --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
	--label "org.opencontainers.image.title=cvm-operator" \
	--label "org.opencontainers.image.source=$source_url" \
	--label "org.opencontainers.image.revision=$revision" \
	--label "org.opencontainers.image.version=$version" \
	--label "org.opencontainers.image.licenses=Apache-2.0" \
	--label "io.cvm-operator.ca-certificates.version=$CA_CERTIFICATES_VERSION" >/dev/null
digest=$("$crane" digest --insecure "$ref")

rm -rf "$out/oci" "$out/image.tar" "$out/digest"
mkdir -p "$out"
"$crane" pull --insecure --format=oci "$ref" "$out/oci"
"$crane" pull --insecure --format=tarball "$ref" "$work/image.tar"
# crane names the archive after the loopback registry: give it the image's real name.
python3 tools/image/retag-archive.py "$work/image.tar" "$out/image.tar" "$image"
echo "$digest" >"$out/digest"
log "$image $digest: $(du -sb "$out/oci" | cut -f1) bytes in $out/oci"
echo "$digest"
