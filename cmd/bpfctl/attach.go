package main

import (
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// attachFlags say where programs attach. Which apply depends on the
// program's type; the daemon fills in what the artifact names (a
// tracepoint, a kernel function) when a flag is left out.
var attachFlags = []cli.Flag{
	&cli.StringFlag{Name: "interface", Aliases: []string{"i"}, Usage: "network interface (xdp, tc, tcx)"},
	&cli.StringFlag{Name: "netns", Usage: "path of the interface's network namespace, e.g. /run/netns/blue (xdp, tc, tcx)"},
	&cli.StringFlag{Name: "xdp-mode", Usage: "generic, native or offload (xdp; default: native where the driver supports it)"},
	&cli.StringFlag{Name: "direction", Usage: "ingress or egress (tc, tcx)"},
	&cli.IntFlag{Name: "priority", Usage: "1-1000, lower runs first, on a hook shared with other programs (xdp, tc, tcx; default 500)"},
	&cli.StringFlag{Name: "proceed-on", Usage: "comma-separated return values after which the next program on the hook runs (xdp: aborted,drop,pass,tx,redirect,dispatcher_return; tc: ok,reclassify,shot,pipe,stolen,queued,repeat,redirect,trap,dispatcher_return)"},
	&cli.StringFlag{Name: "tracepoint", Usage: "group/name, e.g. syscalls/sys_enter_openat (tracepoint), or a name without its group, e.g. sched_switch (raw_tracepoint, tp_btf)"},
	&cli.StringFlag{Name: "function", Usage: "kernel function (kprobe, kretprobe, fentry, fexit) or symbol in --target (uprobe, uretprobe)"},
	&cli.Uint64Flag{Name: "offset", Usage: "offset from --function, or without it a file offset in --target (kprobe, kretprobe, uprobe, uretprobe)"},
	&cli.StringFlag{Name: "target", Usage: "executable or library to probe (uprobe, uretprobe)"},
	&cli.IntFlag{Name: "pid", Usage: "only probe this process (uprobe, uretprobe)"},
	&cli.StringFlag{Name: "cgroup", Usage: "cgroup v2 directory, e.g. /sys/fs/cgroup/system.slice (cgroup)"},
	&cli.StringFlag{Name: "cgroup-attach-type", Usage: "where in the cgroup: inet_ingress, inet_egress, inet_sock_create, inet4_connect, ... (cgroup)"},
}

// flagTypes lists, for each attach flag, the program types it applies to.
var flagTypes = map[string][]bpfdv1.ProgramType{
	"interface":          {bpfdv1.ProgramType_PROGRAM_TYPE_XDP, bpfdv1.ProgramType_PROGRAM_TYPE_TC, bpfdv1.ProgramType_PROGRAM_TYPE_TCX},
	"netns":              {bpfdv1.ProgramType_PROGRAM_TYPE_XDP, bpfdv1.ProgramType_PROGRAM_TYPE_TC, bpfdv1.ProgramType_PROGRAM_TYPE_TCX},
	"xdp-mode":           {bpfdv1.ProgramType_PROGRAM_TYPE_XDP},
	"direction":          {bpfdv1.ProgramType_PROGRAM_TYPE_TC, bpfdv1.ProgramType_PROGRAM_TYPE_TCX},
	"priority":           {bpfdv1.ProgramType_PROGRAM_TYPE_XDP, bpfdv1.ProgramType_PROGRAM_TYPE_TC, bpfdv1.ProgramType_PROGRAM_TYPE_TCX},
	"proceed-on":         {bpfdv1.ProgramType_PROGRAM_TYPE_XDP, bpfdv1.ProgramType_PROGRAM_TYPE_TC},
	"tracepoint":         {bpfdv1.ProgramType_PROGRAM_TYPE_TRACEPOINT, bpfdv1.ProgramType_PROGRAM_TYPE_RAW_TRACEPOINT, bpfdv1.ProgramType_PROGRAM_TYPE_TP_BTF},
	"function":           {bpfdv1.ProgramType_PROGRAM_TYPE_KPROBE, bpfdv1.ProgramType_PROGRAM_TYPE_KRETPROBE, bpfdv1.ProgramType_PROGRAM_TYPE_FENTRY, bpfdv1.ProgramType_PROGRAM_TYPE_FEXIT, bpfdv1.ProgramType_PROGRAM_TYPE_UPROBE, bpfdv1.ProgramType_PROGRAM_TYPE_URETPROBE},
	"offset":             {bpfdv1.ProgramType_PROGRAM_TYPE_KPROBE, bpfdv1.ProgramType_PROGRAM_TYPE_KRETPROBE, bpfdv1.ProgramType_PROGRAM_TYPE_UPROBE, bpfdv1.ProgramType_PROGRAM_TYPE_URETPROBE},
	"target":             {bpfdv1.ProgramType_PROGRAM_TYPE_UPROBE, bpfdv1.ProgramType_PROGRAM_TYPE_URETPROBE},
	"pid":                {bpfdv1.ProgramType_PROGRAM_TYPE_UPROBE, bpfdv1.ProgramType_PROGRAM_TYPE_URETPROBE},
	"cgroup":             {bpfdv1.ProgramType_PROGRAM_TYPE_CGROUP},
	"cgroup-attach-type": {bpfdv1.ProgramType_PROGRAM_TYPE_CGROUP},
}

// attachOptions are the attach flags of one command line, parsed.
type attachOptions struct {
	iface, netns, tracepoint, function, target, cgroup string
	xdpMode                                            bpfdv1.XdpMode
	direction                                          bpfdv1.Direction
	cgroupAttachType                                   bpfdv1.CgroupAttachType
	priority                                           int32
	proceedOn                                          []string
	offset                                             uint64
	pid                                                int32
}

// parseAttachFlags reads the attach flags, refusing any that applies to
// none of the program types being loaded.
func parseAttachFlags(c *cli.Context, types []bpfdv1.ProgramType) (attachOptions, error) {
	for name, applies := range flagTypes {
		if c.IsSet(name) && !slices.ContainsFunc(types, func(t bpfdv1.ProgramType) bool { return slices.Contains(applies, t) }) {
			return attachOptions{}, cliutil.Usagef("--%s does not apply to %s programs", name, typeNames(types))
		}
	}
	o := attachOptions{
		iface: c.String("interface"), netns: c.String("netns"), tracepoint: c.String("tracepoint"),
		function: c.String("function"), target: c.String("target"), cgroup: c.String("cgroup"),
		offset: c.Uint64("offset"), pid: int32(c.Int("pid")), priority: int32(c.Int("priority")),
	}
	var err error
	if v := c.String("xdp-mode"); v != "" {
		if o.xdpMode, err = bpfdv1.ParseXdpMode(v); err != nil {
			return o, cliutil.Usagef("--xdp-mode: %v", err)
		}
	}
	if v := c.String("direction"); v != "" {
		if o.direction, err = bpfdv1.ParseDirection(v); err != nil {
			return o, cliutil.Usagef("--direction: %v", err)
		}
	}
	if v := c.String("cgroup-attach-type"); v != "" {
		if o.cgroupAttachType, err = bpfdv1.ParseCgroupAttachType(v); err != nil {
			return o, cliutil.Usagef("--cgroup-attach-type: %v", err)
		}
	}
	if v := c.String("proceed-on"); v != "" {
		o.proceedOn = strings.Split(v, ",")
	}
	return o, nil
}

// spec returns the attach spec for a program of type t.
func (o attachOptions) spec(t bpfdv1.ProgramType) (*bpfdv1.AttachSpec, error) {
	switch t {
	case bpfdv1.ProgramType_PROGRAM_TYPE_XDP:
		actions, err := parseEach(o.proceedOn, bpfdv1.ParseXdpAction)
		if err != nil {
			return nil, cliutil.Usagef("--proceed-on: %v", err)
		}
		return &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Xdp{Xdp: &bpfdv1.XdpAttach{
			Interface: o.iface, Netns: o.netns, Mode: o.xdpMode, Priority: o.priority, ProceedOn: actions}}}, nil
	case bpfdv1.ProgramType_PROGRAM_TYPE_TC:
		actions, err := parseEach(o.proceedOn, bpfdv1.ParseTcAction)
		if err != nil {
			return nil, cliutil.Usagef("--proceed-on: %v", err)
		}
		return &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Tc{Tc: &bpfdv1.TcAttach{
			Interface: o.iface, Netns: o.netns, Direction: o.direction, Priority: o.priority, ProceedOn: actions}}}, nil
	case bpfdv1.ProgramType_PROGRAM_TYPE_TCX:
		return &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Tcx{Tcx: &bpfdv1.TcxAttach{
			Interface: o.iface, Netns: o.netns, Direction: o.direction, Priority: o.priority}}}, nil
	case bpfdv1.ProgramType_PROGRAM_TYPE_TRACEPOINT:
		return &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Tracepoint{Tracepoint: &bpfdv1.TracepointAttach{Tracepoint: o.tracepoint}}}, nil
	case bpfdv1.ProgramType_PROGRAM_TYPE_KPROBE, bpfdv1.ProgramType_PROGRAM_TYPE_KRETPROBE:
		return &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Kprobe{Kprobe: &bpfdv1.KprobeAttach{Function: o.function, Offset: o.offset}}}, nil
	case bpfdv1.ProgramType_PROGRAM_TYPE_UPROBE, bpfdv1.ProgramType_PROGRAM_TYPE_URETPROBE:
		return &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Uprobe{Uprobe: &bpfdv1.UprobeAttach{
			Target: o.target, Function: o.function, Offset: o.offset, Pid: o.pid}}}, nil
	case bpfdv1.ProgramType_PROGRAM_TYPE_FENTRY, bpfdv1.ProgramType_PROGRAM_TYPE_FEXIT:
		return &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Fentry{Fentry: &bpfdv1.FentryAttach{Function: o.function}}}, nil
	case bpfdv1.ProgramType_PROGRAM_TYPE_RAW_TRACEPOINT, bpfdv1.ProgramType_PROGRAM_TYPE_TP_BTF:
		return &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_RawTracepoint{RawTracepoint: &bpfdv1.RawTracepointAttach{Tracepoint: o.tracepoint}}}, nil
	case bpfdv1.ProgramType_PROGRAM_TYPE_CGROUP:
		return &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Cgroup{Cgroup: &bpfdv1.CgroupAttach{Path: o.cgroup, AttachType: o.cgroupAttachType}}}, nil
	}
	return nil, cliutil.Usagef("program type %s cannot be attached", t)
}

func parseEach[T any](names []string, parse func(string) (T, error)) ([]T, error) {
	out := make([]T, 0, len(names))
	for _, n := range names {
		v, err := parse(n)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func typeNames(types []bpfdv1.ProgramType) string {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = t.Name()
	}
	return strings.Join(names, " and ")
}

// parseProgram parses a --program value, NAME:TYPE.
func parseProgram(s string) (string, bpfdv1.ProgramType, error) {
	name, typ, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return "", 0, cliutil.Usagef("--program %q: want NAME:TYPE, e.g. xdp_counter:xdp", s)
	}
	t, err := bpfdv1.ParseProgramType(typ)
	if err != nil {
		return "", 0, cliutil.Usagef("--program %q: %v", s, err)
	}
	return name, t, nil
}

// parseKeyValues parses repeated k=v flag values.
func parseKeyValues(flag string, values []string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range values {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, cliutil.Usagef("--%s %q: want KEY=VALUE", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}
