// Command minload is the benchmarks' minimal loader: the kernel steps that
// `bpfctl load` and `bpfctl unload` ask bpfd for, done directly with
// cilium/ebpf and nothing else (no artifact, no signature, no record, no
// API). It is the peer of rows where Debian's bpftool cannot attach the
// program (bpftool 7.1 has no TCX and no tracepoint attach).
//
//	minload load OBJECT PROGRAM tcx|tracepoint TARGET PINDIR
//	minload unload PINDIR
//
// load loads PROGRAM of OBJECT with its maps, attaches it (tcx: to TARGET's
// ingress; tracepoint: to TARGET, group/name) and pins the program, its link
// and its maps under PINDIR, so that they outlive the process as bpfd's do.
// unload removes the pins, which detaches and frees them.
package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "minload:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) == 6 && args[0] == "load":
		return load(args[1], args[2], args[3], args[4], args[5])
	case len(args) == 2 && args[0] == "unload":
		return os.RemoveAll(args[1])
	}
	return fmt.Errorf("usage: minload load OBJECT PROGRAM tcx|tracepoint TARGET PINDIR | minload unload PINDIR")
}

func load(object, program, kind, target, pinDir string) error {
	spec, err := ebpf.LoadCollectionSpec(object)
	if err != nil {
		return err
	}
	ps, ok := spec.Programs[program]
	if !ok {
		return fmt.Errorf("%s: no program %s", object, program)
	}
	spec.Programs = map[string]*ebpf.ProgramSpec{program: ps}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return err
	}
	defer coll.Close()
	prog := coll.Programs[program]

	var l link.Link
	switch kind {
	case "tcx":
		iface, err := net.InterfaceByName(target)
		if err != nil {
			return err
		}
		l, err = link.AttachTCX(link.TCXOptions{Interface: iface.Index, Program: prog, Attach: ebpf.AttachTCXIngress})
		if err != nil {
			return err
		}
	case "tracepoint":
		group, name, _ := strings.Cut(target, "/")
		if l, err = link.Tracepoint(group, name, prog, nil); err != nil {
			return err
		}
	default:
		return fmt.Errorf("kind %q: want tcx or tracepoint", kind)
	}
	defer l.Close()

	if err := os.MkdirAll(filepath.Join(pinDir, "maps"), 0o700); err != nil {
		return err
	}
	if err := prog.Pin(filepath.Join(pinDir, "program")); err != nil {
		return err
	}
	if err := l.Pin(filepath.Join(pinDir, "link")); err != nil {
		return err
	}
	for name, m := range coll.Maps {
		if err := m.Pin(filepath.Join(pinDir, "maps", strings.ReplaceAll(name, ".", "_"))); err != nil {
			return err
		}
	}
	return nil
}
