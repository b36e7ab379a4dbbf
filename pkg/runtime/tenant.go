package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime/inventory"
)

// Tenant confines a request made for a Kubernetes namespace (a tenant) to
// the tenant's own pods on this node. Without a grant, such a request may
// attach only:
//   - XDP, TC and TCX programs to interfaces in the network namespace of one
//     of the pods, named by a process of the pod (Netns
//     "/proc/<pid>/ns/net"), never the node's own network namespace;
//   - uprobes and uretprobes to a binary or library inside a container of
//     one of the pods, resolved through a process's root
//     (UprobeAttach.ContainerPID), and only for that process (the PID
//     filter is that process).
//
// Every other kind (tracepoint, kprobe, kretprobe, fentry, fexit, cgroup)
// attaches globally and is refused unless Grants names it; a granted kind
// attaches as for a request without a tenant. Who may set a Tenant, and so
// name pods and grants, is the caller's decision (bpfd's daemon: root and
// admins only).
type Tenant struct {
	// Namespace is the tenant's namespace; it must be the request's
	// Owner.Namespace. Required.
	Namespace string `json:"namespace"`
	// PodUIDs are the uids of the tenant's pods on this node that the
	// request may touch. A process names a pod when its cgroup is that of
	// the pod (or of one of its containers) as the kubelet names them.
	// Required: at least one.
	PodUIDs []string `json:"podUIDs"`
	// Grants are the program kinds the tenant may attach beyond its pods,
	// as for a cluster-scoped request. Empty grants none.
	Grants []progtype.Kind `json:"grants,omitempty"`
}

// Limits on a Tenant, so records stay small.
const maxTenantPods = 256

// podUIDPattern is a pod's uid: a UUID, or the 32 hex digits of a static
// pod's hash.
var podUIDPattern = regexp.MustCompile(`^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$`)

// procNetnsPath matches "/proc/<pid>/ns/net".
var procNetnsPath = regexp.MustCompile(`^/proc/([1-9][0-9]{0,9})/ns/net$`)

// confined reports whether programs of kind k are confined to the tenant's
// pods (not granted).
func (t *Tenant) confined(k progtype.Kind) bool { return !slices.Contains(t.Grants, k) }

// validate checks the tenant and, without I/O, that each program's attach
// spec stays inside it.
func (t *Tenant) validate(owner Owner, programs []ProgramRequest) error {
	switch {
	case t.Namespace == "":
		return fmt.Errorf("tenant: missing namespace: %w", ErrInvalid)
	case t.Namespace != owner.Namespace:
		return fmt.Errorf("tenant namespace %q: not the owner's namespace %q: %w", t.Namespace, owner.Namespace, ErrInvalid)
	case len(t.PodUIDs) == 0:
		return fmt.Errorf("tenant %s: no pods: name the pods on this node the request may touch: %w", t.Namespace, ErrInvalid)
	case len(t.PodUIDs) > maxTenantPods:
		return fmt.Errorf("tenant %s: %d pods, at most %d: %w", t.Namespace, len(t.PodUIDs), maxTenantPods, ErrInvalid)
	}
	for _, uid := range t.PodUIDs {
		if !podUIDPattern.MatchString(uid) {
			return fmt.Errorf("tenant %s: pod uid %.40q: not a pod uid: %w", t.Namespace, uid, ErrInvalid)
		}
	}
	for _, k := range t.Grants {
		if pk, err := progtype.Parse(string(k)); err != nil || pk != k {
			return fmt.Errorf("tenant %s: grant %q: not a program kind: %w", t.Namespace, k, ErrInvalid)
		}
	}
	for _, p := range programs {
		if !t.confined(p.Kind) {
			continue
		}
		if err := t.checkSpec(p.Kind, p.Attach); err != nil {
			return fmt.Errorf("program %s: %w", p.Name, err)
		}
	}
	return nil
}

// checkSpec refuses, without I/O, an attach spec that a confined program
// of kind k may not have.
func (t *Tenant) checkSpec(k progtype.Kind, spec AttachSpec) error {
	var netns string
	switch a := spec.(type) {
	case XDPAttach:
		netns = a.Netns
	case TCAttach:
		netns = a.Netns
	case TCXAttach:
		netns = a.Netns
	case UprobeAttach:
		switch {
		case a.ContainerPID == 0:
			return fmt.Errorf("%s for tenant %s: name the container by a process of it (container pid): %w", k, t.Namespace, ErrPermission)
		case a.PID != 0 && a.PID != a.ContainerPID:
			return fmt.Errorf("%s for tenant %s: pid %d is not the container's process %d: %w", k, t.Namespace, a.PID, a.ContainerPID, ErrPermission)
		}
		return nil
	default:
		return fmt.Errorf("%s for tenant %s: attaches outside the tenant's pods, and no grant allows it: %w", k, t.Namespace, ErrPermission)
	}
	if !procNetnsPath.MatchString(netns) {
		return fmt.Errorf("%s for tenant %s: netns %q: name a pod's network namespace by a process of the pod (/proc/<pid>/ns/net): %w", k, t.Namespace, netns, ErrPermission)
	}
	return nil
}

