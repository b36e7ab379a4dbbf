package v1alpha1

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// SelectsNode reports whether the config's nodeSelector matches the node's
// labels.
func (c *BpfProgramConfig) SelectsNode(node *corev1.Node) (bool, error) {
	sel, err := metav1.LabelSelectorAsSelector(&c.Spec.NodeSelector)
	if err != nil {
		return false, fmt.Errorf("nodeSelector of BpfProgramConfig %s: %w", c.Name, err)
	}
	return sel.Matches(labels.Set(node.Labels)), nil
}
