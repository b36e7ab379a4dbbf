package crdcompat

import (
	"fmt"
	"slices"
	"sort"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// Parse reads a CRD from YAML.
func Parse(b []byte) (*apiextensionsv1.CustomResourceDefinition, error) {
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(b, crd); err != nil {
		return nil, err
	}
	if crd.Kind != "CustomResourceDefinition" || crd.Name == "" {
		return nil, fmt.Errorf("not a CustomResourceDefinition (kind %q, name %q)", crd.Kind, crd.Name)
	}
	return crd, nil
}

// Breaking returns what cur changes in prev that the rules refuse, one
// line each naming the version and field path, sorted.
func Breaking(prev, cur *apiextensionsv1.CustomResourceDefinition) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if prev.Spec.Group != cur.Spec.Group || prev.Spec.Names.Kind != cur.Spec.Names.Kind || prev.Spec.Names.Plural != cur.Spec.Names.Plural {
		add("group, kind or plural changed: %s %s/%s, was %s %s/%s", cur.Spec.Group, cur.Spec.Names.Kind, cur.Spec.Names.Plural, prev.Spec.Group, prev.Spec.Names.Kind, prev.Spec.Names.Plural)
	}
	if prev.Spec.Scope != cur.Spec.Scope {
		add("scope %s, was %s", cur.Spec.Scope, prev.Spec.Scope)
	}
	for _, short := range prev.Spec.Names.ShortNames {
		if !slices.Contains(cur.Spec.Names.ShortNames, short) {
			add("short name %q removed", short)
		}
	}
	versions := map[string]apiextensionsv1.CustomResourceDefinitionVersion{}
	for _, v := range cur.Spec.Versions {
		versions[v.Name] = v
	}
	for _, pv := range prev.Spec.Versions {
		cv, ok := versions[pv.Name]
		switch {
		case !pv.Served:
			continue
		case !ok || !cv.Served:
			add("%s: no longer served", pv.Name)
			continue
		}
		if pv.Storage && !cv.Storage {
			add("%s: no longer the storage version (stored objects need a migration first)", pv.Name)
		}
		if (pv.Subresources == nil) != (cv.Subresources == nil) ||
			(pv.Subresources != nil && (pv.Subresources.Status == nil) != (cv.Subresources.Status == nil)) {
			add("%s: the status subresource changed", pv.Name)
		}
		if pv.Schema == nil || pv.Schema.OpenAPIV3Schema == nil {
			continue
		}
		if cv.Schema == nil || cv.Schema.OpenAPIV3Schema == nil {
			add("%s: the schema is gone", pv.Name)
			continue
		}
		compare(pv.Name, pv.Schema.OpenAPIV3Schema, cv.Schema.OpenAPIV3Schema, add)
	}
	sort.Strings(out)
	return out
}

