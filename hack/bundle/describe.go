package main

import (
	"sort"
	"strings"
	"unicode"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// Descriptor URNs the OpenShift console knows.
const (
	xText       = "urn:alm:descriptor:com.tectonic.ui:text"
	xNumber     = "urn:alm:descriptor:com.tectonic.ui:number"
	xBoolean    = "urn:alm:descriptor:com.tectonic.ui:booleanSwitch"
	xSelect     = "urn:alm:descriptor:com.tectonic.ui:select:"
	xFieldGroup = "urn:alm:descriptor:com.tectonic.ui:fieldGroup:"
	xArrayGroup = "urn:alm:descriptor:com.tectonic.ui:arrayFieldGroup:"
	xAdvanced   = "urn:alm:descriptor:com.tectonic.ui:advanced"
	xConditions = "urn:alm:descriptor:io.kubernetes.conditions"
	xNode       = "urn:alm:descriptor:io.kubernetes:Node"
	xStatusText = "urn:alm:descriptor:text"
)

// resources lists, per kind, the objects the operator and agents make for
// one of its objects.
var resources = map[string][]operatorsv1alpha1.APIResourceReference{
	"BpfProgramConfig":       {{Name: "bpfprograms.bpfd.io", Kind: "BpfProgram", Version: "v1alpha1"}},
	"BpfTenantProgramConfig": {{Name: "bpftenantprograms.bpfd.io", Kind: "BpfTenantProgram", Version: "v1alpha1"}},
}

// describeCRD returns the CSV's description of one version of crd: display
// name and description from the schema, spec descriptors for the spec's
// fields two levels deep, status descriptors for the status's fields.
func describeCRD(crd *apiextensionsv1.CustomResourceDefinition, ver apiextensionsv1.CustomResourceDefinitionVersion) operatorsv1alpha1.CRDDescription {
	d := operatorsv1alpha1.CRDDescription{
		Name:        crd.Name,
		Version:     ver.Name,
		Kind:        crd.Spec.Names.Kind,
		DisplayName: words(crd.Spec.Names.Kind),
		Resources:   resources[crd.Spec.Names.Kind],
	}
	if ver.Schema == nil || ver.Schema.OpenAPIV3Schema == nil {
		return d
	}
	root := ver.Schema.OpenAPIV3Schema
	d.Description = firstParagraph(root.Description)
	if spec, ok := root.Properties["spec"]; ok {
		walk(spec, "", 2, func(path string, s apiextensionsv1.JSONSchemaProps, x []string) {
			d.SpecDescriptors = append(d.SpecDescriptors, operatorsv1alpha1.SpecDescriptor{
				Path: path, DisplayName: words(last(path)), Description: firstSentence(s.Description), XDescriptors: x,
			})
		})
	}
	if status, ok := root.Properties["status"]; ok {
		walk(status, "", 1, func(path string, s apiextensionsv1.JSONSchemaProps, x []string) {
			if path == "conditions" {
				x = []string{xConditions}
			} else {
				x = []string{xStatusText}
			}
			d.StatusDescriptors = append(d.StatusDescriptors, operatorsv1alpha1.StatusDescriptor{
				Path: path, DisplayName: words(last(path)), Description: firstSentence(s.Description), XDescriptors: x,
			})
		})
	}
	return d
}

// walk calls fn for each property of s, in name order, down to depth levels
// (objects below that are described whole), with the console descriptors
// of its type.
func walk(s apiextensionsv1.JSONSchemaProps, prefix string, depth int, fn func(string, apiextensionsv1.JSONSchemaProps, []string)) {
	names := make([]string, 0, len(s.Properties))
	for n := range s.Properties {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := s.Properties[n]
		path := n
		if prefix != "" {
			path = prefix + "." + n
		}
		fn(path, p, xDescriptors(n, p))
		if p.Type == "object" && len(p.Properties) > 0 && depth > 1 {
			walk(p, path, depth-1, fn)
		}
	}
}

func xDescriptors(name string, p apiextensionsv1.JSONSchemaProps) []string {
	switch {
	case name == "nodeName":
		return []string{xNode}
	case len(p.Enum) > 0:
		var x []string
		for _, e := range p.Enum {
			x = append(x, xSelect+strings.Trim(string(e.Raw), `"`))
		}
		return x
	case p.Type == "boolean":
		return []string{xBoolean, xAdvanced}
	case p.Type == "integer" || p.Type == "number":
		return []string{xNumber}
	case p.Type == "string":
		return []string{xText}
	case p.Type == "array":
		return []string{xArrayGroup + name}
	case p.Type == "object" && len(p.Properties) > 0:
		return []string{xFieldGroup + name}
	}
	return nil
}

// words turns a Go or JSON name into display words: BpfProgramConfig ->
// "Bpf Program Config", allowTagUnsafe -> "Allow Tag Unsafe".
func words(name string) string {
	var b strings.Builder
	rs := []rune(name)
	for i, r := range rs {
		if i > 0 && unicode.IsUpper(r) && (unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]))) {
			b.WriteRune(' ')
		}
		if i == 0 {
			r = unicode.ToUpper(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

func last(path string) string { return path[strings.LastIndex(path, ".")+1:] }

// firstParagraph returns the text up to the first blank line, on one line.
func firstParagraph(s string) string {
	p, _, _ := strings.Cut(strings.TrimSpace(s), "\n\n")
	return strings.Join(strings.Fields(p), " ")
}

// firstSentence returns the first sentence of a field's description.
func firstSentence(s string) string {
	p := firstParagraph(s)
	if i := strings.Index(p, ". "); i >= 0 {
		return p[:i+1]
	}
	return p
}
