package agent

import (
	"context"
	"fmt"
	"maps"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// reports returns this node's reports whose spec names the config key:
// under the name BpfProgramName gives them or another (one an older agent
// made, or one made by someone else). What the cache holds is checked
// again, not trusted to be this node's.
func (r *configReconciler) reports(ctx context.Context, key types.NamespacedName) ([]reportObject, error) {
	list := r.kind.newList()
	if err := r.client.List(ctx, list, client.InNamespace(key.Namespace), client.MatchingFields{configNameField: key.Name}); err != nil {
		return nil, fmt.Errorf("%ss of %s: %w", r.kind.report, keyName(key), err)
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, fmt.Errorf("%ss of %s: %w", r.kind.report, keyName(key), err)
	}
	var reps []reportObject
	for _, o := range items {
		rep, ok := o.(reportObject)
		if ok && rep.GetNamespace() == key.Namespace && rep.ReportSpec().NodeName == r.nodeName && rep.ReportSpec().ConfigName == key.Name {
			reps = append(reps, rep)
		}
	}
	return reps, nil
}

// ensureReport returns the node's report on cfg: the report beside cfg named
// BpfProgramName(cfg, node), with their spec and labels, controlled by cfg.
// reps are the node's reports whose spec names cfg's name. One of them of
// that name that another config (an older one of the same name, or none)
// controls is replaced, not adopted: its status is not this agent's. Those
// of other names (an older agent's <config>-<node>, or anyone's) are deleted
// once the report exists. An object of that name this node's cache does not
// hold (its spec names another node or config) is never touched or reported
// into: creating the report fails until someone removes it.
func (r *configReconciler) ensureReport(ctx context.Context, cfg configObject, reps []reportObject) (reportObject, error) {
	name := v1alpha1.BpfProgramName(cfg.GetName(), r.nodeName)
	labels := v1alpha1.BpfProgramLabels(cfg.GetName(), r.nodeName, cfg.GetUID())
	var rep reportObject
	var others []reportObject
	for _, o := range reps {
		switch {
		case o.Reports(cfg.GetName(), cfg.GetUID(), r.nodeName):
			rep = o
		case o.GetName() == name:
			// The name and spec are right, the controller is not.
			if err := r.delete(ctx, o); err != nil {
				return nil, err
			}
			log.FromContext(ctx).Info("replacing a report this config does not control", "kind", r.kind.report, "name", o.GetName(), "controller", metav1.GetControllerOf(o))
		default:
			others = append(others, o)
		}
	}
	if rep == nil {
		rep = r.kind.newReport()
		rep.SetNamespace(cfg.GetNamespace())
		rep.SetName(name)
		rep.SetLabels(labels)
		rep.SetOwnerReferences([]metav1.OwnerReference{{
			APIVersion: v1alpha1.GroupVersion.String(),
			Kind:       r.kind.config,
			Name:       cfg.GetName(),
			UID:        cfg.GetUID(),
			Controller: ptr.To(true),
		}})
		*rep.ReportSpec() = v1alpha1.BpfProgramSpec{NodeName: r.nodeName, ConfigName: cfg.GetName()}
		if err := r.client.Create(ctx, rep); apierrors.IsAlreadyExists(err) {
			// Either the cache has not seen this agent's own create yet,
			// or the object is not this node's: its spec names another
			// node or config. Both retry; the second until it is removed.
			return nil, fmt.Errorf("create %s %s: %w: an object of that name exists that this node's cache does not hold as its report on %s; nothing is loaded while it is there",
				r.kind.report, keyName(client.ObjectKeyFromObject(rep)), ErrNameTaken, cfg.GetName())
		} else if err != nil {
			return nil, fmt.Errorf("create %s %s: %w", r.kind.report, keyName(client.ObjectKeyFromObject(rep)), err)
		}
	} else if !maps.Equal(rep.GetLabels(), labels) {
		rep = rep.DeepCopyObject().(reportObject)
		rep.SetLabels(labels)
		if err := r.client.Update(ctx, rep); err != nil {
			return nil, fmt.Errorf("update %s %s: %w", r.kind.report, keyName(client.ObjectKeyFromObject(rep)), err)
		}
	}
	for _, o := range others {
		if err := r.delete(ctx, o); err != nil {
			return nil, err
		}
		log.FromContext(ctx).Info("deleted a report of this node and config under another name", "kind", r.kind.report, "name", o.GetName())
	}
	return rep, nil
}

// report writes nr into rep's status, unless the status already says so as
// far as this agent knows (lastWrites). pod names the pod a program is
// attached in, nil for none (see nodeReport.status).
func (r *configReconciler) report(ctx context.Context, rep reportObject, cfg configObject, nr nodeReport, pod func(*bpfdv1.Program) string) error {
	prev, version := r.written.current(rep, *rep.ReportStatus())
	st := nr.status(prev, rep.GetGeneration(), cfg.GetGeneration(), pod)
	if equality.Semantic.DeepEqual(st, prev) {
		return nil
	}
	rep = rep.DeepCopyObject().(reportObject)
	rep.SetResourceVersion(version)
	*rep.ReportStatus() = st
	if err := r.client.Status().Update(ctx, rep); err != nil {
		return fmt.Errorf("update status of %s %s: %w", r.kind.report, keyName(client.ObjectKeyFromObject(rep)), err)
	}
	r.written.wrote(rep, version, st)
	return nil
}

// delete deletes rep, this very object (by uid), unless it is gone already.
func (r *configReconciler) delete(ctx context.Context, rep reportObject) error {
	uid := rep.GetUID()
	if err := r.client.Delete(ctx, rep, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %s %s: %w", r.kind.report, keyName(client.ObjectKeyFromObject(rep)), err)
	}
	r.written.forget(uid)
	return nil
}
