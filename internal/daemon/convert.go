package daemon

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bpfd-dev/bpfd/internal/supplychain"
	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// This file is the one adapter between the bpfd.v1 protos and pkg/runtime's
// types. Structural problems of a request (a missing message, a spec that
// does not match the program type, an unspecified enum) are reported here
// with the field's path; the runtime checks the values themselves.

// Request limits beyond the message size the server accepts.
const (
	maxReferenceLen   = 4096
	maxProgramsPerReq = 64
	maxGlobals        = 64
	maxGlobalSize     = 64 << 10
	maxUnloadIDs      = 4096
	maxPathLen        = 4096
)

// kinds maps the API's program types to pkg/progtype's kinds.
var kinds = map[pb.ProgramType]progtype.Kind{
	pb.ProgramType_PROGRAM_TYPE_XDP:        progtype.XDP,
	pb.ProgramType_PROGRAM_TYPE_TC:         progtype.TC,
	pb.ProgramType_PROGRAM_TYPE_TCX:        progtype.TCX,
	pb.ProgramType_PROGRAM_TYPE_TRACEPOINT: progtype.Tracepoint,
	pb.ProgramType_PROGRAM_TYPE_KPROBE:     progtype.Kprobe,
	pb.ProgramType_PROGRAM_TYPE_KRETPROBE:  progtype.Kretprobe,
	pb.ProgramType_PROGRAM_TYPE_UPROBE:     progtype.Uprobe,
	pb.ProgramType_PROGRAM_TYPE_URETPROBE:  progtype.Uretprobe,
	pb.ProgramType_PROGRAM_TYPE_FENTRY:     progtype.Fentry,
	pb.ProgramType_PROGRAM_TYPE_FEXIT:      progtype.Fexit,
	pb.ProgramType_PROGRAM_TYPE_CGROUP:     progtype.Cgroup,

	pb.ProgramType_PROGRAM_TYPE_RAW_TRACEPOINT: progtype.RawTracepoint,
	pb.ProgramType_PROGRAM_TYPE_TP_BTF:         progtype.TPBTF,
}

func kindOf(t pb.ProgramType) (progtype.Kind, bool) {
	k, ok := kinds[t]
	return k, ok
}

func typeOf(k progtype.Kind) pb.ProgramType {
	for t, kk := range kinds {
		if kk == k {
			return t
		}
	}
	return pb.ProgramType_PROGRAM_TYPE_UNSPECIFIED
}

var pullPolicies = map[pb.PullPolicy]supplychain.PullPolicy{
	pb.PullPolicy_PULL_POLICY_ALWAYS:         supplychain.PullAlways,
	pb.PullPolicy_PULL_POLICY_IF_NOT_PRESENT: supplychain.PullIfNotPresent,
	pb.PullPolicy_PULL_POLICY_NEVER:          supplychain.PullNever,
}

var directions = map[pb.Direction]runtime.Direction{
	pb.Direction_DIRECTION_INGRESS: runtime.Ingress,
	pb.Direction_DIRECTION_EGRESS:  runtime.Egress,
}

var xdpModes = map[pb.XdpMode]runtime.XDPMode{
	pb.XdpMode_XDP_MODE_UNSPECIFIED: runtime.XDPModeDefault,
	pb.XdpMode_XDP_MODE_GENERIC:     runtime.XDPModeGeneric,
	pb.XdpMode_XDP_MODE_NATIVE:      runtime.XDPModeNative,
	pb.XdpMode_XDP_MODE_OFFLOAD:     runtime.XDPModeOffload,
}

