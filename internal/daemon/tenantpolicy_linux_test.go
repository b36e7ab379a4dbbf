package daemon

import (
	"context"
	"path/filepath"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// TestLoadTenantNamespacePolicy: a Load whose owner names a Kubernetes
// namespace is admitted only by a governing rule that admits the namespace;
// another namespace's request is refused with PolicyDenied, saying why, and
// leaves nothing loaded; a request without a namespace is judged as before.
func TestLoadTenantNamespacePolicy(t *testing.T) {
	td := newTestDaemon(t)
	td.writePolicy(t, policyRule{Name: "team-a", Images: []string{"oci:" + filepath.Join(td.images, "team-a") + "/**"}, Keys: []string{td.key.pub}, Namespaces: []string{"team-a"}})
	if _, err := td.d.chain.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	teamA := td.image(t, "team-a/counter", true, "tracepoint_counter.bpf.o")
	shared := td.image(t, "shared", true, "tracepoint_counter.bpf.o")
	load := func(ref, ns string) (*pb.LoadResponse, error) {
		return td.client.Load(context.Background(), &pb.LoadRequest{
			Bytecode: &pb.Bytecode{Reference: ref},
			Programs: []*pb.LoadProgram{tracepointProg("tracepoint_counter", "syscalls/sys_enter_getpid")},
			Owner:    &pb.Owner{Config: "counter", Namespace: ns},
		})
	}
	cases := []struct {
		name, ref, namespace string
		want                 codes.Code
		says                 string
	}{
		{"admitted namespace", teamA, "team-a", codes.OK, ""},
		{"other namespace", teamA, "team-b", codes.PermissionDenied, `namespace-not-admitted: rule "team-a" governs`},
		{"rule without namespaces", shared, "team-a", codes.PermissionDenied, `namespace-not-admitted: rule "images" governs`},
		{"no namespace", shared, "", codes.OK, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := td.snapshot(t)
			resp, err := load(tc.ref, tc.namespace)
			if tc.want == codes.OK {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				td.unload(t, ids(resp.GetPrograms())...)
				return
			}
			wantCode(t, err, tc.want, tc.says)
			st, _ := status.FromError(err)
			var reason string
			for _, d := range st.Details() {
				if info, ok := d.(*errdetails.ErrorInfo); ok {
					reason = info.GetReason()
				}
			}
			if reason != pb.ErrorReason_ERROR_REASON_POLICY_DENIED.String() {
				t.Errorf("reason %q, want %s", reason, pb.ErrorReason_ERROR_REASON_POLICY_DENIED)
			}
			td.assertUnchanged(t, before)
		})
	}
}

// TestLoadTenantScope: a Load with a tenant scope may not attach a
// tracepoint (global) unless the scope grants it, and a scope without an
// owner namespace is invalid.
func TestLoadTenantScope(t *testing.T) {
	td := newTestDaemon(t)
	ref := td.image(t, "tp", true, "tracepoint_counter.bpf.o")
	td.writePolicy(t, policyRule{Name: "tenants", Images: []string{"oci:" + td.images + "/**"}, Keys: []string{td.key.pub}, Namespaces: []string{"team-a"}})
	if _, err := td.d.chain.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	load := func(ns string, grants ...pb.ProgramType) (*pb.LoadResponse, error) {
		return td.client.Load(context.Background(), &pb.LoadRequest{
			Bytecode: &pb.Bytecode{Reference: ref},
			Programs: []*pb.LoadProgram{tracepointProg("tracepoint_counter", "syscalls/sys_enter_getpid")},
			Owner:    &pb.Owner{Config: "counter", Namespace: ns},
			Tenant:   &pb.Tenant{PodUids: []string{"0f0e0d0c-0b0a-4908-8706-050403020100"}, Grants: grants},
		})
	}
	before := td.snapshot(t)
	_, err := load("team-a")
	wantCode(t, err, codes.PermissionDenied, "tracepoint for tenant team-a: attaches outside the tenant's pods, and no grant allows it")
	td.assertUnchanged(t, before)
	_, err = load("")
	wantCode(t, err, codes.InvalidArgument, "tenant: needs owner.namespace")
	resp, err := load("team-a", pb.ProgramType_PROGRAM_TYPE_TRACEPOINT)
	if err != nil {
		t.Fatalf("granted tracepoint: %v", err)
	}
	td.unload(t, ids(resp.GetPrograms())...)
}
