package inventory

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// mount is a line of /proc/<pid>/mountinfo.
type mount struct {
	// dev is the file system's device (major:minor) and root the
	// directory of it mounted at point.
	dev, root, point string
	fstype           string
}

// readMountinfo reads a mountinfo file.
func readMountinfo(path string) ([]mount, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseMountinfo(string(b))
}

// parseMountinfo parses mountinfo lines: "id parent major:minor root
// mountpoint options [optional...] - fstype source superoptions", with
// spaces, tabs, newlines and backslashes in paths escaped as octal.
func parseMountinfo(s string) ([]mount, error) {
	var out []mount
	for n, line := range strings.Split(s, "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 7 || sep < 0 || sep+1 >= len(f) {
			return nil, fmt.Errorf("mountinfo line %d: malformed", n+1)
		}
		out = append(out, mount{dev: f[2], root: unescapeOctal(f[3]), point: unescapeOctal(f[4]), fstype: f[sep+1]})
	}
	return out, nil
}

// unescapeOctal undoes the kernel's \ooo escapes of mountinfo paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
