package main

import (
	"errors"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// exitCode maps an error returned by a command to the process exit code.
func exitCode(err error) int {
	var usage cliutil.UsageError
	var denial *verify.DenialError
	switch {
	case err == nil:
		return cliutil.ExitOK
	case errors.As(err, &usage), errors.Is(err, artifact.ErrInvalidReference):
		return cliutil.ExitUsage
	case errors.As(err, &denial):
		return cliutil.ExitDenied
	case errors.Is(err, artifact.ErrNotFound):
		return cliutil.ExitNotFound
	default:
		return cliutil.ExitError
	}
}
