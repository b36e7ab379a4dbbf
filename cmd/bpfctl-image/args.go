package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// hoistFlags moves the flags that follow a subcommand's arguments before
// them, so that `inspect REF --output json` works like
// `inspect --output json REF`: urfave/cli stops parsing flags at the first
// argument. Everything after "--" stays an argument.
func hoistFlags(cmds []*cli.Command, args []string) []string {
	if len(args) < 2 {
		return args
	}
	var cmd *cli.Command
	for _, c := range cmds {
		if c.HasName(args[1]) {
			cmd = c
		}
	}
	if cmd == nil {
		return args
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	var flagArgs, positional []string
	rest := args[2:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			positional = append(positional, rest[i:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		// An unknown flag is hoisted too, for urfave/cli to report.
		name, _, inline := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		flagArgs = append(flagArgs, a)
		if takesValue[name] && !inline && i+1 < len(rest) {
			i++
			flagArgs = append(flagArgs, rest[i])
		}
	}
	out := append([]string{args[0], args[1]}, flagArgs...)
	return append(out, positional...)
}
