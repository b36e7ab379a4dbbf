package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

var listCommand = &cli.Command{
	Name:  "list",
	Usage: "list the programs bpfd manages (--all: every program on the node; --hooks: each shared hook's chain)",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "also list programs bpfd did not load, and the processes holding each program"},
		&cli.BoolFlag{Name: "hooks", Usage: "show each xdp, tc and tcx hook with its programs in the order it runs them"},
		&cli.StringFlag{Name: "type", Aliases: []string{"t"}, Usage: "only programs of this type, e.g. xdp"},
		&cli.StringSliceFlag{Name: "selector", Aliases: []string{"l"}, Usage: "only programs with this metadata, KEY=VALUE (repeatable)"},
		outputFlag,
	},
	Action: func(c *cli.Context) error {
		if c.NArg() != 0 {
			return cliutil.Usagef("list takes no arguments")
		}
		asJSON, err := jsonOutput(c)
		if err != nil {
			return err
		}
		req := &bpfdv1.ListRequest{All: c.Bool("all")}
		if t := c.String("type"); t != "" {
			if req.Type, err = bpfdv1.ParseProgramType(t); err != nil {
				return cliutil.Usagef("--type: %v", err)
			}
		}
		if req.Selector, err = parseKeyValues("selector", c.StringSlice("selector")); err != nil {
			return err
		}
		conn, ctx, err := connect(c)
		if err != nil {
			return err
		}
		defer conn.Close()
		resp, err := conn.List(ctx, req)
		if err != nil {
			return requestFailed("list", conn.socket, err)
		}
		var holders *programHolders
		if req.GetAll() && !c.Bool("hooks") {
			inv, err := conn.Inventory(ctx, &bpfdv1.InventoryRequest{SkipMaps: true, SkipPins: true})
			if err != nil {
				return requestFailed("inventory", conn.socket, err)
			}
			holders = newProgramHolders(inv)
		}
		switch {
		case c.Bool("hooks") && asJSON:
			return cliutil.WriteJSON(c.App.Writer, newHookList(resp.GetPrograms()))
		case c.Bool("hooks"):
			printHookTable(c.App.Writer, newHookList(resp.GetPrograms()))
		case asJSON:
			return cliutil.WriteJSON(c.App.Writer, newProgramList(resp.GetPrograms()).withHolders(holders))
		default:
			printProgramTable(c.App.Writer, resp.GetPrograms(), holders)
		}
		return nil
	},
}

// printProgramTable prints one line per program; with holders, the
// processes holding each.
func printProgramTable(w io.Writer, programs []*bpfdv1.Program, holders *programHolders) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	header := "ID\tNAME\tTYPE\tATTACHED TO\tPOS\tPRIO\tMODE\tPROCEED ON\tKERNEL ID\tDIGEST\tOWNER\tADMISSION\tMETADATA"
	if holders != nil {
		header += "\tHOLDERS"
	}
	fmt.Fprintln(tw, header)
	for _, p := range programs {
		id, typ := "-", p.GetType().Name()
		if p.GetManaged() {
			id = strconv.FormatUint(p.GetId(), 10)
		} else {
			typ = "(" + p.GetKernel().GetKernelType() + ")"
		}
		pos, prio, mode, proceedOn := "-", "-", "-", "-"
		if h := p.GetHook(); h != nil {
			pos, prio = strconv.Itoa(int(h.GetPosition())), strconv.Itoa(int(h.GetPriority()))
			mode = orDash(dispatcherModeName(h.GetDispatcherMode()))
		}
		if a := newAttach(p.GetAttach()); a != nil && len(a.ProceedOn) > 0 {
			proceedOn = strings.Join(a.ProceedOn, ",")
		}
		j := newProgram(p)
		admission := admissionSummary(j)
		if j.Fault != "" {
			admission += ", FAULT"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s", id, p.GetName(), typ, attachSummary(p.GetAttach()), pos, prio, mode, proceedOn,
			p.GetKernel().GetProgramId(), shortDigest(p.GetProvenance().GetDigest()), ownerSummary(j), admission, formatMetadata(p.GetMetadata()))
		if holders != nil {
			fmt.Fprintf(tw, "\t%s", formatHolders(holders.byProgram[p.GetKernel().GetProgramId()], holders.processes))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// programHolders are the holders of each kernel program, from an
// inventory.
type programHolders struct {
	byProgram map[uint32][]*bpfdv1.Holder
	processes map[int32]*processJSON
	// list are the processes in pid order.
	list []processJSON
}

func newProgramHolders(inv *bpfdv1.InventoryResponse) *programHolders {
	h := &programHolders{byProgram: map[uint32][]*bpfdv1.Holder{}, processes: processes(inv)}
	for _, p := range inv.GetPrograms() {
		h.byProgram[p.GetId()] = p.GetHolders()
	}
	for _, p := range inv.GetProcesses() {
		h.list = append(h.list, *h.processes[p.GetPid()])
	}
	return h
}

// withHolders adds each program's holders and the processes to l.
func (l programListJSON) withHolders(h *programHolders) programListJSON {
	if h == nil {
		return l
	}
	for i := range l.Programs {
		if k := l.Programs[i].Kernel; k != nil {
			l.Programs[i].Holders = newHolders(h.byProgram[k.ProgramID], h.processes)
		}
	}
	l.Processes = h.list
	return l
}
