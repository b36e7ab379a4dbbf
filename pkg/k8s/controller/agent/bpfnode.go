package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// podUIDIndex indexes the cached pods of the node by uid.
const podUIDIndex = "metadata.uid"

// ReasonUnmanagedProgram is the reason of the event a node's BpfNode gets
// when a BPF program bpfd did not load appears on the node.
const ReasonUnmanagedProgram = "UnmanagedProgram"

// NodeReportOptions are the NodeReporter's optional settings.
type NodeReportOptions struct {
	// Period is how often the node's inventory is read from bpfd: the
	// BpfNode is written at most once per period, and only when what it
	// says changed. Zero means DefaultNodeReportPeriod.
	Period time.Duration
	// MaxPrograms bounds the unmanaged programs a BpfNode lists; zero
	// or more than v1alpha1.MaxUnmanagedPrograms means that.
	MaxPrograms int
}

// DefaultNodeReportPeriod is NodeReportOptions.Period's default.
const DefaultNodeReportPeriod = 30 * time.Second

// NodeReporter keeps the node's BpfNode in step with what its bpfd finds
// on the node: every period it asks bpfd for the node's inventory, finds
// the holders' pods among the node's pods (cached), and writes the BpfNode
// when what it would say differs from what it says. It emits an event on
// the BpfNode for each program bpfd did not load that appeared since.
type NodeReporter struct {
	client   client.Client
	daemon   Daemon
	nodeName string
	events   events.EventRecorder
	opts     NodeReportOptions

	// written is the BpfNode as the last write left it, and stale the
	// resource version it had before: the cache may still show that one
	// for a moment.
	written *v1alpha1.BpfNode
	stale   string
}

// NewNodeReporter returns the reporter of node nodeName. c reads the
// node's Node, BpfNode and pods (a cache, see CacheOptions, with the pods
// indexed by IndexPodUIDs) and writes its BpfNode; d is the node's bpfd;
// rec, if not nil, receives the events.
func NewNodeReporter(c client.Client, d Daemon, nodeName string, rec events.EventRecorder, opts NodeReportOptions) *NodeReporter {
	if opts.Period == 0 {
		opts.Period = DefaultNodeReportPeriod
	}
	if opts.MaxPrograms <= 0 || opts.MaxPrograms > v1alpha1.MaxUnmanagedPrograms {
		opts.MaxPrograms = v1alpha1.MaxUnmanagedPrograms
	}
	return &NodeReporter{client: c, daemon: d, nodeName: nodeName, events: rec, opts: opts}
}

// Start reports once a period until ctx ends: a manager.Runnable.
func (r *NodeReporter) Start(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx).WithName("bpfnode")
	t := time.NewTicker(r.opts.Period)
	defer t.Stop()
	for {
		if err := r.Report(ctx); err != nil && ctx.Err() == nil {
			log.Error(err, "report the node's BPF programs")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// NeedLeaderElection is false: every node's agent reports its own node.
func (r *NodeReporter) NeedLeaderElection() bool { return false }

var (
	_ manager.Runnable               = (*NodeReporter)(nil)
	_ manager.LeaderElectionRunnable = (*NodeReporter)(nil)
)

// Report reads the inventory once and writes the BpfNode if it changed.
func (r *NodeReporter) Report(ctx context.Context) error {
	node := &corev1.Node{}
	if err := r.client.Get(ctx, types.NamespacedName{Name: r.nodeName}, node); err != nil {
		return fmt.Errorf("node %s: %w", r.nodeName, err)
	}
	bn := &v1alpha1.BpfNode{}
	err := r.client.Get(ctx, types.NamespacedName{Name: r.nodeName}, bn)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("BpfNode %s: %w", r.nodeName, err)
	}
	if exists && r.written != nil && bn.ResourceVersion == r.stale {
		bn = r.written.DeepCopy()
	}
	callCtx, cancel := context.WithTimeout(ctx, r.opts.Period)
	inv, invErr := r.daemon.Inventory(callCtx, &bpfdv1.InventoryRequest{SkipMaps: true})
	cancel()

	var st v1alpha1.BpfNodeStatus
	var cond metav1.Condition
	if invErr != nil {
		// What bpfd said last stays; the condition says it is stale.
		st = *bn.Status.DeepCopy()
		st.Conditions = nil
		cond = metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonDaemonUnavailable,
			Message: truncate("the node's bpfd did not answer: "+messageOf(invErr), maxMessage)}
	} else {
		st = nodeStatus(inv, r.podOf(ctx), r.opts.MaxPrograms)
		cond = metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Reported",
			Message: fmt.Sprintf("%d managed and %d unmanaged programs", st.ManagedPrograms, st.UnmanagedPrograms)}
	}
	st.LastChange = bn.Status.LastChange
	if !sameInventory(st, bn.Status) {
		st.LastChange = ptr.To(metav1.Now())
	}
	st.Conditions = slices.Clone(bn.Status.Conditions)
	cond.ObservedGeneration = bn.Generation
	meta.SetStatusCondition(&st.Conditions, cond)
	if exists && equality.Semantic.DeepEqual(st, bn.Status) {
		return nil
	}

	if !exists {
		bn = &v1alpha1.BpfNode{
			ObjectMeta: metav1.ObjectMeta{Name: r.nodeName, OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID,
			}}},
			Spec: v1alpha1.BpfNodeSpec{NodeName: r.nodeName},
		}
		if err := r.client.Create(ctx, bn); err != nil {
			return fmt.Errorf("create BpfNode %s: %w", r.nodeName, err)
		}
		// The condition observes the generation the create gave, or the
		// next report would write again only to say so.
		meta.FindStatusCondition(st.Conditions, cond.Type).ObservedGeneration = bn.Generation
	}
	before := bn.Status
	bn = bn.DeepCopy()
	bn.Status = st
	stale := bn.ResourceVersion
	if err := r.client.Status().Update(ctx, bn); err != nil {
		return fmt.Errorf("update status of BpfNode %s: %w", r.nodeName, err)
	}
	r.written, r.stale = bn, stale
	if exists && invErr == nil {
		r.announce(bn, before, st)
	}
	return nil
}

