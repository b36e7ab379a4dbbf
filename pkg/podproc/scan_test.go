package podproc_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bpfd-dev/bpfd/pkg/podproc"
)

const (
	uidA  = "0f5b2c1e-1234-4abc-8def-0123456789ab"
	uidB  = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
	uidC  = "11111111-2222-4333-8444-555555555555"
	cid1  = "4e3a9c1b2d0f5e6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c"
	cid2  = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
	cid3  = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
	hash  = "5a0b7e8f9c1d2e3f4a5b6c7d8e9f0a1b" // a static pod's uid
	v1Top = "9:name=systemd:/\n4:memory:/\n"   // what a hybrid host shows before the v2 line
)

// systemd and cgroupfs name a container's cgroup as the kubelet's driver
// does.
func systemd(uid, cid string) string {
	return "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice/cri-containerd-" + cid + ".scope"
}

func cgroupfs(uid, cid string) string { return "/kubepods/besteffort/pod" + uid + "/" + cid }

// entry is a fake /proc/<pid>: its cgroup file and its ns/net, a file
// whose inode stands for the namespace's. A nil field leaves the file out.
type entry struct {
	cgroup *string
	netns  *string // a name: entries with the same name share the inode
}

func v2(path string) *string { s := v1Top + "0::" + path + "\n"; return &s }
func raw(s string) *string   { return &s }

// fakeProc lays entries out under a new directory and returns it with the
// inode of each netns name.
func fakeProc(t *testing.T, entries map[string]entry) (string, map[string]uint64) {
	t.Helper()
	dir := t.TempDir()
	nsDir := filepath.Join(dir, "namespaces")
	if err := os.Mkdir(nsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	inodes := map[string]uint64{}
	for name, e := range entries {
		pdir := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Join(pdir, "ns"), 0o755); err != nil {
			t.Fatal(err)
		}
		if e.cgroup != nil {
			if err := os.WriteFile(filepath.Join(pdir, "cgroup"), []byte(*e.cgroup), 0o444); err != nil {
				t.Fatal(err)
			}
		}
		if e.netns != nil {
			target := filepath.Join(nsDir, *e.netns)
			if _, err := os.Stat(target); err != nil {
				if err := os.WriteFile(target, nil, 0o444); err != nil {
					t.Fatal(err)
				}
			}
			// As the kernel's ns/net: a link Scan follows.
			if err := os.Symlink(target, filepath.Join(pdir, "ns", "net")); err != nil {
				t.Fatal(err)
			}
			inodes[*e.netns] = inode(t, target)
		}
	}
	return dir, inodes
}

