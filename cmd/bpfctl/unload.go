package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

var unloadCommand = &cli.Command{
	Name:      "unload",
	Usage:     "detach and unload programs (all or none: an unknown id unloads nothing)",
	ArgsUsage: "ID...",
	Action: func(c *cli.Context) error {
		if c.NArg() == 0 {
			return cliutil.Usagef("unload: want at least one program id")
		}
		ids, err := parseIDs(c.Args().Slice())
		if err != nil {
			return err
		}
		conn, ctx, err := connect(c)
		if err != nil {
			return err
		}
		defer conn.Close()
		if _, err := conn.Unload(ctx, &bpfdv1.UnloadRequest{Ids: ids}); err != nil {
			return requestFailed("unload", conn.socket, err)
		}
		for _, id := range ids {
			fmt.Fprintf(c.App.Writer, "unloaded %d\n", id)
		}
		return nil
	},
}
