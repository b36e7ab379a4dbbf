#!/bin/sh
# setup.sh DIR: prepares the kernel test VM in DIR (bin/vm from hack/tools.sh):
#   DIR/vmlinux            Debian 12's current stock 6.1 kernel, uncompressed
#   DIR/initramfs.cpio.gz  busybox, hack/vm/init and the modules the tests need
#   DIR/kernel             the kernel package name and version it was built from
# Idempotent: when DIR/stamp matches the kernel package and these scripts it
# does nothing, so `make tools` stays fast. Needs root and Debian's apt.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
DIR=$(mkdir -p "$1" && cd "$1" && pwd)

# Modules the guest loads at boot (their dependencies come along):
# virtio_pci + 9pnet_virtio + 9p share the repository into the guest; veth for
# traffic tests; sch_ingress (clsact), cls_bpf and act_bpf for TC programs.
MODULES="virtio_pci 9pnet_virtio 9p veth sch_ingress cls_bpf act_bpf"

log() { printf 'vm setup: %s\n' "$*" >&2; }

# Host tools: qemu runs the guest; busybox-static (not Debian's dynamically
# linked busybox) is the guest's whole userland; cpio and xz-utils build the
# initramfs and unpack the kernel.
missing=""
for p in qemu-system-x86 busybox-static cpio xz-utils; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	log "apt-get install$missing"
	apt-get update -q >/dev/null
	# shellcheck disable=SC2086 # one package per word
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null
fi

# The kernel Debian 12 currently ships: linux-image-amd64 depends on it by
# name and exact version ("linux-image-6.1.0-56-amd64 6.1.192-2").
kernel_package() {
	apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
		sed -n 's/^Depends:.*\(linux-image-6\.1\.[^ ]*-amd64\) (= \([^)]*\)).*/\1 \2/p'
}
KERNEL=$(kernel_package)
if [ -z "$KERNEL" ]; then
	apt-get update -q >/dev/null # a fresh machine may not have package lists yet
	KERNEL=$(kernel_package)
fi
[ -n "$KERNEL" ] || { log "apt knows no linux-image-6.1.*-amd64"; exit 1; }
KPKG=${KERNEL% *} KVERSION=${KERNEL#* }

stamp="$KERNEL $(cat "$0" "$HERE/init" | sha256sum | cut -c1-16)"
if [ -f "$DIR/vmlinux" ] && [ -f "$DIR/initramfs.cpio.gz" ] && [ "$(cat "$DIR/stamp" 2>/dev/null)" = "$stamp" ]; then
	exit 0
fi

WORK=$(mktemp -d "$DIR/.setup.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log "downloading $KPKG $KVERSION"
(cd "$WORK" && apt-get download -q -o APT::Sandbox::User=root "$KPKG=$KVERSION" >/dev/null)
dpkg-deb -x "$WORK"/*.deb "$WORK/kroot"
KREL=$(ls "$WORK/kroot/lib/modules")

# An uncompressed ELF vmlinux boots through PVH and skips the xz decompressor,
# which takes seconds under TCG. The bzImage header says where its compressed
# payload starts (setup_sects at 0x1f1, payload_offset at 0x248) and how long
# it is (payload_length at 0x24c, counting the 4-byte size the kernel's build
# appends after the xz stream).
vmlinuz=$WORK/kroot/boot/vmlinuz-$KREL
field() { od -An -t "u$2" -j "$1" -N "$2" "$vmlinuz" | tr -d ' '; }
start=$(( ($(field 497 1) + 1) * 512 + $(field 584 4) ))
tail -c "+$((start + 1))" "$vmlinuz" | head -c "$(($(field 588 4) - 4))" | unxz > "$WORK/vmlinux"
[ "$(head -c4 "$WORK/vmlinux")" = "$(printf '\177ELF')" ] || { log "no ELF kernel in $vmlinuz"; exit 1; }

# initramfs: busybox, init, the wanted modules and their dependencies, with a
# modules.dep so the guest's `modprobe` loads them in order.
ROOT=$WORK/initramfs
mkdir -p "$ROOT/bin" "$ROOT/lib/modules/$KREL"
cp /bin/busybox "$ROOT/bin/busybox"
cp "$HERE/init" "$ROOT/init"
chmod 755 "$ROOT/init"
echo "$MODULES" > "$ROOT/modules"
/bin/busybox depmod -b "$WORK/kroot" "$KREL"
for m in $MODULES; do
	line=$(grep -E "/$m\.ko:" "$WORK/kroot/lib/modules/$KREL/modules.dep") || { log "module $m not in $KPKG"; exit 1; }
	for ko in $(echo "$line" | tr -d :); do
		mkdir -p "$ROOT/lib/modules/$KREL/$(dirname "$ko")"
		cp "$WORK/kroot/lib/modules/$KREL/$ko" "$ROOT/lib/modules/$KREL/$ko"
	done
done
/bin/busybox depmod -b "$ROOT" "$KREL"
(cd "$ROOT" && find . | cpio -o -H newc --quiet | gzip -1) > "$WORK/initramfs.cpio.gz"

mv "$WORK/vmlinux" "$WORK/initramfs.cpio.gz" "$DIR/"
echo "$KPKG $KVERSION ($KREL)" > "$DIR/kernel"
echo "$stamp" > "$DIR/stamp"
log "$(cat "$DIR/kernel") ready in $DIR"
