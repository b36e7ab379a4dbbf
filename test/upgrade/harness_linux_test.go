package upgrade

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bpfd-dev/bpfd/internal/testing/apicontract"
	"github.com/bpfd-dev/bpfd/internal/testing/release"
	"github.com/bpfd-dev/bpfd/internal/testing/testimage"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/verify"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// shared holds this tree's binaries, built once for all the tests.
var shared struct {
	dir  string
	once sync.Once
	took time.Duration
	err  error
}

func TestMain(m *testing.M) {
	if apicontract.HelperMain() {
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "bpfd-upgrade-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared.dir = dir
	code := testutil.LeakCheckRun(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// versions are the binaries of the previous release and of this tree.
type versions struct {
	old, cur string // directories holding bpfd and bpfctl
}

// buildVersions builds (or finds cached) bpfd and bpfctl of the previous
// release, and this tree's (once per test binary).
func buildVersions(t *testing.T) versions {
	t.Helper()
	return versions{old: release.Build(t, release.Previous, "./cmd/bpfd", "./cmd/bpfctl"), cur: currentBins(t)}
}

// currentBins returns the directory of this tree's bpfd and bpfctl.
func currentBins(t *testing.T) string {
	t.Helper()
	shared.once.Do(func() {
		start := time.Now()
		shared.err = release.CurrentInto(shared.dir, "./cmd/bpfd", "./cmd/bpfctl")
		shared.took = time.Since(start)
		t.Logf("built this tree's bpfd and bpfctl in %s", shared.took.Round(100*time.Millisecond))
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.dir
}

var bytecodeDir = filepath.Join(repoRoot(), "bytecode")

func repoRoot() string {
	dir, _ := os.Getwd()
	return filepath.Join(dir, "..", "..")
}

// node is the directories one bpfd after another runs on, as a node's
// host paths are: the state dir (with the cache), the bpffs, the socket,
// and a trust policy trusting the key the node's artifacts are signed with.
type node struct {
	dir, socket, state, bpffs, policy, config, images string
	key                                               *testimage.Key
}

func newNode(t *testing.T) *node {
	t.Helper()
	testutil.RequirePrivileged(t)
	dir := t.TempDir()
	n := &node{
		dir:    dir,
		socket: filepath.Join(dir, "bpfd.sock"),
		state:  filepath.Join(dir, "state"),
		bpffs:  filepath.Join(dir, "bpffs"),
		policy: filepath.Join(dir, "policy.yaml"),
		config: filepath.Join(dir, "bpfd.yaml"),
		images: filepath.Join(dir, "images"),
	}
	var err error
	if n.key, err = testimage.NewKey(dir, "key"); err != nil {
		t.Fatal(err)
	}
	if err := testimage.WritePolicy(n.policy, testimage.Rule{Name: "images", Images: []string{"oci:" + n.images + "/**"}, Keys: []string{n.key.PubFile}}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.config, []byte("apiVersion: bpfd.io/v1alpha1\nkind: DaemonConfig\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(n.bpffs, unix.MNT_DETACH) })
	return n
}

// image builds and signs an artifact of the objects of bytecode/ and
// returns its reference by digest.
func (n *node) image(t *testing.T, name string, objects ...string) string {
	t.Helper()
	var paths []string
	for _, o := range objects {
		paths = append(paths, filepath.Join(bytecodeDir, o))
	}
	ref, err := testimage.Build(context.Background(), "oci:"+filepath.Join(n.images, name)+":v1", paths...)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.key.Sign(context.Background(), ref, verify.FormatBundle); err != nil {
		t.Fatal(err)
	}
	return ref
}

// bpfd is a bpfd process.
type bpfd struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}

	mu    sync.Mutex
	lines []string
}

// launch runs the bpfd binary in dir on the node; the channel delivers the
// first message on its notify socket.
func (n *node) launch(t *testing.T, dir string, flags ...string) (*bpfd, <-chan string) {
	t.Helper()
	notifyPath := filepath.Join(n.dir, "notify-"+testutil.RandomSuffix(6))
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--socket", n.socket, "--state-dir", n.state, "--bpffs", n.bpffs,
		"--policy", n.policy, "--config", n.config, "--log-level", "debug"}, flags...)
	name := "bpfd of this tree"
	if dir != shared.dir {
		name = "bpfd built in " + dir
	}
	b := &bpfd{name: name, cmd: exec.Command(filepath.Join(dir, "bpfd"), args...), done: make(chan struct{})}
	b.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notifyPath)
	stderr, err := b.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			b.mu.Lock()
			b.lines = append(b.lines, sc.Text())
			b.mu.Unlock()
		}
		b.cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() {
		notify.Close() // unblocks the read below when bpfd never said READY=1
		b.cmd.Process.Kill()
		<-b.done
		if t.Failed() {
			t.Logf("log of %s (pid %d):\n%s", b.name, b.cmd.Process.Pid, b.log())
		}
	})
	ready := make(chan string, 1)
	go func() {
		defer notify.Close()
		buf := make([]byte, 256)
		notify.SetReadDeadline(time.Now().Add(60 * time.Second))
		m, _, err := notify.ReadFrom(buf)
		if err != nil {
			ready <- err.Error()
			return
		}
		ready <- string(buf[:m])
	}()
	return b, ready
}

