package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/internal/version"
)

var versionCommand = &cli.Command{
	Name:        "version",
	Usage:       "print bpfctl's version and commit",
	ArgsUsage:   " ",
	Description: "Prints the version and commit the Makefile stamped into bpfctl (the same as --version), the Go release and the platform. It does not contact bpfd.",
	Flags:       []cli.Flag{outputFlag},
	Action: func(c *cli.Context) error {
		if c.NArg() != 0 {
			return cliutil.Usagef("version: takes no arguments")
		}
		asJSON, err := jsonOutput(c)
		if err != nil {
			return err
		}
		info := version.Get()
		if asJSON {
			return cliutil.WriteJSON(c.App.Writer, versionJSON{APIVersion: jsonAPIVersion, Info: info})
		}
		_, err = fmt.Fprintf(c.App.Writer, "bpfctl %s\ncommit: %s\ngo: %s\nplatform: %s\n", info.Version, info.Commit, info.GoVersion, info.Platform)
		return err
	},
}

// versionJSON is what version prints with --output json.
type versionJSON struct {
	APIVersion string `json:"apiVersion"`
	version.Info
}