// compare checks the schema cur at path against prev and its fields,
// recursively.
func compare(path string, prev, cur *apiextensionsv1.JSONSchemaProps, add func(string, ...any)) {
	if prev.Type != cur.Type {
		add("%s: type %q, was %q", path, cur.Type, prev.Type)
		return
	}
	if prev.Format != cur.Format {
		add("%s: format %q, was %q", path, cur.Format, prev.Format)
	}
	if prev.XPreserveUnknownFields != nil && *prev.XPreserveUnknownFields && (cur.XPreserveUnknownFields == nil || !*cur.XPreserveUnknownFields) {
		add("%s: no longer preserves unknown fields", path)
	}
	if prev.XIntOrString != cur.XIntOrString {
		add("%s: x-kubernetes-int-or-string %v, was %v", path, cur.XIntOrString, prev.XIntOrString)
	}
	if !slices.Equal(prev.XListMapKeys, cur.XListMapKeys) || ptrString(prev.XListType) != ptrString(cur.XListType) || ptrString(prev.XMapType) != ptrString(cur.XMapType) {
		add("%s: list or map type changed", path)
	}
	for _, r := range cur.Required {
		if !slices.Contains(prev.Required, r) {
			add("%s.%s: newly required", path, r)
		}
	}
	if len(cur.Enum) > 0 {
		if len(prev.Enum) == 0 {
			add("%s: newly an enum", path)
		}
		for _, e := range prev.Enum {
			if !slices.ContainsFunc(cur.Enum, func(c apiextensionsv1.JSON) bool { return string(c.Raw) == string(e.Raw) }) {
				add("%s: enum value %s removed", path, e.Raw)
			}
		}
	}
	if cur.Pattern != "" && cur.Pattern != prev.Pattern {
		add("%s: pattern %q, was %q", path, cur.Pattern, prev.Pattern)
	}
	upper := func(name string, p, c *int64) {
		if c != nil && (p == nil || *c < *p) {
			add("%s: %s %d, was %s", path, name, *c, ptrInt(p))
		}
	}
	lower := func(name string, p, c *int64) {
		if c != nil && (p == nil || *c > *p) {
			add("%s: %s %d, was %s", path, name, *c, ptrInt(p))
		}
	}
	upper("maxLength", prev.MaxLength, cur.MaxLength)
	upper("maxItems", prev.MaxItems, cur.MaxItems)
	upper("maxProperties", prev.MaxProperties, cur.MaxProperties)
	lower("minLength", prev.MinLength, cur.MinLength)
	lower("minItems", prev.MinItems, cur.MinItems)
	lower("minProperties", prev.MinProperties, cur.MinProperties)
	if c := cur.Maximum; c != nil && (prev.Maximum == nil || *c < *prev.Maximum || (cur.ExclusiveMaximum && !prev.ExclusiveMaximum && *c == *prev.Maximum)) {
		add("%s: maximum %v, was %s", path, *c, ptrFloat(prev.Maximum))
	}
	if c := cur.Minimum; c != nil && (prev.Minimum == nil || *c > *prev.Minimum || (cur.ExclusiveMinimum && !prev.ExclusiveMinimum && *c == *prev.Minimum)) {
		add("%s: minimum %v, was %s", path, *c, ptrFloat(prev.Minimum))
	}
	if cur.UniqueItems && !prev.UniqueItems {
		add("%s: newly unique items", path)
	}
	for _, rule := range cur.XValidations {
		if !slices.ContainsFunc(prev.XValidations, func(p apiextensionsv1.ValidationRule) bool { return p.Rule == rule.Rule }) {
			add("%s: new validation rule %q", path, rule.Rule)
		}
	}
	if len(cur.OneOf) > 0 || len(cur.AnyOf) > 0 || len(cur.AllOf) > 0 || cur.Not != nil {
		if len(cur.OneOf) != len(prev.OneOf) || len(cur.AnyOf) != len(prev.AnyOf) || len(cur.AllOf) != len(prev.AllOf) || (cur.Not == nil) != (prev.Not == nil) {
			add("%s: oneOf, anyOf, allOf or not changed", path)
		}
	}

	names := make([]string, 0, len(prev.Properties))
	for name := range prev.Properties {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := prev.Properties[name]
		c, ok := cur.Properties[name]
		if !ok {
			add("%s.%s: removed", path, name)
			continue
		}
		compare(path+"."+name, &p, &c, add)
	}
	if prev.Items != nil && prev.Items.Schema != nil {
		if cur.Items == nil || cur.Items.Schema == nil {
			add("%s[]: the item schema is gone", path)
		} else {
			compare(path+"[]", prev.Items.Schema, cur.Items.Schema, add)
		}
	}
	if prev.AdditionalProperties != nil && prev.AdditionalProperties.Schema != nil {
		if cur.AdditionalProperties == nil || cur.AdditionalProperties.Schema == nil {
			add("%s{}: the value schema is gone", path)
		} else {
			compare(path+"{}", prev.AdditionalProperties.Schema, cur.AdditionalProperties.Schema, add)
		}
	}
}

func ptrString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func ptrInt(p *int64) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}

func ptrFloat(p *float64) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}
