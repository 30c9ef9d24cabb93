#!/bin/sh
# Lays out the image's root filesystem in ROOT: the static operator binary, Mozilla's CA
# roots from the ca-certificates .deb, passwd/group for the non-root user 65532 and an
# nsswitch.conf. Shared by tools/build-image.sh and the Dockerfile so both images hold the
# same files. POSIX sh: it also runs in the Dockerfile's Debian stage.
#
#   tools/image/rootfs.sh ROOT BINARY CA_CERTIFICATES_DEB
set -eu
root=$1 binary=$2 deb=$3

rm -rf "$root"
mkdir -p "$root/etc/ssl/certs" "$root/tmp" "$root/home/nonroot"
cp "$binary" "$root/cvm-operator"
chmod 0755 "$root/cvm-operator"

# Only the Mozilla roots from the pinned package, concatenated in a fixed order. Never the
# build machine's /etc/ssl/certs bundle: it may hold local or corporate CAs.
unpacked=$(mktemp -d)
dpkg-deb -x "$deb" "$unpacked"
LC_ALL=C find "$unpacked/usr/share/ca-certificates/mozilla" -name '*.crt' | LC_ALL=C sort |
	while read -r crt; do cat "$crt"; done >"$root/etc/ssl/certs/ca-certificates.crt"
rm -rf "$unpacked"
chmod 0644 "$root/etc/ssl/certs/ca-certificates.crt"

# uid/gid 65532 "nonroot", as distroless names it, so that tools showing user names agree.
cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
GROUP
# glibc's static getaddrinfo has only the files and dns modules built in: name them, so that
# /etc/hosts (hostAliases) wins over DNS and nothing tries to dlopen another module.
echo 'hosts: files dns' >"$root/etc/nsswitch.conf"
chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/nsswitch.conf"
chmod 1777 "$root/tmp"
chmod 0700 "$root/home/nonroot"