var cgroupAttachTypes = map[pb.CgroupAttachType]runtime.CgroupAttachType{
	pb.CgroupAttachType_CGROUP_ATTACH_TYPE_UNSPECIFIED:      "",
	pb.CgroupAttachType_CGROUP_ATTACH_TYPE_INET_INGRESS:     runtime.CgroupInetIngress,
	pb.CgroupAttachType_CGROUP_ATTACH_TYPE_INET_EGRESS:      runtime.CgroupInetEgress,
	pb.CgroupAttachType_CGROUP_ATTACH_TYPE_INET_SOCK_CREATE: runtime.CgroupInetSockCreate,
	pb.CgroupAttachType_CGROUP_ATTACH_TYPE_INET4_BIND:       runtime.CgroupInet4Bind,
	pb.CgroupAttachType_CGROUP_ATTACH_TYPE_INET6_BIND:       runtime.CgroupInet6Bind,
	pb.CgroupAttachType_CGROUP_ATTACH_TYPE_INET4_CONNECT:    runtime.CgroupInet4Connect,
	pb.CgroupAttachType_CGROUP_ATTACH_TYPE_INET6_CONNECT:    runtime.CgroupInet6Connect,
	pb.CgroupAttachType_CGROUP_ATTACH_TYPE_SOCK_OPS:         runtime.CgroupSockOps,
	pb.CgroupAttachType_CGROUP_ATTACH_TYPE_DEVICE:           runtime.CgroupDevice,
	pb.CgroupAttachType_CGROUP_ATTACH_TYPE_SYSCTL:           runtime.CgroupSysctl,
	pb.CgroupAttachType_CGROUP_ATTACH_TYPE_GETSOCKOPT:       runtime.CgroupGetsockopt,
	pb.CgroupAttachType_CGROUP_ATTACH_TYPE_SETSOCKOPT:       runtime.CgroupSetsockopt,
}

var dispatcherModes = map[runtime.DispatcherMode]pb.DispatcherMode{
	runtime.DispatcherFreplace: pb.DispatcherMode_DISPATCHER_MODE_FREPLACE,
	runtime.DispatcherLinked:   pb.DispatcherMode_DISPATCHER_MODE_LINKED,
}

// invalid returns an error for the request field at path, matching
// runtime.ErrInvalid.
func invalid(path, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", path, fmt.Sprintf(format, args...), runtime.ErrInvalid)
}

// bytecodeRef checks a request's bytecode and returns its reference and pull
// policy, def standing for PULL_POLICY_UNSPECIFIED.
func bytecodeRef(b *pb.Bytecode, def supplychain.PullPolicy) (string, supplychain.PullPolicy, error) {
	if b == nil {
		return "", "", invalid("bytecode", "missing")
	}
	ref := b.GetReference()
	switch {
	case ref == "":
		return "", "", invalid("bytecode.reference", "missing")
	case len(ref) > maxReferenceLen:
		return "", "", invalid("bytecode.reference", "%d bytes, at most %d", len(ref), maxReferenceLen)
	}
	if b.GetPullPolicy() == pb.PullPolicy_PULL_POLICY_UNSPECIFIED {
		return ref, def, nil
	}
	policy, ok := pullPolicies[b.GetPullPolicy()]
	if !ok {
		return "", "", invalid("bytecode.pull_policy", "unknown value %d", b.GetPullPolicy())
	}
	return ref, policy, nil
}

// loadRequest converts a Load request into the runtime's request and the
// reference and pull policy of its bytecode; defaultPull stands for an
// unspecified pull policy.
func loadRequest(in *pb.LoadRequest, defaultPull supplychain.PullPolicy, who runtime.Requester) (runtime.LoadRequest, string, supplychain.PullPolicy, error) {
	ref, pull, err := bytecodeRef(in.GetBytecode(), defaultPull)
	if err != nil {
		return runtime.LoadRequest{}, "", "", err
	}
	out, err := programsRequest(in, who)
	if err != nil {
		return runtime.LoadRequest{}, "", "", err
	}
	return out, ref, pull, nil
}

// tenantOf converts a Load's tenant scope; the tenant is the owner's
// namespace.
func tenantOf(t *pb.Tenant, namespace string) (*runtime.Tenant, error) {
	out := &runtime.Tenant{Namespace: namespace, PodUIDs: t.GetPodUids()}
	if namespace == "" {
		return nil, invalid("tenant", "needs owner.namespace: the tenant is the owner's namespace")
	}
	for i, g := range t.GetGrants() {
		k, ok := kindOf(g)
		if !ok {
			return nil, invalid(fmt.Sprintf("tenant.grants[%d]", i), "%v: not a program type", g)
		}
		out.Grants = append(out.Grants, k)
	}
	return out, nil
}

