package inventory

import "github.com/bpfd-dev/bpfd/pkg/podproc"

// PodCgroup is what a cgroup path says of a Kubernetes pod and container,
// when the kubelet named it. The parser lives in package podproc, which
// links no BPF library, so that bpfd-agent reads cgroup names as bpfd does.
type PodCgroup = podproc.PodCgroup

// ParsePodCgroup is podproc.ParsePodCgroup: it reads a cgroup path as the
// kubelet and the container runtimes name pods' and containers' cgroups,
// under either cgroup driver, where the kubelet puts them (a look-alike
// below a delegated subtree names no pod); false when the path names no
// pod.
func ParsePodCgroup(path string) (PodCgroup, bool) { return podproc.ParsePodCgroup(path) }
