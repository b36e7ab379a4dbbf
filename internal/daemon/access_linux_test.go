package daemon

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// nobody is the unprivileged user the access tests connect as.
const nobody = 65534

// TestAccess connects as an unprivileged user (a helper process running
// as nobody): the socket's mode keeps it out; with the socket open to all,
// the allowed uids decide; its peer credentials reach the audit log, for
// refused calls and reads too.
func TestAccess(t *testing.T) {
	dir := publicDir(t)
	td := newTestDaemon(t, func(c *Config) {
		c.Socket.Path = filepath.Join(dir, "bpfd.sock")
		c.Socket.AllowedUIDs = []uint32{4242}
	})
	helper := publicCopy(t, dir)

	st, err := os.Stat(td.cfg.Socket.Path)
	if err != nil || st.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v (%v), want 0660", st.Mode().Perm(), err)
	}
	if code, _ := callAs(t, helper, td.cfg.Socket.Path, "list"); code != "Unavailable" {
		t.Errorf("nobody on a 0660 root socket: %s, want Unavailable (cannot connect)", code)
	}

	if err := os.Chmod(td.cfg.Socket.Path, 0o666); err != nil {
		t.Fatal(err)
	}
	if code, msg := callAs(t, helper, td.cfg.Socket.Path, "list"); code != "PermissionDenied" || !strings.Contains(msg, "uid 65534") {
		t.Errorf("nobody not among the allowed uids: %s %s, want PermissionDenied naming the uid", code, msg)
	}
	if a := td.lastAudit(t, "list"); a["result"] != "error" || a["code"] != "PermissionDenied" || a["uid"] != float64(nobody) {
		t.Errorf("audit line of the refused list %v: want result error, code PermissionDenied, uid %d", a, nobody)
	}
	if code, _ := callAs(t, helper, td.cfg.Socket.Path, "load"); code != "PermissionDenied" {
		t.Errorf("load by nobody not among the allowed uids: %s, want PermissionDenied", code)
	}
	if a := td.lastAudit(t, "load"); a["result"] != "error" || a["code"] != "PermissionDenied" || a["uid"] != float64(nobody) {
		t.Errorf("audit line of the refused load %v: want result error, code PermissionDenied, uid %d", a, nobody)
	}
	if code, _ := callAs(t, helper, td.cfg.Socket.Path, "health"); code != "OK" {
		t.Errorf("health check by nobody: %s, want OK", code)
	}

	td.cfg.Socket.AllowedUIDs = []uint32{nobody}
	td.restart(t)
	if err := os.Chmod(td.cfg.Socket.Path, 0o666); err != nil {
		t.Fatal(err)
	}
	if code, _ := callAs(t, helper, td.cfg.Socket.Path, "list"); code != "OK" {
		t.Errorf("nobody among the allowed uids: %s, want OK", code)
	}
	if a := td.lastAudit(t, "list"); a["result"] != "ok" || a["uid"] != float64(nobody) || a["gid"] != float64(nobody) {
		t.Errorf("audit line of the list %v: want result ok, the helper's uid and gid", a)
	}
	// Allowed on the socket, the load goes as far as the trust policy,
	// which covers no oci:/nonexistent.
	code, msg := callAs(t, helper, td.cfg.Socket.Path, "load")
	if code != "PermissionDenied" || !strings.Contains(msg, "out-of-scope") {
		t.Errorf("load by nobody: %s %s, want PermissionDenied by the trust policy (out-of-scope)", code, msg)
	}
	a := td.lastAudit(t, "load")
	if a["uid"] != float64(nobody) || a["gid"] != float64(nobody) || a["pid"] == float64(os.Getpid()) || a["pid"] == float64(0) {
		t.Errorf("audit line %v: want the helper's uid, gid and pid", a)
	}
	// The cache is bpfd's: an allowed client that is not an admin may
	// neither list nor prune it.
	for _, call := range []string{"list-cache", "prune-cache"} {
		if code, msg := callAs(t, helper, td.cfg.Socket.Path, call); code != "PermissionDenied" || !strings.Contains(msg, "only root and members of socket.adminGIDs") {
			t.Errorf("%s by nobody, not an admin: %s %s, want PermissionDenied naming the admins", call, code, msg)
		}
		if a := td.lastAudit(t, call); a["result"] != "error" || a["uid"] != float64(nobody) {
			t.Errorf("audit line of the refused %s %v: want result error, uid %d", call, a, nobody)
		}
	}
}

