// Command bench measures bpfd against its peers and prints one table.
//
// Each row times one operation done two ways — bpfd's tool and a peer
// (oras, cosign, bpftool, or the same programs run directly) — in the same
// run on the same machine, alternating the two sides, and reports the
// medians and their ratio (bpfd / peer: below 1 means bpfd is faster). Rows
// without a peer report bpfd's figure alone. The results also go to
// bench/results.json. Figures depend on the machine: none is committed as an
// expectation.
//
//	go run ./bench [-runs 7] [-rows REGEXP] [-out bench/results.json]
//
// `make bench` builds the binaries and tools first and runs it as root.
//
// # Supply chain: push, pull, sign, verify
//
// These rows run bin/bpfctl-image against bin/tools/oras, cosign2 and
// cosign3, as processes, all talking plain HTTP to one distribution registry
// (bin/tools/registry) that the group starts on a loopback port for the whole
// run. Every command runs with a HOME of its own, so no credentials or cosign
// TUF cache of the machine's is read; nothing leaves the machine. A side's
// run is checked afterwards, untimed: a push must leave an index with one
// manifest per platform whose layers are exactly that platform's files, a
// pull every file byte for byte, a sign exactly one valid signature. With 7
// runs the rows take about 80 seconds on 2 cores, set-up included.
//
// The artifacts are built at set-up (see payload.go): for linux/amd64 and
// linux/arm64, every object in bytecode/ plus generated table objects (an XDP
// program with a .rodata lookup table, compiled with clang and filled with
// pseudo-random bytes, distinct per platform), up to 1 MiB and 32 MiB of
// distinct files: 19 and 25 blobs with configs, manifests and index.
//
//   - push … from object files: `bpfctl-image build -o REGISTRY --platform
//     …` (reads the ELF objects, extracts their metadata, pushes) against
//     what an oras user runs for a multi-platform artifact: `oras push
//     --artifact-platform P` of each platform's files, then `oras manifest
//     index create`. The layers are the same files (same bytes, digests and
//     titles); oras's configs carry only the platform where bpfd's carry the
//     metadata, and oras adds a tag per platform. Blob counts are equal.
//   - push … from an OCI layout: `bpfctl-image push oci:DIR:v1` against
//     `oras cp --from-oci-layout DIR:v1`, of the same layout: the same blobs
//     byte for byte.
//   - pull …'s linux/amd64 objects: `bpfctl-image pull --platform` against
//     `oras pull --platform` of the same artifact into an emptied directory.
//     Both fetch the index, the manifest and the layers; bpfctl-image also
//     fetches the config (oras skips it) and writes metadata.json.
//   - sign 1 MiB, FORMAT format, vs cosign vN: `bpfctl-image sign --format
//     bundle|legacy` against cosign's offline sign (v2: `--tlog-upload=false`,
//     and for bundles `COSIGN_EXPERIMENTAL=1 --new-bundle-format
//     --registry-referrers-mode=oci-1-1`; v3: `--tlog-upload=false
//     --use-signing-config=false --new-bundle-format=true|false`), by digest,
//     with the same encrypted cosign key: each run decrypts it.
//   - verify a cosign vN FORMAT signature: `bpfctl-image verify --key`
//     against cosign's offline verify (`--insecure-ignore-tlog`; v2 reads
//     bundles with `--new-bundle-format --trusted-root` an empty root), of a
//     repository holding one signature, made by that row's cosign at set-up:
//     cosign verifies its own signature, bpfctl-image the same one.
//     bpfctl-image looks for both formats, cosign for the one it is asked.
//
// Caching: each push and each sign goes to a new repository, so no run finds
// the blobs an earlier one pushed (the registry stores blobs by digest once,
// but every new repository is uploaded to in full) or the signatures it
// added. Pulls go to an emptied directory; neither tool keeps a cache of its
// own. The registry's files sit in the page cache for both sides alike.
package main
