#!/usr/bin/env bash
# Fetches the container runtime the image tests run the operator under: containerd (with its
# runc shim and ctr) and runc, from Debian's own packages, pinned by version and sha256.
#
# The packages are unpacked into ~/.cache/cvm-operator/container-runtime/... rather than
# installed with `apt-get install`: that would register a machine-wide containerd.service
# (started at once where systemd runs) and change the package database, and the tests run
# their own containerd with private directories anyway. The last line printed is the
# directory holding containerd, containerd-shim-runc-v2, ctr and runc:
#
#   runtime_bin=$(tools/fetch-container-runtime.sh | tail -n1)
set -euo pipefail

# package version sha256 (of the .deb in Debian 12's archive)
packages=(
	"containerd 1.6.20~ds1-1+deb12u3 8669d264eeb0fcdb4a0b1ba436ab88ec5dafde4a66e1278ec279d830db4c2216"
	"runc 1.1.5+ds1-1+deb12u1 a00351f8c0318de0b424ecf5cd0fdb69880a89f3511cae4f6fff7de3e57881c5"
)

cache_root="${CVM_OPERATOR_CACHE:-$HOME/.cache/cvm-operator}/container-runtime"
log() { echo "fetch-container-runtime: $*" >&2; }

key=$(printf '%s\n' "${packages[@]}" | sha256sum | cut -c1-12)
dest="$cache_root/$key"
mkdir -p "$dest"
exec 9>"$dest/.lock"
flock 9
if [[ -x $dest/bin/containerd && -x $dest/bin/runc ]]; then
	echo "$dest/bin"
	exit 0
fi

staging="$dest/staging"
rm -rf "$staging"
mkdir -p "$staging/debs" "$staging/root" "$staging/bin"
for entry in "${packages[@]}"; do
	read -r name version sha256 <<<"$entry"
	log "apt-get download $name=$version"
	# A fresh machine may have no package lists yet: fetch them once (as root) and retry.
	(cd "$staging/debs" && { apt-get download -q "$name=$version" >&2 ||
		{ [[ $(id -u) == 0 ]] && apt-get update -q >&2 && apt-get download -q "$name=$version" >&2; }; }) || {
		log "$name $version is not in the apt archive (apt-get update; or bump it in $0)"
		exit 1
	}
	deb=$(echo "$staging/debs/${name}_"*.deb)
	echo "$sha256  $deb" | sha256sum --check --quiet || {
		log "$deb does not match the pinned sha256"
		exit 1
	}
	dpkg-deb -x "$deb" "$staging/root"
done
for tool in containerd containerd-shim-runc-v2 ctr; do
	ln -s ../root/usr/bin/$tool "$staging/bin/$tool"
done
ln -s ../root/usr/sbin/runc "$staging/bin/runc"
rm -rf "$staging/debs" "$dest/root" "$dest/bin"
mv "$staging/root" "$dest/root"
mv "$staging/bin" "$dest/bin"
rmdir "$staging"
log "containerd and runc in $dest/bin"
echo "$dest/bin"
