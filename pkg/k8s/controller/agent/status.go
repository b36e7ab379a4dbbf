package agent

import (
	"cmp"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// maxMessage bounds condition messages (the API allows more; nodeFailures
// in the config's status take at most this much).
const maxMessage = 1024

// nodeReport is what the agent reports in a BpfProgram's status: the Ready
// condition and, when loaded, what bpfd loaded.
type nodeReport struct {
	ready    metav1.Condition
	programs []*bpfdv1.Program
}

func loaded(programs []*bpfdv1.Program) nodeReport {
	digest := programs[0].GetProvenance().GetDigest()
	msg := fmt.Sprintf("%d programs loaded", len(programs))
	if digest != "" {
		msg += " from " + digest
	}
	return nodeReport{ready: ready(metav1.ConditionTrue, v1alpha1.ReasonLoaded, msg), programs: programs}
}

func notLoaded(reason, format string, args ...any) nodeReport {
	return nodeReport{ready: ready(metav1.ConditionFalse, reason, fmt.Sprintf(format, args...))}
}

func ready(status metav1.ConditionStatus, reason, msg string) metav1.Condition {
	if len(msg) > maxMessage {
		msg = msg[:maxMessage-3] + "..."
	}
	return metav1.Condition{Type: v1alpha1.ConditionReady, Status: status, Reason: reason, Message: msg}
}

// status returns a report's status (old, of an object of generation
// generation reporting on a config of generation configGeneration) with the
// report applied: the Ready condition keeps its transition time when its
// status did not change. pod names the pod a program is attached in, ""
// for none; nil for a BpfProgram.
func (rep nodeReport) status(old v1alpha1.BpfProgramStatus, generation, configGeneration int64, pod func(*bpfdv1.Program) string) v1alpha1.BpfProgramStatus {
	st := v1alpha1.BpfProgramStatus{
		ObservedConfigGeneration: configGeneration,
		Conditions:               slices.Clone(old.Conditions),
	}
	cond := rep.ready
	cond.ObservedGeneration = generation
	if old := findCondition(st.Conditions, cond.Type); old != nil && old.Status == cond.Status {
		cond.LastTransitionTime = old.LastTransitionTime
	} else {
		cond.LastTransitionTime = metav1.Now()
	}
	st.Conditions = slices.DeleteFunc(st.Conditions, func(c metav1.Condition) bool { return c.Type == cond.Type })
	st.Conditions = append(st.Conditions, cond)
	if len(rep.programs) == 0 {
		return st
	}
	prov := rep.programs[0].GetProvenance()
	st.Image = prov.GetReference()
	st.Digest = prov.GetDigest()
	st.Signer = prov.GetSigner()
	st.Rule = prov.GetRule()
	st.PolicyFingerprint = prov.GetPolicyFingerprint()
	for _, p := range rep.programs {
		lp := loadedProgram(p)
		if pod != nil {
			lp.Pod = pod(p)
		}
		st.Programs = append(st.Programs, lp)
	}
	slices.SortFunc(st.Programs, func(a, b v1alpha1.LoadedProgram) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Pod, b.Pod), cmp.Compare(a.AttachPoint, b.AttachPoint), cmp.Compare(a.ID, b.ID))
	})
	return st
}

func loadedProgram(p *bpfdv1.Program) v1alpha1.LoadedProgram {
	lp := v1alpha1.LoadedProgram{
		Name:        p.GetName(),
		Type:        programTypeNames[p.GetType()],
		AttachPoint: AttachPoint(p.GetAttach()),
		ID:          int64(p.GetId()),
		KernelID:    int64(p.GetKernel().GetProgramId()),
		PinPath:     p.GetPinPath(),
	}
	for _, id := range p.GetKernel().GetLinkIds() {
		lp.LinkIDs = append(lp.LinkIDs, int64(id))
	}
	for _, m := range p.GetMaps() {
		lp.Maps = append(lp.Maps, v1alpha1.LoadedMap{Name: m.GetName(), ID: int64(m.GetId()), PinPath: m.GetPinPath()})
	}
	return lp
}

var programTypeNames = func() map[bpfdv1.ProgramType]v1alpha1.ProgramType {
	m := make(map[bpfdv1.ProgramType]v1alpha1.ProgramType, len(programTypes))
	for k, v := range programTypes {
		m[v] = k
	}
	return m
}()

func findCondition(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}
