package k8s_test

// These tests apply what config/rbac ships (built with kubectl kustomize) to
// a real API server, impersonate the service accounts and users it is for,
// and prove what each can and cannot do.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bpfd-dev/bpfd/internal/testing/k8stest"
	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

var testEnv *k8stest.Env

func TestMain(m *testing.M) { k8stest.Main(m, &testEnv) }

const (
	namespace = "bpfd"
	nodeName  = "authentication.kubernetes.io/node-name"
)

// kustomize builds a kustomization of config/ with the kubectl that `make
// tools` builds beside the API server.
func kustomize(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	kubectl := filepath.Join(testEnv.Assets, "kubectl")
	out, err := exec.Command(kubectl, "kustomize", filepath.Join(testEnv.Root, "config", dir)).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("kubectl kustomize config/%s: %v\n%s", dir, err, ee.Stderr)
		}
		t.Fatalf("kubectl kustomize config/%s: %v", dir, err)
	}
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return objs
		} else if err != nil {
			t.Fatalf("config/%s: %v", dir, err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

func serviceAccount(ns, name string) (user string, groups []string) {
	return "system:serviceaccount:" + ns + ":" + name, []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
}

func TestRBAC(t *testing.T) {
	ctx := context.Background()
	admin := testEnv.Client
	// Objects are created unless they exist, so the test can run again
	// against the same API server (-count).
	ensure := func(o client.Object) {
		t.Helper()
		if err := admin.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
	installRBAC(t)

	// What exists: a config, node b's BpfProgram, a Secret.
	cfg := &v1alpha1.BpfProgramConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "rbac"},
		Spec: v1alpha1.BpfProgramConfigSpec{
			Bytecode: v1alpha1.BytecodeImage{Image: "registry.example.com/x@sha256:" + strings.Repeat("a", 64)},
			Programs: []v1alpha1.Program{{Name: "tp", Type: "tracepoint", Tracepoint: &v1alpha1.TracepointAttach{Tracepoint: "syscalls/sys_enter_openat"}}},
		},
	}
	bpB := bpfProgram("node-b")
	bnB := bpfNode("node-b")
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "registry-credentials"}}
	for _, o := range []client.Object{cfg, bpB, bnB, secret} {
		ensure(o)
	}
	// Updates and deletes of a node-a BpfProgram or BpfNode create it first.
	t.Cleanup(func() {
		admin.DeleteAllOf(ctx, &v1alpha1.BpfProgram{}, client.MatchingFields{"spec.nodeName": "node-a"})
		admin.Delete(ctx, bpfNode("node-a"))
	})

	as := func(user string, groups []string, extra map[string][]string) client.Client {
		c, err := testEnv.ClientAs(user, groups, extra)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	agentUser, agentGroups := serviceAccount(namespace, "bpfd-agent")
	agentA := as(agentUser, agentGroups, map[string][]string{nodeName: {"node-a"}})
	agentUnbound := as(agentUser, agentGroups, nil)
	opUser, opGroups := serviceAccount(namespace, "bpfd-operator")
	op := as(opUser, opGroups, nil)
	viewerUser, viewerGroups := serviceAccount("default", "viewer")
	viewer := as(viewerUser, viewerGroups, nil)
	editorUser, editorGroups := serviceAccount("default", "editor")
	editor := as(editorUser, editorGroups, nil)

	// The admission policy is picked up a moment after it is created.
	k8stest.Eventually(t, 10*time.Second, func() error {
		err := agentA.Create(ctx, bpfProgram("node-b"), client.DryRunAll)
		if !isPolicyDenial(err) {
			return fmt.Errorf("creating another node's BpfProgram as node-a's agent: %v", err)
		}
		return nil
	})

	const (
		allowed = ""
		rbac    = "forbidden by RBAC"
		policy  = "denied by the admission policy"
	)
	cases := []struct {
		who  string
		c    client.Client
		what string
		do   func(client.Client) error
		want string
	}{
		{"agent", agentA, "list configs", list(&v1alpha1.BpfProgramConfigList{}), allowed},
		{"agent", agentA, "list nodes", list(&corev1.NodeList{}), allowed},
		{"agent", agentA, "create a config", create(func() client.Object { c := cfg.DeepCopy(); c.ResourceVersion = ""; c.Name = "agent-made"; return c }), rbac},
		{"agent", agentA, "update a config (e.g. its finalizers)", update(cfg), rbac},
		{"agent", agentA, "update a config's status", updateStatus(cfg), rbac},
		{"agent", agentA, "delete a config", del(cfg), rbac},
		{"agent", agentA, "get a Secret", get(secret), rbac},
		{"agent", agentA, "list Secrets", list(&corev1.SecretList{}), rbac},
		{"agent", agentA, "create its node's BpfProgram", create(func() client.Object { return bpfProgram("node-a") }), allowed},
		{"agent", agentA, "update its node's BpfProgram status", updateStatus(bpfProgram("node-a")), allowed},
		{"agent", agentA, "delete its node's BpfProgram", del(bpfProgram("node-a")), allowed},
		{"agent", agentA, "create another node's BpfProgram", create(func() client.Object { return bpfProgram("node-c") }), policy},
		{"agent", agentA, "update another node's BpfProgram", update(bpB), policy},
		{"agent", agentA, "update another node's BpfProgram status", updateStatus(bpB), policy},
		{"agent", agentA, "delete another node's BpfProgram", del(bpB), policy},
		{"agent without a pod-bound token", agentUnbound, "create a BpfProgram", create(func() client.Object { return bpfProgram("node-a") }), policy},
		{"agent", agentA, "create its node's BpfNode", create(func() client.Object { return bpfNode("node-a") }), allowed},
		{"agent", agentA, "update its node's BpfNode status", updateStatus(bpfNode("node-a")), allowed},
		{"agent", agentA, "create another node's BpfNode", create(func() client.Object { return bpfNode("node-c") }), policy},
		{"agent", agentA, "update another node's BpfNode status", updateStatus(bnB), policy},
		{"agent", agentA, "delete its node's BpfNode", del(bpfNode("node-a")), rbac},
		{"agent without a pod-bound token", agentUnbound, "create a BpfNode", create(func() client.Object { return bpfNode("node-a") }), policy},
		{"agent", agentA, "list its node's pods", list(&corev1.PodList{}, client.MatchingFields{"spec.nodeName": "node-a"}), allowed},
		{"agent", agentA, "emit an event about its node's BpfNode", create(func() client.Object { return bpfNodeEvent("default", "node-a") }), allowed},
		{"agent", agentA, "emit an event about another node's BpfNode", create(func() client.Object { return bpfNodeEvent("default", "node-b") }), policy},
		{"agent", agentA, "emit an event in bpfd's namespace", create(func() client.Object {
			e := bpfNodeEvent(namespace, "node-a")
			e.Regarding = corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: namespace, Name: "bpfd-x"}
			return e
		}), policy},
		{"agent", agentA, "emit a core event about a pod", create(func() client.Object {
			return &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "default", GenerateName: "rbac-"},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "p", Namespace: "default"}, Reason: "X", Message: "x"}
		}), rbac},
		{"agent", agentA, "create a pod", create(func() client.Object {
			return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "p"},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}
		}), rbac},

		{"operator", op, "update a config (its finalizers)", update(cfg), allowed},
		{"operator", op, "update a config's status", updateStatus(cfg), allowed},
		{"operator", op, "delete a BpfProgram", del(bpfProgram("node-z")), allowed},
		{"operator", op, "create a BpfProgram", create(func() client.Object { return bpfProgram("node-c") }), rbac},
		{"operator", op, "create a config", create(func() client.Object { c := cfg.DeepCopy(); c.ResourceVersion = ""; c.Name = "op-made"; return c }), rbac},
		{"operator", op, "get a Secret", get(secret), rbac},
		{"operator", op, "list ConfigMaps in its namespace", list(&corev1.ConfigMapList{}, client.InNamespace(namespace)), allowed},
		{"operator", op, "list ConfigMaps elsewhere", list(&corev1.ConfigMapList{}, client.InNamespace("default")), rbac},
		{"operator", op, "list DaemonSets in its namespace", listDaemonSets(namespace), allowed},

		{"viewer", viewer, "list BpfPrograms", list(&v1alpha1.BpfProgramList{}), allowed},
		{"viewer", viewer, "get a config", get(cfg), allowed},
		{"viewer", viewer, "create a config", create(func() client.Object { c := cfg.DeepCopy(); c.ResourceVersion = ""; c.Name = "viewer-made"; return c }), rbac},
		{"viewer", viewer, "delete a BpfProgram", del(bpB), rbac},
		{"viewer", viewer, "list BpfNodes", list(&v1alpha1.BpfNodeList{}), allowed},
		{"viewer", viewer, "get a BpfNode", get(bnB), allowed},
		{"viewer", viewer, "update a BpfNode's status", updateStatus(bnB), rbac},
		{"viewer", viewer, "get a Secret", get(secret), rbac},

		{"editor", editor, "create a config", create(func() client.Object { c := cfg.DeepCopy(); c.ResourceVersion = ""; c.Name = "editor-made"; return c }), allowed},
		{"editor", editor, "update a config", update(cfg), allowed},
		{"editor", editor, "update a config's status", updateStatus(cfg), rbac},
		{"editor", editor, "list BpfPrograms", list(&v1alpha1.BpfProgramList{}), allowed},
		{"editor", editor, "create a BpfProgram", create(func() client.Object { return bpfProgram("node-c") }), rbac},
		{"editor", editor, "update a BpfProgram's status", updateStatus(bpB), rbac},
	}
	for _, tc := range cases {
		name := tc.who + ": " + tc.what
		t.Run(name, func(t *testing.T) {
			err := tc.do(tc.c)
			var got string
			switch {
			case err == nil:
				got = allowed
			case isPolicyDenial(err):
				got = policy
			case apierrors.IsForbidden(err):
				got = rbac
			default:
				t.Fatalf("unexpected error: %v", err)
			}
			if got != tc.want {
				if tc.want == allowed {
					t.Fatalf("%s: want allowed (err %v)", got, err)
				}
				t.Fatalf("%s, want %s (err %v)", orAllowed(got), tc.want, err)
			}
		})
	}
}

