# syntax=docker/dockerfile:1
#
# cvm-operator: a static (musl) binary on a distroless base, running as non-root 65532.
#   docker build -t ghcr.io/cvm-operator/cvm-operator:0.1.0 .
# Only the operator is built; cvm-sim is a test tool and stays out of the image.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
# ring compiles C and assembly: the musl target needs musl-gcc.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The cache mounts keep the registry and compiled dependencies between builds; the binary is
# copied out because the target directory is not part of the image layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target x86_64-unknown-linux-musl --bin cvm-operator \
 && cp target/x86_64-unknown-linux-musl/release/cvm-operator /cvm-operator

# No shell, no package manager, CA certificates for the Tencent Cloud endpoints included.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /cvm-operator /cvm-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/cvm-operator"]
CMD ["run", "--leader-election"]