// programsRequest converts what a Load request asks of the runtime.
func programsRequest(in *pb.LoadRequest, who runtime.Requester) (runtime.LoadRequest, error) {
	out := runtime.LoadRequest{
		Metadata:   in.GetMetadata(),
		MapOwnerID: runtime.ID(in.GetMapOwnerId()),
		Requester:  who,
	}
	if o := in.GetOwner(); o != nil {
		out.Owner = runtime.Owner{Config: o.GetConfig(), Namespace: o.GetNamespace(), MapReaderNamespaces: o.GetMapReaderNamespaces()}
	}
	if t := in.GetTenant(); t != nil {
		tenant, err := tenantOf(t, out.Owner.Namespace)
		if err != nil {
			return runtime.LoadRequest{}, err
		}
		out.Tenant = tenant
	}
	switch n := len(in.GetPrograms()); {
	case n == 0:
		return runtime.LoadRequest{}, invalid("programs", "none: name at least one program to load")
	case n > maxProgramsPerReq:
		return runtime.LoadRequest{}, invalid("programs", "%d programs, at most %d per request", n, maxProgramsPerReq)
	}
	for i, p := range in.GetPrograms() {
		pr, err := programRequest(fmt.Sprintf("programs[%d]", i), p)
		if err != nil {
			return runtime.LoadRequest{}, err
		}
		out.Programs = append(out.Programs, pr)
	}
	if len(in.GetGlobalData()) > maxGlobals {
		return runtime.LoadRequest{}, invalid("global_data", "%d entries, at most %d", len(in.GetGlobalData()), maxGlobals)
	}
	for _, name := range slices.Sorted(maps.Keys(in.GetGlobalData())) {
		v := in.GetGlobalData()[name]
		switch {
		case name == "":
			return runtime.LoadRequest{}, invalid("global_data", "empty variable name")
		case len(v) == 0:
			return runtime.LoadRequest{}, invalid("global_data["+name+"]", "empty value")
		case len(v) > maxGlobalSize:
			return runtime.LoadRequest{}, invalid("global_data["+name+"]", "%d bytes, at most %d", len(v), maxGlobalSize)
		}
	}
	if len(in.GetGlobalData()) > 0 {
		out.Globals = in.GetGlobalData()
	}
	return out, nil
}

func programRequest(path string, p *pb.LoadProgram) (runtime.ProgramRequest, error) {
	if p.GetName() == "" {
		return runtime.ProgramRequest{}, invalid(path+".name", "missing")
	}
	path = fmt.Sprintf("%s (%s)", path, p.GetName())
	if p.GetType() == pb.ProgramType_PROGRAM_TYPE_UNSPECIFIED {
		return runtime.ProgramRequest{}, invalid(path+".type", "unspecified: give the program's type")
	}
	kind, ok := kindOf(p.GetType())
	if !ok {
		return runtime.ProgramRequest{}, invalid(path+".type", "unknown value %d", p.GetType())
	}
	spec, err := attachSpec(path+".attach", kind, p.GetAttach())
	if err != nil {
		return runtime.ProgramRequest{}, err
	}
	return runtime.ProgramRequest{Name: p.GetName(), Kind: kind, Attach: spec}, nil
}

// specNames names the attach spec each kind takes, for messages.
var specNames = map[progtype.Kind]string{
	progtype.XDP: "xdp", progtype.TC: "tc", progtype.TCX: "tcx", progtype.Tracepoint: "tracepoint",
	progtype.Kprobe: "kprobe", progtype.Kretprobe: "kprobe", progtype.Uprobe: "uprobe", progtype.Uretprobe: "uprobe",
	progtype.Fentry: "fentry", progtype.Fexit: "fentry", progtype.Cgroup: "cgroup",
	progtype.RawTracepoint: "raw_tracepoint", progtype.TPBTF: "raw_tracepoint",
}

