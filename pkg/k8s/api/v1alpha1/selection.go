package v1alpha1

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// SelectsNode reports whether the config's nodeSelector matches a node with
// these labels.
func (c *BpfProgramConfig) SelectsNode(nodeLabels map[string]string) (bool, error) {
	sel, err := metav1.LabelSelectorAsSelector(&c.Spec.NodeSelector)
	if err != nil {
		return false, fmt.Errorf("nodeSelector of BpfProgramConfig %s: %w", c.Name, err)
	}
	return sel.Matches(labels.Set(nodeLabels)), nil
}
