package agent

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// Metadata keys the agent sets on every program it loads. bpfd's List,
// filtered by them, tells the agent what it loaded for which config.
const (
	// MetadataManagedBy marks programs loaded by an agent; its value is
	// ManagedByAgent.
	MetadataManagedBy = "bpfd.io/managed-by"
	// MetadataConfig holds the BpfProgramConfig's name.
	MetadataConfig = "bpfd.io/config"
	// MetadataConfigUID holds the BpfProgramConfig's uid, which tells a
	// config from an older one of the same name.
	MetadataConfigUID = "bpfd.io/config-uid"
	// MetadataRequestHash holds a hash of the Load request; programs loaded
	// by an older request are replaced.
	MetadataRequestHash = "bpfd.io/request-hash"

	// ManagedByAgent is the value of MetadataManagedBy.
	ManagedByAgent = "bpfd-agent"
)

// LoadRequests returns the Load requests that make bpfd run the config's
// programs on a node. bpfd takes a program at most once per request, so the
// first request holds every program at its first attach point (network
// programs attach once per interface), and each further attach point of a
// program is a request of that program alone. Such a request's MapOwnerId
// is left 0 for the caller to set to the id bpfd gave the program in the
// first request's response, so that every attachment of a program shares
// its maps. mapOwnerID (0: none) is the first request's map owner. Every
// request carries the config's global data, the metadata the agent finds
// its programs by, including a hash of all the requests, and the config as
// the programs' owner. primaryInterface
// names the node's primary interface; it is called only when a program asks
// for it.
func LoadRequests(cfg *v1alpha1.BpfProgramConfig, primaryInterface func() (string, error), mapOwnerID uint64) ([]*bpfdv1.LoadRequest, error) {
	request := func() *bpfdv1.LoadRequest {
		req := &bpfdv1.LoadRequest{
			Bytecode: &bpfdv1.Bytecode{
				Reference:  cfg.Spec.Bytecode.Image,
				PullPolicy: pullPolicies[cfg.Spec.Bytecode.PullPolicy],
			},
			Metadata: map[string]string{
				MetadataManagedBy: ManagedByAgent,
				MetadataConfig:    cfg.Name,
				MetadataConfigUID: string(cfg.UID),
			},
			// The programs belong to the config; BpfProgramConfig is
			// cluster-scoped, so no namespace. bpfd records it for the
			// agent's uid (root, or a member of bpfd's adminGIDs), and
			// its CSI driver lets the pods of the map reader namespaces
			// mount the config's maps.
			Owner: &bpfdv1.Owner{Config: cfg.Name, MapReaderNamespaces: MapReaderNamespaces(cfg)},
		}
		if len(cfg.Spec.GlobalData) > 0 {
			req.GlobalData = make(map[string][]byte, len(cfg.Spec.GlobalData))
			for k, v := range cfg.Spec.GlobalData {
				req.GlobalData[k] = v
			}
		}
		return req
	}
	var primary string
	interfaces := func(sel v1alpha1.InterfaceSelector) ([]string, error) {
		if !sel.PrimaryNodeInterface {
			return sel.Interfaces, nil
		}
		if primary == "" {
			name, err := primaryInterface()
			if err != nil {
				return nil, fmt.Errorf("primary node interface: %w", err)
			}
			primary = name
		}
		return []string{primary}, nil
	}
	first := request()
	first.MapOwnerId = mapOwnerID
	reqs := []*bpfdv1.LoadRequest{first}
	for _, p := range cfg.Spec.Programs {
		attaches, err := attachSpecs(p, interfaces)
		if err != nil {
			return nil, fmt.Errorf("program %s: %w", p.Name, err)
		}
		for i, a := range attaches {
			lp := &bpfdv1.LoadProgram{Name: p.Name, Type: programTypes[p.Type], Attach: a}
			if i == 0 {
				first.Programs = append(first.Programs, lp)
				continue
			}
			more := request()
			more.Programs = []*bpfdv1.LoadProgram{lp}
			reqs = append(reqs, more)
		}
	}
	hash, err := requestHash(reqs)
	if err != nil {
		return nil, err
	}
	for _, req := range reqs {
		req.Metadata[MetadataRequestHash] = hash
	}
	return reqs, nil
}

// MapReaderNamespaces returns the config's spec.mapReaderNamespaces, sorted,
// as the agent records them in its programs' owner.
func MapReaderNamespaces(cfg *v1alpha1.BpfProgramConfig) []string {
	if len(cfg.Spec.MapReaderNamespaces) == 0 {
		return nil
	}
	ns := slices.Clone(cfg.Spec.MapReaderNamespaces)
	slices.Sort(ns)
	return slices.Compact(ns)
}