// attachSpec converts the attach spec of a program of kind k.
func attachSpec(path string, k progtype.Kind, a *pb.AttachSpec) (runtime.AttachSpec, error) {
	want := specNames[k]
	got := oneofName(a)
	if got == "" {
		return nil, invalid(path, "missing: %s programs need the %s spec", k, want)
	}
	if got != want {
		return nil, invalid(path, "a %s spec does not attach %s programs (want %s)", got, k, want)
	}
	path += "." + want
	switch s := a.GetSpec().(type) {
	case *pb.AttachSpec_Xdp:
		x := s.Xdp
		proceedOn, err := actionNames(path+".proceed_on", x.GetProceedOn(), pb.XdpAction_name)
		if err != nil {
			return nil, err
		}
		mode, ok := xdpModes[x.GetMode()]
		if !ok {
			return nil, invalid(path+".mode", "unknown value %d", x.GetMode())
		}
		if err := checkPath(path+".netns", x.GetNetns()); err != nil {
			return nil, err
		}
		return runtime.XDPAttach{Interface: x.GetInterface(), Netns: x.GetNetns(), Mode: mode, Priority: int(x.GetPriority()), ProceedOn: proceedOn}, nil
	case *pb.AttachSpec_Tc:
		x := s.Tc
		proceedOn, err := actionNames(path+".proceed_on", x.GetProceedOn(), pb.TcAction_name)
		if err != nil {
			return nil, err
		}
		dir, err := direction(path+".direction", x.GetDirection())
		if err != nil {
			return nil, err
		}
		if err := checkPath(path+".netns", x.GetNetns()); err != nil {
			return nil, err
		}
		return runtime.TCAttach{Interface: x.GetInterface(), Netns: x.GetNetns(), Direction: dir, Priority: int(x.GetPriority()), ProceedOn: proceedOn}, nil
	case *pb.AttachSpec_Tcx:
		x := s.Tcx
		dir, err := direction(path+".direction", x.GetDirection())
		if err != nil {
			return nil, err
		}
		if err := checkPath(path+".netns", x.GetNetns()); err != nil {
			return nil, err
		}
		return runtime.TCXAttach{Interface: x.GetInterface(), Netns: x.GetNetns(), Direction: dir, Priority: int(x.GetPriority())}, nil
	case *pb.AttachSpec_Tracepoint:
		return runtime.TracepointAttach{Tracepoint: s.Tracepoint.GetTracepoint()}, nil
	case *pb.AttachSpec_Kprobe:
		return runtime.KprobeAttach{Function: s.Kprobe.GetFunction(), Offset: s.Kprobe.GetOffset()}, nil
	case *pb.AttachSpec_Uprobe:
		x := s.Uprobe
		if err := checkPath(path+".target", x.GetTarget()); err != nil {
			return nil, err
		}
		return runtime.UprobeAttach{Target: x.GetTarget(), Function: x.GetFunction(), Offset: x.GetOffset(), PID: int(x.GetPid()), ContainerPID: int(x.GetContainerPid()), Library: x.GetLibrary()}, nil
	case *pb.AttachSpec_Fentry:
		return runtime.FentryAttach{Function: s.Fentry.GetFunction()}, nil
	case *pb.AttachSpec_RawTracepoint:
		return runtime.RawTracepointAttach{Tracepoint: s.RawTracepoint.GetTracepoint()}, nil
	case *pb.AttachSpec_Cgroup:
		x := s.Cgroup
		t, ok := cgroupAttachTypes[x.GetAttachType()]
		if !ok {
			return nil, invalid(path+".attach_type", "unknown value %d", x.GetAttachType())
		}
		if err := checkPath(path+".path", x.GetPath()); err != nil {
			return nil, err
		}
		return runtime.CgroupAttach{Path: x.GetPath(), AttachType: t}, nil
	}
	return nil, invalid(path, "unknown attach spec")
}

// oneofName names the spec set in a, "" for none.
func oneofName(a *pb.AttachSpec) string {
	switch a.GetSpec().(type) {
	case *pb.AttachSpec_Xdp:
		return "xdp"
	case *pb.AttachSpec_Tc:
		return "tc"
	case *pb.AttachSpec_Tcx:
		return "tcx"
	case *pb.AttachSpec_Tracepoint:
		return "tracepoint"
	case *pb.AttachSpec_Kprobe:
		return "kprobe"
	case *pb.AttachSpec_Uprobe:
		return "uprobe"
	case *pb.AttachSpec_Fentry:
		return "fentry"
	case *pb.AttachSpec_Cgroup:
		return "cgroup"
	case *pb.AttachSpec_RawTracepoint:
		return "raw_tracepoint"
	}
	return ""
}

// action is an XDP or TC return value of the API.
type action interface {
	~int32
	Name() string
}

// actionNames converts a proceed-on list to the runtime's names ("pass",
// "dispatcher_return"); known maps the enum's values to their names.
func actionNames[A action](path string, acts []A, known map[int32]string) ([]string, error) {
	if len(acts) > 16 {
		return nil, invalid(path, "%d values, at most 16", len(acts))
	}
	var names []string
	for i, a := range acts {
		if _, ok := known[int32(a)]; !ok || a == 0 {
			return nil, invalid(fmt.Sprintf("%s[%d]", path, i), "unknown or unspecified value %d", int32(a))
		}
		names = append(names, a.Name())
	}
	return names, nil
}

