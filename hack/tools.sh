#!/usr/bin/env bash
# tools.sh [NAME...]: installs or builds every external component bpfd's tests,
# benchmarks and demo use. Idempotent: a tool that is present at the pinned
# version is skipped, so a warm machine finishes in about a second.
#
#   apt      Debian packages: clang/llvm (bytecode), bpftool and xdp-tools (peers
#            in benchmarks, xdp-loader status), qemu + busybox + cpio + xz (kernel
#            VM), protobuf-compiler (make generate), iproute2, hyperfine,
#            libbpf-tools (bcc's CO-RE tools: unmodified third-party objects)
#   registry distribution's OCI registry        -> bin/tools/registry
#   oras     the oras CLI                        -> bin/tools/oras
#   cosign2  cosign v2                           -> bin/tools/cosign2
#   cosign3  cosign v3                           -> bin/tools/cosign3
#   k8s      etcd, kube-apiserver, kubectl       -> bin/k8s (hack/envtest-assets.sh)
#   vm       Debian's stock kernel + initramfs   -> bin/vm   (hack/vm/setup.sh)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=$ROOT/bin/tools
mkdir -p "$TOOLS"

REGISTRY_VERSION=v3.1.2
ORAS_VERSION=v1.3.6
COSIGN2_VERSION=v2.6.5
COSIGN3_VERSION=v3.1.3

APT_PACKAGES="clang llvm libbpf-dev bpftool xdp-tools qemu-system-x86 busybox-static cpio xz-utils libprotobuf-dev
protobuf-compiler iproute2 hyperfine libbpf-tools"

log() { printf 'tools: %s\n' "$*" >&2; }

apt_tools() {
	local missing=""
	for p in $APT_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" != 0 ]; then
		log "missing Debian packages:$missing (run as root to install them)"
		return 1
	fi
	log "apt-get install$missing"
	apt-get update -q >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null
}

# go_tool NAME PACKAGE VERSION VERSION_CMD: go install PACKAGE@VERSION as bin/tools/NAME
# unless bin/tools/NAME already reports VERSION.
go_tool() {
	local name=$1 pkg=$2 version=$3 vcmd=$4
	if [ -x "$TOOLS/$name" ] && "$TOOLS/$name" $vcmd 2>&1 | grep -q -- "${version#v}"; then
		return 0
	fi
	log "building $name $version (first time only: a few minutes)"
	local tmp
	tmp=$(mktemp -d)
	GOBIN=$tmp CGO_ENABLED=0 go install -trimpath -ldflags="-s -w" "$pkg@$version"
	mv "$tmp/$(basename "${pkg%/v[0-9]*}")" "$TOOLS/$name" 2>/dev/null || mv "$tmp"/* "$TOOLS/$name"
	rm -rf "$tmp"
}

registry() { go_tool registry github.com/distribution/distribution/v3/cmd/registry "$REGISTRY_VERSION" --version; }
oras() { go_tool oras oras.land/oras/cmd/oras "$ORAS_VERSION" version; }
cosign2() { go_tool cosign2 github.com/sigstore/cosign/v2/cmd/cosign "$COSIGN2_VERSION" version; }
cosign3() { go_tool cosign3 github.com/sigstore/cosign/v3/cmd/cosign "$COSIGN3_VERSION" version; }
k8s() { ASSETS=$ROOT/bin/k8s "$ROOT/hack/envtest-assets.sh"; }
vm() { "$ROOT/hack/vm/setup.sh" "$ROOT/bin/vm"; }
# libbpf_tools_vm: copies of libbpf-tools' binaries in bin/libbpf-tools, where
# the kernel VM (which has no /usr/sbin of the host) reads them; make test-vm
# points BPFD_LIBBPF_TOOLS there. Only their embedded objects are used.
libbpf_tools_vm() {
	apt_tools
	mkdir -p "$ROOT/bin/libbpf-tools"
	dpkg-query -L libbpf-tools | grep '^/usr/sbin/.' | while read -r f; do
		[ -f "$f" ] && cp -pu "$f" "$ROOT/bin/libbpf-tools/"
	done
}

all=(apt_tools registry oras cosign2 cosign3)
[ -x "$ROOT/hack/envtest-assets.sh" ] && all+=(k8s)
[ -x "$ROOT/hack/vm/setup.sh" ] && all+=(vm)
if [ $# -eq 0 ]; then set -- "${all[@]}"; fi
for t in "$@"; do
	case $t in apt) t=apt_tools ;; esac
	"$t"
done
