// Package podproc finds the processes of Kubernetes pods on this node, from
// /proc alone: a process belongs to the pod and container that its cgroup
// is named after, as the kubelet and the container runtimes name them
// (ParsePodCgroup, either cgroup driver, containerd, CRI-O or Docker).
//
// It is the node's side of a pod, for bpfd-agent and bpfd alike, and so
// links no Kubernetes, gRPC or BPF library. The agent turns the uids of the
// pods it serves into the processes bpfd is asked for: a process in the
// pod's network namespace (an XDP, TC or TCX attachment's netns
// /proc/<pid>/ns/net) and a process of a named container (a uprobe's
// container pid).
//
// # Privileges
//
// Scan needs to see the node's processes (a container needs the pod's
// hostPID) and reads /proc/<pid>/cgroup, which every user may read. It
// also reads the inode of each pod process's network namespace
// (/proc/<pid>/ns/net), which the kernel shows only to a reader that may
// ptrace the process (the same uid, or CAP_SYS_PTRACE); where it may not,
// Process.Netns is 0 and Pod.NetnsPID names a process without having
// checked its namespace. bpfd, which may read it, checks it again before
// it attaches, and refuses a hostNetwork pod's.
//
// # Cgroup namespaces
//
// /proc/<pid>/cgroup shows a path relative to the reader's cgroup
// namespace. bpfd, privileged, shares the node's; bpfd-agent, in an
// unprivileged container on cgroup v2, has one of its own rooted at its
// container's cgroup, and sees other pods' cgroups as
// "/../../kubepods-besteffort-pod<uid>.slice/..." (systemd driver) or
// "/../../pod<uid>/<id>" (cgroupfs driver). ParsePodCgroup reads both; a
// cgroupfs pod's QoS class may then be unknown.
//
// # Trust
//
// A cgroup's name is its creator's: a user with a delegated subtree
// (systemd's user@<uid>.service) or a container with a writable cgroupfs
// may make /user.slice/user-1000.slice/user@1000.service/kubepods.slice/
// kubepods-besteffort.slice/kubepods-besteffort-pod<uid>.slice and move a
// process there. So a path names a pod only where the kubelet puts a pod's
// cgroup, counted from the root, which only root may write:
//
//   - systemd driver: a slice's name encodes its parents ("a-b-c.slice"
//     lives in "a.slice/a-b.slice"), so a pod's slice must be below exactly
//     the chain its name implies, the chain's first slice at the root.
//     This holds for any kubelet --cgroup-root (kind's kubelet.slice) with
//     nothing to configure.
//   - cgroupfs driver: the names do not say where they live, so the
//     kubelet's cgroup root is one of a known few: the root (the kubelet's
//     default: /kubepods/...) or kind's /kubelet (/kubelet/kubepods/...).
//     A pod of a kubelet with another --cgroup-root under cgroupfs is in no
//     pod here: tenants cannot name its processes, and the inventory does
//     not attribute them.
//
// Relative to a cgroup namespace, a path names a pod when the elements
// between its leading ".." and the pod's cgroup are the last elements of
// that chain: everything above a container's namespace is the kubelet's
// and the runtime's. A cgroup below a pod's cgroup is that pod's, however
// it is named.
package podproc
