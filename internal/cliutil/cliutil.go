package cliutil

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"
)

// Exit codes of every bpfd command-line tool.
const (
	ExitOK       = 0
	ExitError    = 1
	ExitUsage    = 2 // the command line does not parse, or asks for something invalid
	ExitDenied   = 3 // a trust policy or permission refused the request
	ExitNotFound = 4 // a named thing does not exist
)

// UsageError marks a command line that does not parse or misses arguments.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Usagef returns a UsageError with a formatted message.
func Usagef(format string, args ...any) error {
	return UsageError{fmt.Errorf(format, args...)}
}

// OnUsageError is an OnUsageError for cli.App and cli.Command that marks
// flag parsing errors as UsageErrors.
func OnUsageError(_ *cli.Context, err error, _ bool) error { return UsageError{err} }

// WriteJSON writes v as indented JSON, with a newline: what a
// json.Encoder with SetIndent("", "  ") writes, in one write. It indents
// into a buffer sized once rather than one the encoder grows, which for a
// list of a thousand programs took three times as long.
func WriteJSON(w io.Writer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, data, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

// HoistFlags reorders a command line so the flags of its (sub)command come
// before the command's positional arguments. urfave/cli v2 stops reading
// flags at the first argument; with this, `bpfctl load image REF --program
// p:xdp` works as users expect. Global flags must still come before the
// command, and everything after "--" stays as it is.
func HoistFlags(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	i := 1 + skipFlags(app.Flags, args[1:])
	var cmd *cli.Command
	for cmds := app.Commands; i < len(args); i++ {
		next := find(cmds, args[i])
		if next == nil {
			break
		}
		cmd, cmds = next, next.Subcommands
	}
	if cmd == nil {
		return args
	}
	var flagArgs, positional []string
	rest := args[i:]
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		if a == "--" {
			positional = append(positional, rest[j:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		// An unknown flag is hoisted too, for urfave/cli to report.
		flagArgs = append(flagArgs, a)
		if takesValue(cmd.Flags, a) && j+1 < len(rest) {
			j++
			flagArgs = append(flagArgs, rest[j])
		}
	}
	out := append(append([]string{}, args[:i]...), flagArgs...)
	return append(out, positional...)
}

// skipFlags returns how many leading args are flags (with their values).
func skipFlags(flags []cli.Flag, args []string) int {
	n := 0
	for n < len(args) && strings.HasPrefix(args[n], "-") && args[n] != "-" && args[n] != "--" {
		if takesValue(flags, args[n]) {
			n++
		}
		n++
	}
	return min(n, len(args))
}

// takesValue reports whether the flag argument a (e.g. "--socket" or "-o")
// names a flag that reads the next argument as its value.
func takesValue(flags []cli.Flag, a string) bool {
	name, _, inline := strings.Cut(strings.TrimLeft(a, "-"), "=")
	if inline {
		return false
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*cli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}

func find(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// UnknownCommand is the Action of an App or of a command with subcommands:
// with no argument it shows the help; with one it is a usage error naming
// the unknown command (urfave/cli would exit 3, "No help topic").
func UnknownCommand(c *cli.Context) error {
	if !c.Args().Present() {
		return cli.ShowSubcommandHelp(c)
	}
	name := c.App.Name
	if c.Command != nil && c.Command.Name != "" && c.Command.Name != c.App.Name {
		name += " " + c.Command.Name
	}
	return Usagef("unknown command %q: see %s --help", c.Args().First(), name)
}

// CloneCommands returns copies of cmds whose flags are copies too. urfave/cli
// writes what it reads from a flag's environment variable into the flag
// itself, so an app built twice in one process (tests run the CLI
// in-process) would keep values read by an earlier run; each App gets its
// own.
func CloneCommands(cmds []*cli.Command) []*cli.Command {
	out := make([]*cli.Command, len(cmds))
	for i, c := range cmds {
		cp := *c
		cp.Flags = CloneFlags(c.Flags)
		cp.Subcommands = CloneCommands(c.Subcommands)
		out[i] = &cp
	}
	return out
}

// CloneFlags returns copies of flags (see CloneCommands).
func CloneFlags(flags []cli.Flag) []cli.Flag {
	out := make([]cli.Flag, len(flags))
	for i, f := range flags {
		switch f := f.(type) {
		case *cli.StringFlag:
			cp := *f
			out[i] = &cp
		case *cli.BoolFlag:
			cp := *f
			out[i] = &cp
		case *cli.IntFlag:
			cp := *f
			out[i] = &cp
		case *cli.DurationFlag:
			cp := *f
			out[i] = &cp
		case *cli.StringSliceFlag:
			cp := *f
			if f.Value != nil {
				cp.Value = cli.NewStringSlice(f.Value.Value()...)
			}
			out[i] = &cp
		default:
			out[i] = f
		}
	}
	return out
}

// SetUsageErrors makes flag errors of every command and subcommand usage
// errors.
func SetUsageErrors(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = OnUsageError
		SetUsageErrors(c.Subcommands)
	}
}
