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
