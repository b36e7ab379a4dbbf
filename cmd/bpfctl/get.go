package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

var getCommand = &cli.Command{
	Name:      "get",
	Usage:     "show everything bpfd knows of one program",
	ArgsUsage: "ID",
	Flags:     []cli.Flag{outputFlag},
	Action: func(c *cli.Context) error {
		if c.NArg() != 1 {
			return cliutil.Usagef("get: want exactly one program id, got %d", c.NArg())
		}
		ids, err := parseIDs(c.Args().Slice())
		if err != nil {
			return err
		}
		asJSON, err := jsonOutput(c)
		if err != nil {
			return err
		}
		conn, ctx, err := connect(c)
		if err != nil {
			return err
		}
		defer conn.Close()
		resp, err := conn.Get(ctx, &bpfdv1.GetRequest{Id: ids[0]})
		if err != nil {
			return requestFailed(fmt.Sprintf("get %d", ids[0]), conn.socket, err)
		}
		p := newProgram(resp.GetProgram())
		if asJSON {
			p.APIVersion = jsonAPIVersion
			return cliutil.WriteJSON(c.App.Writer, p)
		}
		printProgram(c.App.Writer, resp.GetProgram(), p)
		return nil
	},
}

// printProgram prints a program as aligned "Field: value" lines.
func printProgram(w io.Writer, raw *bpfdv1.Program, p programJSON) {
	tw := tabwriter.NewWriter(w, 2, 8, 1, ' ', 0)
	line := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	line("ID", p.ID)
	line("Name", p.Name)
	line("Type", p.Type)
	line("Attached to", attachSummary(raw.GetAttach()))
	if p.Hook != nil {
		mode := p.Hook.DispatcherMode
		if mode == "" {
			mode = "none"
		}
		line("Hook", fmt.Sprintf("%s, position %d, priority %d, dispatcher %s", p.Hook.Hook, p.Hook.Position, p.Hook.Priority, mode))
	}
	if p.Attach != nil && len(p.Attach.ProceedOn) > 0 {
		line("Proceed on", strings.Join(p.Attach.ProceedOn, ","))
	}
	line("Metadata", formatMetadata(p.Metadata))
	if pr := p.Provenance; pr != nil {
		line("Reference", pr.Reference)
		if pr.Origin != "" {
			line("Origin", pr.Origin)
		}
		line("Digest", orNone(pr.Digest))
		line("Signer", orNone(pr.Signer))
		line("Policy rule", orNone(pr.Rule))
		line("Policy", orNone(pr.PolicyFingerprint))
	}
	if a := p.Admission; a != nil {
		line("Admission", admissionSummary(p))
		if !a.Admitted && a.Detail != "" {
			line("Admission detail", a.Detail)
		}
		if a.CheckedAt != nil {
			line("Judged at", fmt.Sprintf("%s under policy %s", a.CheckedAt.Local().Format(time.RFC3339), orNone(a.PolicyFingerprint)))
		}
	}
	if p.Fault != "" {
		line("Fault", p.Fault)
	}
	if k := p.Kernel; k != nil {
		line("Kernel program", fmt.Sprintf("%d (%s, tag %s)", k.ProgramID, k.Name, k.Tag))
		if len(k.LinkIDs) > 0 {
			line("Kernel links", fmt.Sprint(k.LinkIDs))
		}
		if k.RunCount > 0 {
			line("Runs", fmt.Sprintf("%d, %s in all", k.RunCount, time.Duration(k.RunTimeNano)))
		}
	}
	line("Pinned at", orNone(p.PinPath))
	for _, m := range p.Maps {
		line("Map "+m.Name, fmt.Sprintf("id %d, %s", m.ID, m.PinPath))
	}
	if p.MapOwnerID != 0 {
		line("Maps of", p.MapOwnerID)
	}
	if o := p.Owner; o != nil {
		line("Owner", fmt.Sprintf("config %s, namespace %s, uid %d", orNone(o.Config), orNone(o.Namespace), p.OwnerUID))
	} else if p.Managed {
		line("Owner", fmt.Sprintf("uid %d", p.OwnerUID))
	}
	if p.Managed {
		line("Map readers", mapReaders(p.Owner))
	}
	if p.LoadedBy != nil {
		line("Loaded by", fmt.Sprintf("uid %d gid %d pid %d", p.LoadedBy.UID, p.LoadedBy.GID, p.LoadedBy.PID))
	}
	if p.LoadedAt != nil {
		line("Loaded at", p.LoadedAt.Local().Format(time.RFC3339))
	}
	tw.Flush()
}

// mapReaders describes who may mount the maps of a program whose owner is
// o through csi.bpfd.io.
func mapReaders(o *ownerJSON) string {
	switch {
	case o == nil || o.Config == "":
		return "(none: no owner config for a csi.bpfd.io volume to name)"
	case len(o.MapReaderNamespaces) == 0:
		return "(none)"
	default:
		return "pods of namespaces " + strings.Join(o.MapReaderNamespaces, ", ") + " (csi.bpfd.io volume, config " + o.Config + ")"
	}
}
