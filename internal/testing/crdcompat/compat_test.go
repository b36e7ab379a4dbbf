package crdcompat_test

import (
	"os"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/utils/ptr"

	"github.com/bpfd-dev/bpfd/internal/testing/crdcompat"
)

// load reads the BpfProgramConfig CRD, whose schema has every kind of
// constraint the rules look at.
func load(t *testing.T) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	b, err := os.ReadFile("../../../config/crd/bases/bpfd.io_bpfprogramconfigs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	crd, err := crdcompat.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return crd
}

func root(crd *apiextensionsv1.CustomResourceDefinition) *apiextensionsv1.JSONSchemaProps {
	return crd.Spec.Versions[0].Schema.OpenAPIV3Schema
}

// edit changes the schema at path with f, writing the change back into the
// map of values the schema's properties are.
func edit(crd *apiextensionsv1.CustomResourceDefinition, path string, f func(*apiextensionsv1.JSONSchemaProps)) {
	var rec func(s *apiextensionsv1.JSONSchemaProps, names []string)
	rec = func(s *apiextensionsv1.JSONSchemaProps, names []string) {
		if len(names) == 0 {
			f(s)
			return
		}
		p := s.Properties[names[0]]
		rec(&p, names[1:])
		s.Properties[names[0]] = p
	}
	var names []string
	if path != "" {
		names = strings.Split(path, ".")
	}
	rec(root(crd), names)
}

