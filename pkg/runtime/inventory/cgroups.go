package inventory

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// maxCgroupDirs bounds the cgroup directories walked to name cgroup ids.
const maxCgroupDirs = 100000

// cgroupPaths names cgroups by id: a cgroup's id is the inode number of
// its directory in the cgroup v2 hierarchy. The hierarchy is walked once,
// on the first lookup.
type cgroupPaths struct {
	byID   map[uint64]string
	walked bool
}

func newCgroupPaths() *cgroupPaths { return &cgroupPaths{} }

// path returns the cgroup's path below the cgroup v2 mount ("/" for the
// root), as /proc/<pid>/cgroup shows it; "" when not found.
func (c *cgroupPaths) path(id uint64) string {
	if !c.walked {
		c.walked = true
		c.byID = map[uint64]string{}
		if root, err := cgroup2Mount(); err == nil {
			c.walk(root)
		}
	}
	return c.byID[id]
}

func (c *cgroupPaths) walk(root string) {
	n := 0
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil // unreadable or a control file
		}
		if n++; n > maxCgroupDirs {
			return filepath.SkipAll
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return nil
		}
		c.byID[st.Ino] = filepath.Clean("/" + rel)
		return nil
	})
}

// cgroup2Mount returns where the cgroup v2 hierarchy is mounted.
func cgroup2Mount() (string, error) {
	mounts, err := readMountinfo("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	for _, m := range mounts {
		if m.fstype == "cgroup2" {
			return m.point, nil
		}
	}
	return "", os.ErrNotExist
}