// TestAccessByGroup: allowed uids and gids each admit a client; one that
// matches neither is refused, naming its uid and gid.
func TestAccessByGroup(t *testing.T) {
	tests := []struct {
		name       string
		uids, gids []uint32
		want       string
	}{
		{"gid allowed", []uint32{4242}, []uint32{nobody}, "OK"},
		{"only gids set, gid allowed", nil, []uint32{nobody}, "OK"},
		{"neither allowed", []uint32{4242}, []uint32{4243}, "PermissionDenied"},
		{"only gids set, gid not allowed", nil, []uint32{4243}, "PermissionDenied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := publicDir(t)
			td := newTestDaemon(t, func(c *Config) {
				c.Socket.Path = filepath.Join(dir, "bpfd.sock")
				c.Socket.AllowedUIDs, c.Socket.AllowedGIDs = tt.uids, tt.gids
			})
			if err := os.Chmod(td.cfg.Socket.Path, 0o666); err != nil {
				t.Fatal(err)
			}
			code, msg := callAs(t, publicCopy(t, dir), td.cfg.Socket.Path, "list")
			if code != tt.want {
				t.Fatalf("list by uid and gid %d: %s %s, want %s", nobody, code, msg, tt.want)
			}
			if code == "PermissionDenied" && !strings.Contains(msg, fmt.Sprintf("uid %d gid %d", nobody, nobody)) {
				t.Errorf("refusal %q does not name the client's uid and gid", msg)
			}
		})
	}
}

// publicDir returns a new directory everyone may enter.
func publicDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "bpfd-access-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// publicCopy copies the test binary where nobody may run it.
func publicCopy(t *testing.T, dir string) string {
	t.Helper()
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(dir, "helper")
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// callAs runs the helper as nobody to make one call on the socket and
// returns the status code and message it got.
func callAs(t *testing.T, helper, socket, call string) (code, msg string) {
	t.Helper()
	cmd := exec.Command(helper)
	cmd.Env = append(os.Environ(), helperEnv+"=call", "BPFD_SOCKET="+socket, "BPFD_CALL="+call)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	code, msg, _ = strings.Cut(strings.TrimSpace(string(out)), " ")
	return code, msg
}

// callHelper makes the call BPFD_CALL names on BPFD_SOCKET and prints the
// status code and message.
func callHelper() int {
	conn, err := grpc.NewClient("unix://"+os.Getenv("BPFD_SOCKET"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println("Internal", err)
		return 0
	}
	defer conn.Close()
	client := pb.NewBpfdClient(conn)
	ctx := context.Background()
	switch os.Getenv("BPFD_CALL") {
	case "list":
		_, err = client.List(ctx, &pb.ListRequest{})
	case "load":
		_, err = client.Load(ctx, &pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: "oci:/nonexistent:v1"}, Programs: []*pb.LoadProgram{tracepointProg("x", "syscalls/sys_enter_getpid")}})
	case "list-cache":
		_, err = client.ListCache(ctx, &pb.ListCacheRequest{})
	case "prune-cache":
		_, err = client.PruneCache(ctx, &pb.PruneCacheRequest{All: true})
	case "health":
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	case "csi-info":
		_, err = csipb.NewIdentityClient(conn).GetPluginInfo(ctx, &csipb.GetPluginInfoRequest{})
	}
	st := status.Convert(err)
	fmt.Println(st.Code(), st.Message())
	return 0
}
