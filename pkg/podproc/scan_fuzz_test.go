package podproc_test

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bpfd-dev/bpfd/pkg/podproc"
)

// FuzzScan: a process that may create cgroups names them as it likes, and
// whoever calls Scan may pass any uid. Whatever the cgroup file of a
// process and the uid asked for, Scan does not panic, refuses a uid that
// is not one with ErrInvalidPodUID, and reports the process only for a
// cgroup v2 line that names the pod, with a container id of the runtimes'
// shape.
func FuzzScan(f *testing.F) {
	for _, seed := range []struct{ cgroup, uid string }{
		{"0::" + systemd(uidA, cid1) + "\n", uidA},
		{v1Top + "0::" + cgroupfs(uidA, cid1) + "\n", uidA},
		{"0::/kubepods/pod" + hash + "/crio-conmon-" + cid1 + "\n", hash},
		{"0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + strings.ReplaceAll(uidA, "-", "_") + ".slice\n", uidA},
		{"0::/../../kubepods-burstable-pod" + strings.ReplaceAll(uidA, "-", "_") + ".slice/crio-" + cid1 + ".scope\n", uidA},
		{"0::/kubepods/burstable/pod" + uidA + "/" + cid1 + " (deleted)\n", uidA},
		{"0::kubepods/burstable/pod" + uidA + "\n", uidA},
		{"1:name=systemd:/kubepods/burstable/pod" + uidA + "/" + cid1 + "\n", uidA},
		{"0::/kubepods/burstable/pod" + uidA + "\n0::/\n", uidA},
		{"0::/\n", "pod" + uidA},
		{"", ""},
	} {
		f.Add(seed.cgroup, seed.uid)
	}
	container := regexp.MustCompile(`^(?:[0-9a-f]{64})?$`)
	f.Fuzz(func(t *testing.T, cgroup, uid string) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "42", "ns"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "42", "cgroup"), []byte(cgroup), 0o444); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "42", "ns", "net"), nil, 0o444); err != nil {
			t.Fatal(err)
		}
		pods, err := podproc.Scan(dir, []string{uid})
		if errors.Is(err, podproc.ErrInvalidPodUID) {
			return
		}
		if err != nil {
			t.Fatalf("Scan(%q) with cgroup %q: %v", uid, cgroup, err)
		}
		pod, ok := pods[uid]
		if len(pods) > 1 || len(pods) == 1 && !ok {
			t.Fatalf("Scan(%q) with cgroup %q = %+v: another pod", uid, cgroup, pods)
		}
		if !ok {
			return
		}
		if len(pod.Processes) != 1 || pod.Processes[0].PID != 42 || pod.Processes[0].Netns == 0 ||
			!container.MatchString(pod.Processes[0].ContainerID) {
			t.Fatalf("Scan(%q) with cgroup %q = %+v", uid, cgroup, pod)
		}
		if !strings.Contains(cgroup, "0::/") || !strings.Contains(cgroup, uid) && !strings.Contains(cgroup, strings.ReplaceAll(uid, "-", "_")) {
			t.Fatalf("Scan(%q) found the pod in cgroup %q, which does not name it", uid, cgroup)
		}
	})
}