// start runs the bpfd binary in dir on the node and waits until it serves
// (READY=1).
func (n *node) start(t *testing.T, dir string, flags ...string) *bpfd {
	t.Helper()
	b, ready := n.launch(t, dir, flags...)
	select {
	case msg := <-ready:
		if msg != "READY=1" {
			t.Fatalf("%s: notify socket: %q, want READY=1; log:\n%s", b.name, msg, b.log())
		}
	case <-b.done:
		t.Fatalf("%s exited at start (%v):\n%s", b.name, b.cmd.ProcessState, b.log())
	}
	return b
}

// stop sends sig and waits for bpfd to exit; after SIGTERM it must exit 0.
func (b *bpfd) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	b.cmd.Process.Signal(sig)
	select {
	case <-b.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s still running 30s after %v:\n%s", b.name, sig, b.log())
	}
	if sig == syscall.SIGTERM && b.cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("%s exited with %v after SIGTERM:\n%s", b.name, b.cmd.ProcessState, b.log())
	}
}

// wait waits for bpfd to exit by itself and returns its exit code.
func (b *bpfd) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s still running after 60s:\n%s", b.name, b.log())
	}
	return b.cmd.ProcessState.ExitCode()
}

func (b *bpfd) log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

// waitLog waits for a log line containing s.
func (b *bpfd) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(b.log(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no log line with %q; log:\n%s", b.name, s, b.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client returns a client of the node's socket, closed when t ends.
func (n *node) client(t *testing.T) pb.BpfdClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+n.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewBpfdClient(conn)
}

// bpfctl runs the bpfctl binary in dir on the node's socket and returns
// its standard output; t fails when it exits non-zero.
func (n *node) bpfctl(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(filepath.Join(dir, "bpfctl"), append([]string{"--socket", n.socket}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bpfctl %s (%s): %v\n%s%s", strings.Join(args, " "), dir, err, out, stderr.String())
	}
	return out
}

// listed is what both versions of `bpfctl list -o json` say of a program
// (the fields the previous release's output has).
type listed struct {
	ID         uint64            `json:"id"`
	Managed    bool              `json:"managed"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Metadata   map[string]string `json:"metadata"`
	MapOwnerID uint64            `json:"mapOwnerId"`
	PinPath    string            `json:"pinPath"`
	Provenance struct {
		Reference string `json:"reference"`
		Digest    string `json:"digest"`
		Signer    string `json:"signer"`
		Rule      string `json:"rule"`
	} `json:"provenance"`
	Kernel struct {
		ProgramID uint32   `json:"programId"`
		LinkIDs   []uint32 `json:"linkIds"`
		MapIDs    []uint32 `json:"mapIds"`
	} `json:"kernel"`
	Hook *struct {
		Hook     string `json:"hook"`
		Position uint32 `json:"position"`
		Priority int32  `json:"priority"`
	} `json:"hook"`
	Maps []struct {
		Name    string `json:"name"`
		ID      uint32 `json:"id"`
		PinPath string `json:"pinPath"`
	} `json:"maps"`
}

// list returns what `bpfctl list -o json` of the binary in dir says.
func (n *node) list(t *testing.T, dir string) []listed {
	t.Helper()
	var out struct {
		Programs []listed `json:"programs"`
	}
	if err := json.Unmarshal(n.bpfctl(t, dir, "list", "-o", "json"), &out); err != nil {
		t.Fatalf("bpfctl list -o json (%s): %v", dir, err)
	}
	return out.Programs
}

// mapPin returns the pin of the map name of the listed program p.
func mapPin(t *testing.T, p listed, name string) string {
	t.Helper()
	for _, m := range p.Maps {
		if m.Name == name {
			return m.PinPath
		}
	}
	t.Fatalf("program %d (%s) has no map %s: %+v", p.ID, p.Name, name, p.Maps)
	return ""
}
