package v1alpha1

import (
	"fmt"

	"k8s.io/apimachinery/pkg/labels"
)

// SelectsNode reports whether the config's nodeSelector matches a node with
// these labels.
func (c *BpfProgramConfig) SelectsNode(nodeLabels map[string]string) (bool, error) {
	sel, err := c.Spec.NodeSelector.Selector()
	if err != nil {
		return false, fmt.Errorf("nodeSelector of BpfProgramConfig %s: %w", c.Name, err)
	}
	return sel.Matches(labels.Set(nodeLabels)), nil
}

// SelectsNode reports whether the tenant config's nodeSelector matches a
// node with these labels.
func (c *BpfTenantProgramConfig) SelectsNode(nodeLabels map[string]string) (bool, error) {
	sel, err := c.Spec.NodeSelector.Selector()
	if err != nil {
		return false, fmt.Errorf("nodeSelector of BpfTenantProgramConfig %s/%s: %w", c.Namespace, c.Name, err)
	}
	return sel.Matches(labels.Set(nodeLabels)), nil
}

// SelectsPod reports whether the tenant config's podSelector matches a pod
// of namespace with these labels. A pod of another namespace is never
// selected, whatever its labels.
func (c *BpfTenantProgramConfig) SelectsPod(namespace string, podLabels map[string]string) (bool, error) {
	if namespace != c.Namespace {
		return false, nil
	}
	sel, err := c.Spec.PodSelector.Selector()
	if err != nil {
		return false, fmt.Errorf("podSelector of BpfTenantProgramConfig %s/%s: %w", c.Namespace, c.Name, err)
	}
	return sel.Matches(labels.Set(podLabels)), nil
}