// actionsProto converts the runtime's proceed-on names back, skipping any
// the API cannot name.
func actionsProto[A action](names []string, parse func(string) (A, error)) []A {
	var out []A
	for _, n := range names {
		if a, err := parse(n); err == nil {
			out = append(out, a)
		}
	}
	return out
}

func direction(path string, d pb.Direction) (runtime.Direction, error) {
	if d == pb.Direction_DIRECTION_UNSPECIFIED {
		return "", invalid(path, "unspecified: want ingress or egress")
	}
	dir, ok := directions[d]
	if !ok {
		return "", invalid(path, "unknown value %d", d)
	}
	return dir, nil
}

func checkPath(path, p string) error {
	if len(p) > maxPathLen {
		return invalid(path, "%d bytes, at most %d", len(p), maxPathLen)
	}
	return nil
}

// listOptions converts a List request.
func listOptions(in *pb.ListRequest) (runtime.ListOptions, error) {
	opts := runtime.ListOptions{Selector: in.GetSelector(), All: in.GetAll()}
	if t := in.GetType(); t != pb.ProgramType_PROGRAM_TYPE_UNSPECIFIED {
		k, ok := kindOf(t)
		if !ok {
			return opts, invalid("type", "unknown value %d", t)
		}
		opts.Kind = k
	}
	for k := range in.GetSelector() {
		if k == "" {
			return opts, invalid("selector", "empty key")
		}
	}
	return opts, nil
}

// unloadIDs converts an Unload request's ids.
func unloadIDs(in *pb.UnloadRequest) ([]runtime.ID, error) {
	switch n := len(in.GetIds()); {
	case n == 0:
		return nil, invalid("ids", "none: give at least one program id")
	case n > maxUnloadIDs:
		return nil, invalid("ids", "%d ids, at most %d per request", n, maxUnloadIDs)
	}
	ids := make([]runtime.ID, len(in.GetIds()))
	seen := map[uint64]bool{}
	for i, id := range in.GetIds() {
		if id == 0 {
			return nil, invalid(fmt.Sprintf("ids[%d]", i), "0 is not a program id")
		}
		if seen[id] {
			return nil, invalid(fmt.Sprintf("ids[%d]", i), "program %d given twice", id)
		}
		seen[id] = true
		ids[i] = runtime.ID(id)
	}
	return ids, nil
}

// programProto converts a program for a response, with its admission.
func (s *server) programProto(p runtime.Program) *pb.Program {
	out := programProto(p)
	if a, ok := s.admissions.get(p.ID); ok && p.Managed {
		out.Admission = admissionProto(a)
	}
	return out
}

func admissionProto(a admission) *pb.Admission {
	if a.Pending {
		return &pb.Admission{State: pb.AdmissionState_ADMISSION_STATE_PENDING, Detail: "adopted at start; not judged yet under the trust policy in force"}
	}
	out := &pb.Admission{State: pb.AdmissionState_ADMISSION_STATE_NOT_ADMITTED, Decision: string(a.Decision), Reason: a.Reason,
		Detail: a.Detail, Rule: a.Rule, PolicyFingerprint: a.Policy, CheckedAt: timestamp(a.CheckedAt)}
	if a.Admitted {
		out.State = pb.AdmissionState_ADMISSION_STATE_ADMITTED
	}
	return out
}

// programProto converts a program for a response.
func programProto(p runtime.Program) *pb.Program {
	out := &pb.Program{
		Id:         uint64(p.ID),
		Managed:    p.Managed,
		Name:       p.Name,
		Type:       typeOf(p.Kind),
		Attach:     attachProto(p.Attach),
		Metadata:   p.Metadata,
		PinPath:    p.PinPath,
		MapOwnerId: uint64(p.MapOwnerID),
		Fault:      p.Fault,
	}
	if p.Managed {
		out.OwnerUid = p.Owner.UID
		if o := p.Owner; o.Config != "" || o.Namespace != "" || len(o.MapReaderNamespaces) > 0 {
			out.Owner = &pb.Owner{Config: o.Config, Namespace: o.Namespace, MapReaderNamespaces: o.MapReaderNamespaces}
		}
		out.Provenance = provenanceProto(p.Provenance)
		out.LoadedBy = &pb.Peer{Uid: p.LoadedBy.UID, Gid: p.LoadedBy.GID, Pid: p.LoadedBy.PID}
		out.LoadedAt = timestamp(p.LoadedAt)
	}
	for _, m := range p.Maps {
		out.Maps = append(out.Maps, &pb.MapInfo{Name: m.Name, Id: m.ID, PinPath: m.PinPath})
	}
	if h := p.Hook; h != nil {
		out.Hook = &pb.HookPosition{Hook: h.Hook, Priority: int32(h.Priority), DispatcherMode: dispatcherModes[h.Mode]}
		if h.Position >= 0 {
			out.Hook.Position = uint32(h.Position)
		}
	}
	if k := p.Kernel; k != nil {
		out.Kernel = &pb.KernelInfo{
			ProgramId:  k.ProgramID,
			LinkIds:    k.LinkIDs,
			MapIds:     k.MapIDs,
			Name:       k.Name,
			Tag:        k.Tag,
			KernelType: k.Type,
			LoadedAt:   timestamp(k.LoadedAt),
		}
		if k.Stats != nil {
			out.Kernel.RunCount = k.Stats.RunCount
			out.Kernel.RunTime = durationpb.New(k.Stats.RunTime)
		}
	}
	return out
}

