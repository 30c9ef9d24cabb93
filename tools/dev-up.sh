#!/usr/bin/env bash
# Starts everything locally for a person to try cvm-operator: a real kube-apiserver + etcd +
# kube-controller-manager (garbage collector, namespace and ServiceAccount controllers), the
# cvm-sim Tencent Cloud simulator and the operator, with crds/ and examples/ applied.
# Prints the `export KUBECONFIG=...` line, then runs until Ctrl-C and tears it all down.
#
#   tools/dev-up.sh                    # everything
#   tools/dev-up.sh --control-plane-only
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

control_plane_only=false
case "${1:-}" in
"") ;;
--control-plane-only) control_plane_only=true ;;
*)
	echo "usage: $0 [--control-plane-only]" >&2
	exit 2
	;;
esac

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/cvm-operator/target}
log() { echo "dev-up: $*" >&2; }

bin=$(tools/build-control-plane.sh | tail -n1)
base=/dev/shm
[[ -d $base && -w $base ]] || base=${TMPDIR:-/tmp}
work=$(mktemp -d "$base/cvm-operator-dev-XXXXXX")
pids=()
names=()

stop_process() { # pid: SIGTERM, then SIGKILL after 10 s
	local pid=$1 deadline=$((SECONDS + 10))
	kill "$pid" 2>/dev/null || return 0
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

shutdown() {
	trap - EXIT INT TERM
	log "stopping"
	# Newest first: the operator before the apiserver, the apiserver before etcd (an
	# apiserver that loses etcd first hangs in its graceful shutdown).
	local i
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_process "${pids[$i]}"; done
	rm -rf "$work"
	log "stopped, removed $work"
}
trap shutdown EXIT
trap 'exit 130' INT TERM

start() { # name command... (output to $work/<name>.log)
	local name=$1
	shift
	"$@" >"$work/$name.log" 2>&1 &
	pids+=($!)
	names+=("$name")
	log "started $name (pid $!, log $work/$name.log)"
}

fail_with_log() { # name message
	log "$2; last lines of $work/$1.log:"
	tail -n 40 "$work/$1.log" >&2 || true
	exit 1
}

alive() { # name: is the process started under that name still running?
	local i
	for i in "${!names[@]}"; do
		[[ ${names[$i]} == "$1" ]] && { kill -0 "${pids[$i]}" 2>/dev/null; return; }
	done
	return 0
}

wait_until() { # name seconds command...
	local name=$1 budget=$2
	local deadline=$((SECONDS + budget))
	shift 2
	until "$@" >/dev/null 2>&1; do
		alive "$name" || fail_with_log "$name" "$name exited"
		((SECONDS < deadline)) || fail_with_log "$name" "$name not ready after ${budget}s"
		sleep 0.2
	done
}

# --- certificates: one CA for serving and client certificates, an SA signing key ---
pki=$work/pki
mkdir -p "$pki"
(
	cd "$pki"
	ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
	openssl req -x509 "${ec[@]}" -days 7 -subj /CN=cvm-operator-dev-ca -keyout ca.key -out ca.crt
	openssl req "${ec[@]}" -subj /CN=localhost -keyout apiserver.key -out apiserver.csr
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >server.ext
	openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 -extfile server.ext -out apiserver.crt
	openssl req "${ec[@]}" -subj /O=system:masters/CN=admin -keyout admin.key -out admin.csr
	printf 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n' >client.ext
	openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 -extfile client.ext -out admin.crt
	openssl req "${ec[@]}" -subj /CN=system:kube-controller-manager -keyout controller-manager.key -out controller-manager.csr
	openssl x509 -req -in controller-manager.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 -extfile client.ext -out controller-manager.crt
	openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out sa.key
	openssl ec -in sa.key -pubout -out sa.pub
) 2>"$work/openssl.log" || fail_with_log openssl "generating certificates failed"

read -r etcd_port etcd_peer_port apiserver_port controller_manager_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
etcd_url=http://127.0.0.1:$etcd_port
server=https://127.0.0.1:$apiserver_port

# --- etcd, kube-apiserver, kube-controller-manager (same flags as the harness in tests/support) ---
start etcd "$bin/etcd" --name=default --data-dir="$work/etcd-data" \
	--listen-client-urls="$etcd_url" --advertise-client-urls="$etcd_url" \
	--listen-peer-urls="http://127.0.0.1:$etcd_peer_port" \
	--initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer_port" \
	--initial-cluster="default=http://127.0.0.1:$etcd_peer_port" \
	--unsafe-no-fsync=true --log-level=warn
wait_until etcd 60 curl -fsS "$etcd_url/health"

start kube-apiserver "$bin/kube-apiserver" --etcd-servers="$etcd_url" \
	--bind-address=127.0.0.1 --secure-port="$apiserver_port" --cert-dir="$work/apiserver-certs" \
	--tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
	--client-ca-file="$pki/ca.crt" --authorization-mode=RBAC \
	--service-account-issuer="$server" --service-account-key-file="$pki/sa.pub" \
	--service-account-signing-key-file="$pki/sa.key" \
	--service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true \
	--disable-admission-plugins=ServiceAccount
wait_until kube-apiserver 120 curl -fsS --cacert "$pki/ca.crt" "$server/readyz"

export KUBECONFIG=$work/admin.kubeconfig
kubectl=("$bin/kubectl")
"${kubectl[@]}" config set-cluster dev --server="$server" --certificate-authority="$pki/ca.crt" --embed-certs >/dev/null
"${kubectl[@]}" config set-credentials admin --client-certificate="$pki/admin.crt" --client-key="$pki/admin.key" --embed-certs >/dev/null
"${kubectl[@]}" config set-context dev --cluster=dev --user=admin >/dev/null
"${kubectl[@]}" config use-context dev >/dev/null
"${kubectl[@]}" get --raw /readyz >/dev/null

# With --use-service-account-credentials=false every controller acts as this one user, whose
# default ClusterRole may not delete: it gets the roles each controller has in a cluster.
for role in generic-garbage-collector namespace-controller service-account-controller; do
	"${kubectl[@]}" create clusterrolebinding "dev:$role" --clusterrole="system:controller:$role" \
		--user=system:kube-controller-manager >/dev/null
done
controller_manager_kubeconfig=$work/controller-manager.kubeconfig
KUBECONFIG=$controller_manager_kubeconfig "${kubectl[@]}" config set-cluster dev --server="$server" \
	--certificate-authority="$pki/ca.crt" --embed-certs >/dev/null
KUBECONFIG=$controller_manager_kubeconfig "${kubectl[@]}" config set-credentials controller-manager \
	--client-certificate="$pki/controller-manager.crt" --client-key="$pki/controller-manager.key" \
	--embed-certs >/dev/null
KUBECONFIG=$controller_manager_kubeconfig "${kubectl[@]}" config set-context dev --cluster=dev \
	--user=controller-manager >/dev/null
KUBECONFIG=$controller_manager_kubeconfig "${kubectl[@]}" config use-context dev >/dev/null
start kube-controller-manager "$bin/kube-controller-manager" \
	--kubeconfig="$controller_manager_kubeconfig" \
	--controllers=garbage-collector-controller,namespace-controller,serviceaccount-controller \
	--use-service-account-credentials=false --leader-elect=false \
	--bind-address=127.0.0.1 --secure-port="$controller_manager_port" \
	--cert-dir="$work/controller-manager-certs"
# Its serving certificate is self-signed (in --cert-dir); /healthz needs no credentials.
wait_until kube-controller-manager 60 curl -fsSk "https://127.0.0.1:$controller_manager_port/healthz"
log "control plane ready at $server"

if ! $control_plane_only; then
	log "building cvm-sim and cvm-operator (cargo build --workspace --bins)"
	cargo build --workspace --bins
	target=$CARGO_TARGET_DIR/debug

	start cvm-sim "$target/cvm-sim" --listen 127.0.0.1:0
	wait_until cvm-sim 30 grep -q '^CVM_SIM_ENDPOINT=' "$work/cvm-sim.log"
	sim_endpoint=$(sed -n 's/^CVM_SIM_ENDPOINT=//p' "$work/cvm-sim.log" | head -n1)
	log "cvm-sim listening at $sim_endpoint"

	"${kubectl[@]}" apply -k crds/
	"${kubectl[@]}" wait --for=condition=Established --timeout=60s crd/cvminstances.cvm-operator.io

	# The simulator accepts these well-formed fake credentials.
	start cvm-operator env KUBECONFIG="$KUBECONFIG" \
		TENCENTCLOUD_SECRET_ID=AKIDsimulator0000000000000000000000 \
		TENCENTCLOUD_SECRET_KEY=simulatorsecretkey000000000000000 \
		"$target/cvm-operator" run --endpoint "$sim_endpoint"
	"${kubectl[@]}" apply -f examples/
fi

cat <<MSG

Everything is running; logs are in $work. In another shell:

    export KUBECONFIG=$KUBECONFIG
    export PATH=$bin:\$PATH        # kubectl $("${kubectl[@]}" version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')
$(if ! $control_plane_only; then echo "    kubectl get cvm -A"; fi)

Press Ctrl-C to stop and remove everything.
MSG

# Run until Ctrl-C, or until one of the processes dies (then say which, with its log).
while true; do
	for i in "${!pids[@]}"; do
		if ! kill -0 "${pids[$i]}" 2>/dev/null; then
			fail_with_log "${names[$i]}" "${names[$i]} (pid ${pids[$i]}) exited"
		fi
	done
	sleep 1
done
