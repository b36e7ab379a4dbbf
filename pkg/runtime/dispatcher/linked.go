package dispatcher

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// linkedNames are the names of the generated programs.
var linkedNames = map[progtype.Kind]string{
	progtype.XDP: "xdp_linked",
	progtype.TC:  "tc_linked",
}

// buildLinked generates one program that calls the members' entry functions
// in order, the members' instructions appended as its subprograms, and
// loads it; with accounting, with its counters. When the verifier rejects
// the chain, it finds the member the verifier rejects on its own and names
// it.
func (c *Chain) buildLinked(members []Member, accounting bool) error {
	if accounting {
		var err error
		if c.counters, err = newCounters(); err != nil {
			return err
		}
	}
	spec, err := linkedSpec(c.kind, members, c.counters)
	if err != nil {
		return err
	}
	c.prog, err = ebpf.NewProgram(spec)
	if err != nil {
		return blame(c.kind, members, err)
	}
	id, err := programID(c.prog)
	if err != nil {
		return err
	}
	for i, m := range members {
		c.slots = append(c.slots, Slot{Position: i, ID: m.ID, Name: m.Name, Priority: m.Priority, ProceedOn: m.ProceedOn, ProgramID: id})
	}
	return nil
}

// blame returns the error of the first member that fails to load alone in a
// chain, or err about the whole chain when each loads alone (the chain as a
// whole is too large or too complex).
func blame(k progtype.Kind, members []Member, err error) error {
	var ve *ebpf.VerifierError
	if len(members) > 1 && errors.As(err, &ve) {
		for i := range members {
			spec, serr := linkedSpec(k, members[i:i+1], nil)
			if serr != nil {
				return serr
			}
			p, lerr := ebpf.NewProgram(spec)
			if lerr != nil {
				return memberError(&members[i], "linked into the %s chain: %w", k, lerr)
			}
			p.Close()
		}
	}
	if len(members) == 1 {
		return memberError(&members[0], "linked into the %s chain: %w", k, err)
	}
	return fmt.Errorf("%s chain of %d programs: each loads on its own, not all together: %w", k, len(members), err)
}

// linkedSpec generates the chain program for members:
//
//	r6 = r1                        ; the context
//	for each member i:
//	  r1 = r6; call member_i
//	  w1 = w0 (TC: w1 = w0 + 1)     ; the return value's bit
//	  if r1 > 31 goto exit
//	  r2 = 1 << r1; r2 &= proceed_on_i
//	  if r2 == 0 goto exit          ; r0 is the member's return value
//	r0 = XDP_PASS (TC: TC_ACT_OK)
//	exit:
//	exit
//	member_0 and its functions ...
//
// Each member's symbols are renamed m<i>_<symbol>, so members may share
// function names; its map references are bound to its live maps.
//
// With counters, the chain first looks up its counters on this CPU (r7;
// the key at fp-4) and reads the clock (r8), then reads it again after each
// member, which is charged the time since the last reading (its call and
// the few instructions that decided to call it): one clock read per member.
//
//	r1 = r6; call member_i
//	r9 = r0
//	if r7 == 0 goto done_i
//	call bpf_ktime_get_ns; r1 = r0; r0 -= r8; r8 = r1
//	counters[i].ns += r0; counters[i].runs += 1
//	done_i: r0 = r9
func linkedSpec(k progtype.Kind, members []Member, counters *ebpf.Map) (*ebpf.ProgramSpec, error) {
	first := members[0].Program
	flags, err := commonFlags(members)
	if err != nil {
		return nil, err
	}
	withBTF := true
	for i := range members {
		m := &members[i]
		if m.Program.AttachType != first.AttachType {
			// Tail calls need prog arrays whose programs agree on it.
			return nil, memberError(m, "attach type %s differs from %s's %s: %w", m.Program.AttachType, members[0].Name, first.AttachType, ErrInvalid)
		}
		if btf.FuncMetadata(&m.Program.Instructions[0]) == nil {
			withBTF = false
		}
	}

	name := linkedNames[k]
	const exit = "chain_exit"
	var insns asm.Instructions
	insns = append(insns, asm.Mov.Reg(asm.R6, asm.R1).WithSymbol(name))
	if counters != nil {
		lookup := asm.LoadMapPtr(asm.R1, 0)
		if err := lookup.AssociateMap(counters); err != nil {
			return nil, fmt.Errorf("chain counters: %w", err)
		}
		insns = append(insns,
			asm.StoreImm(asm.RFP, -4, 0, asm.Word),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			lookup,
			asm.FnMapLookupElem.Call(),
			asm.Mov.Reg(asm.R7, asm.R0),
			asm.FnKtimeGetNs.Call(),
			asm.Mov.Reg(asm.R8, asm.R0),
		)
	}
	for i := range members {
		insns = append(insns,
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.Call.Label(memberSymbol(i, members[i].Program.Instructions[0].Symbol())),
		)
		if counters != nil {
			done := fmt.Sprintf("chain_counted_%d", i)
			runs, ns := counterOffset(i), counterOffset(i)+8
			insns = append(insns,
				asm.Mov.Reg(asm.R9, asm.R0),
				asm.JEq.Imm(asm.R7, 0, done),
				asm.FnKtimeGetNs.Call(),
				asm.Mov.Reg(asm.R1, asm.R0),
				asm.Sub.Reg(asm.R0, asm.R8),
				asm.Mov.Reg(asm.R8, asm.R1),
				asm.LoadMem(asm.R1, asm.R7, ns, asm.DWord),
				asm.Add.Reg(asm.R1, asm.R0),
				asm.StoreMem(asm.R7, ns, asm.R1, asm.DWord),
				asm.LoadMem(asm.R1, asm.R7, runs, asm.DWord),
				asm.Add.Imm(asm.R1, 1),
				asm.StoreMem(asm.R7, runs, asm.R1, asm.DWord),
				asm.Mov.Reg(asm.R0, asm.R9).WithSymbol(done),
			)
		}
		insns = append(insns, asm.Mov.Reg32(asm.R1, asm.R0))
		if k == progtype.TC {
			insns = append(insns, asm.Add.Imm32(asm.R1, 1))
		}
		insns = append(insns,
			asm.JGT.Imm(asm.R1, 31, exit),
			asm.Mov.Imm(asm.R2, 1),
			asm.LSh.Reg(asm.R2, asm.R1),
			asm.And.Imm(asm.R2, int32(members[i].ProceedOn)),
			asm.JEq.Imm(asm.R2, 0, exit),
		)
	}
	fallthrough_ := int32(xdpPass)
	if k == progtype.TC {
		fallthrough_ = tcOK
	}
	insns = append(insns,
		asm.Mov.Imm(asm.R0, fallthrough_),
		asm.Return(),
		asm.Return().WithSymbol(exit),
	)
	if withBTF {
		// The kernel wants func and line info for every function, the
		// generated one first: it borrows the first member's prototype,
		// int (struct xdp_md *) or int (struct __sk_buff *).
		proto := btf.FuncMetadata(&first.Instructions[0]).Type
		insns[0] = btf.WithFuncMetadata(insns[0], &btf.Func{Name: name, Type: proto, Linkage: btf.GlobalFunc})
		insns[0] = insns[0].WithSource(asm.Comment("bpfd " + string(k) + " chain"))
	}

	license := ""
	for i := range members {
		m := &members[i]
		sub, err := memberInstructions(i, m, withBTF)
		if err != nil {
			return nil, err
		}
		insns = append(insns, sub...)
		license = combineLicense(license, m.Program.License)
	}
	return &ebpf.ProgramSpec{
		Name:         name,
		Type:         first.Type,
		AttachType:   first.AttachType,
		Flags:        flags,
		License:      license,
		Instructions: insns,
	}, nil
}

