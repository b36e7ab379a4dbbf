package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set by the Makefile: -X github.com/bpfd-dev/bpfd/internal/version.version=v1.2.3
// -X github.com/bpfd-dev/bpfd/internal/version.commit=<hex>.
var (
	version string
	commit  string
)

// Unstamped is the version of a binary neither the Makefile nor a module
// download stamped (go build or go test in a work tree).
const Unstamped = "v0.0.0-unreleased"

// Info describes a binary's build.
type Info struct {
	// Version is the release, e.g. "v0.3.0" or "v0.3.0-4-g1a2b3c4-dirty"
	// from git describe; Unstamped when nothing recorded one.
	Version string `json:"version"`
	// Commit is the full commit hash ("-dirty" when the tree had changes),
	// or "unknown".
	Commit string `json:"commit"`
	// GoVersion is the Go release that built it; Platform its os/arch.
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the binary's build information.
func Get() Info {
	info := Info{Version: version, Commit: commit, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if info.Version == "" && ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version // go install module@version
	}
	if info.Commit == "" && ok {
		var revision, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if revision != "" && modified == "true" {
			revision += "-dirty"
		}
		info.Commit = revision
	}
	if info.Version == "" {
		info.Version = Unstamped
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	return info
}

// String returns "VERSION (commit SHORT)", e.g. "v0.3.0 (commit 1a2b3c4d5e6f)".
func (i Info) String() string {
	c := i.Commit
	if hex, dirty, _ := strings.Cut(c, "-"); len(hex) > 12 {
		c = hex[:12]
		if dirty != "" {
			c += "-" + dirty
		}
	}
	return fmt.Sprintf("%s (commit %s)", i.Version, c)
}
