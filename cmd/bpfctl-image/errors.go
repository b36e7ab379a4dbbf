package main

import (
	"errors"
	"fmt"

	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// Exit codes, documented in the help text and the README.
const (
	exitOK       = 0
	exitError    = 1
	exitUsage    = 2
	exitDenied   = 3
	exitNotFound = 4
)

// usageError marks a command line that does not parse or misses arguments.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usageError with a formatted message.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitCode maps an error returned by a command to the process exit code.
func exitCode(err error) int {
	var usage usageError
	var denial *verify.DenialError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &usage), errors.Is(err, artifact.ErrInvalidReference):
		return exitUsage
	case errors.As(err, &denial):
		return exitDenied
	case errors.Is(err, artifact.ErrNotFound):
		return exitNotFound
	default:
		return exitError
	}
}