// installRBAC applies config/rbac and binds its user roles to a viewer and
// an editor, each a service account of some application in default. Objects
// are created unless they exist, so tests can run again against the same API
// server (-count).
func installRBAC(t *testing.T) {
	t.Helper()
	ensure := func(o client.Object) {
		t.Helper()
		if err := testEnv.Client.Create(context.Background(), o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
	ensure(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}})
	for _, o := range kustomize(t, "rbac") {
		ensure(o)
	}
	for role, sa := range map[string]string{"bpfd-bpfprogram-viewer": "viewer", "bpfd-bpfprogramconfig-editor": "editor"} {
		ensure(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: sa}})
		ensure(&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: sa},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "default", Name: sa}},
		})
	}
}

// TestNamespaceWrites: write access to bpfd's namespace is root on every
// node (whoever changes the DaemonSet, its pods, its service account's
// tokens or the trust-policy ConfigMap decides what runs privileged on every
// node and what bpfd trusts), so no identity config/rbac ships may write
// there but the operator, and the operator only the DaemonSet it keeps, its
// leader-election Leases and Events. Asked of the API server's authorizer
// (SubjectAccessReview) for every write verb on every resource that matters.
func TestNamespaceWrites(t *testing.T) {
	installRBAC(t)
	type identity struct {
		user   string
		groups []string
	}
	sa := func(ns, name string) identity { u, g := serviceAccount(ns, name); return identity{u, g} }
	identities := map[string]identity{
		"agent":          sa(namespace, "bpfd-agent"),
		"operator":       sa(namespace, "bpfd-operator"),
		"viewer":         sa("default", "viewer"),
		"editor":         sa("default", "editor"),
		"any user":       {"someone", []string{"system:authenticated"}},
		"any in default": sa("default", "default"),
	}
	resources := []struct{ group, resource, subresource string }{
		{"apps", "daemonsets", ""}, {"apps", "deployments", ""}, {"", "pods", ""}, {"", "pods", "exec"},
		{"", "pods", "ephemeralcontainers"}, {"", "configmaps", ""}, {"", "secrets", ""}, {"", "serviceaccounts", ""},
		{"", "serviceaccounts", "token"}, {"rbac.authorization.k8s.io", "roles", ""}, {"rbac.authorization.k8s.io", "rolebindings", ""},
		{"coordination.k8s.io", "leases", ""}, {"", "events", ""},
	}
	// What the operator may write, as resource[/subresource] verb.
	want := map[string]bool{
		"daemonsets create": true, "daemonsets update": true, "daemonsets delete": true,
		"leases create": true, "leases update": true, "leases patch": true, "leases delete": true,
		"events create": true, "events patch": true,
	}
	for who, id := range identities {
		for _, r := range resources {
			for _, verb := range []string{"create", "update", "patch", "delete", "deletecollection"} {
				what := r.resource
				if r.subresource != "" {
					what += "/" + r.subresource
				}
				what += " " + verb
				sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
					User: id.user, Groups: id.groups,
					ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: namespace, Verb: verb,
						Group: r.group, Resource: r.resource, Subresource: r.subresource},
				}}
				if err := testEnv.Client.Create(context.Background(), sar); err != nil {
					t.Fatal(err)
				}
				if allowed, expected := sar.Status.Allowed, who == "operator" && want[what]; allowed != expected {
					t.Errorf("%s: %s in namespace %s: allowed %v, want %v", who, what, namespace, allowed, expected)
				}
			}
		}
	}
}

