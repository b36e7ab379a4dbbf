package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// list --hooks shows each hook shared by bpfd's programs (xdp, tc, tcx) with
// its programs in the order the hook runs them, from the programs' hook
// positions in a List response.

// hookListJSON is what list --hooks prints with --output json.
type hookListJSON struct {
	APIVersion string      `json:"apiVersion"`
	Hooks      []chainJSON `json:"hooks"`
}

// chainJSON is a hook and bpfd's programs on it, in the order it runs them.
type chainJSON struct {
	// Hook names the hook, e.g. "xdp/ifindex=4/netns=4026531840".
	Hook      string `json:"hook"`
	Type      string `json:"type"`
	Interface string `json:"interface,omitempty"`
	Netns     string `json:"netns,omitempty"`
	Direction string `json:"direction,omitempty"`
	// DispatcherMode is freplace or linked for xdp and tc hooks; empty for
	// a hook whose lone program runs on its own, and for tcx, which the
	// kernel chains itself.
	DispatcherMode string             `json:"dispatcherMode,omitempty"`
	Programs       []chainProgramJSON `json:"programs"`
}

type chainProgramJSON struct {
	Position  uint32   `json:"position"`
	ID        uint64   `json:"id"`
	Name      string   `json:"name"`
	Priority  int32    `json:"priority"`
	ProceedOn []string `json:"proceedOn,omitempty"`
}

// newHookList groups the managed programs among ps that sit on a shared
// hook by hook, in the order of the hooks' names, each hook's programs by
// position.
func newHookList(ps []*bpfdv1.Program) hookListJSON {
	byHook := map[string]*chainJSON{}
	for _, p := range ps {
		h := p.GetHook()
		if h == nil || !p.GetManaged() {
			continue
		}
		c := byHook[h.GetHook()]
		if c == nil {
			a := newAttach(p.GetAttach())
			c = &chainJSON{Hook: h.GetHook(), Type: p.GetType().Name(), DispatcherMode: dispatcherModeName(h.GetDispatcherMode())}
			if a != nil {
				c.Interface, c.Netns, c.Direction = a.Interface, a.Netns, a.Direction
			}
			byHook[h.GetHook()] = c
		}
		cp := chainProgramJSON{Position: h.GetPosition(), ID: p.GetId(), Name: p.GetName(), Priority: h.GetPriority()}
		if a := newAttach(p.GetAttach()); a != nil {
			cp.ProceedOn = a.ProceedOn
		}
		c.Programs = append(c.Programs, cp)
	}
	out := hookListJSON{APIVersion: jsonAPIVersion, Hooks: []chainJSON{}}
	for _, key := range slices.Sorted(maps.Keys(byHook)) {
		c := byHook[key]
		slices.SortFunc(c.Programs, func(a, b chainProgramJSON) int { return cmp.Compare(a.Position, b.Position) })
		out.Hooks = append(out.Hooks, *c)
	}
	return out
}

// printHookTable prints one line per program, grouped by hook, the hook
// named on its first line.
func printHookTable(w io.Writer, hooks hookListJSON) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "HOOK\tMODE\tPOS\tID\tNAME\tPRIO\tPROCEED ON")
	for _, c := range hooks.Hooks {
		where := []string{c.Type, c.Interface}
		if c.Direction != "" {
			where = append(where, c.Direction)
		}
		if c.Netns != "" {
			where = append(where, "netns "+c.Netns)
		}
		hook, mode := strings.Join(where, " "), orDash(c.DispatcherMode)
		for _, p := range c.Programs {
			proceedOn := "-"
			if len(p.ProceedOn) > 0 {
				proceedOn = strings.Join(p.ProceedOn, ",")
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\n", hook, mode, p.Position, p.ID, p.Name, strconv.Itoa(int(p.Priority)), proceedOn)
			hook, mode = "", ""
		}
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