func memberSymbol(i int, symbol string) string { return fmt.Sprintf("m%d_%s", i, symbol) }

// memberInstructions returns member i's instructions as a subprogram of the
// chain: maps bound, symbols renamed, the entry function made static so that
// the verifier checks it in the chain's context. Without withBTF it drops
// the member's func and line info.
func memberInstructions(i int, m *Member, withBTF bool) (asm.Instructions, error) {
	prog := m.Program.Copy()
	if err := bindMaps(m, prog); err != nil {
		return nil, err
	}
	insns := prog.Instructions
	rename := map[string]string{}
	for _, ins := range insns {
		if s := ins.Symbol(); s != "" {
			rename[s] = memberSymbol(i, s)
		}
	}
	for j := range insns {
		ins := &insns[j]
		if s := ins.Symbol(); s != "" {
			*ins = ins.WithSymbol(rename[s])
		}
		// Calls, function pointers and jumps to the member's own symbols;
		// other references (kfuncs) are resolved when loading.
		if r, ok := rename[ins.Reference()]; ok {
			*ins = ins.WithReference(r)
		}
		switch {
		case !withBTF:
			*ins = btf.WithFuncMetadata(*ins, nil)
			*ins = ins.WithSource(nil)
		case j == 0:
			fn := *btf.FuncMetadata(ins)
			fn.Linkage = btf.StaticFunc
			*ins = btf.WithFuncMetadata(*ins, &fn)
		}
	}
	if insns[0].Symbol() == "" {
		return nil, memberError(m, "program has no entry symbol: %w", ErrInvalid)
	}
	return insns, nil
}

// gplCompatible are the licenses the kernel counts as GPL-compatible
// (license_is_gpl_compatible).
var gplCompatible = map[string]bool{
	"GPL": true, "GPL v2": true, "GPL and additional rights": true,
	"Dual BSD/GPL": true, "Dual MIT/GPL": true, "Dual MPL/GPL": true,
}

// combineLicense returns the license of a program made of code under have
// and add: GPL when both are GPL-compatible, else the first that is not, so
// that the kernel grants the chain no GPL-only helper a member lacks.
func combineLicense(have, add string) string {
	switch {
	case have == "":
		return add
	case !gplCompatible[have]:
		return have
	case !gplCompatible[add]:
		return add
	}
	return "GPL"
}
