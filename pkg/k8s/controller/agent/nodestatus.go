package agent

import (
	"cmp"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// podRef names a pod.
type podRef struct{ namespace, name string }

// podLookup finds a pod of the node by uid.
type podLookup func(uid string) (podRef, bool)

// Bounds of a BpfNode's entries, within the CRD's.
const (
	maxAttachedTo = 8
	maxPins       = 8
	maxHolders    = 8
)

// nodeStatus returns what a BpfNode says of inv: the counts and, newest
// (highest kernel id) first, at most max of the programs bpfd did not load, with
// their holders' pods found by pods. The dispatchers and extension
// programs bpfd runs chains with are neither managed nor unmanaged
// programs. It sets neither LastChange nor the conditions.
func nodeStatus(inv *bpfdv1.InventoryResponse, pods podLookup, max int) v1alpha1.BpfNodeStatus {
	managed := map[uint64]bool{}
	var unmanaged []*bpfdv1.InventoryProgram
	for _, p := range inv.GetPrograms() {
		for _, id := range p.GetManagedIds() {
			managed[id] = true
		}
		if len(p.GetManagedIds()) == 0 && p.GetChainHook() == "" {
			unmanaged = append(unmanaged, p)
		}
	}
	slices.SortFunc(unmanaged, func(a, b *bpfdv1.InventoryProgram) int { return cmp.Compare(b.GetId(), a.GetId()) })
	st := v1alpha1.BpfNodeStatus{
		ManagedPrograms:   int32(len(managed)),
		UnmanagedPrograms: int32(len(unmanaged)),
		HolderSource:      holderSourceName(inv.GetHolderSource()),
		// Programs the scan left out may be anyone's.
		OmittedPrograms: int32(inv.GetOmitted().GetPrograms()),
	}
	links := map[uint32]*bpfdv1.InventoryLink{}
	for _, l := range inv.GetLinks() {
		links[l.GetId()] = l
	}
	procs := map[int32]*bpfdv1.HolderProcess{}
	for _, p := range inv.GetProcesses() {
		procs[p.GetPid()] = p
	}
	for i, p := range unmanaged {
		if i >= max {
			st.OmittedPrograms += int32(len(unmanaged) - max)
			break
		}
		st.Unmanaged = append(st.Unmanaged, unmanagedProgram(p, links, procs, pods))
	}
	return st
}

func unmanagedProgram(p *bpfdv1.InventoryProgram, links map[uint32]*bpfdv1.InventoryLink, procs map[int32]*bpfdv1.HolderProcess, pods podLookup) v1alpha1.UnmanagedProgram {
	u := v1alpha1.UnmanagedProgram{
		KernelID: int64(p.GetId()),
		Name:     truncate(p.GetName(), 64),
		Type:     truncate(p.GetKernelType(), 64),
		Tag:      truncate(p.GetTag(), 32),
	}
	if t := p.GetLoadedAt(); t != nil {
		u.LoadedAt = ptr.To(metav1.NewTime(t.AsTime()))
	}
	if p.LoaderUid != nil {
		u.LoaderUID = ptr.To(int64(p.GetLoaderUid()))
	}
	for _, id := range p.GetLinkIds() {
		if l := links[id]; l != nil && len(u.AttachedTo) < maxAttachedTo {
			u.AttachedTo = append(u.AttachedTo, truncate(l.GetAttach().Summary(), 512))
		}
	}
	for _, pin := range p.GetPins() {
		if len(u.Pins) < maxPins {
			u.Pins = append(u.Pins, truncate(pin, 1024))
		}
	}
	for _, h := range p.GetHolders() {
		if len(u.Holders) >= maxHolders {
			break
		}
		holder := v1alpha1.ProgramHolder{PID: h.GetPid()}
		if proc := procs[h.GetPid()]; proc != nil {
			holder.Command = truncate(proc.GetComm(), 64)
			if pod := proc.GetPod(); pod != nil {
				holder.PodUID = truncate(pod.GetUid(), 64)
				holder.ContainerID = truncate(pod.GetContainerId(), 128)
				if ref, ok := pods(pod.GetUid()); ok {
					holder.PodNamespace, holder.PodName = ref.namespace, ref.name
				}
			}
		}
		u.Holders = append(u.Holders, holder)
	}
	return u
}

func holderSourceName(s bpfdv1.HolderSource) string {
	switch s {
	case bpfdv1.HolderSource_HOLDER_SOURCE_ITERATOR:
		return "iterator"
	case bpfdv1.HolderSource_HOLDER_SOURCE_PROCFS:
		return "procfs"
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
