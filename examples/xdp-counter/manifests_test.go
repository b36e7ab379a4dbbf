package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	securityv1 "github.com/openshift/api/security/v1"
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

	"github.com/bpfd-dev/bpfd/internal/testing/scctest"
)

// TestManifests builds the example's kustomizations and checks that the
// pod they run is admitted by Pod Security's restricted profile and, on
// OpenShift, by bpfd's SCC bpfd-restricted (restricted-v2 with csi volumes,
// config/openshift), which restricted-v2 would refuse for the csi volume
// alone.
func TestManifests(t *testing.T) {
	base := kustomize(t, ".")
	ocp := kustomize(t, "openshift")
	if diff := cmp.Diff([]string{"BpfProgramConfig/xdp-counter", "DaemonSet/xdp-counter", "Namespace/xdp-counter", "ServiceAccount/xdp-counter"}, kinds(base)); diff != "" {
		t.Errorf("examples/xdp-counter (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"BpfProgramConfig/xdp-counter", "DaemonSet/xdp-counter", "Namespace/xdp-counter",
		"RoleBinding/bpfd-restricted-scc", "ServiceAccount/xdp-counter"}, kinds(ocp)); diff != "" {
		t.Errorf("examples/xdp-counter/openshift (-want +got):\n%s", diff)
	}
	basePod, ocpTemplate := podOf(t, base), templateOf(t, ocp)
	ocpPod := ocpTemplate.Spec
	restricted := readSCC(t, filepath.Join("..", "..", "config", "openshift", "scc-restricted.yaml"))

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
		if got := ocpTemplate.Annotations["openshift.io/required-scc"]; got != "bpfd-restricted" {
			t.Errorf("the OpenShift pod requires SCC %q, want bpfd-restricted", got)
		}
		v := basePod.Volumes[0]
		if v.CSI == nil || v.CSI.Driver != "csi.bpfd.io" || !ptr.Deref(v.CSI.ReadOnly, false) || v.CSI.VolumeAttributes["config"] != "xdp-counter" {
			t.Errorf("volume %+v, want a read-only csi.bpfd.io volume of config xdp-counter", v)
		}
	})
	t.Run("bpfd-restricted admits the pod, restricted-v2 refuses it for its csi volume alone", func(t *testing.T) {
		r := scctest.Admit(restricted, &ocpPod, scctest.DefaultNamespace)
		if len(r.Violations) > 0 {
			t.Fatalf("bpfd-restricted refuses the pod: %v", r.Violations)
		}
		c := r.Containers[0]
		if c.RunAsUser == nil || *c.RunAsUser != scctest.DefaultNamespace.UIDs.Min || c.Privileged || c.AllowPrivilegeEscalation || !c.ReadOnlyRootFilesystem || len(c.Add) > 0 {
			t.Errorf("the container runs with %+v", c)
		}
		var fields []string
		for _, v := range scctest.Admit(scctest.RestrictedV2(), &ocpPod, scctest.DefaultNamespace).Violations {
			fields = append(fields, v.Field)
		}
		if diff := cmp.Diff([]string{"spec.volumes[maps]"}, fields); diff != "" {
			t.Errorf("restricted-v2's refusals (-want +got):\n%s", diff)
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
	return templateOf(t, objs).Spec
}

func templateOf(t *testing.T, objs []*unstructured.Unstructured) corev1.PodTemplateSpec {
	t.Helper()
	ds := &appsv1.DaemonSet{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(object(t, objs, "DaemonSet", "xdp-counter").Object, ds, true); err != nil {
		t.Fatalf("DaemonSet: %v", err)
	}
	return ds.Spec.Template
}

func readSCC(t *testing.T, path string) *securityv1.SecurityContextConstraints {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	scc := &securityv1.SecurityContextConstraints{}
	if err := yaml.UnmarshalStrict(b, scc); err != nil {
		t.Fatalf("SCC %s: %v", path, err)
	}
	return scc
}
