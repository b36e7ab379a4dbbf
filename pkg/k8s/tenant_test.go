package k8s_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/bpfd-dev/bpfd/internal/testing/k8stest"
	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

const (
	tenantA = "tenant-a"
	tenantB = "tenant-b"
)

// tenantConfig is a tenant config in namespace of one program of type typ
// with its attach block.
func tenantConfig(namespace, name string, typ v1alpha1.ProgramType) *v1alpha1.BpfTenantProgramConfig {
	p := v1alpha1.TenantProgram{Name: "prog", Type: typ}
	switch typ {
	case v1alpha1.ProgramTypeTCX:
		p.TCX = &v1alpha1.TCXAttach{InterfaceSelector: v1alpha1.InterfaceSelector{Interfaces: []string{"eth0"}}, Direction: v1alpha1.Ingress}
	case v1alpha1.ProgramTypeKprobe:
		p.Kprobe = &v1alpha1.KprobeAttach{Function: "do_unlinkat"}
	case v1alpha1.ProgramTypeTracepoint:
		p.Tracepoint = &v1alpha1.TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"}
	case v1alpha1.ProgramTypeUprobe:
		p.Uprobe = &v1alpha1.TenantUprobeAttach{Container: "app", Library: "libc", Function: "malloc"}
	}
	return &v1alpha1.BpfTenantProgramConfig{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: v1alpha1.BpfTenantProgramConfigSpec{
			Bytecode: v1alpha1.BytecodeImage{Image: "registry.example.com/x@sha256:" + strings.Repeat("a", 64)},
			Programs: []v1alpha1.TenantProgram{p},
		},
	}
}

func isTenantGrantDenial(err error) bool {
	return apierrors.IsForbidden(err) && strings.Contains(err.Error(), "ValidatingAdmissionPolicy 'bpfd-tenant-grants'")
}

// installTenants applies config/rbac, makes namespaces A and B, the
// cluster's grant (kprobe for B), and binds bpfd-tenant-editor to alice and
// bpfd-tenant-viewer to bob in namespace A with RoleBindings.
func installTenants(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	installRBAC(t)
	ensure := func(o client.Object) {
		t.Helper()
		if err := testEnv.Client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
	for _, ns := range []string{tenantA, tenantB} {
		ensure(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	for user, role := range map[string]string{"alice": "bpfd-tenant-editor", "bob": "bpfd-tenant-viewer"} {
		ensure(&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: tenantA, Name: user},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
		})
	}
	setGrant(t, []v1alpha1.NamespaceGrant{{Name: tenantB, ProgramTypes: []v1alpha1.ProgramType{v1alpha1.ProgramTypeKprobe}}})
	ensure(&v1alpha1.BpfTenantProgram{
		ObjectMeta: metav1.ObjectMeta{Namespace: tenantB, Name: "b-report"},
		Spec:       v1alpha1.BpfProgramSpec{NodeName: "node-a", ConfigName: "b"},
	})
	ensure(&v1alpha1.BpfTenantProgram{
		ObjectMeta: metav1.ObjectMeta{Namespace: tenantA, Name: "a-report"},
		Spec:       v1alpha1.BpfProgramSpec{NodeName: "node-a", ConfigName: "a"},
	})
}

// setGrant makes the cluster's BpfTenantGrant grant namespaces.
func setGrant(t *testing.T, namespaces []v1alpha1.NamespaceGrant) {
	t.Helper()
	ctx := context.Background()
	k8stest.Eventually(t, 10*time.Second, func() error {
		g := &v1alpha1.BpfTenantGrant{}
		err := testEnv.Client.Get(ctx, client.ObjectKey{Name: v1alpha1.TenantGrantName}, g)
		if apierrors.IsNotFound(err) {
			g = &v1alpha1.BpfTenantGrant{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.TenantGrantName}, Spec: v1alpha1.BpfTenantGrantSpec{Namespaces: namespaces}}
			return testEnv.Client.Create(ctx, g)
		}
		if err != nil {
			return err
		}
		g.Spec.Namespaces = namespaces
		return testEnv.Client.Update(ctx, g)
	})
}

