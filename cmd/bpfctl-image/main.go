// Command bpfctl-image builds, moves, signs and verifies bpfd's bytecode
// artifacts. It is the supply-chain half of bpfd, for CI pipelines and
// auditors; it needs no daemon and no privileges.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/internal/version"
)

const exitCodesHelp = `EXIT CODES:
   0  success
   1  error
   2  usage error (including a reference that does not parse)
   3  denied by the trust policy (verify)
   4  reference, tag, manifest, blob or platform not found`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs bpfctl-image with args (args[0] is the program name), writing
// results to stdout and errors and progress to stderr, and returns the exit
// code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	if err := app.RunContext(ctx, cliutil.HoistFlags(app, args)); err != nil {
		err = explainAuth(err, args[1:])
		fmt.Fprintf(stderr, "bpfctl-image: %v\n", err)
		return exitCode(err)
	}
	return cliutil.ExitOK
}

func newApp(stdout, stderr io.Writer) *cli.App {
	cmds := cliutil.CloneCommands(commands)
	cliutil.SetUsageErrors(cmds)
	return &cli.App{
		Name:                  "bpfctl-image",
		Usage:                 "build, move, sign and verify BPF bytecode artifacts",
		Version:               version.Get().String(),
		Description:           "References are host[:port]/repo[:tag][@digest] (a registry), oci:PATH[:tag][@digest] (an OCI image layout on disk) or oci-archive:FILE[:tag][@digest] (a tar of a layout).",
		CustomAppHelpTemplate: cli.AppHelpTemplate + "\n" + exitCodesHelp + "\n",
		Commands:              cmds,
		Writer:                stdout,
		ErrWriter:             stderr,
		EnableBashCompletion:  true,
		// Annotation values may hold commas; --platform splits its own list.
		DisableSliceFlagSeparator: true,
		ExitErrHandler:            func(*cli.Context, error) {}, // run reports errors once
		OnUsageError:              cliutil.OnUsageError,
		Action:                    cliutil.UnknownCommand,
		Flags:                     cliutil.CloneFlags([]cli.Flag{debugFlag}),
	}
}
