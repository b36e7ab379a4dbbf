#!/bin/bash
# vmrun.sh CMD [ARG...]: runs CMD as root inside a qemu VM booted with the
# kernel and initramfs hack/vm/setup.sh prepared, in the same directory as on
# the host, and exits with CMD's exit code. CMD's output streams to stdout.
# When the guest never reports an exit code (kernel panic, hang, boot failure)
# it exits 255 and prints the last lines of the guest's console to stderr; it
# exits 125 when it cannot start the VM at all.
#
# Works as `go test -exec hack/vm/vmrun.sh ./pkg/...`: a CMD outside the
# shared directory (go test builds in a temporary directory) is copied in.
#
# Environment:
#   VM_DIR      kernel + initramfs directory       (default: bin/vm of this repository)
#   VM_SHARE    directory shared into the guest at the same path (default: this repository)
#   VM_TIMEOUT  seconds before the VM is killed    (default: 600)
#   VM_MEM, VM_SMP  guest memory and CPUs          (default: 1G, 1)
#   VM_ACCEL    tcg, or kvm on hosts where KVM works (default: tcg)
#   VM_ENV      names of extra variables to pass into the guest; every BPFD_*
#               variable is passed as well
#   VM_CONSOLE_LOG  file to keep the guest's kernel console in
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VM_DIR=${VM_DIR:-$ROOT/bin/vm}
SHARE=$(cd "${VM_SHARE:-$ROOT}" && pwd)
TIMEOUT=${VM_TIMEOUT:-600}
ACCEL=${VM_ACCEL:-tcg}
CPU=max
if [ "$ACCEL" = kvm ]; then CPU=host; fi

die() { echo "vmrun: $*" >&2; exit 125; }
[ $# -gt 0 ] || die "usage: vmrun.sh CMD [ARG...]"
for f in vmlinux initramfs.cpio.gz; do
	[ -f "$VM_DIR/$f" ] || die "$VM_DIR/$f missing (run \`make tools\` or hack/vm/setup.sh $VM_DIR)"
done
case "$PWD/" in "$SHARE"/*) ;; *) die "working directory $PWD is not under the shared $SHARE" ;; esac

# The control directory is the guest's /ctl: run.sh in, exitcode out.
CTL=$(mktemp -d "${TMPDIR:-/tmp}/vmrun.XXXXXX")
trap 'rm -rf "$CTL"' EXIT
echo "$SHARE" > "$CTL/workdir"

cmd=$1
shift
if [ -f "$cmd" ]; then
	cmd=$(realpath "$cmd")
	case "$cmd" in
	"$SHARE"/*) ;;
	*) mkdir "$CTL/bin" && cp "$cmd" "$CTL/bin/" && cmd=/ctl/bin/$(basename "$cmd") ;;
	esac
fi
{
	for v in $(compgen -v BPFD_) ${VM_ENV:-}; do
		if [ -n "${!v+set}" ]; then printf 'export %s=%q\n' "$v" "${!v}"; fi
	done
	printf 'cd %q || exit 125\n' "$PWD"
	printf 'exec %q' "$cmd"
	if [ $# -gt 0 ]; then printf ' %q' "$@"; fi
	echo
} > "$CTL/run.sh"

# TCG emulation by default: this host's /dev/kvm opens but cannot run a guest
# (nested, no vmx/svm), so KVM is opt-in. -cpu max gives the guest every
# feature TCG can emulate. ttyS0 is the kernel console, kept in a file; ttyS1
# carries CMD's output to our stdout. panic=-1 and -no-reboot turn a kernel
# panic into qemu exiting; mitigations=off saves emulated cycles.
qrc=0
timeout --foreground -k 5 "$TIMEOUT" qemu-system-x86_64 \
	-nodefaults -no-user-config -no-reboot -display none \
	-machine pc,accel="$ACCEL" -cpu "$CPU" -smp "${VM_SMP:-1}" -m "${VM_MEM:-1G}" \
	-kernel "$VM_DIR/vmlinux" -initrd "$VM_DIR/initramfs.cpio.gz" \
	-append "console=ttyS0 panic=-1 quiet mitigations=off" \
	-serial file:"$CTL/console.log" -serial stdio \
	-virtfs local,path="$CTL",mount_tag=ctl,security_model=none \
	-virtfs local,path="$SHARE",mount_tag=work,security_model=none \
	</dev/null || qrc=$?

if [ -n "${VM_CONSOLE_LOG:-}" ]; then cp "$CTL/console.log" "$VM_CONSOLE_LOG"; fi
if [ ! -f "$CTL/exitcode" ]; then
	if [ "$qrc" = 124 ]; then why="timed out after ${TIMEOUT}s"; else why="qemu exited $qrc"; fi
	echo "vmrun: the guest reported no exit code ($why); last console lines:" >&2
	tail -n 40 "$CTL/console.log" >&2
	exit 255
fi
exit "$(cat "$CTL/exitcode")"
