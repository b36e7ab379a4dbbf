package k8s_test

// These tests hold every container bpfd ships (the DaemonSet the operator
// makes, the operator's Deployment in config/ and in the OLM bundle) to the
// OpenShift SecurityContextConstraints that will admit it, with the
// admission rules of internal/testing/scctest, and config/openshift's SCCs
// to the SCC API's schema on a real API server.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	securityv1 "github.com/openshift/api/security/v1"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/bpfd-dev/bpfd/internal/testing/k8stest"
	"github.com/bpfd-dev/bpfd/internal/testing/scctest"
	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/operator"
)

// shippedSCCs returns config/openshift's SCCs by name, with OpenShift's
// restricted-v2.
func shippedSCCs(t *testing.T) map[string]*securityv1.SecurityContextConstraints {
	t.Helper()
	sccs := map[string]*securityv1.SecurityContextConstraints{"restricted-v2": scctest.RestrictedV2()}
	for _, f := range []string{"scc-node.yaml", "scc-restricted.yaml"} {
		scc := &securityv1.SecurityContextConstraints{}
		data, err := os.ReadFile(filepath.Join(testEnv.Root, "config", "openshift", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.UnmarshalStrict(data, scc); err != nil {
			t.Fatalf("config/openshift/%s: %v", f, err)
		}
		sccs[scc.Name] = scc
	}
	return sccs
}

// shippedPods returns every pod template bpfd ships, by where it comes from.
func shippedPods(t *testing.T) map[string]corev1.PodTemplateSpec {
	t.Helper()
	pods := map[string]corev1.PodTemplateSpec{}
	// The DaemonSet with every optional volume.
	ds := operator.DaemonSet(namespace, operator.Settings{BpfdImage: "bpfd:1", AgentImage: "agent:1", LogLevel: "info",
		TrustPolicyConfigMap: "bpfd-trust-policy", RegistryCredentialsSecret: "registry-credentials"})
	pods["DaemonSet bpfd"] = ds.Spec.Template
	for _, o := range kustomize(t, "openshift") {
		if o.GetKind() == "Deployment" {
			var tmpl corev1.PodTemplateSpec
			fromUnstructured(t, o, "spec.template", &tmpl)
			pods["config Deployment "+o.GetName()] = tmpl
		}
	}
	data, err := os.ReadFile(filepath.Join(testEnv.Root, "bundle", "manifests", "bpfd-operator.clusterserviceversion.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	csv := &operatorsv1alpha1.ClusterServiceVersion{}
	if err := yaml.Unmarshal(data, csv); err != nil {
		t.Fatal(err)
	}
	for _, d := range csv.Spec.InstallStrategy.StrategySpec.DeploymentSpecs {
		pods["bundle Deployment "+d.Name] = d.Spec.Template
	}
	if len(pods) != 3 {
		t.Fatalf("%d pod templates, want the DaemonSet and the operator's Deployment in config/ and the bundle: %v", len(pods), slices.Sorted(mapsKeys(pods)))
	}
	return pods
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func fromUnstructured(t *testing.T, o *unstructured.Unstructured, path string, out any) {
	t.Helper()
	v, ok, err := unstructured.NestedMap(o.Object, strings.Split(path, ".")...)
	if err != nil || !ok {
		t.Fatalf("%s %s: no %s (%v)", o.GetKind(), o.GetName(), path, err)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(v, out); err != nil {
		t.Fatal(err)
	}
}

// TestPodsMeetTheirSCC: each pod template names, in openshift.io/required-scc,
// the SCC it runs under; that SCC admits it, and a narrower one does not.
func TestPodsMeetTheirSCC(t *testing.T) {
	sccs := shippedSCCs(t)
	refusedBy := map[string][]string{
		"bpfd-node":     {"restricted-v2", "bpfd-restricted"},
		"restricted-v2": nil,
	}
	for where, tmpl := range shippedPods(t) {
		t.Run(where, func(t *testing.T) {
			name := tmpl.Annotations[operator.RequiredSCCAnnotation]
			scc, ok := sccs[name]
			if !ok {
				t.Fatalf("annotation %s is %q, not an SCC bpfd ships or relies on", operator.RequiredSCCAnnotation, name)
			}
			if r := scctest.Admit(scc, &tmpl.Spec, scctest.DefaultNamespace); len(r.Violations) > 0 {
				t.Errorf("%s refuses it: %v", name, r.Violations)
			}
			for _, other := range refusedBy[name] {
				if r := scctest.Admit(sccs[other], &tmpl.Spec, scctest.DefaultNamespace); len(r.Violations) == 0 {
					t.Errorf("%s admits it too: %s grants more than it needs", other, name)
				}
			}
		})
	}
}

// TestDaemonSetContainers: under bpfd-node, bpfd alone is privileged; the
// agent runs as its own non-root user, without capabilities or privilege
// escalation, on a read-only root, with the runtime's seccomp profile, and
// as spc_t (to reach bpfd's socket); the CSI registrar likewise, as root.
func TestDaemonSetContainers(t *testing.T) {
	pods := shippedPods(t)
	tmpl := pods["DaemonSet bpfd"]
	r := scctest.Admit(shippedSCCs(t)["bpfd-node"], &tmpl.Spec, scctest.DefaultNamespace)
	if len(r.Violations) > 0 {
		t.Fatal(r.Violations)
	}
	spc := corev1.SELinuxOptions{Type: "spc_t", Level: scctest.DefaultNamespace.MCSLevel}
	want := []scctest.Container{
		{Name: "bpfd", Privileged: true, AllowPrivilegeEscalation: true, SELinux: spc, Seccomp: "runtime/default"},
		{Name: "bpfd-agent", RunAsUser: ptr.To[int64](operator.AgentUID), RunAsNonRoot: true, Drop: []corev1.Capability{"ALL"},
			ReadOnlyRootFilesystem: true, SELinux: spc, Seccomp: "runtime/default"},
		// The CSI node-driver-registrar: root for the kubelet's
		// directories, nothing else; spc_t, like the agent, to reach the
		// socket bpfd makes.
		{Name: "csi-node-driver-registrar", RunAsUser: ptr.To[int64](0), Drop: []corev1.Capability{"ALL"},
			ReadOnlyRootFilesystem: true, SELinux: spc, Seccomp: "runtime/default"},
	}
	if diff := cmp.Diff(want, r.Containers); diff != "" {
		t.Errorf("containers (-want +got):\n%s", diff)
	}
	// The agent's group owns bpfd's socket.
	var bpfd, agent corev1.Container
	for _, c := range tmpl.Spec.Containers {
		switch c.Name {
		case "bpfd":
			bpfd = c
		case "bpfd-agent":
			agent = c
		}
	}
	if g := agent.SecurityContext.RunAsGroup; g == nil || !slices.Contains(bpfd.Args, fmt.Sprintf("--socket-group=%d", *g)) {
		t.Errorf("bpfd's arguments %v do not give the socket the agent's group %v", bpfd.Args, g)
	}
}

// TestApplicationPods: bpfd-restricted admits a pod that mounts a map
// volume of bpfd's CSI driver and asks for nothing else, and refuses what
// restricted-v2 refuses.
func TestApplicationPods(t *testing.T) {
	sccs := shippedSCCs(t)
	app := func() *corev1.PodSpec {
		return &corev1.PodSpec{
			Containers: []corev1.Container{{Name: "reader", SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				RunAsNonRoot: ptr.To(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			}}},
			Volumes: []corev1.Volume{{Name: "maps", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{
				Driver: "csi.bpfd.io", ReadOnly: ptr.To(true), VolumeAttributes: map[string]string{"config": "xdp-counter"},
			}}}},
		}
	}
	if r := scctest.Admit(sccs["bpfd-restricted"], app(), scctest.DefaultNamespace); len(r.Violations) > 0 {
		t.Errorf("bpfd-restricted refuses an application: %v", r.Violations)
	}
	if r := scctest.Admit(sccs["restricted-v2"], app(), scctest.DefaultNamespace); len(r.Violations) == 0 {
		t.Errorf("restricted-v2 (as 4.11 defined it) admits a csi volume; bpfd-restricted would not be needed")
	}
	for name, edit := range map[string]func(*corev1.PodSpec){
		"privileged":   func(p *corev1.PodSpec) { p.Containers[0].SecurityContext.Privileged = ptr.To(true) },
		"CAP_BPF":      func(p *corev1.PodSpec) { p.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"BPF"} },
		"host network": func(p *corev1.PodSpec) { p.HostNetwork = true },
		"host path": func(p *corev1.PodSpec) {
			p.Volumes[0].VolumeSource = corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/sys/fs/bpf"}}
		},
		"root": func(p *corev1.PodSpec) { p.Containers[0].SecurityContext.RunAsUser = ptr.To[int64](0) },
	} {
		p := app()
		edit(p)
		if r := scctest.Admit(sccs["bpfd-restricted"], p, scctest.DefaultNamespace); len(r.Violations) == 0 {
			t.Errorf("bpfd-restricted admits an application with %s", name)
		}
	}
}

// TestSCCUse: the SCCs grant themselves to no user or group; `use` of
// bpfd-node is granted to the bpfd-agent service account alone, by a Role in
// bpfd's namespace (config/openshift) or the bundle's permissions of that
// service account; bpfd-restricted by a ClusterRole an administrator binds.
func TestSCCUse(t *testing.T) {
	for name, scc := range shippedSCCs(t) {
		if name != "restricted-v2" && (len(scc.Users) > 0 || len(scc.Groups) > 0) {
			t.Errorf("SCC %s grants itself to users %v, groups %v", name, scc.Users, scc.Groups)
		}
	}
	grants := func(rules []rbacv1.PolicyRule) []string {
		var names []string
		for _, r := range rules {
			if slices.Contains(r.APIGroups, "security.openshift.io") && (slices.Contains(r.Verbs, "use") || slices.Contains(r.Verbs, "*")) {
				if len(r.ResourceNames) == 0 {
					names = append(names, "*")
				}
				names = append(names, r.ResourceNames...)
			}
		}
		return names
	}
	got := map[string][]string{} // role -> SCCs it may use
	bound := map[string][]string{}
	for _, o := range kustomize(t, "openshift") {
		switch o.GetKind() {
		case "Role", "ClusterRole":
			var rules []rbacv1.PolicyRule
			if raw, ok := o.Object["rules"]; ok {
				data, _ := yaml.Marshal(raw)
				if err := yaml.Unmarshal(data, &rules); err != nil {
					t.Fatal(err)
				}
			}
			if g := grants(rules); len(g) > 0 {
				got[o.GetKind()+"/"+o.GetName()] = g
			}
		case "RoleBinding", "ClusterRoleBinding":
			var b rbacv1.RoleBinding
			fromUnstructured(t, o, "roleRef", &b.RoleRef)
			subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
			for _, s := range subjects {
				m := s.(map[string]any)
				bound[b.RoleRef.Kind+"/"+b.RoleRef.Name] = append(bound[b.RoleRef.Kind+"/"+b.RoleRef.Name],
					fmt.Sprintf("%s %s/%s (in %s)", m["kind"], m["namespace"], m["name"], o.GetNamespace()))
			}
		}
	}
	want := map[string][]string{"Role/bpfd-node-scc": {"bpfd-node"}, "ClusterRole/bpfd-restricted-scc": {"bpfd-restricted"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("roles that may use SCCs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ServiceAccount bpfd/bpfd-agent (in bpfd)"}, bound["Role/bpfd-node-scc"]); diff != "" {
		t.Errorf("bpfd-node-scc bound to (-want +got):\n%s", diff)
	}
	if b := bound["ClusterRole/bpfd-restricted-scc"]; len(b) > 0 {
		t.Errorf("bpfd-restricted-scc is bound to %v; binding it is an administrator's choice", b)
	}

	data, err := os.ReadFile(filepath.Join(testEnv.Root, "bundle", "manifests", "bpfd-operator.clusterserviceversion.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	csv := &operatorsv1alpha1.ClusterServiceVersion{}
	if err := yaml.Unmarshal(data, csv); err != nil {
		t.Fatal(err)
	}
	bundle := map[string][]string{}
	st := csv.Spec.InstallStrategy.StrategySpec
	for _, p := range append(slices.Clone(st.Permissions), st.ClusterPermissions...) {
		bundle[p.ServiceAccountName] = append(bundle[p.ServiceAccountName], grants(p.Rules)...)
	}
	if diff := cmp.Diff(map[string][]string{"bpfd-agent": {"bpfd-node"}, "bpfd-operator": nil}, bundle); diff != "" {
		t.Errorf("bundle: SCCs each service account may use (-want +got):\n%s", diff)
	}
	for _, p := range st.ClusterPermissions {
		if len(grants(p.Rules)) > 0 {
			t.Errorf("bundle: %s may use an SCC cluster-wide", p.ServiceAccountName)
		}
	}
}

// TestSCCSchema: OpenShift's SCC API (its CRD, from github.com/openshift/api)
// accepts config/openshift's SCCs as they are.
func TestSCCSchema(t *testing.T) {
	crd := sccCRD(t)
	if _, err := envtest.InstallCRDs(testEnv.Config, envtest.CRDInstallOptions{CRDs: []*apiextensionsv1.CustomResourceDefinition{crd}}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, o := range kustomize(t, "openshift") {
		if o.GetKind() != "SecurityContextConstraints" {
			continue
		}
		n++
		k8stest.Eventually(t, 10*time.Second, func() error { // until the CRD is served
			if err := testEnv.Client.Create(context.Background(), o.DeepCopy()); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("SCC %s: %w", o.GetName(), err)
			}
			return nil
		})
	}
	if n != 2 {
		t.Errorf("config/openshift holds %d SCCs, want 2", n)
	}
}

// sccCRD reads the SCC CRD of the github.com/openshift/api this test is
// built with from the module cache.
func sccCRD(t *testing.T) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/openshift/api").Output()
	if err != nil {
		t.Fatalf("go list -m github.com/openshift/api: %v", err)
	}
	path := filepath.Join(strings.TrimSpace(string(out)),
		"security/v1/zz_generated.crd-manifests/0000_03_config-operator_01_securitycontextconstraints.crd.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal(data, crd); err != nil {
		t.Fatal(err)
	}
	return crd
}