func inode(t testing.TB, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func TestScanFakeProc(t *testing.T) {
	netA, netB, host := raw("a"), raw("b"), raw("host")
	// Processes of three pods, both drivers, in no pid order, among
	// processes of no pod and entries that are not processes or not what
	// the kernel writes.
	dir, ns := fakeProc(t, map[string]entry{
		"300": {cgroup: v2(systemd(uidA, cid1)), netns: netA},
		"20":  {cgroup: v2(systemd(uidA, cid2)), netns: netA},
		"1000": {cgroup: v2("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + strings.ReplaceAll(uidA, "-", "_") +
			".slice/crio-conmon-" + cid3 + ".scope"), netns: host},
		"7":                    {cgroup: v2(cgroupfs(uidB, cid3)), netns: netB},
		"8":                    {cgroup: v2("/kubepods/pod" + hash + "/" + cid1), netns: host},
		"9":                    {cgroup: v2(systemd(uidC, cid1)), netns: host}, // a pod not asked for
		"1":                    {cgroup: v2("/init.scope"), netns: host},
		"2":                    {cgroup: v2("/system.slice/containerd.service"), netns: host},
		"10":                   {netns: netA},                                                                                  // exited before its cgroup was read
		"11":                   {cgroup: v2(systemd(uidA, cid1))},                                                              // exited before its namespace was read (a zombie)
		"12":                   {cgroup: raw(v1Top), netns: netA},                                                              // no cgroup v2 line
		"13":                   {cgroup: raw("0::" + systemd(uidA, cid1)), netns: netA},                                        // no newline: still the kernel's line
		"14":                   {cgroup: raw("0::kubepods.slice/" + systemd(uidA, cid1)[1:]), netns: netA},                     // not a path
		"15":                   {cgroup: raw(strings.Repeat("x", 70<<10) + "\n0::" + systemd(uidA, cid1) + "\n"), netns: netA}, // longer than any kernel's
		"16":                   {cgroup: v2("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + strings.ToUpper(uidA) + ".slice"), netns: netA},
		"17":                   {cgroup: v2("/kubepods/burstable/pod" + uidA + "x/" + cid1), netns: netA},
		"18":                   {cgroup: v2("/user.slice/burstable/pod" + uidA + "/" + cid1), netns: netA},
		"0012":                 {cgroup: v2(systemd(uidA, cid1)), netns: netA}, // not a pid the kernel writes
		"+19":                  {cgroup: v2(systemd(uidA, cid1)), netns: netA},
		"-19":                  {cgroup: v2(systemd(uidA, cid1)), netns: netA},
		"0":                    {cgroup: v2(systemd(uidA, cid1)), netns: netA},
		"99999999999999999999": {cgroup: v2(systemd(uidA, cid1)), netns: netA},
		"self":                 {cgroup: v2(systemd(uidA, cid1)), netns: netA},
	})
	// A pid that is a file, and one that is a link to a pod's process.
	if err := os.WriteFile(filepath.Join(dir, "21"), []byte("0::"+systemd(uidA, cid1)), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "300"), filepath.Join(dir, "22")); err != nil {
		t.Fatal(err)
	}
	// A cgroup file that is a FIFO nobody writes: Scan does not wait on it.
	if err := os.MkdirAll(filepath.Join(dir, "23", "ns"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "23", "cgroup"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "namespaces", "a"), filepath.Join(dir, "23", "ns", "net")); err != nil {
		t.Fatal(err)
	}

	got, err := podproc.Scan(dir, []string{uidA, uidB, hash, "22222222-3333-4444-8555-666666666666"})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	want := map[string]podproc.Pod{
		uidA: {UID: uidA, Processes: []podproc.Process{
			{PID: 13, ContainerID: cid1, Netns: ns["a"]},
			{PID: 20, ContainerID: cid2, Netns: ns["a"]},
			{PID: 300, ContainerID: cid1, Netns: ns["a"]},
			{PID: 1000, Netns: ns["host"]},
		}},
		uidB: {UID: uidB, Processes: []podproc.Process{{PID: 7, ContainerID: cid3, Netns: ns["b"]}}},
		hash: {UID: hash, Processes: []podproc.Process{{PID: 8, ContainerID: cid1, Netns: ns["host"]}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Scan (-want +got):\n%s", diff)
	}
	if pid, ok := got[uidA].NetnsPID(ns["host"]); pid != 13 || !ok {
		t.Errorf("pod A NetnsPID = %d, %v; want 13, true (not CRI-O's monitor, in the node's namespace)", pid, ok)
	}
	if pid, ok := got[hash].NetnsPID(ns["host"]); ok {
		t.Errorf("static pod in the node's namespace: NetnsPID = %d, true; want false", pid)
	}
}

func TestScanInvalidUID(t *testing.T) {
	cases := map[string]string{
		"empty":                "",
		"upper case":           strings.ToUpper(uidA),
		"systemd's escaping":   strings.ReplaceAll(uidA, "-", "_"),
		"braces":               "{" + uidA + "}",
		"short":                "0f5b2c1e-1234-4abc-8def",
		"a path":               "../" + uidA,
		"a cgroup's name":      "pod" + uidA,
		"with a newline":       uidA + "\n",
		"not hex":              "0f5b2c1e-1234-4abc-8def-0123456789ag",
		"static hash too long": hash + "0",
	}
	for name, uid := range cases {
		t.Run(name, func(t *testing.T) {
			// procDir does not exist: the uid is refused before anything is read.
			_, err := podproc.Scan(filepath.Join(t.TempDir(), "absent"), []string{uidA, uid})
			if !errors.Is(err, podproc.ErrInvalidPodUID) {
				t.Fatalf("Scan(%q) = %v; want ErrInvalidPodUID", uid, err)
			}
			if want := "pod uid " + quote(uid); !strings.Contains(err.Error(), want) {
				t.Errorf("Scan(%q) = %q; want it to name %s", uid, err, want)
			}
		})
	}
}

func quote(s string) string { return strings.ReplaceAll(`"`+s+`"`, "\n", `\n`) }

func TestScanProcDir(t *testing.T) {
	absent := filepath.Join(t.TempDir(), "absent")
	if _, err := podproc.Scan(absent, []string{uidA}); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), absent) {
		t.Errorf("Scan of a missing proc dir = %v; want ErrNotExist naming it", err)
	}
	got, err := podproc.Scan(absent, nil)
	if err != nil || len(got) != 0 {
		t.Errorf("Scan for no uids = %v, %v; want nothing read, no error", got, err)
	}
	empty := t.TempDir()
	got, err = podproc.Scan(empty, []string{uidA, uidA})
	if err != nil || len(got) != 0 {
		t.Errorf("Scan of an empty proc dir = %v, %v; want no pods", got, err)
	}
}