func orAllowed(s string) string {
	if s == "" {
		return "allowed"
	}
	return s
}

func isPolicyDenial(err error) bool {
	return apierrors.IsForbidden(err) && strings.Contains(err.Error(), "ValidatingAdmissionPolicy 'bpfd-agent-own-")
}

// bpfNodeEvent is an events.k8s.io Event in namespace ns about node's
// BpfNode, as the agent's recorder makes one.
func bpfNodeEvent(ns, node string) *eventsv1.Event {
	return &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Namespace: ns, GenerateName: "rbac-"},
		EventTime:           metav1.NowMicro(),
		ReportingController: "bpfd-agent", ReportingInstance: "bpfd-agent-" + node,
		Action: "Observe", Reason: "UnmanagedProgram", Type: corev1.EventTypeWarning, Note: "test",
		Regarding: corev1.ObjectReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: "BpfNode", Name: node},
	}
}

func bpfNode(node string) *v1alpha1.BpfNode {
	return &v1alpha1.BpfNode{ObjectMeta: metav1.ObjectMeta{Name: node}, Spec: v1alpha1.BpfNodeSpec{NodeName: node}}
}

func bpfProgram(node string) *v1alpha1.BpfProgram {
	return &v1alpha1.BpfProgram{
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.BpfProgramName("rbac", node)},
		Spec:       v1alpha1.BpfProgramSpec{NodeName: node, ConfigName: "rbac"},
	}
}