// TestTenantRBACAndAdmission: a namespace's tenant editor writes tenant
// configs in its namespace only and reads its per-node reports only, never
// cluster-scoped configs or the grant; admission refuses a program type the
// namespace has no grant for, whoever asks.
func TestTenantRBACAndAdmission(t *testing.T) {
	installTenants(t)
	alice, err := testEnv.ClientAs("alice", []string{"system:authenticated"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := testEnv.ClientAs("bob", []string{"system:authenticated"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	admin := testEnv.Client
	// The admission policy is picked up a moment after it is created.
	k8stest.Eventually(t, 10*time.Second, func() error {
		err := admin.Create(context.Background(), tenantConfig(tenantA, "kprobe", v1alpha1.ProgramTypeKprobe), client.DryRunAll)
		if !isTenantGrantDenial(err) {
			return fmt.Errorf("a kprobe in namespace A without a grant: %v", err)
		}
		return nil
	})

	const (
		allowed = ""
		rbac    = "forbidden by RBAC"
		policy  = "denied by the admission policy"
	)
	clusterCfg := &v1alpha1.BpfProgramConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "tenant-made"},
		Spec: v1alpha1.BpfProgramConfigSpec{
			Bytecode: v1alpha1.BytecodeImage{Image: "registry.example.com/x@sha256:" + strings.Repeat("a", 64)},
			Programs: []v1alpha1.Program{{Name: "tp", Type: "tracepoint", Tracepoint: &v1alpha1.TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"}}},
		},
	}
	cases := []struct {
		who  string
		c    client.Client
		what string
		do   func(client.Client) error
		want string
	}{
		{"alice", alice, "create a TCX tenant config in A", create(func() client.Object { return tenantConfig(tenantA, "tcx", v1alpha1.ProgramTypeTCX) }), allowed},
		{"alice", alice, "create a uprobe tenant config in A", create(func() client.Object { return tenantConfig(tenantA, "uprobe", v1alpha1.ProgramTypeUprobe) }), allowed},
		{"alice", alice, "create a tenant config in B", create(func() client.Object { return tenantConfig(tenantB, "tcx", v1alpha1.ProgramTypeTCX) }), rbac},
		{"alice", alice, "create a kprobe tenant config in A (no grant)", create(func() client.Object { return tenantConfig(tenantA, "kprobe", v1alpha1.ProgramTypeKprobe) }), policy},
		{"alice", alice, "create a tracepoint tenant config in A (no grant)", create(func() client.Object { return tenantConfig(tenantA, "tp", v1alpha1.ProgramTypeTracepoint) }), policy},
		{"alice", alice, "create a cluster-scoped config", create(func() client.Object { return clusterCfg.DeepCopy() }), rbac},
		{"alice", alice, "list cluster-scoped configs", list(&v1alpha1.BpfProgramConfigList{}), rbac},
		{"alice", alice, "list BpfTenantPrograms in A", list(&v1alpha1.BpfTenantProgramList{}, client.InNamespace(tenantA)), allowed},
		{"alice", alice, "get a BpfTenantProgram in A", get(&v1alpha1.BpfTenantProgram{ObjectMeta: metav1.ObjectMeta{Namespace: tenantA, Name: "a-report"}}), allowed},
		{"alice", alice, "list BpfTenantPrograms in B", list(&v1alpha1.BpfTenantProgramList{}, client.InNamespace(tenantB)), rbac},
		{"alice", alice, "get a BpfTenantProgram in B", get(&v1alpha1.BpfTenantProgram{ObjectMeta: metav1.ObjectMeta{Namespace: tenantB, Name: "b-report"}}), rbac},
		{"alice", alice, "list BpfTenantPrograms of every namespace", list(&v1alpha1.BpfTenantProgramList{}), rbac},
		{"alice", alice, "create a BpfTenantProgram in A", create(func() client.Object {
			return &v1alpha1.BpfTenantProgram{ObjectMeta: metav1.ObjectMeta{Namespace: tenantA, Name: "forged"}, Spec: v1alpha1.BpfProgramSpec{NodeName: "n", ConfigName: "c"}}
		}), rbac},
		{"alice", alice, "update a BpfTenantProgram's status in A", updateStatus(&v1alpha1.BpfTenantProgram{ObjectMeta: metav1.ObjectMeta{Namespace: tenantA, Name: "a-report"}}), rbac},
		{"alice", alice, "update the grant", update(&v1alpha1.BpfTenantGrant{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.TenantGrantName}}), rbac},
		{"alice", alice, "read the pods of A", list(&corev1.PodList{}, client.InNamespace(tenantA)), rbac},
		{"bob", bob, "list tenant configs in A", list(&v1alpha1.BpfTenantProgramConfigList{}, client.InNamespace(tenantA)), allowed},
		{"bob", bob, "list BpfTenantPrograms in A", list(&v1alpha1.BpfTenantProgramList{}, client.InNamespace(tenantA)), allowed},
		{"bob", bob, "create a tenant config in A", create(func() client.Object { return tenantConfig(tenantA, "tcx", v1alpha1.ProgramTypeTCX) }), rbac},
		{"bob", bob, "list BpfTenantPrograms in B", list(&v1alpha1.BpfTenantProgramList{}, client.InNamespace(tenantB)), rbac},
		{"admin", admin, "create a kprobe tenant config in A (no grant)", create(func() client.Object { return tenantConfig(tenantA, "kprobe", v1alpha1.ProgramTypeKprobe) }), policy},
		{"admin", admin, "create a kprobe tenant config in B (granted)", create(func() client.Object { return tenantConfig(tenantB, "kprobe", v1alpha1.ProgramTypeKprobe) }), allowed},
		{"admin", admin, "create a tracepoint tenant config in B (kprobe granted only)", create(func() client.Object { return tenantConfig(tenantB, "tp", v1alpha1.ProgramTypeTracepoint) }), policy},
	}
	for _, tc := range cases {
		t.Run(tc.who+": "+tc.what, func(t *testing.T) {
			err := tc.do(tc.c)
			var got string
			switch {
			case err == nil:
				got = allowed
			case isTenantGrantDenial(err):
				got = policy
			case apierrors.IsForbidden(err):
				got = rbac
			default:
				t.Fatalf("unexpected error: %v", err)
			}
			if got != tc.want {
				t.Fatalf("%s, want %s (err %v)", orAllowed(got), orAllowed(tc.want), err)
			}
			if got == policy && !strings.Contains(err.Error(), "has no grant in BpfTenantGrant cluster for prog (") {
				t.Errorf("the denial does not name the program and its type: %v", err)
			}
		})
	}
}

// TestTenantAdmissionWithoutGrant: without the cluster's BpfTenantGrant the
// admission policy has no parameter and refuses every tenant config.
func TestTenantAdmissionWithoutGrant(t *testing.T) {
	installTenants(t)
	ctx := context.Background()
	g := &v1alpha1.BpfTenantGrant{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.TenantGrantName}}
	if err := testEnv.Client.Delete(ctx, g); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { setGrant(t, nil) })
	k8stest.Eventually(t, 10*time.Second, func() error {
		err := testEnv.Client.Create(ctx, tenantConfig(tenantA, "tcx", v1alpha1.ProgramTypeTCX), client.DryRunAll)
		if err == nil || !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) {
			return fmt.Errorf("a tenant config without the grant: %v, want refused", err)
		}
		return nil
	})
}

