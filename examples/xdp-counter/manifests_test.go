package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// TestManifests builds the example's kustomizations and checks that the
// pod they run is admitted by Pod Security's restricted profile and by the
// SCC bpfd-app, which is OpenShift's restricted-v2 with csi volumes and
// nothing looser.
func TestManifests(t *testing.T) {
	base := kustomize(t, ".")
	ocp := kustomize(t, "openshift")
	if diff := cmp.Diff([]string{"BpfProgramConfig/xdp-counter", "DaemonSet/xdp-counter", "Namespace/xdp-counter", "ServiceAccount/xdp-counter"}, kinds(base)); diff != "" {
		t.Errorf("examples/xdp-counter (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"BpfProgramConfig/xdp-counter", "DaemonSet/xdp-counter", "Namespace/xdp-counter", "Role/use-bpfd-app-scc",
		"RoleBinding/use-bpfd-app-scc", "SecurityContextConstraints/bpfd-app", "ServiceAccount/xdp-counter"}, kinds(ocp)); diff != "" {
		t.Errorf("examples/xdp-counter/openshift (-want +got):\n%s", diff)
	}
	basePod, ocpPod := podOf(t, base), podOf(t, ocp)
	bpfdApp := sccOf(t, ocp)
	restricted := readSCC(t, "testdata/restricted-v2.yaml")

	t.Run("Pod Security restricted admits the pod", func(t *testing.T) {
		ns := object(t, base, "Namespace", "xdp-counter")
		if got := ns.GetLabels()["pod-security.kubernetes.io/enforce"]; got != "restricted" {
			t.Errorf("namespace enforces %q, want restricted", got)
		}
		for name, pod := range map[string]corev1.PodSpec{"base": basePod, "openshift": ocpPod} {
			if v := podSecurityViolations(t, pod); len(v) > 0 {
				t.Errorf("%s: Pod Security restricted refuses the pod: %s", name, strings.Join(v, "; "))
			}
		}
		// The same pod with bpfd's bpffs as a host path is refused.
		hostPath := *basePod.DeepCopy()
		hostPath.Volumes[0].VolumeSource = corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/run/bpfd/fs"}}
		if v := podSecurityViolations(t, hostPath); len(v) == 0 {
			t.Error("Pod Security restricted admits a hostPath of bpfd's bpffs")
		}
	})
	t.Run("the pod asks for what the issue demands", func(t *testing.T) {
		sc := basePod.Containers[0].SecurityContext
		if !ptr.Deref(basePod.SecurityContext.RunAsNonRoot, false) || !ptr.Deref(sc.RunAsNonRoot, false) ||
			ptr.Deref(sc.AllowPrivilegeEscalation, true) || !ptr.Deref(sc.ReadOnlyRootFilesystem, false) ||
			!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 ||
			basePod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("container security context %+v, pod %+v", sc, basePod.SecurityContext)
		}
		// csi.bpfd.io gives the maps to the pod's fsGroup: the base pod
		// names one, on OpenShift the SCC assigns it from the namespace's
		// range (as it does the uid).
		if basePod.SecurityContext.FSGroup == nil {
			t.Error("the base pod sets no fsGroup")
		}
		if s := ocpPod.SecurityContext; s.FSGroup != nil || s.RunAsUser != nil || s.RunAsGroup != nil {
			t.Errorf("the OpenShift pod fixes fsGroup %v, runAsUser %v, runAsGroup %v; the SCC assigns them", s.FSGroup, s.RunAsUser, s.RunAsGroup)
		}
		v := basePod.Volumes[0]
		if v.CSI == nil || v.CSI.Driver != "csi.bpfd.io" || !ptr.Deref(v.CSI.ReadOnly, false) || v.CSI.VolumeAttributes["config"] != "xdp-counter" {
			t.Errorf("volume %+v, want a read-only csi.bpfd.io volume of config xdp-counter", v)
		}
	})
	t.Run("bpfd-app admits the pod", func(t *testing.T) {
		if v := bpfdApp.violations(ocpPod); len(v) > 0 {
			t.Errorf("bpfd-app refuses the pod: %s", strings.Join(v, "; "))
		}
	})
	t.Run("restricted-v2 refuses it for its csi volume alone", func(t *testing.T) {
		want := []string{"volume maps: csi volumes are not allowed"}
		if diff := cmp.Diff(want, restricted.violations(ocpPod)); diff != "" {
			t.Errorf("restricted-v2's refusals (-want +got):\n%s", diff)
		}
	})
	t.Run("bpfd-app is restricted-v2 with csi volumes, nothing looser", func(t *testing.T) {
		for _, d := range restricted.looserIn(bpfdApp) {
			if d != "volumes: csi" {
				t.Errorf("bpfd-app is looser than restricted-v2 in %s", d)
			}
		}
		if !slices.Equal(bpfdApp.Volumes, []string{"csi"}) || !bpfdApp.ReadOnlyRootFilesystem || len(bpfdApp.AllowedCapabilities) > 0 ||
			len(bpfdApp.Users) > 0 || len(bpfdApp.Groups) > 0 {
			t.Errorf("bpfd-app: volumes %v, readOnlyRootFilesystem %t, capabilities %v, users %v, groups %v; want csi only, true, none, granted by RBAC only",
				bpfdApp.Volumes, bpfdApp.ReadOnlyRootFilesystem, bpfdApp.AllowedCapabilities, bpfdApp.Users, bpfdApp.Groups)
		}
	})
	t.Run("bpfd-app refuses what it must", func(t *testing.T) {
		cases := map[string]func(*corev1.PodSpec){
			"a capability": func(p *corev1.PodSpec) {
				p.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"NET_BIND_SERVICE"}
			},
			"privilege escalation":         func(p *corev1.PodSpec) { p.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr.To(true) },
			"a writable root":              func(p *corev1.PodSpec) { p.Containers[0].SecurityContext.ReadOnlyRootFilesystem = ptr.To(false) },
			"privileged":                   func(p *corev1.PodSpec) { p.Containers[0].SecurityContext.Privileged = ptr.To(true) },
			"the host's network":           func(p *corev1.PodSpec) { p.HostNetwork = true },
			"a host port":                  func(p *corev1.PodSpec) { p.Containers[0].Ports[0].HostPort = 9100 },
			"root":                         func(p *corev1.PodSpec) { p.SecurityContext.RunAsUser = ptr.To[int64](0) },
			"an fsGroup outside the range": func(p *corev1.PodSpec) { p.SecurityContext.FSGroup = ptr.To[int64](65532) },
			"an unconfined seccomp": func(p *corev1.PodSpec) {
				p.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
			},
			"an emptyDir": func(p *corev1.PodSpec) {
				p.Volumes = append(p.Volumes, corev1.Volume{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
			},
			"a hostPath of bpfd's bpffs": func(p *corev1.PodSpec) {
				p.Volumes = append(p.Volumes, corev1.Volume{Name: "bpffs", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/run/bpfd/fs"}}})
			},
		}
		for name, edit := range cases {
			pod := *ocpPod.DeepCopy()
			edit(&pod)
			if v := bpfdApp.violations(pod); len(v) == 0 {
				t.Errorf("%s: admitted", name)
			}
		}
	})
}

// podSecurityViolations evaluates pod against Pod Security's restricted
// profile, latest version, as the API server's admission does.
func podSecurityViolations(t *testing.T, pod corev1.PodSpec) []string {
	t.Helper()
	e, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range e.EvaluatePod(api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}, &metav1.ObjectMeta{}, &pod) {
		if !r.Allowed {
			out = append(out, r.ForbiddenReason+": "+r.ForbiddenDetail)
		}
	}
	return out
}

// kustomize builds examples/xdp-counter/dir with kubectl.
func kustomize(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join("..", "..", "bin", "k8s")
	}
	kubectl := filepath.Join(assets, "kubectl")
	out, err := exec.Command(kubectl, "kustomize", dir).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, ee.Stderr)
		}
		t.Fatalf("kubectl kustomize %s: %v (make tools builds bin/k8s)", dir, err)
	}
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return objs
		} else if err != nil {
			t.Fatalf("kustomize %s: %v", dir, err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

func kinds(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	slices.Sort(out)
	return out
}

func object(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s", kind, name)
	return nil
}

func podOf(t *testing.T, objs []*unstructured.Unstructured) corev1.PodSpec {
	t.Helper()
	ds := &appsv1.DaemonSet{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(object(t, objs, "DaemonSet", "xdp-counter").Object, ds, true); err != nil {
		t.Fatalf("DaemonSet: %v", err)
	}
	return ds.Spec.Template.Spec
}

func sccOf(t *testing.T, objs []*unstructured.Unstructured) *scc {
	t.Helper()
	b, err := yaml.Marshal(object(t, objs, "SecurityContextConstraints", "bpfd-app").Object)
	if err != nil {
		t.Fatal(err)
	}
	return parseSCC(t, "bpfd-app", b)
}

func readSCC(t *testing.T, path string) *scc {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseSCC(t, path, b)
}

func parseSCC(t *testing.T, name string, b []byte) *scc {
	t.Helper()
	s := &scc{}
	if err := yaml.UnmarshalStrict(b, s); err != nil {
		t.Fatalf("SCC %s: %v", name, err)
	}
	if s.APIVersion != "security.openshift.io/v1" || s.Kind != "SecurityContextConstraints" {
		t.Fatalf("SCC %s: %s %s", name, s.APIVersion, s.Kind)
	}
	return s
}

// String names the SCC.
func (s *scc) String() string { return fmt.Sprintf("SCC %s", s.Metadata.Name) }