// The actions run as dry runs where they would change something, so every
// case starts from the same objects; a dry run passes authorization and
// admission like the real request.

func list(l client.ObjectList, opts ...client.ListOption) func(client.Client) error {
	return func(c client.Client) error { return c.List(context.Background(), l, opts...) }
}

func listDaemonSets(ns string) func(client.Client) error {
	return func(c client.Client) error {
		l := &unstructured.UnstructuredList{}
		l.SetAPIVersion("apps/v1")
		l.SetKind("DaemonSetList")
		return c.List(context.Background(), l, client.InNamespace(ns))
	}
}

func get(o client.Object) func(client.Client) error {
	return func(c client.Client) error {
		return c.Get(context.Background(), client.ObjectKeyFromObject(o), o.DeepCopyObject().(client.Object))
	}
}

func create(o func() client.Object) func(client.Client) error {
	return func(c client.Client) error { return c.Create(context.Background(), o(), client.DryRunAll) }
}

// current reads o afresh as the administrator, so updates carry the latest
// resourceVersion; an object that does not exist yet is created first.
func current(o client.Object) client.Object {
	ctx := context.Background()
	cur := o.DeepCopyObject().(client.Object)
	if err := testEnv.Client.Get(ctx, client.ObjectKeyFromObject(o), cur); apierrors.IsNotFound(err) {
		cur = o.DeepCopyObject().(client.Object)
		cur.SetResourceVersion("")
		testEnv.Client.Create(ctx, cur)
	}
	return cur
}

func update(o client.Object) func(client.Client) error {
	return func(c client.Client) error {
		cur := current(o)
		cur.SetAnnotations(map[string]string{"touched": "yes"})
		return c.Update(context.Background(), cur, client.DryRunAll)
	}
}

func updateStatus(o client.Object) func(client.Client) error {
	return func(c client.Client) error {
		return c.Status().Update(context.Background(), current(o), client.DryRunAll)
	}
}

func del(o client.Object) func(client.Client) error {
	return func(c client.Client) error {
		return c.Delete(context.Background(), current(o), client.DryRunAll)
	}
}
