package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// CgroupAttach attaches a cgroup program (cgroup_skb, cgroup_sock,
// cgroup_sock_addr, sock_ops, cgroup_device, cgroup_sysctl, cgroup_sockopt)
// to a cgroup v2 directory.
type CgroupAttach struct {
	// Path is the cgroup v2 directory, e.g. /sys/fs/cgroup/system.slice.
	// Required.
	Path string `json:"path"`
	// AttachType is the cgroup hook; empty takes the one the program's ELF
	// section names (e.g. cgroup_skb/ingress).
	AttachType CgroupAttachType `json:"attachType,omitempty"`
}

// CgroupAttachType names a cgroup hook.
type CgroupAttachType string

// The cgroup hooks bpfd attaches to.
const (
	CgroupInetIngress    CgroupAttachType = "inet_ingress"
	CgroupInetEgress     CgroupAttachType = "inet_egress"
	CgroupInetSockCreate CgroupAttachType = "inet_sock_create"
	CgroupInet4Bind      CgroupAttachType = "inet4_bind"
	CgroupInet6Bind      CgroupAttachType = "inet6_bind"
	CgroupInet4Connect   CgroupAttachType = "inet4_connect"
	CgroupInet6Connect   CgroupAttachType = "inet6_connect"
	CgroupSockOps        CgroupAttachType = "sock_ops"
	CgroupDevice         CgroupAttachType = "device"
	CgroupSysctl         CgroupAttachType = "sysctl"
	CgroupGetsockopt     CgroupAttachType = "getsockopt"
	CgroupSetsockopt     CgroupAttachType = "setsockopt"
)

// cgroupHooks maps each cgroup hook to the kernel's attach type and the
// program type it runs.
var cgroupHooks = map[CgroupAttachType]struct {
	attach ebpf.AttachType
	prog   ebpf.ProgramType
}{
	CgroupInetIngress:    {ebpf.AttachCGroupInetIngress, ebpf.CGroupSKB},
	CgroupInetEgress:     {ebpf.AttachCGroupInetEgress, ebpf.CGroupSKB},
	CgroupInetSockCreate: {ebpf.AttachCGroupInetSockCreate, ebpf.CGroupSock},
	CgroupInet4Bind:      {ebpf.AttachCGroupInet4Bind, ebpf.CGroupSockAddr},
	CgroupInet6Bind:      {ebpf.AttachCGroupInet6Bind, ebpf.CGroupSockAddr},
	CgroupInet4Connect:   {ebpf.AttachCGroupInet4Connect, ebpf.CGroupSockAddr},
	CgroupInet6Connect:   {ebpf.AttachCGroupInet6Connect, ebpf.CGroupSockAddr},
	CgroupSockOps:        {ebpf.AttachCGroupSockOps, ebpf.SockOps},
	CgroupDevice:         {ebpf.AttachCGroupDevice, ebpf.CGroupDevice},
	CgroupSysctl:         {ebpf.AttachCGroupSysctl, ebpf.CGroupSysctl},
	CgroupGetsockopt:     {ebpf.AttachCGroupGetsockopt, ebpf.CGroupSockopt},
	CgroupSetsockopt:     {ebpf.AttachCGroupSetsockopt, ebpf.CGroupSockopt},
}

func cgroupAttachTypeNames() string {
	names := make([]string, 0, len(cgroupHooks))
	for n := range cgroupHooks {
		names = append(names, string(n))
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// Kinds returns cgroup.
func (CgroupAttach) Kinds() []progtype.Kind { return []progtype.Kind{progtype.Cgroup} }

func (a CgroupAttach) validate() error {
	if a.Path == "" {
		return fmt.Errorf("cgroup: missing path: %w", ErrInvalid)
	}
	if !filepath.IsAbs(a.Path) {
		return fmt.Errorf("cgroup %q: not an absolute path: %w", a.Path, ErrInvalid)
	}
	if _, ok := cgroupHooks[a.AttachType]; a.AttachType != "" && !ok {
		return fmt.Errorf("cgroup attach type %q (want one of %s): %w", a.AttachType, cgroupAttachTypeNames(), ErrInvalid)
	}
	return nil
}

// complete takes the attach type from the program's section when the spec
// names none, and checks that the program type runs at the hook.
func (a CgroupAttach) complete(p *ebpf.ProgramSpec) (AttachSpec, error) {
	if a.AttachType == "" {
		for name, h := range cgroupHooks {
			if h.attach == p.AttachType && h.prog == p.Type {
				a.AttachType = name
			}
		}
		if a.AttachType == "" {
			return nil, fmt.Errorf("section %q names no cgroup attach type; give one: %w", p.SectionName, ErrInvalid)
		}
	}
	h := cgroupHooks[a.AttachType]
	if h.prog != p.Type {
		return nil, fmt.Errorf("a %s program does not run at cgroup hook %s: %w", p.Type, a.AttachType, ErrInvalid)
	}
	p.AttachType = h.attach
	return a, nil
}

func (a CgroupAttach) resolve(progtype.Kind) (target, error) {
	var fs unix.Statfs_t
	err := unix.Statfs(a.Path, &fs)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cgroup %s: %w", a.Path, ErrHookNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", a.Path, err)
	}
	if fs.Type != unix.CGROUP2_SUPER_MAGIC {
		return nil, fmt.Errorf("cgroup %s: not on a cgroup v2 filesystem: %w", a.Path, ErrInvalid)
	}
	return &cgroupTarget{path: filepath.Clean(a.Path), attachType: a.AttachType}, nil
}

type cgroupTarget struct {
	path       string
	attachType CgroupAttachType
}

func (t *cgroupTarget) hook() string { return "cgroup/" + string(t.attachType) + t.path }

func (t *cgroupTarget) attach(prog *ebpf.Program) (*attachment, error) {
	l, err := link.AttachCgroup(link.CgroupOptions{Path: t.path, Attach: cgroupHooks[t.attachType].attach, Program: prog})
	if err != nil {
		return nil, fmt.Errorf("cgroup %s %s: %w", t.path, t.attachType, attachError(err))
	}
	return &attachment{link: l}, nil
}
