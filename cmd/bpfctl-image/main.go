// Command bpfctl-image builds, moves, signs and verifies bpfd's bytecode
// artifacts. It is the supply-chain half of bpfd, for CI pipelines and
// auditors; it needs no daemon and no privileges.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

const exitCodesHelp = `EXIT CODES:
   0  success
   1  error
   2  usage error
   3  denied by the trust policy (verify)
   4  reference, tag, manifest or blob not found`

func main() {
	app := &cli.App{
		Name:                  "bpfctl-image",
		Usage:                 "build, move, sign and verify BPF bytecode artifacts",
		Description:           "References are host[:port]/repo[:tag][@digest] (a registry), oci:PATH[:tag][@digest] (an OCI image layout on disk) or oci-archive:FILE[:tag][@digest] (a tar of a layout).",
		CustomAppHelpTemplate: cli.AppHelpTemplate + "\n" + exitCodesHelp + "\n",
		Commands:              commands,
		EnableBashCompletion:  true,
		ExitErrHandler:        func(*cli.Context, error) {}, // main reports errors once, below
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "bpfctl-image: %v\n", err)
		os.Exit(exitCode(err))
	}
}
