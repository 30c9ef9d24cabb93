#!/usr/bin/env bash
# Runs every test of cvm-operator: formatting, lints, unit tests, the simulator tests, the
# end-to-end tests against a real kube-apiserver + etcd, and the packaging tests (the
# image, run under containerd; the Helm chart). Fails on the first failure.
#
#   tools/test.sh
#
# The control plane, tools/gitops-health and the packaging tools (crane, crictl, helm) are
# built from Go modules on the first run (many minutes), containerd and runc come from
# Debian's packages, and all are cached in ~/.cache/cvm-operator; so is the cargo target
# directory unless CARGO_TARGET_DIR is set. The test binaries would build or fetch the
# packaging tools too; the steps below do it first so that their time is reported on its own.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/cvm-operator/target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-auto}

timings=()
step() { # name command...
	local name=$1 started=$SECONDS
	shift
	echo "==> $name" >&2
	local status=0
	"$@" || status=$?
	timings+=("$(printf '%-28s %5ds%s' "$name" $((SECONDS - started)) "$( ((status)) && echo '  FAILED')")")
	return "$status"
}
report_timings() {
	local status=$?
	echo "==> timings" >&2
	printf '    %s\n' "${timings[@]}" >&2
	if ((status == 0)); then echo "==> all tests passed" >&2; else echo "==> FAILED (exit $status)" >&2; fi
}
trap report_timings EXIT

ensure_rust_components() {
	local missing=()
	cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
	cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
	if ((${#missing[@]})); then
		rustup component add "${missing[@]}"
	fi
}

# Runs a tools/build-*.sh script (cached builds from Go modules) and exports the path it
# prints last as VAR, where the test binaries look for it.
build_tool() { # VAR script
	local built
	# step() runs this in a `||` context, where set -e is off: check explicitly.
	built=$("$2" | tail -n1) || return 1
	export "$1=$built"
	echo "    $1=$built" >&2
}

step "rust components" ensure_rust_components
step "control plane build" build_tool CVM_OPERATOR_CONTROL_PLANE_BIN tools/build-control-plane.sh
step "gitops-health build" build_tool CVM_OPERATOR_GITOPS_HEALTH tools/build-gitops-health.sh
step "packaging tools build" tools/build-go-tools.sh
step "containerd + runc (Debian)" tools/fetch-container-runtime.sh
step "image build" tools/build-image.sh
step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --workspace --all-targets --locked -- -D warnings
# --workspace: the operator, tencent-cloud and cvm-sim; the simulator's tests make cargo build
# the cvm-sim binary, which the operator's end-to-end tests start.
step "cargo test" cargo test --workspace --locked --lib --bins --tests
