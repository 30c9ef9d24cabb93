#!/usr/bin/env bash
# Writes a second the API server takes for a set child's writes, with a given CRD.
#
#   tools/write-throughput/run.sh                       # the committed crds/cvminstances...yaml
#   tools/write-throughput/run.sh /tmp/variant.json     # a variant of it (e.g. rules removed)
#
# Starts its own control plane (tools/dev-up.sh --control-plane-only), creates 2,000
# CvmInstances, then sends three rounds of status PATCHes, the DELETEs and the finalizer
# removals, 32 in flight, and prints each phase's rate. Stops the control plane on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
crd=${1:-$root/crds/cvminstances.cvm-operator.io.yaml}
work=$(mktemp -d)
log=$work/dev-up.log
dev_up=""
cleanup() {
	[[ -n $dev_up ]] && kill -TERM "$dev_up" 2>/dev/null && wait "$dev_up" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

(cd "$here" && go build -o "$work/write-throughput" .)
"$root/tools/dev-up.sh" --control-plane-only >"$log" 2>&1 &
dev_up=$!
for _ in $(seq 1 300); do
	grep -q "export KUBECONFIG=" "$log" && break
	kill -0 "$dev_up" 2>/dev/null || { cat "$log" >&2; exit 1; }
	sleep 1
done
eval "$(grep -o 'export KUBECONFIG=[^ ]*' "$log" | head -n 1)"
eval "$(grep -o 'export PATH=[^ ]*' "$log" | head -n 1)"
kubectl apply -f "$crd" >/dev/null
kubectl wait --for=condition=Established --timeout=60s crd/cvminstances.cvm-operator.io >/dev/null
view() { kubectl config view --raw -o jsonpath="$1"; }
view '{.users[0].user.client-certificate-data}' | base64 -d >"$work/client.crt"
view '{.users[0].user.client-key-data}' | base64 -d >"$work/client.key"
view '{.clusters[0].cluster.certificate-authority-data}' | base64 -d >"$work/ca.crt"
cd "$here"
run() {
	"$work/write-throughput" -server "$(view '{.clusters[0].cluster.server}')" \
		-ca "$work/ca.crt" -cert "$work/client.crt" -key "$work/client.key" "$@"
}
run -mode create
for round in 1 2 3; do run -mode status -round "$round"; done
run -mode delete
run -mode finalizer
