package appclient

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

// NodeStatus is how a config fares on one node, from the node's
// BpfProgram.
type NodeStatus struct {
	Node string
	// Current reports whether the node acted on the config's current
	// generation; an older report is about an older spec.
	Current bool
	// Ready, Reason and Message are the BpfProgram's Ready condition;
	// Reason is empty until the node reports.
	Ready           bool
	Reason, Message string
	// Program is the node's BpfProgram: the loaded programs, their kernel
	// ids and their maps' pins.
	Program *v1alpha1.BpfProgram
}

// NodeStatuses returns the config's per-node statuses, sorted by node.
func (c *Client) NodeStatuses(ctx context.Context, config string) ([]NodeStatus, error) {
	cfg, err := c.Config(ctx, config)
	if err != nil {
		return nil, err
	}
	list := &v1alpha1.BpfProgramList{}
	if err := c.c.List(ctx, list, client.MatchingFields{"spec.configName": config}); err != nil {
		return nil, fmt.Errorf("BpfPrograms of config %s: %w", config, err)
	}
	out := make([]NodeStatus, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, statusOf(cfg, &list.Items[i]))
	}
	slices.SortFunc(out, func(a, b NodeStatus) int { return strings.Compare(a.Node, b.Node) })
	return out, nil
}

// NodeProgram returns node's BpfProgram of the config.
func (c *Client) NodeProgram(ctx context.Context, config, node string) (*v1alpha1.BpfProgram, error) {
	bp := &v1alpha1.BpfProgram{}
	name := v1alpha1.BpfProgramName(config, node)
	if err := c.c.Get(ctx, client.ObjectKey{Name: name}, bp); err != nil {
		return nil, fmt.Errorf("BpfProgram %s: %w", name, err)
	}
	return bp, nil
}

func statusOf(cfg *v1alpha1.BpfProgramConfig, bp *v1alpha1.BpfProgram) NodeStatus {
	s := NodeStatus{Node: bp.Spec.NodeName, Current: bp.Status.ObservedConfigGeneration == cfg.Generation, Program: bp}
	if ready := meta.FindStatusCondition(bp.Status.Conditions, v1alpha1.ConditionReady); ready != nil {
		s.Ready = ready.Status == metav1.ConditionTrue
		s.Reason, s.Message = ready.Reason, ready.Message
	}
	return s
}

// refusal reports whether a Ready reason is a refusal the node's agent
// retries only at its resync period.
func refusal(reason string) bool {
	switch reason {
	case v1alpha1.ReasonPolicyDenied, v1alpha1.ReasonVerifierRejected, v1alpha1.ReasonInvalidRequest:
		return true
	}
	return false
}

func metaName(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }
