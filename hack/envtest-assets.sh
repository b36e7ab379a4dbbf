#!/usr/bin/env bash
# envtest-assets.sh: builds etcd and Kubernetes' kube-apiserver and kubectl
# from the Go module proxy into $ASSETS (default bin/k8s) for envtest
# (KUBEBUILDER_ASSETS). Idempotent: binaries already at the pinned versions are
# kept. The first build takes 10-15 minutes on two cores.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-1.37.2} # controller-runtime v0.25 speaks k8s.io v0.37
ETCD_VERSION=${ETCD_VERSION:-3.6.16}
ASSETS=$(mkdir -p "${ASSETS:-bin/k8s}" && cd "${ASSETS:-bin/k8s}" && pwd)
WORK=$ASSETS/.build
export CGO_ENABLED=0 GOWORK=off GOTOOLCHAIN=local GOFLAGS=

reports() { "$ASSETS/$1" "${@:2}" 2>/dev/null | grep -q -- "$VERSION_RE"; }

VERSION_RE="Version: $ETCD_VERSION\$"
if ! reports etcd --version; then
	echo "envtest-assets: building etcd $ETCD_VERSION (first time only)" >&2
	mkdir -p "$WORK/etcd" && cd "$WORK/etcd"
	[ -f go.mod ] || go mod init envtest-assets/etcd >/dev/null 2>&1
	go mod edit -require=go.etcd.io/etcd/server/v3@v$ETCD_VERSION -tool=go.etcd.io/etcd/server/v3
	go mod tidy
	go build -trimpath -ldflags "-s -w" -o "$ASSETS/etcd" go.etcd.io/etcd/server/v3
fi

need=""
VERSION_RE="Kubernetes v$K8S_VERSION\$"
reports kube-apiserver --version || need="$need kube-apiserver"
VERSION_RE="Client Version: v$K8S_VERSION\$"
reports kubectl version --client || need="$need kubectl"
if [ -n "$need" ]; then
	echo "envtest-assets: building$need $K8S_VERSION (first time only)" >&2
	mkdir -p "$WORK/k8s" && cd "$WORK/k8s"
	[ -f go.mod ] || go mod init envtest-assets/k8s >/dev/null 2>&1
	# k8s.io/kubernetes replaces its k8s.io/* staging modules with local
	# directories; pin each to its published v0.MINOR.PATCH instead.
	upstream=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
	edits=(-require=k8s.io/kubernetes@v$K8S_VERSION -go="$(awk '$1=="go"{print $2; exit}' "$upstream")")
	godebug=$(awk '$1=="godebug" && $2!="("{print $2; exit}' "$upstream")
	[ -n "$godebug" ] && edits+=(-godebug="$godebug")
	for m in $(awk '/=> \.\/staging\//{print $1}' "$upstream"); do
		grep -qE "^[[:space:]]+$m v0\.0\.0" "$upstream" && edits+=(-replace="$m=$m@v0.${K8S_VERSION#1.}")
	done
	for c in kube-apiserver kubectl; do edits+=(-tool=k8s.io/kubernetes/cmd/$c); done
	go mod edit "${edits[@]}"
	go mod tidy
	minor=$(echo "$K8S_VERSION" | cut -d. -f2)
	ldflags="-s -w"
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags="$ldflags -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
	done
	for c in $need; do
		go build -trimpath -ldflags "$ldflags" -o "$ASSETS/$c" "k8s.io/kubernetes/cmd/$c"
	done
fi
