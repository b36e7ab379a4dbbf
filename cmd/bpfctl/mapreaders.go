package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

var mapReadersCommand = &cli.Command{
	Name:      "map-readers",
	Usage:     "set which Kubernetes namespaces' pods may mount loaded programs' maps through csi.bpfd.io",
	ArgsUsage: "ID...",
	Description: `An application's unprivileged pod reads its programs' maps from a
csi.bpfd.io volume: its attributes name the config the programs belong to
(load --owner-config, or the BpfProgramConfig the agent loaded them for)
and the maps it wants, and bpfd's CSI driver mounts a fresh bpffs holding
just those maps when the pod's namespace is one of the owner's map
readers. This replaces the map readers of programs already loaded, in
place: they stay attached and their maps keep their contents. Volumes
already mounted stay. Only root and bpfd's admins may.`,
	Flags: []cli.Flag{
		&cli.StringSliceFlag{Name: "namespace", Aliases: []string{"n"}, Usage: "a namespace whose pods may mount the maps (repeatable)"},
		&cli.BoolFlag{Name: "none", Usage: "no namespace may mount the maps any more"},
		outputFlag,
	},
	Action: func(c *cli.Context) error {
		if c.NArg() == 0 {
			return cliutil.Usagef("map-readers: want at least one program id")
		}
		namespaces := c.StringSlice("namespace")
		if (len(namespaces) == 0) == !c.Bool("none") {
			return cliutil.Usagef("map-readers: want --namespace NS (repeatable) or --none")
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
		// Only the map readers change: the owner's config and namespace
		// are the programs' own, which bpfd checks for each of them.
		first, err := conn.Get(ctx, &bpfdv1.GetRequest{Id: ids[0]})
		if err != nil {
			return requestFailed(fmt.Sprintf("map-readers: get %d", ids[0]), conn.socket, err)
		}
		o := first.GetProgram().GetOwner()
		if o.GetConfig() == "" {
			return fmt.Errorf("map-readers: program %d belongs to no config for a csi.bpfd.io volume to name: load it with --owner-config", ids[0])
		}
		resp, err := conn.UpdateOwner(ctx, &bpfdv1.UpdateOwnerRequest{Ids: ids, Owner: &bpfdv1.Owner{
			Config: o.GetConfig(), Namespace: o.GetNamespace(), MapReaderNamespaces: namespaces,
		}})
		if err != nil {
			return requestFailed("map-readers", conn.socket, err)
		}
		if asJSON {
			return cliutil.WriteJSON(c.App.Writer, newProgramList(resp.GetPrograms()))
		}
		for _, p := range resp.GetPrograms() {
			readers := "none"
			if ns := p.GetOwner().GetMapReaderNamespaces(); len(ns) > 0 {
				readers = strings.Join(ns, ", ")
			}
			fmt.Fprintf(c.App.Writer, "program %d (config %s): map readers %s\n", p.GetId(), p.GetOwner().GetConfig(), readers)
		}
		return nil
	},
}
