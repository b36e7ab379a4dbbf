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
