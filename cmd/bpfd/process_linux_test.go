package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/bpfd-dev/bpfd/internal/testing/testimage"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/verify"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

var bytecodeDir, _ = filepath.Abs(filepath.Join("..", "..", "bytecode"))

// node is the directories of a bpfd run by the tests as its own process,
// with a key and signed artifacts.
type node struct {
	dir, socket, state, bpffs, policy, images string
	key                                       *testimage.Key
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
		images: filepath.Join(dir, "images"),
	}
	var err error
	if n.key, err = testimage.NewKey(dir, "key"); err != nil {
		t.Fatal(err)
	}
	n.trust(t, n.key)
	if err := os.WriteFile(filepath.Join(dir, "bpfd.yaml"), []byte("apiVersion: bpfd.io/v1alpha1\nkind: DaemonConfig\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(n.bpffs, unix.MNT_DETACH) })
	return n
}

// trust writes a policy trusting key for the node's images.
func (n *node) trust(t *testing.T, key *testimage.Key) {
	t.Helper()
	if err := testimage.WritePolicy(n.policy, testimage.Rule{Name: "images", Images: []string{"oci:" + n.images + "/**"}, Keys: []string{key.PubFile}}); err != nil {
		t.Fatal(err)
	}
}

// image builds and signs an artifact of the objects; it returns its
// reference by digest.
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

// bpfd is a bpfd process: this test binary running main.
type bpfd struct {
	cmd  *exec.Cmd
	done chan struct{}

	mu    sync.Mutex
	lines []string
}

// start runs bpfd on the node's directories, with extra flags, and waits
// for its READY=1 on the notify socket.
func (n *node) start(t *testing.T, flags ...string) *bpfd {
	t.Helper()
	b, ready := n.launch(t, flags...)
	b.waitReady(t, ready)
	return b
}

// waitReady waits for the message launch's channel delivers, READY=1.
func (b *bpfd) waitReady(t *testing.T, ready <-chan string) {
	t.Helper()
	select {
	case msg := <-ready:
		if msg != "READY=1" {
			select {
			case <-b.done:
			case <-time.After(10 * time.Second):
			}
			t.Fatalf("notify socket: %q, want READY=1; bpfd log:\n%s", msg, b.log())
		}
	case <-b.done:
		t.Fatalf("bpfd exited at start (%v):\n%s", b.cmd.ProcessState, b.log())
	}
}

// launch runs bpfd on the node's directories, with extra flags; the
// channel delivers the first message on its notify socket.
func (n *node) launch(t *testing.T, flags ...string) (*bpfd, <-chan string) {
	t.Helper()
	notifyPath := filepath.Join(n.dir, "notify-"+testutil.RandomSuffix(6))
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}

	args := []string{"--socket", n.socket, "--state-dir", n.state, "--bpffs", n.bpffs,
		"--policy", n.policy, "--config", filepath.Join(n.dir, "bpfd.yaml"), "--log-level", "debug"}
	cmd := exec.Command(os.Args[0], append(args, flags...)...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "NOTIFY_SOCKET="+notifyPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	b := &bpfd{cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			b.mu.Lock()
			b.lines = append(b.lines, sc.Text())
			b.mu.Unlock()
		}
		cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-b.done
	})

	ready := make(chan string, 1)
	go func() {
		defer notify.Close()
		buf := make([]byte, 256)
		notify.SetReadDeadline(time.Now().Add(30 * time.Second))
		m, _, err := notify.ReadFrom(buf)
		if err != nil {
			ready <- err.Error()
			return
		}
		ready <- string(buf[:m])
	}()
	return b, ready
}

func (b *bpfd) log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

