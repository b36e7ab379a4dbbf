package testutil

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
)

// kernelProbes answer whether the running kernel has a feature: nil when it
// has, the error that showed otherwise when not. Each probe runs once per
// process and does the real thing with the smallest program that can.
var kernelProbes = map[KernelFeature]func() error{
	FeatureKprobe:    sync.OnceValue(func() error { return probeKprobe(false) }),
	FeatureKretprobe: sync.OnceValue(func() error { return probeKprobe(true) }),
	FeatureFentry:    sync.OnceValue(func() error { return probeTracing(ebpf.AttachTraceFEntry) }),
	FeatureFexit:     sync.OnceValue(func() error { return probeTracing(ebpf.AttachTraceFExit) }),
	FeatureFreplace:  sync.OnceValue(func() error { return features.HaveProgramType(ebpf.Extension) }),
	FeatureXDPLink:   sync.OnceValue(probeXDPLink),
	FeatureTCX:       sync.OnceValue(probeTCX),
}

// returnZero is the body of every probe program.
var returnZero = asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}

// probeKprobe attaches a kprobe (or kretprobe) to getpid(2).
func probeKprobe(ret bool) error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.Kprobe, License: "GPL", Instructions: returnZero})
	if err != nil {
		return fmt.Errorf("load kprobe program: %w", err)
	}
	defer prog.Close()
	attach := link.Kprobe
	if ret {
		attach = link.Kretprobe
	}
	l, err := attach("sys_getpid", prog, nil)
	if err != nil {
		if _, statErr := os.Stat("/sys/bus/event_source/devices/kprobe"); statErr != nil {
			return fmt.Errorf("no kprobe PMU, likely a kernel without CONFIG_KPROBES: %w", err)
		}
		return err
	}
	return l.Close()
}

// probeTracing attaches an fentry or fexit program to bpf_fentry_test1, a
// kernel function that exists for testing BPF trampolines.
func probeTracing(attachType ebpf.AttachType) error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.Tracing,
		AttachType:   attachType,
		AttachTo:     "bpf_fentry_test1",
		License:      "GPL",
		Instructions: returnZero,
	})
	if err != nil {
		return fmt.Errorf("load tracing program: %w", err)
	}
	defer prog.Close()
	l, err := link.AttachTracing(link.TracingOptions{Program: prog})
	if err != nil {
		return err
	}
	return l.Close()
}

// probeXDPLink attaches an XDP program through a link to a throwaway veth.
func probeXDPLink() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL", Instructions: returnZero})
	if err != nil {
		return fmt.Errorf("load XDP program: %w", err)
	}
	defer prog.Close()
	return withVeth(func(ifindex int) error {
		l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex})
		if err != nil {
			return err
		}
		return l.Close()
	})
}

// probeTCX attaches a TC program through a TCX link to a throwaway veth.
func probeTCX() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS, License: "GPL", Instructions: returnZero})
	if err != nil {
		return fmt.Errorf("load TC program: %w", err)
	}
	defer prog.Close()
	return withVeth(func(ifindex int) error {
		l, err := link.AttachTCX(link.TCXOptions{Program: prog, Interface: ifindex, Attach: ebpf.AttachTCXIngress})
		if err != nil {
			return err
		}
		return l.Close()
	})
}

// withVeth calls fn with the index of one end of a new veth pair that has a
// random name, and deletes the pair afterwards.
func withVeth(fn func(ifindex int) error) (err error) {
	name := "bpfdprb" + strings.ToLower(rand.Text()[:6])
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s: %w", name, err)
	}
	defer func() {
		if delErr := netlink.LinkDel(veth); delErr != nil {
			err = errors.Join(err, fmt.Errorf("delete veth %s: %w", name, delErr))
		}
	}()
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("veth %s: %w", name, err)
	}
	return fn(l.Attrs().Index)
}
