package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
)

// memoryBound is how much more than an idle bpfctl-image a copy, push or
// pull of any size may take at its peak.
const memoryBound = 64 << 20

// bigArtifactObjects are the objects of the 200 MiB artifact: real ones,
// each padded after its section headers, where ELF readers do not look, to
// bigObjectSize bytes of pseudo-random data that nothing compresses.
var bigArtifactObjects = []string{"xdp_counter", "tc_counter", "tracepoint_counter", "kprobe_counter"}

const bigObjectSize = 50 << 20

// TestCopyMemoryIsBounded moves a 200 MiB artifact layout -> registry
// (push), registry -> layout (copy) and registry -> directory (pull), each
// in a bpfctl-image process of its own, and checks that none takes more
// than memoryBound above an idle bpfctl-image at its peak (its maximum
// resident set). It logs the figures; speed is measured by `make bench`, not
// here.
func TestCopyMemoryIsBounded(t *testing.T) {
	reg := testutil.StartRegistry(t)
	dir := t.TempDir()
	layout := "oci:" + filepath.Join(dir, "layout") + ":v1"
	root := buildBigArtifact(t, layout)
	remote := reg.Host + "/big/bytecode:v1"

	idle := measureChild(t, dir, "--help")
	t.Logf("idle bpfctl-image: peak RSS %s", mib(idle.peak))
	for _, step := range []struct {
		name string
		args []string
	}{
		{"push layout -> registry", []string{"push", layout, remote}},
		{"copy registry -> layout", []string{"copy", remote, "oci:" + filepath.Join(dir, "audit") + ":v1"}},
		{"pull registry -> directory", []string{"pull", "--platform", "linux/amd64", "--dest", filepath.Join(dir, "pulled"), remote}},
	} {
		m := measureChild(t, dir, step.args...)
		if !strings.Contains(m.stdout, root.String()) && !strings.Contains(m.stdout, "pulled") {
			t.Errorf("%s: output %q names neither the artifact nor the files", step.name, m.stdout)
		}
		t.Logf("%s of %s: peak RSS %s (%s above idle) in %s", step.name, mib(4*bigObjectSize), mib(m.peak), mib(m.peak-idle.peak), m.took.Round(time.Millisecond))
		if m.peak-idle.peak > memoryBound {
			t.Errorf("%s: peak RSS %s, more than %s above idle (%s)", step.name, mib(m.peak), mib(memoryBound), mib(idle.peak))
		}
	}
	for _, name := range bigArtifactObjects {
		info, err := os.Stat(filepath.Join(dir, "pulled", name+".bpf.o"))
		if err != nil || info.Size() != bigObjectSize {
			t.Errorf("pulled %s: %v, want %d bytes", name, err, bigObjectSize)
		}
	}
}

// buildBigArtifact builds the 200 MiB artifact into the layout ref.
func buildBigArtifact(t *testing.T, ref string) fmt.Stringer {
	t.Helper()
	var objects []artifact.ObjectFile
	for _, name := range bigArtifactObjects {
		data, err := os.ReadFile(object(name))
		if err != nil {
			t.Fatal(err)
		}
		padded := make([]byte, bigObjectSize)
		seed := sha256.Sum256([]byte(name))
		rand.NewChaCha8(seed).Read(padded)
		copy(padded, data)
		objects = append(objects, artifact.ObjectFile{Name: name + ".bpf.o", Data: padded})
	}
	r, err := artifact.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dst, err := artifact.Open(ctx, r, artifact.OpenOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	root, err := artifact.Build(ctx, dst, objects, artifact.BuildOptions{Tool: "test"})
	if err == nil {
		err = dst.Tag(ctx, root, r.Tag)
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return root.Digest
}

// childRun is what one bpfctl-image process took.
type childRun struct {
	peak   int64 // maximum resident set, bytes
	took   time.Duration
	stdout string
}

// measureChild runs bpfctl-image (this test binary, as main) with args in a
// process of its own and returns its peak resident set: VmHWM, which the
// process reports as it exits. (The rusage of a child counts the memory of
// the parent it was forked from.)
func measureChild(t *testing.T, home string, args ...string) childRun {
	t.Helper()
	var stdout, stderr bytes.Buffer
	status := filepath.Join(t.TempDir(), "status")
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), asMainEnv+"="+status, "HOME="+home, "DOCKER_CONFIG="+home)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("bpfctl-image %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	took := time.Since(start)
	data, err := os.ReadFile(status)
	if err != nil {
		t.Fatal(err)
	}
	var kib int64
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kib); err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
		}
	}
	if kib == 0 {
		t.Fatalf("no VmHWM in the child's status:\n%s", data)
	}
	return childRun{peak: kib << 10, took: took, stdout: stdout.String()}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
