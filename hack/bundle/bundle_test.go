package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/operator-framework/api/pkg/manifests"
	"github.com/operator-framework/api/pkg/validation"
	"github.com/operator-framework/api/pkg/validation/errors"
	interfaces "github.com/operator-framework/api/pkg/validation/interfaces"
)

const root = "../.."

// TestBundleIsUpToDate: the committed bundle is what `make bundle` makes of
// config/ now, file for file.
func TestBundleIsUpToDate(t *testing.T) {
	want, err := Generate(root)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	if err := filepath.WalkDir(filepath.Join(root, "bundle"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		got[strings.TrimPrefix(path, root+"/")] = data
		return err
	}); err != nil {
		t.Fatal(err)
	}
	dockerfile, err := os.ReadFile(filepath.Join(root, "bundle.Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	got["bundle.Dockerfile"] = dockerfile
	for name, data := range want {
		if have, ok := got[name]; !ok {
			t.Errorf("%s is missing: run make bundle", name)
		} else if !bytes.Equal(have, data) {
			t.Errorf("%s is out of date: run make bundle\n%s", name, cmp.Diff(string(data), string(have)))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s is not generated: run make bundle", name)
		}
	}
}

// Validators are the operator framework's suites that `operator-sdk bundle
// validate` runs: the default ones (CSV, CRDs, bundle) and, with
// --select-optional suite=operatorframework, OperatorHub's, its standard
// capabilities and categories, good practices, the objects' checks and
// deprecated APIs. Two are left out: MultipleArchitectures inspects the
// images in their registries, which a test must not reach, and
// CommunityOperator is deprecated in favour of a validator outside the
// library.
var Validators = interfaces.Validators{
	validation.ClusterServiceVersionValidator,
	validation.CustomResourceDefinitionValidator,
	validation.BundleValidator,
	validation.OperatorHubValidator,
	validation.OperatorHubV2Validator,
	validation.StandardCapabilitiesValidator,
	validation.StandardCategoriesValidator,
	validation.GoodPracticesValidator,
	validation.ObjectValidator,
	validation.OperatorGroupValidator,
	validation.AlphaDeprecatedAPIsValidator,
}

// Warnings are the validators' warnings the bundle is known to have; each is
// explained in docs/openshift.md. Any other warning, or any error, fails.
var Warnings []string

func TestBundleValidates(t *testing.T) {
	errs, warnings := validate(t, loadBundle(t))
	for _, e := range errs {
		t.Error(e)
	}
	if diff := cmp.Diff(Warnings, warnings); diff != "" {
		t.Errorf("warnings (-known +got); explain new ones in docs/openshift.md:\n%s", diff)
	}
}

// TestValidatorsCatch: the suites find what is wrong in a bundle, so that
// their silence about bpfd's means something.
func TestValidatorsCatch(t *testing.T) {
	cases := map[string]func(*manifests.Bundle){
		"no provider":              func(b *manifests.Bundle) { b.CSV.Spec.Provider.Name = "" },
		"bad minKubeVersion":       func(b *manifests.Bundle) { b.CSV.Spec.MinKubeVersion = "one point thirty-two" },
		"maintainer without email": func(b *manifests.Bundle) { b.CSV.Spec.Maintainers[0].Email = "" },
		"CRD not owned": func(b *manifests.Bundle) {
			b.CSV.Spec.CustomResourceDefinitions.Owned = b.CSV.Spec.CustomResourceDefinitions.Owned[1:]
		},
		"alm-examples not JSON":   func(b *manifests.Bundle) { b.CSV.Annotations["alm-examples"] = "[{" },
		"icon of an unknown type": func(b *manifests.Bundle) { b.CSV.Spec.Icon[0].MediaType = "image/x-bmp" },
		"unknown category":        func(b *manifests.Bundle) { b.CSV.Annotations["categories"] = "Networking, Kernel Magic" },
		"related image not a reference": func(b *manifests.Bundle) {
			b.CSV.Spec.RelatedImages[0].Image = "ghcr.io/bpfd-dev/bpfd:v0.1.0:v2"
		},
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			b := loadBundle(t)
			edit(b)
			if errs, _ := validate(t, b); len(errs) == 0 {
				t.Error("no error")
			}
		})
	}
}

func loadBundle(t *testing.T) *manifests.Bundle {
	t.Helper()
	bundle, err := manifests.GetBundleFromDir(filepath.Join(root, "bundle"))
	if err != nil {
		t.Fatal(err)
	}
	return bundle
}

// validate runs Validators on b and returns the errors and the distinct
// warnings, sorted.
func validate(t *testing.T, b *manifests.Bundle) (errs []error, warnings []string) {
	t.Helper()
	objs := append(b.ObjectsToValidate(), b, map[string]string{"k8s-version": "1.32"})
	for _, r := range Validators.Validate(objs...) {
		for _, e := range r.Errors {
			switch e.Level {
			case errors.LevelError:
				errs = append(errs, fmt.Errorf("%s: %w", r.Name, e))
			case errors.LevelWarn:
				warnings = append(warnings, e.Error())
			}
		}
	}
	slices.Sort(warnings)
	return errs, slices.Compact(warnings)
}

// olmKinds are the kinds OLM installs from a bundle: the built-in ones its
// install plan handles and the few others it allows. Anything else (a
// SecurityContextConstraints, a ValidatingAdmissionPolicy) fails the
// install plan as an unsupported resource, which no validation suite
// reports; docs/openshift.md says how those are installed instead.
var olmKinds = []string{
	"ClusterServiceVersion", "CustomResourceDefinition", "Secret", "ConfigMap", "ClusterRole", "ClusterRoleBinding",
	"Role", "RoleBinding", "ServiceAccount", "Service", "PrometheusRule", "ServiceMonitor", "PodDisruptionBudget",
	"PriorityClass", "VerticalPodAutoscaler", "ConsoleYAMLSample", "ConsoleQuickStart", "ConsoleCLIDownload", "ConsoleLink",
}

// TestBundleKinds: every manifest in the bundle is of a kind OLM installs.
func TestBundleKinds(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(root, "bundle", "manifests", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		objs, err := readObjects(root, strings.TrimPrefix(p, root+"/"))
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if !slices.Contains(olmKinds, o.GetKind()) {
				t.Errorf("%s: kind %s, which OLM does not install from a bundle", p, o.GetKind())
			}
		}
	}
}
