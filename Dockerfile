# syntax=docker/dockerfile:1
#
# cvm-operator's image for people who build with Docker and can reach Docker Hub: the same
# image as tools/build-image.sh (the files of tools/image/rootfs.sh on an empty base, the
# same static glibc binary, CA bundle pin, user 65532, entrypoint, env and labels).
#
#   docker build --build-arg REVISION=$(git rev-parse HEAD) -t ghcr.io/cvm-operator/cvm-operator:0.1.0 .
#
# CI proves tools/build-image.sh, not this file: tests/packaging builds that image twice
# (same digest), runs it under containerd and checks this file against it (pins, user,
# entrypoint); this file itself is not built there (no Docker daemon, no registry access).

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The workspace's member crates: cargo reads every member's manifest; the operator links
# tencent-cloud, and cvm-sim (a dev-dependency) is not compiled for --bin cvm-operator.
COPY crates ./crates
COPY benches ./benches
# glibc static-pie: no musl target needed. RUSTFLAGS with an explicit --target so that build
# scripts and proc-macros stay dynamic. The cache mounts keep the registry and compiled
# dependencies between builds; the binary is copied out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    RUSTFLAGS='-C target-feature=+crt-static --remap-path-prefix=/usr/local/cargo=/cargo' \
    cargo build --release --locked --target x86_64-unknown-linux-gnu --bin cvm-operator \
 && cp target/x86_64-unknown-linux-gnu/release/cvm-operator /cvm-operator

FROM debian:bookworm AS rootfs
ARG CA_CERTIFICATES_VERSION=20250419~deb12u2
ARG CA_CERTIFICATES_SHA256=b9f76b5271a7ac373fd5e7e1b5b826a71ddd702b42a0d104955ecb1acfffc94b
COPY tools/image/rootfs.sh /usr/local/bin/rootfs.sh
COPY --from=build /cvm-operator /cvm-operator
RUN apt-get update \
 && cd /tmp && apt-get download "ca-certificates=${CA_CERTIFICATES_VERSION}" \
 && echo "${CA_CERTIFICATES_SHA256}  ca-certificates_${CA_CERTIFICATES_VERSION}_all.deb" | sha256sum -c \
 && rootfs.sh /rootfs /cvm-operator "/tmp/ca-certificates_${CA_CERTIFICATES_VERSION}_all.deb" \
 && chown 65532:65532 /rootfs/home/nonroot

FROM scratch
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CA_CERTIFICATES_VERSION=20250419~deb12u2
COPY --from=rootfs /rootfs/ /
LABEL org.opencontainers.image.title=cvm-operator \
      org.opencontainers.image.source=https://github.com/cvm-operator/cvm-operator \
      org.opencontainers.image.revision=${REVISION} \
      org.opencontainers.image.version=${VERSION} \
      org.opencontainers.image.licenses=Apache-2.0 \
      io.cvm-operator.ca-certificates.version=${CA_CERTIFICATES_VERSION}
ENV PATH=/
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /
EXPOSE 8080
ENTRYPOINT ["/cvm-operator"]
CMD ["run", "--leader-election"]
