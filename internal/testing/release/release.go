package release

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Previous is the release before this tree: the upgrade and skew tests run
// it against the current code.
const Previous = "v0.1.0"

// Known holds the commit of each release the tests name, so that a clone
// without tags (a CI checkout often fetches none) still finds the release
// by its commit. A tag that names another commit is refused: the release
// would not be the one the tests were written against.
var Known = map[string]string{
	"v0.1.0": "7c17e1163a5e4f918addda640a52dffc047c4233",
}

// Build returns a directory holding the commands pkgs (package paths in
// the module, e.g. "./cmd/bpfd"; each binary is named after its last
// element) built from the repository's source at ref, a tag or commit. The
// binaries are cached under bin/release/<commit>/ in the repository, so
// that only the first test run builds them; concurrent test processes wait
// for one build. tb fails when ref is not in the repository.
func Build(tb testing.TB, ref string, pkgs ...string) string {
	tb.Helper()
	return BuildWith(tb, ref, nil, pkgs...)
}

// BuildWith is Build with extra files (path in the module to content)
// added to the source at ref before building, e.g. a small program that
// calls that release's packages. The cache is keyed by the extra files too.
func BuildWith(tb testing.TB, ref string, extra map[string][]byte, pkgs ...string) string {
	tb.Helper()
	root := RepoRoot(tb)
	commit := Commit(tb, ref)
	key := commit
	if len(extra) > 0 {
		key += "+" + extraSum(extra)
	}
	cache := filepath.Join(root, "bin", "release")
	dir := filepath.Join(cache, key)
	if built(dir, pkgs) {
		return dir
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		tb.Fatal(err)
	}
	unlock, err := lock(filepath.Join(cache, ".lock"))
	if err != nil {
		tb.Fatal(err)
	}
	defer unlock()
	if built(dir, pkgs) { // another process built it meanwhile
		return dir
	}
	start := time.Now()
	if err := build(root, commit, extra, dir, pkgs); err != nil {
		tb.Fatalf("build %s of %s (%s): %v", strings.Join(pkgs, " "), ref, commit[:12], err)
	}
	tb.Logf("built %s of %s (%s) in %s, cached in %s", strings.Join(pkgs, " "), ref, commit[:12], time.Since(start).Round(100*time.Millisecond), dir)
	return dir
}

// Current builds pkgs from the working tree, as `make build` does, into a
// directory removed when tb ends. Nothing is cached: the tree may have
// changed since the last run.
func Current(tb testing.TB, pkgs ...string) string {
	tb.Helper()
	dir := tb.TempDir()
	start := time.Now()
	if err := CurrentInto(dir, pkgs...); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("built %s in %s", strings.Join(pkgs, " "), time.Since(start).Round(100*time.Millisecond))
	return dir
}

// CurrentInto is Current into dir, for a package that builds once for all
// its tests.
func CurrentInto(dir string, pkgs ...string) error {
	out, err := git("", "rev-parse", "--show-toplevel")
	if err != nil {
		return err
	}
	return goBuild(strings.TrimSpace(string(out)), dir, pkgs)
}

// RepoRoot returns the top of the git work tree the test runs in.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	out, err := git("", "rev-parse", "--show-toplevel")
	if err != nil {
		tb.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// Commit returns the commit ref names: the tag or commit ref, or for a
// release in Known whose tag the clone lacks, the release's commit. tb
// fails when there is none, or when the tag names another commit than
// Known's.
func Commit(tb testing.TB, ref string) string {
	tb.Helper()
	commit, err := Resolve("", ref, Known)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	return commit
}

// Resolve returns the commit ref names in the repository at dir ("" for
// the working directory's), falling back to known[ref] when the repository
// has no such tag.
func Resolve(dir, ref string, known map[string]string) (string, error) {
	want, isKnown := known[ref]
	out, err := git(dir, "rev-parse", "--verify", "--quiet", ref+"^{commit}")
	if err == nil {
		got := strings.TrimSpace(string(out))
		if isKnown && got != want {
			return "", fmt.Errorf("release %s: the tag names commit %s, the release is %s (a moved tag?)", ref, short(got), short(want))
		}
		return got, nil
	}
	if !isKnown {
		return "", fmt.Errorf("%s is not a tag or commit of this repository (a clone without tags? git fetch --tags)", ref)
	}
	if _, err := git(dir, "rev-parse", "--verify", "--quiet", want+"^{commit}"); err != nil {
		return "", fmt.Errorf("release %s: neither its tag nor its commit %s is in this repository (a shallow clone? git fetch --unshallow --tags)", ref, short(want))
	}
	return want, nil
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

// Source returns the file at path in the repository's source at ref.
func Source(tb testing.TB, ref, path string) []byte {
	tb.Helper()
	out, err := git("", "show", Commit(tb, ref)+":"+path)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// Files returns the paths of the files in directory dir (a path in the
// repository, e.g. "config/crd/bases") in the source at ref, sorted.
func Files(tb testing.TB, ref, dir string) []string {
	tb.Helper()
	out, err := git("", "ls-tree", "--full-tree", "--name-only", "-z", Commit(tb, ref)+":"+dir)
	if err != nil {
		tb.Fatal(err)
	}
	var files []string
	for _, name := range strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		if name != "" {
			files = append(files, path.Join(dir, name))
		}
	}
	slices.Sort(files)
	return files
}

func git(dir string, args ...string) ([]byte, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// built reports whether dir holds every binary of pkgs.
func built(dir string, pkgs []string) bool {
	for _, p := range pkgs {
		if st, err := os.Stat(filepath.Join(dir, path.Base(p))); err != nil || !st.Mode().IsRegular() {
			return false
		}
	}
	return true
}

func extraSum(extra map[string][]byte) string {
	h := sha256.New()
	names := make([]string, 0, len(extra))
	for name := range extra {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(extra[name]))
		h.Write(extra[name])
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// lock takes an exclusive lock on the file at path, waiting for it.
func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// build extracts the source at commit, adds extra, builds pkgs and moves
// the binaries to dir.
func build(root, commit string, extra map[string][]byte, dir string, pkgs []string) error {
	work, err := os.MkdirTemp(filepath.Dir(dir), ".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	src := filepath.Join(work, "src")
	if err := extract(root, commit, src); err != nil {
		return err
	}
	for name, content := range extra {
		p := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			return err
		}
	}
	out := filepath.Join(work, "bin")
	if err := goBuild(src, out, pkgs); err != nil {
		return err
	}
	return os.Rename(out, dir)
}

// extract writes the tree of commit into dir, as git archive gives it.
func extract(root, commit, dir string) error {
	cmd := exec.Command("git", "archive", "--format=tar", commit)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	terr := untar(stdout, dir)
	io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("git archive %s: %v: %s", commit, err, strings.TrimSpace(stderr.String()))
	}
	return terr
}

func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(filepath.FromSlash(h.Name))
		if !filepath.IsLocal(name) {
			return fmt.Errorf("archive entry %q: outside the tree", h.Name)
		}
		p := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, os.FileMode(h.Mode).Perm())
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(h.Linkname, p); err != nil {
				return err
			}
		}
	}
}

// goBuild builds pkgs of the module in src into out, static and without
// local paths, with the module cache this machine has (no go.work, no
// toolchain switch).
func goBuild(src, out string, pkgs []string) error {
	args := append([]string{"build", "-trimpath", "-o", out + "/"}, pkgs...)
	cmd := exec.Command(goTool(), args...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOTOOLCHAIN=local", "GOFLAGS=-mod=readonly -buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

// goTool returns the go command that runs the tests.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}
