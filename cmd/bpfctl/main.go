// Command bpfctl is bpfd's command-line client: it loads, lists, inspects and
// unloads BPF programs through the daemon's gRPC API on its unix socket.
//
// bpfctl is small and starts fast: it links no Kubernetes, registry or
// signing libraries. Everything it does, the daemon decides and audits.
package main

import (
	"bufio"
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
   2  usage error, or a request bpfd found invalid
   3  denied by the node's trust policy or a socket permission
   4  program, reference, interface or other named thing not found`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs bpfctl with args and returns the exit code. What it prints on
// stdout is buffered and written before an error message, in as few writes
// as it takes: a table of a thousand programs is one write, not one per
// cell.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	out := &output{Writer: bufio.NewWriterSize(stdout, 64<<10), dst: stdout}
	app := &cli.App{
		Name:                  "bpfctl",
		Usage:                 "load, list and unload BPF programs through bpfd",
		CustomAppHelpTemplate: cli.AppHelpTemplate + "\n" + exitCodesHelp + "\n",
		Flags:                 globalFlags,
		Version:               version.Get().String(),
		Commands:              []*cli.Command{loadCommand, unloadCommand, listCommand, getCommand, mapReadersCommand, pullCommand, cacheCommand, inventoryCommand, topCommand, eventsCommand, mapCommand, supportBundleCommand, versionCommand, completionCommand},
		Writer:                out,
		ErrWriter:             stderr,
		ExitErrHandler:        func(*cli.Context, error) {}, // run reports errors once
		OnUsageError:          cliutil.OnUsageError,
		Action:                cliutil.UnknownCommand,
		EnableBashCompletion:  true,
	}
	setUsageErrors(app.Commands)
	err := app.RunContext(ctx, cliutil.HoistFlags(app, args))
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("write output: %w", ferr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bpfctl: %s\n", errorMessage(err))
		return exitCode(err)
	}
	return cliutil.ExitOK
}

// output is bpfctl's buffered stdout. A command that prints as it goes
// (top) flushes it after each part; dst tells whether stdout is a terminal.
type output struct {
	*bufio.Writer
	dst io.Writer
}

// setUsageErrors makes flag errors of every (sub)command usage errors.
func setUsageErrors(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = cliutil.OnUsageError
		setUsageErrors(c.Subcommands)
	}
}