// requestHash returns a short hash of everything in reqs but the owner.
// The owner's map reader namespaces change in place (UpdateOwner), without
// a reload; the rest of it follows from the config's name, which the
// metadata holds, and the agent of v0.1.0 sent none: leaving it out keeps
// the hash, and so the programs that agent loaded, when the agent is
// upgraded. A field added to the requests later that follows from what is
// hashed already is left out likewise (test/upgrade compares the hashes of
// both releases).
func requestHash(reqs []*bpfdv1.LoadRequest) (string, error) {
	h := sha256.New()
	for _, req := range reqs {
		if req.GetOwner() != nil {
			req = proto.CloneOf(req)
			req.Owner = nil
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
		if err != nil {
			return "", fmt.Errorf("hash load request: %w", err)
		}
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)[:8]), nil
}

// attachSpecs returns the attach specs of program p, one per interface for
// network programs.
func attachSpecs(p v1alpha1.Program, interfaces func(v1alpha1.InterfaceSelector) ([]string, error)) ([]*bpfdv1.AttachSpec, error) {
	one := func(a *bpfdv1.AttachSpec) ([]*bpfdv1.AttachSpec, error) { return []*bpfdv1.AttachSpec{a}, nil }
	perInterface := func(sel v1alpha1.InterfaceSelector, spec func(string) *bpfdv1.AttachSpec) ([]*bpfdv1.AttachSpec, error) {
		names, err := interfaces(sel)
		if err != nil {
			return nil, err
		}
		specs := make([]*bpfdv1.AttachSpec, len(names))
		for i, n := range names {
			specs[i] = spec(n)
		}
		return specs, nil
	}
	switch {
	case p.Type == v1alpha1.ProgramTypeXDP && p.XDP != nil:
		proceedOn, err := convertAll(p.XDP.ProceedOn, xdpActions)
		if err != nil {
			return nil, err
		}
		return perInterface(p.XDP.InterfaceSelector, func(iface string) *bpfdv1.AttachSpec {
			return &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Xdp{Xdp: &bpfdv1.XdpAttach{
				Interface: iface, Priority: p.XDP.Priority, ProceedOn: proceedOn,
			}}}
		})
	case p.Type == v1alpha1.ProgramTypeTC && p.TC != nil:
		proceedOn, err := convertAll(p.TC.ProceedOn, tcActions)
		if err != nil {
			return nil, err
		}
		return perInterface(p.TC.InterfaceSelector, func(iface string) *bpfdv1.AttachSpec {
			return &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Tc{Tc: &bpfdv1.TcAttach{
				Interface: iface, Direction: directions[p.TC.Direction], Priority: p.TC.Priority, ProceedOn: proceedOn,
			}}}
		})
	case p.Type == v1alpha1.ProgramTypeTCX && p.TCX != nil:
		return perInterface(p.TCX.InterfaceSelector, func(iface string) *bpfdv1.AttachSpec {
			return &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Tcx{Tcx: &bpfdv1.TcxAttach{
				Interface: iface, Direction: directions[p.TCX.Direction], Priority: p.TCX.Priority,
			}}}
		})
	case p.Type == v1alpha1.ProgramTypeTracepoint && p.Tracepoint != nil:
		return one(&bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Tracepoint{Tracepoint: &bpfdv1.TracepointAttach{
			Tracepoint: p.Tracepoint.Tracepoint,
		}}})
	case (p.Type == v1alpha1.ProgramTypeKprobe || p.Type == v1alpha1.ProgramTypeKretprobe) && p.Kprobe != nil:
		return one(&bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Kprobe{Kprobe: &bpfdv1.KprobeAttach{
			Function: p.Kprobe.Function, Offset: uint64(p.Kprobe.Offset),
		}}})
	case (p.Type == v1alpha1.ProgramTypeUprobe || p.Type == v1alpha1.ProgramTypeUretprobe) && p.Uprobe != nil:
		return one(&bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Uprobe{Uprobe: &bpfdv1.UprobeAttach{
			Target: p.Uprobe.Target, Function: p.Uprobe.Function, Offset: uint64(p.Uprobe.Offset),
		}}})
	case (p.Type == v1alpha1.ProgramTypeFentry || p.Type == v1alpha1.ProgramTypeFexit) && p.Fentry != nil:
		return one(&bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Fentry{Fentry: &bpfdv1.FentryAttach{
			Function: p.Fentry.Function,
		}}})
	case (p.Type == v1alpha1.ProgramTypeRawTracepoint || p.Type == v1alpha1.ProgramTypeTPBTF) && p.RawTracepoint != nil:
		return one(&bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_RawTracepoint{RawTracepoint: &bpfdv1.RawTracepointAttach{
			Tracepoint: p.RawTracepoint.Tracepoint,
		}}})
	case p.Type == v1alpha1.ProgramTypeCgroup && p.Cgroup != nil:
		at, ok := cgroupAttachTypes[p.Cgroup.AttachType]
		if !ok {
			return nil, fmt.Errorf("unknown cgroup attach type %q", p.Cgroup.AttachType)
		}
		return one(&bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Cgroup{Cgroup: &bpfdv1.CgroupAttach{
			Path: p.Cgroup.Path, AttachType: at,
		}}})
	}
	return nil, fmt.Errorf("type %q without its attach block", p.Type)
}