// confine checks, with the kernel's view of the processes named, that a
// confined program's spec stays inside the tenant's pods: the process is
// in a cgroup of one of them, and its network namespace is not the node's.
func (t *Tenant) confine(k progtype.Kind, spec AttachSpec) error {
	if !t.confined(k) {
		return nil
	}
	switch a := spec.(type) {
	case XDPAttach, TCAttach, TCXAttach:
		netns := attachNetns(a)
		pid, _ := strconv.Atoi(procNetnsPath.FindStringSubmatch(netns)[1])
		if err := t.checkPod(pid); err != nil {
			return fmt.Errorf("%s netns %s: %w", k, netns, err)
		}
		// bpfd's own namespace is the node's (it runs with hostNetwork);
		// the calling thread's, which no namespace switch has left.
		host, err := netnsInode("/proc/thread-self/ns/net")
		if err != nil {
			return err
		}
		pod, err := netnsInode(netns)
		if err != nil {
			return err
		}
		if pod == host {
			return fmt.Errorf("%s netns %s: the pod uses the node's network namespace (hostNetwork); tenant %s may not attach there: %w", k, netns, t.Namespace, ErrPermission)
		}
	case UprobeAttach:
		if err := t.checkPod(a.ContainerPID); err != nil {
			return fmt.Errorf("%s container pid %d: %w", k, a.ContainerPID, err)
		}
	}
	return nil
}

func attachNetns(spec AttachSpec) string {
	switch a := spec.(type) {
	case XDPAttach:
		return a.Netns
	case TCAttach:
		return a.Netns
	case TCXAttach:
		return a.Netns
	}
	return ""
}

// checkPod refuses a process that is not in a cgroup of one of the
// tenant's pods.
func (t *Tenant) checkPod(pid int) error {
	cg, err := processCgroup(pid)
	if err != nil {
		return err
	}
	pod, ok := inventory.ParsePodCgroup(cg)
	switch {
	case !ok:
		return fmt.Errorf("process %d (cgroup %s) is in no pod: %w", pid, cg, ErrPermission)
	case !slices.Contains(t.PodUIDs, pod.PodUID):
		return fmt.Errorf("process %d is in pod %s, not a pod of tenant %s: %w", pid, pod.PodUID, t.Namespace, ErrPermission)
	}
	return nil
}

// processCgroup returns the cgroup v2 path of process pid.
func processCgroup(pid int) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("process %d: %w", pid, ErrHookNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("process %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			return rest, nil
		}
	}
	return "", fmt.Errorf("process %d: no cgroup v2 membership: %w", pid, ErrUnsupported)
}

// containerPath returns where file, a path inside the container of
// process pid, is on the node: through the process's root.
func containerPath(pid int, file string) string {
	return "/proc/" + strconv.Itoa(pid) + "/root" + path.Clean("/"+file)
}

// findLibrary returns the path, inside the container of process pid, of
// the library named lib that the process has mapped: the file whose name
// is lib, or lib followed by ".so" and a version ("libc" finds
// "/usr/lib/x86_64-linux-gnu/libc.so.6").
func findLibrary(pid int, lib string) (string, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/maps")
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("process %d: %w", pid, ErrHookNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("process %d: %w", pid, err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for s.Scan() {
		// address perms offset dev inode pathname
		fields := strings.Fields(s.Text())
		if len(fields) < 6 || !strings.HasPrefix(fields[5], "/") {
			continue
		}
		p := fields[5]
		base := path.Base(p)
		if base == lib || strings.HasPrefix(base, lib+".so") || strings.HasPrefix(base, lib+"-") && strings.Contains(base, ".so") {
			return p, nil
		}
	}
	if err := s.Err(); err != nil {
		return "", fmt.Errorf("process %d maps: %w", pid, err)
	}
	return "", fmt.Errorf("library %s: not mapped by process %d: %w", lib, pid, ErrHookNotFound)
}
