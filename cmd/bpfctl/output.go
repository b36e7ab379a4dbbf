package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// jsonAPIVersion versions bpfctl's JSON documents (docs/bpfctl.md). Fields
// may be added; none is renamed or removed within a version.
const jsonAPIVersion = "bpfctl.bpfd.io/v1"

// programListJSON is what list and load print with --output json.
type programListJSON struct {
	APIVersion string        `json:"apiVersion"`
	Programs   []programJSON `json:"programs"`
	// Processes are those holding the programs (list --all).
	Processes []processJSON `json:"processes,omitempty"`
}

// programJSON is what get prints with --output json.
type programJSON struct {
	APIVersion string `json:"apiVersion,omitempty"`
	// ID is bpfd's id; 0 for programs bpfd does not manage.
	ID         uint64            `json:"id,omitempty"`
	Managed    bool              `json:"managed"`
	Name       string            `json:"name"`
	Type       string            `json:"type,omitempty"`
	Attach     *attachJSON       `json:"attach,omitempty"`
	Hook       *hookJSON         `json:"hook,omitempty"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	Provenance *provenanceJSON   `json:"provenance,omitempty"`
	Kernel     *kernelJSON       `json:"kernel,omitempty"`
	PinPath    string            `json:"pinPath,omitempty"`
	Maps       []mapJSON         `json:"maps,omitempty"`
	MapOwnerID uint64            `json:"mapOwnerId,omitempty"`
	// OwnerUID is the uid that owns the program; Owner who it belongs to
	// beyond it (a config, a namespace).
	OwnerUID uint32     `json:"ownerUid"`
	Owner    *ownerJSON `json:"owner,omitempty"`
	LoadedBy *peerJSON  `json:"loadedBy,omitempty"`
	LoadedAt *time.Time `json:"loadedAt,omitempty"`
	// Holders are the processes holding its kernel program (list --all).
	Holders []holderJSON `json:"holders,omitempty"`
	// Admission is the trust policy's latest judgement of the program.
	Admission *admissionJSON `json:"admission,omitempty"`
	// Fault is what bpfd found wrong with the program.
	Fault string `json:"fault,omitempty"`
}

type admissionJSON struct {
	// Admitted is whether the trust policy in force admits the program.
	Admitted bool `json:"admitted"`
	// Pending: adopted at bpfd's start and not judged yet; Admitted is
	// false until it is.
	Pending           bool       `json:"pending,omitempty"`
	Decision          string     `json:"decision,omitempty"`
	Reason            string     `json:"reason,omitempty"`
	Detail            string     `json:"detail,omitempty"`
	Rule              string     `json:"rule,omitempty"`
	PolicyFingerprint string     `json:"policyFingerprint,omitempty"`
	CheckedAt         *time.Time `json:"checkedAt,omitempty"`
}

// attachJSON holds the attach parameters that apply to the program's type.
type attachJSON struct {
	Interface        string   `json:"interface,omitempty"`
	Netns            string   `json:"netns,omitempty"`
	XDPMode          string   `json:"xdpMode,omitempty"`
	Direction        string   `json:"direction,omitempty"`
	Priority         int32    `json:"priority,omitempty"`
	ProceedOn        []string `json:"proceedOn,omitempty"`
	Tracepoint       string   `json:"tracepoint,omitempty"`
	Function         string   `json:"function,omitempty"`
	Offset           uint64   `json:"offset,omitempty"`
	Target           string   `json:"target,omitempty"`
	PID              int32    `json:"pid,omitempty"`
	Cgroup           string   `json:"cgroup,omitempty"`
	CgroupAttachType string   `json:"cgroupAttachType,omitempty"`
}

type ownerJSON struct {
	Config              string   `json:"config,omitempty"`
	Namespace           string   `json:"namespace,omitempty"`
	MapReaderNamespaces []string `json:"mapReaderNamespaces,omitempty"`
}

type hookJSON struct {
	Hook           string `json:"hook"`
	Position       uint32 `json:"position"`
	Priority       int32  `json:"priority"`
	DispatcherMode string `json:"dispatcherMode,omitempty"`
}

type provenanceJSON struct {
	Reference         string `json:"reference,omitempty"`
	Origin            string `json:"origin,omitempty"`
	Digest            string `json:"digest,omitempty"`
	Signer            string `json:"signer,omitempty"`
	Rule              string `json:"rule,omitempty"`
	PolicyFingerprint string `json:"policyFingerprint,omitempty"`
}

type kernelJSON struct {
	ProgramID   uint32     `json:"programId"`
	LinkIDs     []uint32   `json:"linkIds,omitempty"`
	MapIDs      []uint32   `json:"mapIds,omitempty"`
	Name        string     `json:"name,omitempty"`
	Tag         string     `json:"tag,omitempty"`
	Type        string     `json:"type,omitempty"`
	LoadedAt    *time.Time `json:"loadedAt,omitempty"`
	RunCount    uint64     `json:"runCount,omitempty"`
	RunTimeNano int64      `json:"runTimeNs,omitempty"`
}

type mapJSON struct {
	Name    string `json:"name"`
	ID      uint32 `json:"id"`
	PinPath string `json:"pinPath,omitempty"`
}

type peerJSON struct {
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
	PID int32  `json:"pid"`
}

// pullJSON is what pull prints with --output json.
type pullJSON struct {
	APIVersion string          `json:"apiVersion"`
	Provenance *provenanceJSON `json:"provenance"`
}

func newProgramList(ps []*bpfdv1.Program) programListJSON {
	out := programListJSON{APIVersion: jsonAPIVersion, Programs: make([]programJSON, 0, len(ps))}
	for _, p := range ps {
		out.Programs = append(out.Programs, newProgram(p))
	}
	return out
}

func newProgram(p *bpfdv1.Program) programJSON {
	j := programJSON{
		ID: p.GetId(), Managed: p.GetManaged(), Name: p.GetName(), Type: p.GetType().Name(),
		Attach: newAttach(p.GetAttach()), Metadata: p.GetMetadata(), Provenance: newProvenance(p.GetProvenance()),
		PinPath: p.GetPinPath(), MapOwnerID: p.GetMapOwnerId(), OwnerUID: p.GetOwnerUid(),
	}
	if o := p.GetOwner(); o != nil {
		j.Owner = &ownerJSON{Config: o.GetConfig(), Namespace: o.GetNamespace(), MapReaderNamespaces: o.GetMapReaderNamespaces()}
	}
	if h := p.GetHook(); h != nil {
		j.Hook = &hookJSON{Hook: h.GetHook(), Position: h.GetPosition(), Priority: h.GetPriority(), DispatcherMode: dispatcherModeName(h.GetDispatcherMode())}
	}
	if k := p.GetKernel(); k != nil {
		j.Kernel = &kernelJSON{ProgramID: k.GetProgramId(), LinkIDs: k.GetLinkIds(), MapIDs: k.GetMapIds(), Name: k.GetName(),
			Tag: k.GetTag(), Type: k.GetKernelType(), RunCount: k.GetRunCount(), RunTimeNano: k.GetRunTime().AsDuration().Nanoseconds()}
		if k.GetLoadedAt() != nil {
			t := k.GetLoadedAt().AsTime()
			j.Kernel.LoadedAt = &t
		}
	}
	for _, m := range p.GetMaps() {
		j.Maps = append(j.Maps, mapJSON{Name: m.GetName(), ID: m.GetId(), PinPath: m.GetPinPath()})
	}
	if b := p.GetLoadedBy(); b != nil {
		j.LoadedBy = &peerJSON{UID: b.GetUid(), GID: b.GetGid(), PID: b.GetPid()}
	}
	if p.GetLoadedAt() != nil {
		t := p.GetLoadedAt().AsTime()
		j.LoadedAt = &t
	}
	if a := p.GetAdmission(); a != nil {
		j.Admission = &admissionJSON{Admitted: a.GetState() == bpfdv1.AdmissionState_ADMISSION_STATE_ADMITTED,
			Pending: a.GetState() == bpfdv1.AdmissionState_ADMISSION_STATE_PENDING, Decision: a.GetDecision(),
			Reason: a.GetReason(), Detail: a.GetDetail(), Rule: a.GetRule(), PolicyFingerprint: a.GetPolicyFingerprint()}
		if a.GetCheckedAt() != nil {
			t := a.GetCheckedAt().AsTime()
			j.Admission.CheckedAt = &t
		}
	}
	j.Fault = p.GetFault()
	return j
}

// ownerSummary says who owns a program: uid 1000, or uid 0 config
// ns/name.
func ownerSummary(p programJSON) string {
	if !p.Managed {
		return "-"
	}
	s := "uid " + strconv.FormatUint(uint64(p.OwnerUID), 10)
	if o := p.Owner; o != nil && o.Config != "" {
		s += " config "
		if o.Namespace != "" {
			s += o.Namespace + "/"
		}
		s += o.Config
	}
	return s
}

// admissionSummary says whether the policy in force admits a program:
// admitted, or NOT ADMITTED (reason); pending while bpfd, just started,
// has not judged it yet; "-" when not judged.
func admissionSummary(p programJSON) string {
	a := p.Admission
	switch {
	case a == nil:
		return "-"
	case a.Admitted:
		return "admitted"
	case a.Pending:
		return "pending"
	case a.Reason != "":
		return "NOT ADMITTED (" + a.Reason + ")"
	}
	return "NOT ADMITTED"
}

func newProvenance(p *bpfdv1.Provenance) *provenanceJSON {
	if p == nil {
		return nil
	}
	return &provenanceJSON{Reference: p.GetReference(), Origin: p.GetOrigin(), Digest: p.GetDigest(), Signer: p.GetSigner(), Rule: p.GetRule(), PolicyFingerprint: p.GetPolicyFingerprint()}
}

func newAttach(a *bpfdv1.AttachSpec) *attachJSON {
	switch s := a.GetSpec().(type) {
	case *bpfdv1.AttachSpec_Xdp:
		return &attachJSON{Interface: s.Xdp.GetInterface(), Netns: s.Xdp.GetNetns(), XDPMode: s.Xdp.GetMode().Name(),
			Priority: s.Xdp.GetPriority(), ProceedOn: names(s.Xdp.GetProceedOn())}
	case *bpfdv1.AttachSpec_Tc:
		return &attachJSON{Interface: s.Tc.GetInterface(), Netns: s.Tc.GetNetns(), Direction: s.Tc.GetDirection().Name(),
			Priority: s.Tc.GetPriority(), ProceedOn: names(s.Tc.GetProceedOn())}
	case *bpfdv1.AttachSpec_Tcx:
		return &attachJSON{Interface: s.Tcx.GetInterface(), Netns: s.Tcx.GetNetns(), Direction: s.Tcx.GetDirection().Name(), Priority: s.Tcx.GetPriority()}
	case *bpfdv1.AttachSpec_Tracepoint:
		return &attachJSON{Tracepoint: s.Tracepoint.GetTracepoint()}
	case *bpfdv1.AttachSpec_Kprobe:
		return &attachJSON{Function: s.Kprobe.GetFunction(), Offset: s.Kprobe.GetOffset()}
	case *bpfdv1.AttachSpec_Uprobe:
		return &attachJSON{Target: s.Uprobe.GetTarget(), Function: s.Uprobe.GetFunction(), Offset: s.Uprobe.GetOffset(), PID: s.Uprobe.GetPid()}
	case *bpfdv1.AttachSpec_Fentry:
		return &attachJSON{Function: s.Fentry.GetFunction()}
	case *bpfdv1.AttachSpec_Cgroup:
		return &attachJSON{Cgroup: s.Cgroup.GetPath(), CgroupAttachType: s.Cgroup.GetAttachType().Name()}
	}
	return nil
}

func names[T interface{ Name() string }](vs []T) []string {
	if len(vs) == 0 {
		return nil
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Name()
	}
	return out
}

func dispatcherModeName(m bpfdv1.DispatcherMode) string {
	if m == bpfdv1.DispatcherMode_DISPATCHER_MODE_UNSPECIFIED {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(m.String(), "DISPATCHER_MODE_"))
}

// attachSummary says in a few words where a program is attached.
func attachSummary(a *bpfdv1.AttachSpec) string {
	j := newAttach(a)
	if j == nil {
		return "-"
	}
	var parts []string
	add := func(format string, v any, set bool) {
		if set {
			parts = append(parts, fmt.Sprintf(format, v))
		}
	}
	add("%s", j.Interface, j.Interface != "")
	add("%s", j.Direction, j.Direction != "")
	add("netns %s", j.Netns, j.Netns != "")
	add("%s", j.Tracepoint, j.Tracepoint != "")
	add("%s", j.Target, j.Target != "")
	add("%s", j.Function, j.Function != "")
	add("+%#x", j.Offset, j.Offset != 0)
	add("pid %d", j.PID, j.PID != 0)
	add("%s", j.Cgroup, j.Cgroup != "")
	add("%s", j.CgroupAttachType, j.CgroupAttachType != "")
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// formatMetadata renders labels as k=v,k=v in key order.
func formatMetadata(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return strings.Join(keys, ",")
}

// shortDigest abbreviates a digest for tables: sha256:0123456789ab.
func shortDigest(d string) string {
	if algo, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return algo + ":" + hex[:12]
	}
	if d == "" {
		return "-"
	}
	return d
}
