package testutil

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestPodCgroupsShareKubeletCgroups: tests that make pod cgroups in the
// same shared kubelet cgroups at once each get theirs, even while others
// remove the shared ones on their way out; the last out removes what tests
// made, and a shared cgroup that was there before them (a kubelet's) stays.
func TestPodCgroupsShareKubeletCgroups(t *testing.T) {
	RequirePrivileged(t)
	shared := []string{"kubepods", "burstable"}
	for name, existing := range map[string]bool{"made by the tests": false, "a kubelet's": true} {
		t.Run(name, func(t *testing.T) {
			root := NewCgroup(t)
			kubepods := filepath.Join(root, "kubepods")
			if existing {
				if err := os.Mkdir(kubepods, 0o755); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Remove(kubepods) })
			}
			t.Run("pods", func(t *testing.T) {
				for w := range 4 {
					t.Run(strconv.Itoa(w), func(t *testing.T) {
						t.Parallel()
						for i := range 25 {
							t.Run(strconv.Itoa(i), func(t *testing.T) {
								dir := makePodCgroup(t, root, shared, []string{"pod" + randomUUID(), randomHex(64)})
								if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
									t.Fatalf("pod cgroup %s: %v", dir, err)
								}
							})
						}
					})
				}
			})
			_, err := os.Stat(kubepods)
			if existing && err != nil {
				t.Errorf("the kubelet's %s was removed: %v", kubepods, err)
			}
			if !existing && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s left behind: %v", kubepods, err)
			}
			if _, err := os.Stat(filepath.Join(kubepods, "burstable")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s/burstable left behind: %v", kubepods, err)
			}
		})
	}
}