// waitLog waits for a log line containing s.
func (b *bpfd) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.log(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q; log:\n%s", s, b.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends sig and returns the exit status once bpfd exited.
func (b *bpfd) stop(t *testing.T, sig syscall.Signal) *os.ProcessState {
	t.Helper()
	b.cmd.Process.Signal(sig)
	select {
	case <-b.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("bpfd still running 30s after %v:\n%s", sig, b.log())
	}
	return b.cmd.ProcessState
}

func (n *node) client(t *testing.T) (pb.BpfdClient, func()) {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+n.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	return pb.NewBpfdClient(conn), func() { conn.Close() }
}

func tracepoint(tp string) *pb.LoadProgram {
	return &pb.LoadProgram{Name: "tracepoint_counter", Type: pb.ProgramType_PROGRAM_TYPE_TRACEPOINT, Attach: &pb.AttachSpec{Spec: &pb.AttachSpec_Tracepoint{Tracepoint: &pb.TracepointAttach{Tracepoint: tp}}}}
}

// TestSignals runs bpfd as a process: READY=1 once it serves; SIGHUP with
// an invalid policy keeps the policy in force and says so; SIGHUP with a
// valid one applies it; SIGTERM stops bpfd, exit 0, with the programs still
// loaded and working; the next start adopts them.
func TestSignals(t *testing.T) {
	n := newNode(t)
	ref := n.image(t, "tracepoint", "tracepoint_counter.bpf.o")
	b := n.start(t)
	client, closeClient := n.client(t)
	ctx := context.Background()

	resp, err := client.Load(ctx, &pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: ref}, Programs: []*pb.LoadProgram{tracepoint("syscalls/sys_enter_openat")}})
	if err != nil {
		t.Fatalf("Load: %v\n%s", err, b.log())
	}
	p := resp.GetPrograms()[0]

	if err := os.WriteFile(n.policy, []byte("apiVersion: bpfd.io/v1alpha1\nkind: TrustPolicy\nrules: [{name: x}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.cmd.Process.Signal(syscall.SIGHUP)
	b.waitLog(t, "TRUST POLICY NOT RELOADED")
	if _, err := client.PullImage(ctx, &pb.PullImageRequest{Bytecode: &pb.Bytecode{Reference: ref}}); err != nil {
		t.Errorf("pull under the policy kept in force: %v", err)
	}

	other, err := testimage.NewKey(n.dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	n.trust(t, other)
	b.cmd.Process.Signal(syscall.SIGHUP)
	b.waitLog(t, "trust policy reloaded")
	_, err = client.PullImage(ctx, &pb.PullImageRequest{Bytecode: &pb.Bytecode{Reference: ref}})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("pull after trusting another key: %v, want PermissionDenied", err)
	}
	closeClient()

	if st := b.stop(t, syscall.SIGTERM); st.ExitCode() != 0 {
		t.Fatalf("exit after SIGTERM: %v\n%s", st, b.log())
	}
	if _, err := os.Stat(n.socket); !os.IsNotExist(err) {
		t.Errorf("socket left after SIGTERM: %v", err)
	}
	// The program outlives bpfd, pinned, and keeps counting.
	counts, err := ebpf.LoadPinnedMap(filepath.Join(p.GetPinPath(), "maps", "openat_calls"), nil)
	if err != nil {
		t.Fatalf("map pin after SIGTERM: %v", err)
	}
	defer counts.Close()
	pid := uint32(os.Getpid())
	var before, after uint64
	counts.Lookup(pid, &before)
	for range 10 {
		f, _ := os.Open("/proc/self/stat")
		f.Close()
	}
	if err := counts.Lookup(pid, &after); err != nil || after < before+10 {
		t.Errorf("openat counted %d then %d (%v): the program stopped with bpfd", before, after, err)
	}

	n.trust(t, n.key)
	b = n.start(t)
	client, closeClient = n.client(t)
	defer closeClient()
	got, err := client.Get(ctx, &pb.GetRequest{Id: p.GetId()})
	if err != nil || got.GetProgram().GetKernel().GetProgramId() != p.GetKernel().GetProgramId() {
		t.Fatalf("Get after restart: %v, %v; want the same kernel program", got, err)
	}
	if _, err := client.Unload(ctx, &pb.UnloadRequest{Ids: []uint64{p.GetId()}}); err != nil {
		t.Fatal(err)
	}
	if st := b.stop(t, syscall.SIGINT); st.ExitCode() != 0 {
		t.Errorf("exit after SIGINT: %v", st)
	}
}

// TestSIGHUPDuringStart sends SIGHUP to bpfd while it starts, from its first
// log line (the policy is read) until it serves, after replacing the
// policy: bpfd neither dies nor loses the signal, and serves under the new
// policy.
func TestSIGHUPDuringStart(t *testing.T) {
	n := newNode(t)
	ref := n.image(t, "tracepoint", "tracepoint_counter.bpf.o")
	other, err := testimage.NewKey(n.dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	b, ready := n.launch(t)
	deadline := time.Now().Add(30 * time.Second)
	for b.log() == "" {
		select {
		case <-b.done:
			t.Fatalf("bpfd exited at start (%v):\n%s", b.cmd.ProcessState, b.log())
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("bpfd logged nothing in 30s")
		}
	}
	n.trust(t, other)
	sent := 0
	for served := false; !served; {
		b.cmd.Process.Signal(syscall.SIGHUP)
		sent++
		select {
		case msg := <-ready:
			if msg != "READY=1" {
				t.Fatalf("notify socket: %q, want READY=1; bpfd log:\n%s", msg, b.log())
			}
			served = true
		case <-b.done:
			t.Fatalf("bpfd died of a SIGHUP during start (%v, after %d signals):\n%s", b.cmd.ProcessState, sent, b.log())
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("bpfd not ready in 30s:\n%s", b.log())
		}
	}
	t.Logf("%d SIGHUPs sent during start", sent)
	b.waitLog(t, "trust policy reloaded")

	client, closeClient := n.client(t)
	defer closeClient()
	_, err = client.PullImage(context.Background(), &pb.PullImageRequest{Bytecode: &pb.Bytecode{Reference: ref}})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("pull of an artifact the new policy does not trust: %v, want PermissionDenied", err)
	}
	if st := b.stop(t, syscall.SIGTERM); st.ExitCode() != 0 {
		t.Errorf("exit after SIGTERM: %v\n%s", st, b.log())
	}
}