func convertAll[K ~string, V any](in []K, table map[K]V) ([]V, error) {
	out := make([]V, 0, len(in))
	for _, k := range in {
		v, ok := table[k]
		if !ok {
			return nil, fmt.Errorf("unknown proceedOn value %q", k)
		}
		out = append(out, v)
	}
	return out, nil
}

var (
	programTypes = map[v1alpha1.ProgramType]bpfdv1.ProgramType{
		v1alpha1.ProgramTypeXDP:        bpfdv1.ProgramType_PROGRAM_TYPE_XDP,
		v1alpha1.ProgramTypeTC:         bpfdv1.ProgramType_PROGRAM_TYPE_TC,
		v1alpha1.ProgramTypeTCX:        bpfdv1.ProgramType_PROGRAM_TYPE_TCX,
		v1alpha1.ProgramTypeTracepoint: bpfdv1.ProgramType_PROGRAM_TYPE_TRACEPOINT,
		v1alpha1.ProgramTypeKprobe:     bpfdv1.ProgramType_PROGRAM_TYPE_KPROBE,
		v1alpha1.ProgramTypeKretprobe:  bpfdv1.ProgramType_PROGRAM_TYPE_KRETPROBE,
		v1alpha1.ProgramTypeUprobe:     bpfdv1.ProgramType_PROGRAM_TYPE_UPROBE,
		v1alpha1.ProgramTypeUretprobe:  bpfdv1.ProgramType_PROGRAM_TYPE_URETPROBE,
		v1alpha1.ProgramTypeFentry:     bpfdv1.ProgramType_PROGRAM_TYPE_FENTRY,
		v1alpha1.ProgramTypeFexit:      bpfdv1.ProgramType_PROGRAM_TYPE_FEXIT,
		v1alpha1.ProgramTypeCgroup:     bpfdv1.ProgramType_PROGRAM_TYPE_CGROUP,

		v1alpha1.ProgramTypeRawTracepoint: bpfdv1.ProgramType_PROGRAM_TYPE_RAW_TRACEPOINT,
		v1alpha1.ProgramTypeTPBTF:         bpfdv1.ProgramType_PROGRAM_TYPE_TP_BTF,
	}
	pullPolicies = map[v1alpha1.PullPolicy]bpfdv1.PullPolicy{
		v1alpha1.PullAlways:       bpfdv1.PullPolicy_PULL_POLICY_ALWAYS,
		v1alpha1.PullIfNotPresent: bpfdv1.PullPolicy_PULL_POLICY_IF_NOT_PRESENT,
		v1alpha1.PullNever:        bpfdv1.PullPolicy_PULL_POLICY_NEVER,
	}
	directions = map[v1alpha1.Direction]bpfdv1.Direction{
		v1alpha1.Ingress: bpfdv1.Direction_DIRECTION_INGRESS,
		v1alpha1.Egress:  bpfdv1.Direction_DIRECTION_EGRESS,
	}
	xdpActions = map[v1alpha1.XDPAction]bpfdv1.XdpAction{
		"Aborted":          bpfdv1.XdpAction_XDP_ACTION_ABORTED,
		"Drop":             bpfdv1.XdpAction_XDP_ACTION_DROP,
		"Pass":             bpfdv1.XdpAction_XDP_ACTION_PASS,
		"TX":               bpfdv1.XdpAction_XDP_ACTION_TX,
		"Redirect":         bpfdv1.XdpAction_XDP_ACTION_REDIRECT,
		"DispatcherReturn": bpfdv1.XdpAction_XDP_ACTION_DISPATCHER_RETURN,
	}
	tcActions = map[v1alpha1.TCAction]bpfdv1.TcAction{
		"OK":               bpfdv1.TcAction_TC_ACTION_OK,
		"Reclassify":       bpfdv1.TcAction_TC_ACTION_RECLASSIFY,
		"Shot":             bpfdv1.TcAction_TC_ACTION_SHOT,
		"Pipe":             bpfdv1.TcAction_TC_ACTION_PIPE,
		"Stolen":           bpfdv1.TcAction_TC_ACTION_STOLEN,
		"Queued":           bpfdv1.TcAction_TC_ACTION_QUEUED,
		"Repeat":           bpfdv1.TcAction_TC_ACTION_REPEAT,
		"Redirect":         bpfdv1.TcAction_TC_ACTION_REDIRECT,
		"Trap":             bpfdv1.TcAction_TC_ACTION_TRAP,
		"DispatcherReturn": bpfdv1.TcAction_TC_ACTION_DISPATCHER_RETURN,
	}
	cgroupAttachTypes = map[v1alpha1.CgroupAttachType]bpfdv1.CgroupAttachType{
		"InetIngress":    bpfdv1.CgroupAttachType_CGROUP_ATTACH_TYPE_INET_INGRESS,
		"InetEgress":     bpfdv1.CgroupAttachType_CGROUP_ATTACH_TYPE_INET_EGRESS,
		"InetSockCreate": bpfdv1.CgroupAttachType_CGROUP_ATTACH_TYPE_INET_SOCK_CREATE,
		"Inet4Bind":      bpfdv1.CgroupAttachType_CGROUP_ATTACH_TYPE_INET4_BIND,
		"Inet6Bind":      bpfdv1.CgroupAttachType_CGROUP_ATTACH_TYPE_INET6_BIND,
		"Inet4Connect":   bpfdv1.CgroupAttachType_CGROUP_ATTACH_TYPE_INET4_CONNECT,
		"Inet6Connect":   bpfdv1.CgroupAttachType_CGROUP_ATTACH_TYPE_INET6_CONNECT,
		"SockOps":        bpfdv1.CgroupAttachType_CGROUP_ATTACH_TYPE_SOCK_OPS,
		"Device":         bpfdv1.CgroupAttachType_CGROUP_ATTACH_TYPE_DEVICE,
		"Sysctl":         bpfdv1.CgroupAttachType_CGROUP_ATTACH_TYPE_SYSCTL,
		"Getsockopt":     bpfdv1.CgroupAttachType_CGROUP_ATTACH_TYPE_GETSOCKOPT,
		"Setsockopt":     bpfdv1.CgroupAttachType_CGROUP_ATTACH_TYPE_SETSOCKOPT,
	}
)

