#!/usr/bin/env bash
# Regenerates the two Go modules that pin the control plane used by the tests.
#
#   tools/control-plane/update-go-modules.sh [KUBERNETES_VERSION] [ETCD_VERSION]
#
# k8s.io/kubernetes requires its staging modules (k8s.io/api, k8s.io/client-go, ...) at
# the unpublished version v0.0.0 and maps them to ./staging with replace lines. Go ignores
# replace lines of dependencies, so this module must repeat every one of them, pointing at
# the published v0.MINOR.PATCH release. The list is read from upstream's real go.mod, never
# hand-written, so a version bump cannot silently miss a new staging module.
set -euo pipefail

KUBERNETES_VERSION=${1:-1.36.3}
ETCD_VERSION=${2:-3.6.16}
STAGING_VERSION="v0.${KUBERNETES_VERSION#1.}"

export GOTOOLCHAIN=local CGO_ENABLED=0
here=$(cd "$(dirname "$0")" && pwd)

upstream_go_mod=$(cd "$(mktemp -d)" && go mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')

write_fresh_module() { # dir module-path
	rm -f "$1/go.mod" "$1/go.sum"
	(cd "$1" && go mod init "$2" >/dev/null 2>&1)
}

echo "kubernetes v$KUBERNETES_VERSION (staging $STAGING_VERSION)"
kube="$here/kubernetes"
write_fresh_module "$kube" cvm-operator.invalid/control-plane/kubernetes
(
	cd "$kube"
	go mod edit -go=1.26.0 -require="k8s.io/kubernetes@v$KUBERNETES_VERSION" \
		-tool=k8s.io/kubernetes/cmd/kube-apiserver -tool=k8s.io/kubernetes/cmd/kube-controller-manager \
		-tool=k8s.io/kubernetes/cmd/kubectl
	go mod edit -json "$upstream_go_mod" | python3 -c '
import json, sys
upstream = json.load(sys.stdin)
for r in upstream.get("Replace") or []:
    if r["New"]["Path"].startswith("./staging/"):
        print("REPLACE", r["Old"]["Path"])
for g in upstream.get("GoDebug") or []:
    if g["Key"] == "default":
        print("GODEBUG", g["Value"])
print("GO", upstream["Go"])' |
		while read -r kind value; do
			case $kind in
			REPLACE) go mod edit -replace="$value=$value@$STAGING_VERSION" ;;
			GODEBUG) go mod edit -godebug="default=$value" ;;
			GO) go mod edit -go="$value" ;;
			esac
		done
	go mod tidy
)

echo "etcd v$ETCD_VERSION"
etcd="$here/etcd"
write_fresh_module "$etcd" cvm-operator.invalid/control-plane/etcd
(
	cd "$etcd"
	go mod edit -go=1.26.0 -require="go.etcd.io/etcd/server/v3@v$ETCD_VERSION" -tool=go.etcd.io/etcd/server/v3
	go mod tidy
)
echo "done: commit tools/control-plane/*/go.mod and go.sum"
