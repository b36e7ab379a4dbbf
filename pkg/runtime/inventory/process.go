package inventory

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// describeProcess reads what /proc says of pid: its name (unless comm is
// already known), executable and cgroup. False when the process is gone.
func describeProcess(procRoot string, pid int, comm string) (Process, bool) {
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	cg, err := os.ReadFile(filepath.Join(dir, "cgroup"))
	if err != nil {
		return Process{}, false
	}
	p := Process{PID: pid, Comm: comm}
	if p.Comm == "" {
		if b, err := os.ReadFile(filepath.Join(dir, "comm")); err == nil {
			p.Comm = strings.TrimSuffix(string(b), "\n")
		}
	}
	if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		p.Exe = exe
	}
	p.Cgroup = chooseCgroup(string(cg))
	if pod, ok := ParsePodCgroup(p.Cgroup); ok {
		p.Pod = &pod
	}
	return p, true
}

// chooseCgroup picks, from the lines of /proc/<pid>/cgroup
// ("hierarchy:controllers:path"), the path of a hierarchy that names a
// kubelet pod when one does (on a cgroup v1 node the kubelet names every
// controller's), else the cgroup v2 path ("0::"), else the first.
func chooseCgroup(s string) string {
	var v2, first string
	for _, line := range strings.Split(s, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		path := parts[2]
		if _, ok := ParsePodCgroup(path); ok {
			return path
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = path
		}
		if first == "" {
			first = path
		}
	}
	if v2 != "" {
		return v2
	}
	return first
}