// AttachPoint describes where an attach spec attaches, for people:
// "eth0", "eth0 ingress", "syscalls/sys_enter_openat", "do_unlinkat+0x10",
// "/usr/bin/bash:readline", "/sys/fs/cgroup inet_ingress".
func AttachPoint(a *bpfdv1.AttachSpec) string {
	withOffset := func(s string, off uint64) string {
		if off == 0 {
			return s
		}
		return s + "+0x" + strconv.FormatUint(off, 16)
	}
	direction := func(d bpfdv1.Direction) string {
		return strings.ToLower(strings.TrimPrefix(d.String(), "DIRECTION_"))
	}
	switch s := a.GetSpec().(type) {
	case *bpfdv1.AttachSpec_Xdp:
		return s.Xdp.GetInterface()
	case *bpfdv1.AttachSpec_Tc:
		return s.Tc.GetInterface() + " " + direction(s.Tc.GetDirection())
	case *bpfdv1.AttachSpec_Tcx:
		return s.Tcx.GetInterface() + " " + direction(s.Tcx.GetDirection())
	case *bpfdv1.AttachSpec_Tracepoint:
		return s.Tracepoint.GetTracepoint()
	case *bpfdv1.AttachSpec_Kprobe:
		return withOffset(s.Kprobe.GetFunction(), s.Kprobe.GetOffset())
	case *bpfdv1.AttachSpec_Uprobe:
		return withOffset(s.Uprobe.GetTarget()+":"+s.Uprobe.GetFunction(), s.Uprobe.GetOffset())
	case *bpfdv1.AttachSpec_Fentry:
		return s.Fentry.GetFunction()
	case *bpfdv1.AttachSpec_Cgroup:
		return s.Cgroup.GetPath() + " " + strings.ToLower(strings.TrimPrefix(s.Cgroup.GetAttachType().String(), "CGROUP_ATTACH_TYPE_"))
	}
	return ""
}