// TestTenantValidation: the CRDs' rules on tenant objects.
func TestTenantValidation(t *testing.T) {
	installTenants(t)
	ctx := context.Background()
	cases := map[string]struct {
		obj     client.Object
		wantErr string
	}{
		"primaryNodeInterface": {obj: func() client.Object {
			c := tenantConfig(tenantA, "primary", v1alpha1.ProgramTypeTCX)
			c.Spec.Programs[0].TCX.InterfaceSelector = v1alpha1.InterfaceSelector{PrimaryNodeInterface: true}
			return c
		}(), wantErr: "primaryNodeInterface is the node's"},
		"uprobe with target and library": {obj: func() client.Object {
			c := tenantConfig(tenantA, "both", v1alpha1.ProgramTypeUprobe)
			c.Spec.Programs[0].Uprobe.Target = "/usr/bin/app"
			return c
		}(), wantErr: "set either target"},
		"uprobe without container": {obj: func() client.Object {
			c := tenantConfig(tenantA, "nocontainer", v1alpha1.ProgramTypeUprobe)
			c.Spec.Programs[0].Uprobe.Container = ""
			return c
		}(), wantErr: "spec.programs[0].uprobe.container"},
		"grant of another name": {obj: &v1alpha1.BpfTenantGrant{ObjectMeta: metav1.ObjectMeta{Name: "mine"}}, wantErr: "named cluster"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := testEnv.Client.Create(ctx, tc.obj, client.DryRunAll)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("create: %v, want an error saying %q", err, tc.wantErr)
			}
		})
	}
}

// TestTenantSample: the tenant config sample is one the API server and the
// admission policy accept.
func TestTenantSample(t *testing.T) {
	installTenants(t)
	ctx := context.Background()
	b, err := os.ReadFile(filepath.Join(testEnv.Root, "config", "samples", "tenant_tcx.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &v1alpha1.BpfTenantProgramConfig{}
	if err := yaml.UnmarshalStrict(b, cfg); err != nil {
		t.Fatal(err)
	}
	if err := testEnv.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: cfg.Namespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	k8stest.Eventually(t, 10*time.Second, func() error { return testEnv.Client.Create(ctx, cfg, client.DryRunAll) })
}
