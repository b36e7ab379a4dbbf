package podproc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// maxCgroupFile bounds what Scan reads of a /proc/<pid>/cgroup: a few
// lines of at most a path each; a longer file is not the kernel's.
const maxCgroupFile = 64 << 10

// dirBatch is how many entries of procDir Scan holds at a time.
const dirBatch = 512

// Scan reads procDir (normally /proc) once and returns, for each of uids
// found there, its processes; a uid with no process is absent from the
// map. uids are pod uids as the API server gives them (metadata.uid), or
// for a static pod, whose mirror pod the API server gives a uid of its own,
// the hash in its kubernetes.io/config.mirror annotation, after which the
// kubelet names its cgroup. One that is neither is an error naming it
// (ErrInvalidPodUID), before anything is read; with no uids nothing is
// read.
//
// Every numeric entry of procDir is read once: the process's cgroup, and
// for a process of one of uids the inode of its network namespace. Each
// process is read through a handle on its directory, so what Scan reports
// of a pid is of one process even when it exits and its pid is reused
// during the scan. A process that exits during the scan, or whose entries
// cannot be read or are not what the kernel writes, is left out; a network
// namespace Scan may not read is 0. Only a procDir that cannot be listed is
// an error.
func Scan(procDir string, uids []string) (map[string]Pod, error) {
	want := make(map[string]bool, len(uids))
	for _, uid := range uids {
		if !podUID.MatchString(uid) {
			return nil, fmt.Errorf("pod uid %q: %w", uid, ErrInvalidPodUID)
		}
		want[uid] = true
	}
	pods := map[string]Pod{}
	if len(want) == 0 {
		return pods, nil
	}
	dir, err := os.Open(procDir)
	if err != nil {
		return nil, fmt.Errorf("proc dir: %w", err)
	}
	defer dir.Close()
	buf := make([]byte, maxCgroupFile+1)
	for {
		entries, err := dir.ReadDir(dirBatch)
		for _, e := range entries {
			pid, ok := parsePID(e.Name())
			if !ok || !e.IsDir() {
				continue
			}
			uid, p, ok := readProcess(filepath.Join(procDir, e.Name()), pid, want, buf)
			if !ok {
				continue
			}
			pod := pods[uid]
			pod.UID = uid
			pod.Processes = append(pod.Processes, p)
			pods[uid] = pod
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("proc dir %s: %w", procDir, err)
		}
	}
	for _, pod := range pods {
		slices.SortFunc(pod.Processes, func(a, b Process) int { return a.PID - b.PID })
	}
	return pods, nil
}

// parsePID returns the pid a /proc entry is named after: decimal, as the
// kernel writes it, without sign or leading zeros.
func parsePID(name string) (int, bool) {
	pid, err := strconv.Atoi(name)
	if err != nil || pid <= 0 || strconv.Itoa(pid) != name {
		return 0, false
	}
	return pid, true
}

// readProcess reads the process whose /proc directory is dir: its pod, if
// its cgroup names one of want, and then its container and network
// namespace. buf holds the cgroup file.
func readProcess(dir string, pid int, want map[string]bool, buf []byte) (string, Process, bool) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", Process{}, false
	}
	defer unix.Close(fd)
	cg, ok := readCgroup(fd, buf)
	if !ok {
		return "", Process{}, false
	}
	pc, ok := ParsePodCgroup(cg)
	if !ok || !want[pc.PodUID] {
		return "", Process{}, false
	}
	p := Process{PID: pid, ContainerID: pc.ContainerID}
	var st unix.Stat_t
	switch err := unix.Fstatat(fd, "ns/net", &st, 0); {
	case err == nil:
		p.Netns = st.Ino
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		// Not ours to read (no ptrace access): unknown.
	default:
		// ENOENT, ESRCH: the process exited (a zombie has a cgroup but
		// no namespaces); anything else is not a process to name.
		return "", Process{}, false
	}
	return pc.PodUID, p, true
}

// readCgroup returns the cgroup v2 path of the process whose /proc
// directory is open at fd: the "0::" line of its cgroup file.
func readCgroup(fd int, buf []byte) (string, bool) {
	// Not to wait on a FIFO in a procDir that is not the kernel's.
	f, err := unix.Openat(fd, "cgroup", unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", false
	}
	defer unix.Close(f)
	n := 0
	for n < len(buf) {
		m, err := unix.Read(f, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return "", false
		}
		if m == 0 {
			break
		}
		n += m
	}
	if n > maxCgroupFile {
		return "", false
	}
	for line := range strings.SplitSeq(string(buf[:n]), "\n") {
		if path, ok := strings.CutPrefix(line, "0::"); ok {
			return path, strings.HasPrefix(path, "/")
		}
	}
	return "", false
}