// TestBreaking holds each rule to a change it must refuse, and a change
// that adds or loosens to none.
func TestBreaking(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*apiextensionsv1.CustomResourceDefinition)
		want   string // "" for compatible
	}{
		{name: "unchanged", change: func(*apiextensionsv1.CustomResourceDefinition) {}},
		{name: "optional field added", change: func(c *apiextensionsv1.CustomResourceDefinition) {
			edit(c, "spec", func(s *apiextensionsv1.JSONSchemaProps) {
				s.Properties["newField"] = apiextensionsv1.JSONSchemaProps{Type: "string"}
			})
		}},
		{name: "enum value added", change: func(c *apiextensionsv1.CustomResourceDefinition) {
			edit(c, "spec.bytecode.pullPolicy", func(s *apiextensionsv1.JSONSchemaProps) {
				s.Enum = append(s.Enum, apiextensionsv1.JSON{Raw: []byte(`"Sometimes"`)})
			})
		}},
		{name: "maxLength raised", change: func(c *apiextensionsv1.CustomResourceDefinition) {
			edit(c, "spec.bytecode.image", func(s *apiextensionsv1.JSONSchemaProps) { s.MaxLength = ptr.To[int64](2048) })
		}},
		{name: "new version served beside", change: func(c *apiextensionsv1.CustomResourceDefinition) {
			v := *c.Spec.Versions[0].DeepCopy()
			v.Name, v.Storage = "v1beta1", false
			c.Spec.Versions = append(c.Spec.Versions, v)
		}},
		{name: "field removed", want: "v1alpha1.spec.bytecode.pullPolicy: removed", change: func(c *apiextensionsv1.CustomResourceDefinition) {
			edit(c, "spec.bytecode", func(s *apiextensionsv1.JSONSchemaProps) { delete(s.Properties, "pullPolicy") })
		}},
		{name: "type changed", want: `v1alpha1.spec.bytecode.allowTagUnsafe: type "string", was "boolean"`, change: func(c *apiextensionsv1.CustomResourceDefinition) {
			edit(c, "spec.bytecode.allowTagUnsafe", func(s *apiextensionsv1.JSONSchemaProps) { s.Type = "string" })
		}},
		{name: "format changed", want: `v1alpha1.spec.globalData{}: format "", was "byte"`, change: func(c *apiextensionsv1.CustomResourceDefinition) {
			edit(c, "spec.globalData", func(s *apiextensionsv1.JSONSchemaProps) { s.AdditionalProperties.Schema.Format = "" })
		}},
		{name: "newly required", want: "v1alpha1.spec.bytecode.pullPolicy: newly required", change: func(c *apiextensionsv1.CustomResourceDefinition) {
			edit(c, "spec.bytecode", func(s *apiextensionsv1.JSONSchemaProps) { s.Required = append(s.Required, "pullPolicy") })
		}},
		{name: "enum value removed", want: `v1alpha1.spec.bytecode.pullPolicy: enum value "Never" removed`, change: func(c *apiextensionsv1.CustomResourceDefinition) {
			edit(c, "spec.bytecode.pullPolicy", func(s *apiextensionsv1.JSONSchemaProps) { s.Enum = s.Enum[:2] })
		}},
		{name: "maxLength lowered", want: "v1alpha1.spec.bytecode.image: maxLength 512, was 1024", change: func(c *apiextensionsv1.CustomResourceDefinition) {
			edit(c, "spec.bytecode.image", func(s *apiextensionsv1.JSONSchemaProps) { s.MaxLength = ptr.To[int64](512) })
		}},
		{name: "minLength raised", want: "v1alpha1.spec.bytecode.image: minLength 2, was 1", change: func(c *apiextensionsv1.CustomResourceDefinition) {
			edit(c, "spec.bytecode.image", func(s *apiextensionsv1.JSONSchemaProps) { s.MinLength = ptr.To[int64](2) })
		}},
		{name: "maxProperties added", want: "v1alpha1.spec.bytecode: maxProperties 2, was none", change: func(c *apiextensionsv1.CustomResourceDefinition) {
			edit(c, "spec.bytecode", func(s *apiextensionsv1.JSONSchemaProps) { s.MaxProperties = ptr.To[int64](2) })
		}},
		{name: "pattern added", want: `v1alpha1.spec.bytecode.image: pattern "^oci:", was ""`, change: func(c *apiextensionsv1.CustomResourceDefinition) {
			edit(c, "spec.bytecode.image", func(s *apiextensionsv1.JSONSchemaProps) { s.Pattern = "^oci:" })
		}},
		{name: "validation rule added", want: `v1alpha1.spec.bytecode: new validation rule "self.image.size() < 10"`, change: func(c *apiextensionsv1.CustomResourceDefinition) {
			edit(c, "spec.bytecode", func(s *apiextensionsv1.JSONSchemaProps) {
				s.XValidations = append(s.XValidations, apiextensionsv1.ValidationRule{Rule: "self.image.size() < 10"})
			})
		}},
		{name: "maximum lowered", want: "maximum", change: func(c *apiextensionsv1.CustomResourceDefinition) {
			lowerFirstMaximum(t, root(c))
		}},
		{name: "version no longer served", want: "v1alpha1: no longer served", change: func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].Served = false
		}},
		{name: "storage version moved", want: "v1alpha1: no longer the storage version", change: func(c *apiextensionsv1.CustomResourceDefinition) {
			v := *c.Spec.Versions[0].DeepCopy()
			v.Name = "v1beta1"
			c.Spec.Versions[0].Storage = false
			c.Spec.Versions = append(c.Spec.Versions, v)
		}},
		{name: "scope changed", want: "scope Namespaced, was Cluster", change: func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Scope = apiextensionsv1.NamespaceScoped
		}},
		{name: "short name removed", want: "short name", change: func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Names.ShortNames = nil
		}},
		{name: "status subresource removed", want: "v1alpha1: the status subresource changed", change: func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].Subresources = nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev := load(t)
			if prev.Spec.Scope != apiextensionsv1.ClusterScoped || len(prev.Spec.Names.ShortNames) == 0 {
				t.Fatalf("the CRD is %s with short names %v: the cases assume a cluster-scoped CRD with short names", prev.Spec.Scope, prev.Spec.Names.ShortNames)
			}
			cur := load(t)
			tc.change(cur)
			got := crdcompat.Breaking(prev, cur)
			if tc.want == "" {
				if len(got) != 0 {
					t.Errorf("compatible change refused: %q", got)
				}
				return
			}
			if len(got) != 1 || !strings.Contains(got[0], tc.want) {
				t.Errorf("got %q, want one problem with %q", got, tc.want)
			}
		})
	}
}

// lowerFirstMaximum lowers the first maximum found under s.
func lowerFirstMaximum(t *testing.T, s *apiextensionsv1.JSONSchemaProps) {
	t.Helper()
	var rec func(s *apiextensionsv1.JSONSchemaProps) bool
	rec = func(s *apiextensionsv1.JSONSchemaProps) bool {
		if s.Maximum != nil {
			s.Maximum = ptr.To(*s.Maximum - 1)
			return true
		}
		for name, p := range s.Properties {
			if rec(&p) {
				s.Properties[name] = p
				return true
			}
		}
		if s.Items != nil && s.Items.Schema != nil {
			return rec(s.Items.Schema)
		}
		return false
	}
	if !rec(s) {
		t.Fatal("no maximum in the schema")
	}
}

// TestParse refuses what is not a CRD.
func TestParse(t *testing.T) {
	for _, in := range []string{"kind: ConfigMap\nmetadata: {name: x}\n", "kind: CustomResourceDefinition\n", "kind: CustomResourceDefinition\nmetadata: {name: x}\nbogus: 1\n"} {
		if _, err := crdcompat.Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%q): no error", in)
		}
	}
}
