package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// A command is one run of an external program.
type command struct {
	// Path is the program; Args its arguments.
	Path string
	Args []string
	// Dir is the working directory; empty for the bench's own.
	Dir string
	// Env is added to the bench's environment.
	Env []string
}

// runCommands runs each command in turn, stopping at the first that fails. A failure
// carries the command and the last line it printed.
func runCommands(ctx context.Context, cmds ...command) error {
	for _, c := range cmds {
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, c.Path, c.Args...)
		cmd.Dir = c.Dir
		cmd.Env = append(os.Environ(), c.Env...)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s %s: %w: %s", filepath.Base(c.Path), strings.Join(c.Args, " "), err, lastLine(out.String()))
		}
	}
	return nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
