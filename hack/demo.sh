#!/usr/bin/env bash
# demo.sh: bpfd's main job, end to end, told step by step (`make demo`, as
# root). It builds a bytecode artifact from bytecode/xdp_counter.bpf.o into an
# OCI layout, signs it, writes a trust policy that trusts the key, starts bpfd
# on a private socket and state, loads the program by digest on a veth pair in
# a new network namespace, shows it counting packets, shows an unsigned and a
# tampered artifact refused, unloads, and removes everything it created, even
# when interrupted. Nothing outside its temporary directory, its namespace and
# its veth pair is touched.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/bin

bold=$(tput bold 2>/dev/null || true)
dim=$(tput dim 2>/dev/null || true)
reset=$(tput sgr0 2>/dev/null || true)
n=0
step() {
	n=$((n + 1))
	printf '\n%s==> %d. %s%s\n' "$bold" "$n" "$1" "$reset"
	shift
	for line in "$@"; do printf '    %s\n' "$line"; done
}
# run prints a command, as a user would type it, then runs it.
run() {
	printf '%s$ %s%s\n' "$dim" "$*" "$reset" >&2
	"$@"
}
# refused runs a command that must fail, shows its error and, in short, why.
refused() {
	local out status
	printf '%s$ %s%s\n' "$dim" "$*" "$reset" >&2
	if out=$("$@" 2>&1); then
		die "$1 succeeded, but it should have been refused"
	else
		status=$?
	fi
	printf '%s\n' "$out"
	printf '%s=> refused (exit %d): %s%s\n' "$bold" "$status" \
		"$(printf '%s' "$out" | grep -o 'denied by the trust policy: [a-z-]*\|content does not match its digest' | head -n1)" "$reset"
}
die() {
	printf 'demo: %s\n' "$*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || die "run as root: it loads BPF programs and creates a network namespace"
command -v ip >/dev/null && command -v bpftool >/dev/null || "$ROOT/hack/tools.sh" apt
for b in bpfd bpfctl bpfctl-image; do
	[ -x "$BIN/$b" ] || die "$BIN/$b is missing: run make demo (it builds it)"
done

SUFFIX=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
W=$(mktemp -d /tmp/bpfd-demo.XXXXXX)
NS=bpfd-demo-$SUFFIX
HOST=bdemo${SUFFIX}h
PEER=bdemo${SUFFIX}p
NET=10.$((200 + 0x${SUFFIX:0:2} % 50)).$((0x${SUFFIX:2:2}))
HOST_IP=$NET.1
PEER_IP=$NET.2
SOCK=$W/bpfd.sock
BPFD_PID=

# The tools, as the demo shows them.
bpfctl() { "$BIN/bpfctl" --socket "$SOCK" "$@"; }
bpfctl-image() { "$BIN/bpfctl-image" "$@"; }

cleanup() {
	local status=$?
	set +e
	trap - EXIT INT TERM
	step "Cleaning up: unload, stop bpfd, remove the namespace, the veth pair and $W"
	if [ -n "$BPFD_PID" ] && kill -0 "$BPFD_PID" 2>/dev/null; then
		ids=$(bpfctl list 2>/dev/null | awk 'NR > 1 { print $1 }' | tr '\n' ' ')
		[ -n "$ids" ] && bpfctl unload $ids >/dev/null
		kill -TERM "$BPFD_PID"
		wait "$BPFD_PID" 2>/dev/null
	fi
	ip link del "$HOST" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	mountpoint -q "$W/bpffs" 2>/dev/null && umount "$W/bpffs"
	if [ "$status" != 0 ] && [ "$status" != 130 ] && [ -f "$W/bpfd.log" ]; then
		printf '\nbpfd log:\n'
		tail -n 20 "$W/bpfd.log"
	fi
	rm -rf "$W"
	if [ "$status" = 0 ]; then
		printf '\n%sDone: everything the demo created is gone.%s\n' "$bold" "$reset"
	else
		printf '\n%sThe demo stopped early (status %d); everything it created is gone.%s\n' "$bold" "$status" "$reset"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# counter prints how many UDP packets (IP protocol 17) the program counted.
counter() {
	bpftool -j map lookup pinned "$1" key 17 0 0 0 | grep -o '"value": *[0-9]*' | grep -o '[0-9]*$'
}
send() {
	for i in $(seq "$1"); do echo "packet $i" >"/dev/udp/$PEER_IP/9"; done
}

printf '%sbpfd demo%s: sign BPF bytecode, let a node verify and load it, and watch it work.\n' "$bold" "$reset"
printf 'Working directory: %s\n' "$W"

step "Build an OCI artifact from a BPF object" \
	"bytecode/xdp_counter.bpf.o counts packets per IP protocol at the XDP hook." \
	"bpfctl-image packs it, with metadata read from the ELF, into an OCI layout (no registry needed)."
DIGEST=$(run bpfctl-image build --dest "oci:$W/images/xdp-counter:v1" "$ROOT/bytecode/xdp_counter.bpf.o")
echo "$DIGEST"
REF="oci:$W/images/xdp-counter@$DIGEST"
run bpfctl-image inspect "oci:$W/images/xdp-counter:v1"

step "Generate a signing key" "A cosign-compatible ECDSA key pair; the password comes from COSIGN_PASSWORD."
export COSIGN_PASSWORD=demo
mkdir -p "$W/keys"
run bpfctl-image keygen --out "$W/keys/demo"

step "Sign the artifact's digest" "The signature covers the digest, never the tag; it is stored next to the artifact as an OCI referrer."
run bpfctl-image sign --key "$W/keys/demo.key" "oci:$W/images/xdp-counter:v1"

step "Write a trust policy" "This node admits images under $W/images signed by that key, and only XDP and TC programs from them."
cat >"$W/policy.yaml" <<EOF
apiVersion: bpfd.io/v1alpha1
kind: TrustPolicy
default: deny
rules:
- name: demo
  images: ["oci:$W/images/**"]
  authorities:
  - key: {path: $W/keys/demo.pub}
  allow:
    programTypes: [xdp, tc, tcx]
EOF
sed 's/^/    /' "$W/policy.yaml"

step "Start bpfd" "On a socket, state dir, cache and bpffs of its own, all under $W; its log goes to $W/bpfd.log."
printf 'apiVersion: bpfd.io/v1alpha1\nkind: DaemonConfig\n' >"$W/bpfd.yaml"
printf '%s$ bpfd --config %s --socket %s --state-dir %s --bpffs %s --policy %s &%s\n' "$dim" "$W/bpfd.yaml" "$SOCK" "$W/state" "$W/bpffs" "$W/policy.yaml" "$reset"
"$BIN/bpfd" --config "$W/bpfd.yaml" --socket "$SOCK" --state-dir "$W/state" --bpffs "$W/bpffs" \
	--policy "$W/policy.yaml" --audit-file "$W/audit.log" >"$W/bpfd.log" 2>&1 &
BPFD_PID=$!
for _ in $(seq 100); do
	[ -S "$SOCK" ] && bpfctl list >/dev/null 2>&1 && break
	kill -0 "$BPFD_PID" 2>/dev/null || die "bpfd exited: $(tail -n 5 "$W/bpfd.log")"
	sleep 0.1
done
bpfctl list >/dev/null || die "bpfd does not answer on $SOCK"
echo "bpfd is serving (pid $BPFD_PID)."

step "Create a veth pair into a new network namespace" "$HOST ($HOST_IP) here, $PEER ($PEER_IP) in namespace $NS."
run ip netns add "$NS"
run ip link add "$HOST" type veth peer name "$PEER" netns "$NS"
run ip addr add "$HOST_IP/24" dev "$HOST"
run ip link set "$HOST" up
run ip -n "$NS" addr add "$PEER_IP/24" dev "$PEER"
run ip -n "$NS" link set "$PEER" up

step "Try a tampered artifact" \
	"A copy of the signed artifact whose object was changed after signing. bpfd holds nothing of this digest" \
	"yet, so it reads the layer from the copy, checks it against the digest the signed manifest names, and refuses it."
cp -r "$W/images/xdp-counter" "$W/images/tampered"
LAYER=$(ls -S "$W/images/tampered/blobs/sha256" | head -n1)
chmod u+w "$W/images/tampered/blobs/sha256/$LAYER"
printf 'X' | dd of="$W/images/tampered/blobs/sha256/$LAYER" bs=1 seek=200 conv=notrunc status=none
echo "changed one byte of the object layer sha256:$LAYER"
refused bpfctl load image "oci:$W/images/tampered@$DIGEST" --program xdp_counter:xdp --interface "$HOST"

step "Load the signed artifact, by digest, on the peer interface" \
	"bpfd resolves the digest, pulls artifact and signature into its cache, verifies them against the policy," \
	"loads the program, attaches it to $PEER in $NS and pins it."
run bpfctl load image "$REF" --program xdp_counter:xdp --interface "$PEER" --netns "/run/netns/$NS"
ID=$(bpfctl list | awk 'NR == 2 { print $1 }')
PIN=$W/bpffs/$ID/maps/xdp_stats

step "Send traffic and watch the counter rise" "UDP datagrams from $HOST to $PEER_IP; the program counts them in its map, pinned at $PIN."
printf 'UDP packets counted: %s\n' "$(counter "$PIN")"
run send 10
sleep 0.2
printf 'UDP packets counted: %s\n' "$(counter "$PIN")"
run send 25
sleep 0.2
printf 'UDP packets counted: %s\n' "$(counter "$PIN")"
run bpfctl list
run bpfctl get "$ID"

step "Try an unsigned artifact" "The same object built with another annotation: a new digest that no one signed."
UNSIGNED=$(bpfctl-image build --dest "oci:$W/images/unsigned:v1" --annotation org.opencontainers.image.description=unsigned "$ROOT/bytecode/xdp_counter.bpf.o")
refused bpfctl load image "oci:$W/images/unsigned@$UNSIGNED" --program xdp_counter:xdp --interface "$HOST"

step "What the audit log recorded" "One line per decision: who (uid, gid, pid), what (reference, digest), the rule, the signer and the outcome."
sed 's/^/    /' "$W/audit.log" | cut -c1-400

step "Unload" "The program is detached and its pins removed."
run bpfctl unload "$ID"
run bpfctl list
