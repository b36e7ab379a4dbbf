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

var inventoryCommand = &cli.Command{
	Name:  "inventory",
	Usage: "show every BPF program, map and link on the node, who holds each and where each is attached (-o json: everything)",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "holders", Value: "auto", Usage: "how bpfd finds the processes holding objects: auto, iterator, procfs or none", EnvVars: []string{"BPFCTL_HOLDERS"}},
		&cli.BoolFlag{Name: "no-maps", Usage: "leave the maps out"},
		&cli.BoolFlag{Name: "no-pins", Usage: "do not look for pins under the bpffs mounts"},
		outputFlag,
	},
	Action: func(c *cli.Context) error {
		if c.NArg() != 0 {
			return cliutil.Usagef("inventory takes no arguments")
		}
		asJSON, err := jsonOutput(c)
		if err != nil {
			return err
		}
		source, err := parseHolderSource(c.String("holders"))
		if err != nil {
			return err
		}
		conn, ctx, err := connect(c)
		if err != nil {
			return err
		}
		defer conn.Close()
		inv, err := conn.Inventory(ctx, &bpfdv1.InventoryRequest{SkipMaps: c.Bool("no-maps"), SkipPins: c.Bool("no-pins"), HolderSource: source})
		if err != nil {
			return requestFailed("inventory", conn.socket, err)
		}
		list, err := conn.List(ctx, &bpfdv1.ListRequest{})
		if err != nil {
			return requestFailed("list", conn.socket, err)
		}
		managed := map[uint64]*bpfdv1.Program{}
		for _, p := range list.GetPrograms() {
			managed[p.GetId()] = p
		}
		if asJSON {
			return cliutil.WriteJSON(c.App.Writer, newInventory(inv, managed))
		}
		printInventory(c.App.Writer, inv, managed)
		return nil
	},
}

func parseHolderSource(s string) (bpfdv1.HolderSource, error) {
	switch s {
	case "auto", "":
		return bpfdv1.HolderSource_HOLDER_SOURCE_UNSPECIFIED, nil
	case "iterator":
		return bpfdv1.HolderSource_HOLDER_SOURCE_ITERATOR, nil
	case "procfs":
		return bpfdv1.HolderSource_HOLDER_SOURCE_PROCFS, nil
	case "none":
		return bpfdv1.HolderSource_HOLDER_SOURCE_NONE, nil
	}
	return 0, cliutil.Usagef("--holders %q: want auto, iterator, procfs or none", s)
}

// printInventory prints the programs, one a line, then the links, then a
// summary.
func printInventory(w io.Writer, inv *bpfdv1.InventoryResponse, managed map[uint64]*bpfdv1.Program) {
	procs := processes(inv)
	links := map[uint32]*bpfdv1.InventoryLink{}
	for _, l := range inv.GetLinks() {
		links[l.GetId()] = l
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "KERNEL ID\tTYPE\tNAME\tBPFD\tATTACHED TO\tPINS\tHOLDERS")
	for _, p := range inv.GetPrograms() {
		var attached []string
		for _, id := range p.GetLinkIds() {
			if l := links[id]; l != nil {
				attached = append(attached, l.GetAttach().Summary())
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", p.GetId(), p.GetKernelType(), orDash(p.GetName()), bpfdRole(p, managed),
			orDash(strings.Join(attached, "; ")), len(p.GetPins()), formatHolders(p.GetHolders(), procs))
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d programs, %d maps, %d links, %d processes holding them (holders from %s, scanned in %s)\n",
		len(inv.GetPrograms()), len(inv.GetMaps()), len(inv.GetLinks()), len(inv.GetProcesses()),
		orDash(holderSourceName(inv.GetHolderSource())), inv.GetTook().AsDuration().Round(1000))
	if o := inv.GetOmitted(); o.GetPrograms()+o.GetMaps()+o.GetLinks()+o.GetProcesses()+o.GetHolders()+o.GetPins() > 0 {
		fmt.Fprintf(w, "left out by bpfd's bounds: %d programs, %d maps, %d links, %d processes, %d holders, %d pins\n",
			o.GetPrograms(), o.GetMaps(), o.GetLinks(), o.GetProcesses(), o.GetHolders(), o.GetPins())
	}
	for _, warning := range inv.GetWarnings() {
		fmt.Fprintf(w, "warning: %s\n", warning)
	}
}

// bpfdRole says what the program is to bpfd: the ids of bpfd's programs it
// runs, the chain it runs, or "-".
func bpfdRole(p *bpfdv1.InventoryProgram, managed map[uint64]*bpfdv1.Program) string {
	if ids := p.GetManagedIds(); len(ids) > 0 {
		s := make([]string, len(ids))
		for i, id := range ids {
			s[i] = strconv.FormatUint(id, 10)
			if m := managed[id]; m != nil {
				s[i] += " " + m.GetName()
			}
		}
		return strings.Join(s, ",")
	}
	if h := p.GetChainHook(); h != "" {
		return "chain " + h
	}
	return "-"
}

// formatHolders says who holds an object: comm[pid], with the pod and
// container its cgroup names.
func formatHolders(hs []*bpfdv1.Holder, procs map[int32]*processJSON) string {
	var parts []string
	for _, h := range hs {
		s := fmt.Sprintf("pid %d", h.GetPid())
		if p := procs[h.GetPid()]; p != nil {
			s = fmt.Sprintf("%s[%d]", p.Comm, p.PID)
			if p.Pod != nil {
				s += " pod " + p.Pod.UID
				if p.Pod.ContainerID != "" {
					s += " container " + shortID(p.Pod.ContainerID)
				}
			}
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// shortID abbreviates a container id as container runtimes show them.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
