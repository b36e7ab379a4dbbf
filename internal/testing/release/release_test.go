package release_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/release"
)

// TestBuild builds the previous release's bpfctl with a program of its
// own added: both run, and a second Build is the cached directory, as it
// was.
func TestBuild(t *testing.T) {
	extra := map[string][]byte{"hack/releasetest/main.go": []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"built at the tag\") }\n")}
	dir := release.BuildWith(t, release.Previous, extra, "./cmd/bpfctl", "./hack/releasetest")
	out, err := exec.Command(filepath.Join(dir, "releasetest")).Output()
	if err != nil || strings.TrimSpace(string(out)) != "built at the tag" {
		t.Fatalf("the added program: %q, %v", out, err)
	}
	if out, err := exec.Command(filepath.Join(dir, "bpfctl"), "--help").CombinedOutput(); err != nil || !strings.Contains(string(out), "bpfctl") {
		t.Fatalf("bpfctl --help: %v\n%s", err, out)
	}
	st, err := os.Stat(filepath.Join(dir, "bpfctl"))
	if err != nil {
		t.Fatal(err)
	}
	again := release.BuildWith(t, release.Previous, extra, "./cmd/bpfctl", "./hack/releasetest")
	st2, err := os.Stat(filepath.Join(again, "bpfctl"))
	if again != dir || err != nil || !st2.ModTime().Equal(st.ModTime()) {
		t.Errorf("second build: %s (%v), want the cached %s untouched", again, err, dir)
	}
	if !strings.Contains(dir, release.Commit(t, release.Previous)) {
		t.Errorf("cache dir %s is not keyed by the release's commit", dir)
	}
}

// TestCommitOfUnknownTag fails a test that names a tag the repository
// lacks, rather than skipping it.
func TestCommitOfUnknownTag(t *testing.T) {
	ft := &fakeTB{TB: t}
	func() {
		defer func() { recover() }()
		release.Commit(ft, "v0.0.0-no-such-tag")
	}()
	if !ft.failed || !strings.Contains(ft.msg, "v0.0.0-no-such-tag") {
		t.Errorf("Commit of an unknown tag: failed %v, %q", ft.failed, ft.msg)
	}
}

// TestResolve finds a release by its tag, or by its known commit in a
// clone without the tag, and refuses a tag that names another commit, and
// a ref the repository lacks, naming it.
func TestResolve(t *testing.T) {
	repo := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.invalid", "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("init", "-q")
	run("commit", "-q", "--allow-empty", "-m", "one")
	first := run("rev-parse", "HEAD")
	run("commit", "-q", "--allow-empty", "-m", "two")
	second := run("rev-parse", "HEAD")
	run("tag", "v1.0.0", first)
	run("tag", "v2.0.0", second)
	const absent = "0123456789abcdef0123456789abcdef01234567"
	known := map[string]string{"v1.0.0": first, "v2.0.0": first, "v3.0.0": second, "v4.0.0": absent}
	for _, tc := range []struct {
		name, ref, want, err string
	}{
		{name: "tag", ref: "v1.0.0", want: first},
		{name: "commit", ref: second, want: second},
		{name: "unknown tag in the repository", ref: "HEAD", want: second},
		{name: "known release without its tag", ref: "v3.0.0", want: second},
		{name: "tag moved", ref: "v2.0.0", err: "the tag names commit " + second[:12] + ", the release is " + first[:12]},
		{name: "known release, commit absent", ref: "v4.0.0", err: "neither its tag nor its commit 0123456789ab"},
		{name: "unknown ref", ref: "v9.9.9", err: "v9.9.9 is not a tag or commit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := release.Resolve(repo, tc.ref, known)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Resolve(%s) = %s, %v; want an error with %q", tc.ref, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Resolve(%s) = %s, %v; want %s", tc.ref, got, err, tc.want)
			}
		})
	}
}

// TestPreviousWithoutTags resolves the previous release in clones of this
// repository as CI may make them: without tags it is the known commit; a
// shallow clone, which has not got it, is told to fetch it.
func TestPreviousWithoutTags(t *testing.T) {
	root := release.RepoRoot(t)
	clone := func(args ...string) string {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "clone")
		cmd := exec.Command("git", append(append([]string{"clone", "-q", "--no-tags", "--no-checkout"}, args...), "file://"+root, dir)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git clone: %v\n%s", err, out)
		}
		if out, err := exec.Command("git", "-C", dir, "tag", "-l").Output(); err != nil || len(out) != 0 {
			t.Fatalf("the clone has tags %q (%v)", out, err)
		}
		return dir
	}
	got, err := release.Resolve(clone(), release.Previous, release.Known)
	if err != nil || got != release.Known[release.Previous] {
		t.Errorf("without tags: %s, %v; want %s", got, err, release.Known[release.Previous])
	}
	if _, err := release.Resolve(clone("--depth=1"), release.Previous, release.Known); err == nil || !strings.Contains(err.Error(), "shallow") {
		t.Errorf("shallow clone: %v; want an error saying to fetch", err)
	}
	// The tag, where the repository has it, names the known commit.
	if got := release.Commit(t, release.Previous); got != release.Known[release.Previous] {
		t.Errorf("Commit(%s) = %s, want %s", release.Previous, got, release.Known[release.Previous])
	}
}

// fakeTB records a Fatalf and stops the caller by panicking.
type fakeTB struct {
	testing.TB
	failed bool
	msg    string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = true
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}

// TestFiles lists a directory as the previous release had it.
func TestFiles(t *testing.T) {
	files := release.Files(t, release.Previous, "config/crd/bases")
	want := []string{"config/crd/bases/bpfd.io_bpfprogramconfigs.yaml", "config/crd/bases/bpfd.io_bpfprograms.yaml"}
	if strings.Join(files, " ") != strings.Join(want, " ") {
		t.Errorf("Files = %q, want %q", files, want)
	}
	if got := release.Source(t, release.Previous, files[0]); !strings.Contains(string(got), "kind: CustomResourceDefinition") {
		t.Errorf("Source(%s) is not a CRD", files[0])
	}
}
