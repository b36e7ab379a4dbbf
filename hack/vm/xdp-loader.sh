#!/bin/sh
# xdp-loader.sh DIR: copies Debian's xdp-loader (xdp-tools) and the shared
# libraries it needs into DIR and writes DIR/xdp-loader, a wrapper that runs
# it through the copied dynamic loader: the guest has no libc of its own. The
# dispatcher tests run `xdp-loader status` with it in the VM
# (BPFD_XDP_LOADER). Idempotent.
set -eu

DIR=$(mkdir -p "$1" && cd "$1" && pwd)
BIN=$(command -v xdp-loader) || { echo "xdp-loader.sh: no xdp-loader (apt-get install xdp-tools)" >&2; exit 1; }
[ "$DIR/xdp-loader.bin" -nt "$BIN" ] && [ -x "$DIR/xdp-loader" ] && exit 0

cp "$BIN" "$DIR/xdp-loader.bin"
# Every library ldd resolves, and the dynamic loader itself.
ldd "$BIN" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*ld-linux[^ ]*\).*/\1/p' |
	while read -r lib; do cp -L "$lib" "$DIR/"; done
loader=$(cd "$DIR" && ls ld-linux-*.so.* | head -n1)
cat > "$DIR/xdp-loader" <<WRAPPER
#!/bin/sh
here=\$(dirname "\$0")
exec "\$here/$loader" --library-path "\$here" "\$here/xdp-loader.bin" "\$@"
WRAPPER
chmod 755 "$DIR/xdp-loader"
