package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/internal/version"
)

var versionCommand = &cli.Command{
	Name:        "version",
	Usage:       "print bpfctl-image's version and commit",
	ArgsUsage:   " ",
	Description: "Prints the version and commit the Makefile stamped into the binary (the same as --version), the Go release and the platform.",
	Flags:       []cli.Flag{outputFlag},
	Action: func(c *cli.Context) error {
		if _, err := arguments(c, 0, 0, "no arguments"); err != nil {
			return err
		}
		asJSON, err := jsonOutput(c)
		if err != nil {
			return err
		}
		info := version.Get()
		if asJSON {
			return cliutil.WriteJSON(c.App.Writer, versionOutput{Envelope: newEnvelope("Version"), Info: info})
		}
		_, err = fmt.Fprintf(c.App.Writer, "bpfctl-image %s\ncommit: %s\ngo: %s\nplatform: %s\n", info.Version, info.Commit, info.GoVersion, info.Platform)
		return err
	},
}

// versionOutput is what `version --output json` writes.
type versionOutput struct {
	Envelope
	version.Info
}
