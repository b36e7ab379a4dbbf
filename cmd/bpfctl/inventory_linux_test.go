package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

// TestInventoryThroughBpfctl: a process in a pod's container cgroup holds a
// program it loaded itself, another program is only pinned, a third only
// held by its link, and bpfd runs the XDP counter; bpfctl inventory -o json
// attributes each to its holder, pins and attach point, with bpfd's record
// of its own, and list --all shows the holders.
func TestInventoryThroughBpfctl(t *testing.T) {
	n := startNode(t)
	v := testutil.NewVethPair(t)
	bpfd := n.loadJSON(t, "load", "image", n.signed, "--program", "xdp_counter:xdp", "--interface", v.Peer, "--netns", v.Netns)[0]
	pp := testutil.StartPodProcess(t, testutil.CgroupDriverCgroupfs, "")

	// A socket filter only its pin holds, and a cgroup program only its
	// link holds, the link pinned.
	pinned, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "pinned_only", Type: ebpf.SocketFilter, License: "MIT",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	pin := filepath.Join(n.bpffs, "test-pinned-only")
	if err := pinned.Pin(pin); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(pin) })
	pinnedID := kernelID(t, pinned)
	pinned.Close()
	cg := testutil.NewCgroup(t)
	linked, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "link_only", Type: ebpf.CGroupSKB, AttachType: ebpf.AttachCGroupInetEgress, License: "MIT",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 1), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := link.AttachCgroup(link.CgroupOptions{Path: cg, Attach: ebpf.AttachCGroupInetEgress, Program: linked})
	if err != nil {
		t.Fatal(err)
	}
	linkPin := filepath.Join(n.bpffs, "test-link-only")
	if err := l.Pin(linkPin); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(linkPin) })
	linkedID := kernelID(t, linked)
	l.Close()
	linked.Close()

	for _, holders := range []string{"auto", "procfs"} {
		var inv inventoryJSON
		if err := json.Unmarshal([]byte(n.mustBpfctl(t, "inventory", "-o", "json", "--holders", holders)), &inv); err != nil {
			t.Fatal(err)
		}
		if inv.APIVersion != jsonAPIVersion || !slices.Contains([]string{"iterator", "procfs"}, inv.HolderSource) {
			t.Errorf("%s: apiVersion %q, holder source %q", holders, inv.APIVersion, inv.HolderSource)
		}
		programs := map[uint32]inventoryProgramJSON{}
		for _, p := range inv.Programs {
			programs[p.ID] = p
		}
		theirs := programs[pp.ProgramID]
		if len(theirs.Holders) != 1 || theirs.Holders[0].PID != int32(pp.PID) || len(theirs.Managed) != 0 {
			t.Errorf("%s: the pod process's program %+v, want held by %d and nobody's in bpfd", holders, theirs, pp.PID)
		}
		var proc *processJSON
		for i := range inv.Processes {
			if inv.Processes[i].PID == int32(pp.PID) {
				proc = &inv.Processes[i]
			}
		}
		if proc == nil || proc.Pod == nil || proc.Pod.UID != pp.PodUID || proc.Pod.ContainerID != pp.ContainerID || proc.Pod.QOSClass != "Burstable" {
			t.Errorf("%s: process %+v, want pod %s container %s", holders, proc, pp.PodUID, pp.ContainerID)
		}
		if p := programs[pinnedID]; !slices.Equal(p.Pins, []string{pin}) || len(p.Holders) != 0 {
			t.Errorf("%s: pinned-only program %+v, want pinned at %s and held by none", holders, p, pin)
		}
		lp := programs[linkedID]
		if len(lp.LinkIDs) != 1 || len(lp.Holders) != 0 || len(lp.Pins) != 0 {
			t.Errorf("%s: link-only program %+v, want one link and nothing else", holders, lp)
		}
		for _, l := range inv.Links {
			if l.ProgramID == linkedID && (l.Attach == nil || l.Attach.Hook != "cgroup" || !strings.HasSuffix(cg, l.Attach.Cgroup) ||
				l.Attach.AttachType != "CGroupInetEgress" || !slices.Equal(l.Pins, []string{linkPin})) {
				t.Errorf("%s: link of the link-only program %+v (attach %+v), want cgroup %s, pinned at %s", holders, l, l.Attach, cg, linkPin)
			}
		}
		ours := programs[bpfd.Kernel.ProgramID]
		if len(ours.Managed) != 1 || ours.Managed[0].ID != bpfd.ID || ours.Managed[0].Provenance == nil || ours.Managed[0].Provenance.Rule != "images" {
			t.Errorf("%s: bpfd's program %+v, want its record", holders, ours)
		}
	}

	table := n.mustBpfctl(t, "inventory")
	for _, want := range []string{strconv.FormatUint(uint64(pp.ProgramID), 10), pp.PodUID, "cgroup ", "holders from"} {
		if !strings.Contains(table, want) {
			t.Errorf("bpfctl inventory lacks %q:\n%s", want, table)
		}
	}
	all := n.mustBpfctl(t, "list", "--all")
	if !strings.Contains(all, "HOLDERS") || !strings.Contains(all, "pod "+pp.PodUID) {
		t.Errorf("bpfctl list --all does not show the pod process's holding:\n%s", all)
	}
	if code, _, stderr := n.bpfctl(t, "inventory", "--holders", "ptrace"); code != cliutil.ExitUsage {
		t.Errorf("inventory --holders ptrace: exit %d (%s), want a usage error", code, stderr)
	}
}

// TestTopThroughBpfctl: piped, top prints one JSON sample with bpfd's
// program and the kernel's programs.
func TestTopThroughBpfctl(t *testing.T) {
	n := startNode(t)
	p := n.loadJSON(t, "load", "image", n.signed, "--program", "tracepoint_counter:tracepoint")[0]
	// openat calls for the program to count while top samples.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if f, err := os.Open("/proc/self/stat"); err == nil {
				f.Close()
			}
			time.Sleep(time.Millisecond)
		}
	}()
	out := n.mustBpfctl(t, "top", "--interval", "200ms")
	var sample topSampleJSON
	if err := json.Unmarshal([]byte(out), &sample); err != nil {
		t.Fatalf("top printed %q: %v", out, err)
	}
	if sample.APIVersion != jsonAPIVersion || sample.IntervalNano <= 0 || sample.CPUs == 0 {
		t.Errorf("sample %+v", sample)
	}
	if !slices.ContainsFunc(sample.Programs, func(r programRunsJSON) bool { return r.ID == p.ID && r.Type == "tracepoint" && r.RunCount > 0 }) {
		t.Errorf("sample lacks bpfd's tracepoint program with its runs: %+v", sample.Programs)
	}
	table := n.mustBpfctl(t, "top", "--interval", "200ms", "-o", "table", "--sort", "name")
	if !strings.Contains(table, "tracepoint_counter") || !strings.Contains(table, "CPU%") {
		t.Errorf("top -o table:\n%s", table)
	}
	if code, _, _ := n.bpfctl(t, "top", "--interval", "1ms"); code != cliutil.ExitUsage {
		t.Errorf("top --interval 1ms: exit %d, want a usage error", code)
	}
}

func kernelID(t *testing.T, p *ebpf.Program) uint32 {
	t.Helper()
	info, err := p.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := info.ID()
	return uint32(id)
}
