package podproc

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Pod is a pod's processes on this node, as Scan found them.
type Pod struct {
	// UID is the pod's metadata.uid.
	UID string
	// Processes are the processes in the pod's cgroups, by pid.
	Processes []Process
}

// Process is a process of a pod.
type Process struct {
	PID int
	// ContainerID is the container runtime's id of the process's
	// container (64 hex digits; the pod sandbox is a container too); empty
	// for a process in the pod's cgroup but in no container's, as CRI-O's
	// monitor (conmon), which runs in the node's namespaces.
	ContainerID string
	// Netns is the inode of the process's network namespace
	// (/proc/<pid>/ns/net); 0 when the scan was not allowed to read it (another
	// user's process, or one caught exiting).
	Netns uint64
}

// NetnsPID returns a process in the pod's own network namespace, to name
// it as /proc/<pid>/ns/net: the lowest pid of a container's process whose
// namespace the scan read and found not to be hostNetns, the node's.
// Every container of a pod shares its sandbox's namespace, so any of them
// names it. It returns false when the pod has no container process, or
// when the namespaces the scan read are hostNetns: a hostNetwork pod's.
//
// When the scan could read none of the namespaces of the pod's container
// processes (a scanner that may not ptrace them, as bpfd-agent), it returns
// the lowest pid of a container's process, unchecked: bpfd reads the
// namespace before it attaches and refuses the node's. A caller that knows
// the pod is hostNetwork (from its spec) should not ask.
func (p Pod) NetnsPID(hostNetns uint64) (int, bool) {
	first, read := 0, false
	for _, proc := range p.Processes {
		if proc.ContainerID == "" {
			continue
		}
		if first == 0 {
			first = proc.PID
		}
		if proc.Netns == 0 {
			continue
		}
		read = true
		if proc.Netns != hostNetns {
			return proc.PID, true
		}
	}
	if read || first == 0 {
		return 0, false
	}
	return first, true
}

// ContainerPID returns the lowest pid of the pod's container with id
// containerID: the id alone, or as a container status shows it, prefixed
// with the runtime ("containerd://<id>", "cri-o://<id>", "docker://<id>").
// False when the pod has no process in that container.
func (p Pod) ContainerPID(containerID string) (int, bool) {
	if _, id, ok := strings.Cut(containerID, "://"); ok {
		containerID = id
	}
	if containerID == "" {
		return 0, false
	}
	for _, proc := range p.Processes {
		if proc.ContainerID == containerID {
			return proc.PID, true
		}
	}
	return 0, false
}

// SelfNetns returns the inode of the calling thread's network namespace,
// read under procDir (normally /proc): the node's for a process that, like
// bpfd-agent, runs with hostNetwork; the hostNetns NetnsPID takes. It reads
// the thread's, not the process's (/proc/self is its main thread's), as a
// Go program's main thread may be left in another namespace by a goroutine
// that entered it locked and ended.
func SelfNetns(procDir string) (uint64, error) {
	var st unix.Stat_t
	path := filepath.Join(procDir, "thread-self", "ns", "net")
	if err := unix.Stat(path, &st); err != nil {
		return 0, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return st.Ino, nil
}
