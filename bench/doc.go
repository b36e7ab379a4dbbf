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
//	go run ./bench [-runs 7] [-groups REGEXP] [-rows REGEXP] [-out bench/results.json]
//
// -groups sets up and runs only the groups whose name matches ("supply
// chain", "bpfd: …", "dispatcher", "k8s"); -rows then picks rows among them.
//
// `make bench` builds the binaries and tools first and runs it as root. The
// whole table, 7 runs a side and the k8s group included, took 1 min 54 s of
// wall time on 2 cores of an otherwise quiet machine (binaries and tools
// already built), and about 4.5 minutes under a load average of 7–13 from
// other work; a clean clone builds the tools first.
//
// The dispatcher rows cover the modes this machine's kernel allows: linked
// mode everywhere, freplace mode only where extension programs load. `make
// bench` then runs `make bench-vm`: pkg/runtime/dispatcher's BenchmarkChain
// (the same chains, both modes, against the programs run directly) in the
// kernel VM on Debian's 6.1 kernel, where freplace works. Under emulation
// the nanoseconds are the VM's, and only the ratios within one run compare.
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
//   - push … from object files: `bpfctl-image build --dest REGISTRY --platform
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
//   - copy 200 MiB … registry -> OCI layout: `bpfctl-image copy REG
//     oci:DIR` against `oras cp -r --from-plain-http REG --to-oci-layout
//     DIR` (both carry referrers) of a one-platform artifact of 200 MiB of
//     table objects, into an emptied directory; checked: the layout holds
//     the artifact, tagged, with every blob. pull 200 MiB's objects is the
//     pull row above for that artifact.
//   - peak RSS, copy … and pull …: each side's peak resident set (GNU
//     time's %M: the rusage of the bench's own children would count the
//     bench, which Go forks them from), the median of 3 runs. Both tools
//     stream blobs: neither grows with the artifact.
//   - bpfd peak RSS, bpfctl pull 200 MiB …: the daemon's memory while it
//     pulls that artifact (signed in a repository of its own) with `bpfctl
//     pull --pull-policy Always`: before each of 3 runs its cache is
//     emptied (`bpfctl cache prune --all`), its resident set read (VmRSS,
//     idle) and its peak reset (/proc/PID/clear_refs); after, its peak
//     (VmHWM). The medians of the peak and of the peak over idle. No peer:
//     the pull and copy rows above compare the tools; this one shows that
//     bpfd streams into its cache too.
//
// Caching: each push and each sign goes to a new repository, so no run finds
// the blobs an earlier one pushed (the registry stores blobs by digest once,
// but every new repository is uploaded to in full) or the signatures it
// added. Pulls go to an emptied directory; neither tool keeps a cache of its
// own. The registry's files sit in the page cache for both sides alike.
//
// # The daemon: a cold signed load
//
// One row measures the whole way of a new artifact onto a node, with
// nothing cached: resolve a tag in the local registry (bin/tools/registry,
// started for the row), verify its signature, pull it, load the program and
// attach it to one end of a veth pair.
//
//   - cold signed load+attach xdp: `bpfctl load image REGISTRY/cold/
//     xdp_counter:v1 --program xdp_counter:xdp --interface A` against a bpfd
//     restarted before each run (untimed) on an emptied cache, so that it
//     resolves, pulls the artifact and its signature, verifies it against
//     its policy, records, loads, builds the dispatcher and attaches. The
//     peer does the same job with the usual tools, each a process: `oras
//     resolve` of the tag, `cosign verify --key` (v3, offline:
//     --insecure-ignore-tlog) of the digest, `oras pull` of the digest into
//     an emptied directory, `bpftool prog load` (pinned) of the pulled
//     object and `bpftool net attach xdp` to B. The signature, in the bundle
//     format, is made by bpfd's own signing code; both sides verify it.
//     Between runs each side's program is unloaded and detached, untimed.
//
// # The daemon: load, attach, unload, list
//
// These rows start bin/bpfd as a process on a socket, state dir, cache and
// bpffs of their own, with signed artifacts of bytecode/ objects in an OCI
// layout that bpfd pulls before the timing, so every load comes from a cached
// digest (bpfd judges the cached signature against its policy once and
// remembers the admission until the policy is reloaded; on each load it
// still reads the objects checking their digests, and records and pins what
// it loads). Both sides run as processes:
//
//   - load+attach+unload xdp: `bpfctl load image REF@DIGEST --program
//     xdp_counter:xdp --interface A` then `bpfctl unload ID`, against
//     Debian's bpftool on the same object: `bpftool prog load … type xdp`
//     (load and pin), `bpftool net attach xdp pinned … dev B`, `bpftool net
//     detach xdp dev B`, `rm` the pin. A and B are the ends of a veth pair.
//     bpfd puts every XDP program in its interface's dispatcher chain (here
//     a chain of one, which it builds and has the kernel verify on each
//     load and unload); bpftool attaches the program alone.
//   - load+attach+unload tcx and tracepoint: the same bpfctl commands
//     (tcx_counter on A's ingress; tracepoint_counter on
//     syscalls/sys_enter_getppid) against bench/minload, since bpftool 7.1
//     (Debian 12) attaches neither: `minload load` loads the program with its
//     maps through cilium/ebpf, attaches it with a link and pins program,
//     link and maps, as bpfd does; `minload unload` removes the pins.
//
// After each run a check confirms that the side unloaded what it loaded
// (bpfd lists only the resident program; no pin, no XDP program is left), so
// that every run does the whole job.
//
// # The daemon: list, get, restart, memory
//
// These rows run on a bpfd of their own, with 1, then 100, then 1,000
// managed programs: tracepoint programs over 20 syscall tracepoints (the
// kernel takes 64 per tracepoint), sharing the first one's maps, loaded
// through the API by the first (untimed) preparation of each level's rows.
//
//   - bpfctl list and list -o json with 1, 100 and 1,000 programs: `bpfctl
//     list` (a table) and `bpfctl list -o json`, each checked afterwards to
//     show every program, against Debian's `bpftool prog show` and `bpftool
//     prog show --json`, each checked to show the kernel program of every
//     program bpfd manages. bpftool lists every program of the kernel,
//     bpfd's and any other's (on a quiet machine, bpfd's alone); bpfctl
//     lists bpfd's, each with its record (attach point, provenance, labels,
//     maps) besides what the kernel says. Both are one process each.
//   - bpfctl get with 1, 100 and 1,000 programs: `bpfctl get ID` of the
//     first program. No peer: bpftool keeps no record of what it loaded.
//   - memory, 1,000 programs loaded through the API: the daemon's peak and
//     current resident set (VmHWM and VmRSS of /proc/PID/status), measured
//     once, after the loads and the list and get rows, and the current one
//     split into anonymous memory (RssAnon: the Go heap, stacks, the
//     runtime) and file pages (RssFile: the executable's text and
//     read-only data the process touched, and the state store's mapping,
//     about 27 MiB with one program as with 1,000).
//   - restart to serving, 1,000 programs: SIGTERM to the daemon, its exit,
//     a new bpfd started on the same state, until its health service
//     answers SERVING for bpfd.v1: the new process has opened the state and
//     adopted the 1,000 programs (checked afterwards: it lists them all).
//     It serves before it judges the adopted programs again under the
//     trust policy: that judgement runs after, in the background.
//   - start to serving, 1,000 programs: the same from the new process's
//     exec alone (the old one stopped untimed).
//   - memory, 1,000 programs adopted at start: the same figures of the
//     process the last start left, after it listed the 1,000 programs.
//
// # Kubernetes: nodes × configs
//
// These rows measure the Kubernetes side at scale on one machine, without a
// kubelet: envtest's kube-apiserver and etcd (bin/k8s, default flags and
// limits) with bpfd's CRDs, 100 Node objects, and for each node an agent set
// up by agent.NewManager exactly as bpfd-agent does (its own manager, cache,
// connection pool and client limits: 50 QPS, burst 100) talking over a real
// unix-socket gRPC connection to an in-memory bpfd of its own
// (k8stest.Daemon: it records programs, nothing reaches a kernel), plus
// bpfd-operator's config controller (no client-side limit, as
// controller-runtime sets it in a cluster). All run in this process. The
// 20 configs select every node and alternate one XDP program on one
// interface and one tracepoint program, so 2,000 BpfPrograms. In order:
//
//   - start agents: until every manager's cache is in sync.
//   - create configs: until every config is Ready at its generation with
//     every node loaded, every node's bpfd holds exactly one program of each
//     from its image, and 2,000 BpfPrograms exist.
//   - idle: after one node report period (30 s, in which each agent's
//     BpfNode says what the creation loaded), the requests sent in
//     -k8s-idle (30 s) with nothing changing: the goal is none. The bench's
//     own polling is not counted, and there are no leases (no leader
//     election here); watches client-go renews on its own timer would be.
//   - edit a config: a new image digest for one config, until it is Ready
//     again at the new generation and every bpfd holds the new image.
//   - delete a config, then delete the rest: until the configs, their
//     BpfPrograms and their programs in every bpfd are gone.
//
// Convergence is polled every 100 ms by an uncounted client. Then the row
// waits until no client has sent a request for 2 s, and reports the
// requests the agents (together) and the operator sent during the phase, by
// verb, per reconcile (controller-runtime's reconcile counter), the failed
// ones by status code (409 conflicts from a stale cache, 404, 429), and the
// calls the bpfds served. -k8s-profile DIR writes CPU profiles of each
// phase, of this process and of kube-apiserver (its /debug/pprof, 10 s at a
// time: `go tool pprof bin/k8s/kube-apiserver DIR/k8s-create.apiserver.*`
// merges them). -k8s-nodes and -k8s-configs change the size. The
// whole group takes 40–90 seconds on 2 cores, control plane included:
//
//	go run ./bench -groups k8s [-k8s-nodes 100 -k8s-configs 20]
package main