// sameInventory reports whether two statuses say the same of the node's
// programs, whatever their conditions and last change.
func sameInventory(a, b v1alpha1.BpfNodeStatus) bool {
	a.LastChange, b.LastChange = nil, nil
	a.Conditions, b.Conditions = nil, nil
	return equality.Semantic.DeepEqual(a, b)
}

// announce emits an event for each unmanaged program listed now that was
// not before.
func (r *NodeReporter) announce(bn *v1alpha1.BpfNode, before, now v1alpha1.BpfNodeStatus) {
	if r.events == nil {
		return
	}
	old := map[int64]bool{}
	for _, p := range before.Unmanaged {
		old[p.KernelID] = true
	}
	for _, p := range now.Unmanaged {
		if old[p.KernelID] {
			continue
		}
		r.events.Eventf(bn, holderPod(p.Holders), corev1.EventTypeWarning, ReasonUnmanagedProgram, "Observe",
			"BPF program %d (%s %s) that bpfd did not load appeared%s", p.KernelID, p.Type, p.Name, heldBy(p.Holders))
	}
}

// holderPod is the first named pod among a program's holders, the event's
// related object: the events recorder folds events with the same regarding
// and related objects, reason and action into one series whatever their
// notes, so naming the pod keeps programs of different pods apart. Programs
// held by no known pod share a series, counted.
func holderPod(holders []v1alpha1.ProgramHolder) runtime.Object {
	for _, h := range holders {
		if h.PodName != "" {
			return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: h.PodNamespace, Name: h.PodName, UID: types.UID(h.PodUID)}}
		}
	}
	return nil
}

// heldBy says who holds a program, for an event.
func heldBy(holders []v1alpha1.ProgramHolder) string {
	if len(holders) == 0 {
		return ", held by no process"
	}
	var parts []string
	for _, h := range holders {
		s := fmt.Sprintf("%s[%d]", h.Command, h.PID)
		switch {
		case h.PodName != "":
			s += " in pod " + h.PodNamespace + "/" + h.PodName
		case h.PodUID != "":
			s += " in pod " + h.PodUID
		}
		parts = append(parts, s)
	}
	return ", held by " + strings.Join(parts, ", ")
}

// IndexPodUIDs indexes the cached pods by uid, for the NodeReporter.
func IndexPodUIDs(ctx context.Context, indexer client.FieldIndexer) error {
	return indexer.IndexField(ctx, podMetadata(), podUIDIndex, func(o client.Object) []string { return []string{string(o.GetUID())} })
}

// podMetadata is a pod's metadata, as the agent caches pods.
func podMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Pod"))
	return m
}

// podOf finds the node's pods by uid in the cache.
func (r *NodeReporter) podOf(ctx context.Context) podLookup {
	return func(uid string) (podRef, bool) {
		var pods metav1.PartialObjectMetadataList
		pods.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PodList"))
		if err := r.client.List(ctx, &pods, client.MatchingFields{podUIDIndex: uid}); err != nil || len(pods.Items) != 1 {
			return podRef{}, false
		}
		return podRef{namespace: pods.Items[0].Namespace, name: pods.Items[0].Name}, true
	}
}
