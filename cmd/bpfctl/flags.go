package main

import (
	"time"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/urfave/cli/v2"
)

// Flags every command takes.
var globalFlags = []cli.Flag{
	&cli.StringFlag{Name: "socket", Value: "/run/bpfd/bpfd.sock", Usage: "bpfd's unix socket", EnvVars: []string{"BPFD_SOCKET"}},
	&cli.DurationFlag{Name: "timeout", Value: 2 * time.Minute, Usage: "give up on a request after this long (pulls from a registry can be slow)", EnvVars: []string{"BPFCTL_TIMEOUT"}},
}

// outputFlag selects table or JSON output.
var outputFlag = &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "table or json", EnvVars: []string{"BPFCTL_OUTPUT"}}

// jsonOutput reports whether the command should print JSON, refusing
// formats it does not know.
func jsonOutput(c *cli.Context) (bool, error) {
	switch o := c.String(outputFlag.Name); o {
	case "table", "text", "":
		return false, nil
	case "json":
		return true, nil
	default:
		return false, cliutil.Usagef("--output %q: want table or json", o)
	}
}
