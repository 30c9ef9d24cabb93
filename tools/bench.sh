#!/usr/bin/env bash
# Scale benchmark (docs/performance.md): the real control plane, cvm-sim at Tencent's rate
# limits and the release-built operator as its own process.
#
#   tools/bench.sh                  # N = 100 and 1000, batching on and off, plus 10,000 for memory
#   tools/bench.sh 100              # only N = 100, both modes
#   tools/bench.sh 1000 --batching on --periods 6 --operator-arg=--concurrency=32
#   tools/bench.sh 600 --batching on --billing payg,mixed   # half spot: per-charge-type terminations
#
# Results: printed, and written to target/bench/scale-<unix time>.md.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${CVM_OPERATOR_CONTROL_PLANE_BIN:-}" ]]; then
    # Builds kube-apiserver, etcd and kubectl once; later runs only print the cached path.
    CVM_OPERATOR_CONTROL_PLANE_BIN="$(tools/build-control-plane.sh | tail -n 1)"
    export CVM_OPERATOR_CONTROL_PLANE_BIN
fi

if [[ $# -eq 0 ]]; then
    set -- 100 1000 --big 10000
fi
# cvm-sim is a crate of its own: cargo builds its binary only when asked, in the bench
# profile's directory (target/release), where the benchmark looks for it.
nice cargo build --release --locked -p cvm-sim --bin cvm-sim
exec nice cargo bench --bench scale -- "$@"
