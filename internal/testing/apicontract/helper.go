package apicontract

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// The environment of a helper process: the test binary, re-executed as
// another user, makes one call and prints its answer.
const (
	envMethod  = "BPFD_APICONTRACT_METHOD"
	envSocket  = "BPFD_APICONTRACT_SOCKET"
	envRequest = "BPFD_APICONTRACT_REQUEST"
)

// HelperMain makes the call a re-executed test binary was started for and
// returns true, or returns false in a test binary started to run tests.
// Every package that runs the contract calls it first in its TestMain:
//
//	func TestMain(m *testing.M) {
//		if apicontract.HelperMain() {
//			os.Exit(0)
//		}
//		...
//	}
func HelperMain() bool {
	method := os.Getenv(envMethod)
	if method == "" {
		return false
	}
	a := call(context.Background(), os.Getenv(envSocket), method, os.Getenv(envRequest))
	out, _ := json.Marshal(a)
	fmt.Println(string(out))
	return true
}

// answer is what one call got: a status code, the bpfd.io ErrorInfo
// reason and message of an error, or the response.
type answer struct {
	Code     string          `json:"code"`
	Reason   string          `json:"reason,omitempty"`
	Message  string          `json:"message,omitempty"`
	Response json.RawMessage `json:"response,omitempty"`
}

// methods are the calls the contract makes, by name: a new request and
// response, and the call.
var methods = map[string]struct {
	request  func() proto.Message
	response func() proto.Message
	call     func(context.Context, bpfdv1.BpfdClient, proto.Message) (proto.Message, error)
}{
	"Load": {func() proto.Message { return &bpfdv1.LoadRequest{} }, func() proto.Message { return &bpfdv1.LoadResponse{} },
		func(ctx context.Context, c bpfdv1.BpfdClient, in proto.Message) (proto.Message, error) {
			return c.Load(ctx, in.(*bpfdv1.LoadRequest))
		}},
	"Unload": {func() proto.Message { return &bpfdv1.UnloadRequest{} }, func() proto.Message { return &bpfdv1.UnloadResponse{} },
		func(ctx context.Context, c bpfdv1.BpfdClient, in proto.Message) (proto.Message, error) {
			return c.Unload(ctx, in.(*bpfdv1.UnloadRequest))
		}},
	"Get": {func() proto.Message { return &bpfdv1.GetRequest{} }, func() proto.Message { return &bpfdv1.GetResponse{} },
		func(ctx context.Context, c bpfdv1.BpfdClient, in proto.Message) (proto.Message, error) {
			return c.Get(ctx, in.(*bpfdv1.GetRequest))
		}},
	"List": {func() proto.Message { return &bpfdv1.ListRequest{} }, func() proto.Message { return &bpfdv1.ListResponse{} },
		func(ctx context.Context, c bpfdv1.BpfdClient, in proto.Message) (proto.Message, error) {
			return c.List(ctx, in.(*bpfdv1.ListRequest))
		}},
	"UpdateOwner": {func() proto.Message { return &bpfdv1.UpdateOwnerRequest{} }, func() proto.Message { return &bpfdv1.UpdateOwnerResponse{} },
		func(ctx context.Context, c bpfdv1.BpfdClient, in proto.Message) (proto.Message, error) {
			return c.UpdateOwner(ctx, in.(*bpfdv1.UpdateOwnerRequest))
		}},
	"Inventory": {func() proto.Message { return &bpfdv1.InventoryRequest{} }, func() proto.Message { return &bpfdv1.InventoryResponse{} },
		func(ctx context.Context, c bpfdv1.BpfdClient, in proto.Message) (proto.Message, error) {
			return c.Inventory(ctx, in.(*bpfdv1.InventoryRequest))
		}},
}

// call makes one call of method with the request in protojson on socket.
func call(ctx context.Context, socket, method, request string) answer {
	m, ok := methods[method]
	if !ok {
		return answer{Code: "Internal", Message: "no method " + method}
	}
	in := m.request()
	if err := protojson.Unmarshal([]byte(request), in); err != nil {
		return answer{Code: "Internal", Message: err.Error()}
	}
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return answer{Code: "Internal", Message: err.Error()}
	}
	defer conn.Close()
	resp, err := m.call(ctx, bpfdv1.NewBpfdClient(conn), in)
	st := status.Convert(err)
	a := answer{Code: st.Code().String(), Message: st.Message()}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == "bpfd.io" {
			a.Reason = info.GetReason()
		}
	}
	if err == nil {
		a.Response, _ = protojson.Marshal(resp)
	}
	return a
}

// caller makes calls as a user: in this process for root, else through a
// copy of the test binary that everyone may run, started with the user's
// uid, gid and groups.
type caller struct {
	socket string
	helper string
}

func newCaller(t *testing.T, socket string) *caller {
	t.Helper()
	dir, err := os.MkdirTemp("", "bpfd-contract-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	helper := filepath.Join(dir, "helper")
	dst, err := os.OpenFile(helper, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return &caller{socket: socket, helper: helper}
}

// User is a client identity.
type User struct {
	UID, GID uint32
	Groups   []uint32
}

func (u User) String() string {
	if len(u.Groups) == 0 {
		return fmt.Sprintf("uid %d", u.UID)
	}
	return fmt.Sprintf("uid %d (groups %v)", u.UID, u.Groups)
}

// call makes one call as u and decodes a response into resp.
func (c *caller) call(t *testing.T, u User, method string, in proto.Message) (answer, proto.Message) {
	t.Helper()
	req, err := protojson.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var a answer
	if u.UID == 0 && len(u.Groups) == 0 {
		a = call(context.Background(), c.socket, method, string(req))
	} else {
		cmd := exec.Command(c.helper)
		cmd.Env = append(os.Environ(), envMethod+"="+method, envSocket+"="+c.socket, envRequest+"="+string(req))
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: u.Groups}}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("helper as %s: %v\n%s", u, err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &a); err != nil {
			t.Fatalf("helper as %s: %v\n%s", u, err, out)
		}
	}
	if a.Code != "OK" {
		return a, nil
	}
	resp := methods[method].response()
	if err := protojson.Unmarshal(a.Response, resp); err != nil {
		t.Fatalf("%s response: %v", method, err)
	}
	return a, resp
}