func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func provenanceProto(p runtime.Provenance) *pb.Provenance {
	return &pb.Provenance{
		Reference:         p.Reference,
		Digest:            p.Digest,
		Signer:            p.Signer,
		Rule:              p.Rule,
		PolicyFingerprint: p.PolicyFingerprint,
		Origin:            p.Origin,
	}
}

// attachProto converts an attach spec for a response; nil for none.
func attachProto(a runtime.AttachSpec) *pb.AttachSpec {
	switch s := a.(type) {
	case runtime.XDPAttach:
		var mode pb.XdpMode
		for m, rm := range xdpModes {
			if rm == s.Mode {
				mode = m
			}
		}
		return &pb.AttachSpec{Spec: &pb.AttachSpec_Xdp{Xdp: &pb.XdpAttach{Interface: s.Interface, Netns: s.Netns, Mode: mode, Priority: int32(s.Priority),
			ProceedOn: actionsProto(s.ProceedOn, pb.ParseXdpAction)}}}
	case runtime.TCAttach:
		return &pb.AttachSpec{Spec: &pb.AttachSpec_Tc{Tc: &pb.TcAttach{Interface: s.Interface, Netns: s.Netns, Direction: directionProto(s.Direction), Priority: int32(s.Priority),
			ProceedOn: actionsProto(s.ProceedOn, pb.ParseTcAction)}}}
	case runtime.TCXAttach:
		return &pb.AttachSpec{Spec: &pb.AttachSpec_Tcx{Tcx: &pb.TcxAttach{Interface: s.Interface, Netns: s.Netns, Direction: directionProto(s.Direction), Priority: int32(s.Priority)}}}
	case runtime.TracepointAttach:
		return &pb.AttachSpec{Spec: &pb.AttachSpec_Tracepoint{Tracepoint: &pb.TracepointAttach{Tracepoint: s.Tracepoint}}}
	case runtime.KprobeAttach:
		return &pb.AttachSpec{Spec: &pb.AttachSpec_Kprobe{Kprobe: &pb.KprobeAttach{Function: s.Function, Offset: s.Offset}}}
	case runtime.UprobeAttach:
		return &pb.AttachSpec{Spec: &pb.AttachSpec_Uprobe{Uprobe: &pb.UprobeAttach{Target: s.Target, Function: s.Function, Offset: s.Offset, Pid: int32(s.PID), ContainerPid: int32(s.ContainerPID), Library: s.Library}}}
	case runtime.FentryAttach:
		return &pb.AttachSpec{Spec: &pb.AttachSpec_Fentry{Fentry: &pb.FentryAttach{Function: s.Function}}}
	case runtime.RawTracepointAttach:
		return &pb.AttachSpec{Spec: &pb.AttachSpec_RawTracepoint{RawTracepoint: &pb.RawTracepointAttach{Tracepoint: s.Tracepoint}}}
	case runtime.CgroupAttach:
		var t pb.CgroupAttachType
		for pt, rt := range cgroupAttachTypes {
			if rt == s.AttachType {
				t = pt
			}
		}
		return &pb.AttachSpec{Spec: &pb.AttachSpec_Cgroup{Cgroup: &pb.CgroupAttach{Path: s.Path, AttachType: t}}}
	}
	return nil
}

func directionProto(d runtime.Direction) pb.Direction {
	for pd, rd := range directions {
		if rd == d {
			return pd
		}
	}
	return pb.Direction_DIRECTION_UNSPECIFIED
}
