package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

var pullCommand = &cli.Command{
	Name:      "pull",
	Usage:     "pull and verify an artifact into bpfd's cache without loading it",
	ArgsUsage: "REF",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "pull-policy", Usage: "Always, IfNotPresent or Never (default: bpfd's)"},
		outputFlag,
	},
	Action: func(c *cli.Context) error {
		if c.NArg() != 1 {
			return cliutil.Usagef("pull: want exactly one reference, got %d", c.NArg())
		}
		ref := c.Args().First()
		asJSON, err := jsonOutput(c)
		if err != nil {
			return err
		}
		pull, err := bpfdv1.ParsePullPolicy(c.String("pull-policy"))
		if err != nil {
			return cliutil.Usagef("--pull-policy: %v", err)
		}
		conn, ctx, err := connect(c)
		if err != nil {
			return err
		}
		defer conn.Close()
		resp, err := conn.PullImage(ctx, &bpfdv1.PullImageRequest{Bytecode: &bpfdv1.Bytecode{Reference: ref, PullPolicy: pull}})
		if err != nil {
			return requestFailed("pull", conn.socket, err)
		}
		prov := newProvenance(resp.GetProvenance())
		if asJSON {
			return cliutil.WriteJSON(c.App.Writer, pullJSON{APIVersion: jsonAPIVersion, Provenance: prov})
		}
		fmt.Fprintf(c.App.Writer, "pulled %s\ndigest %s, signer %s, rule %s\n", ref, orNone(prov.Digest), orNone(prov.Signer), orNone(prov.Rule))
		return nil
	},
}
