package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// daemonError is a request the daemon answered with an error, or could not
// be sent: what was asked, and the status.
type daemonError struct {
	what   string
	socket string
	st     *status.Status
}

// requestFailed wraps the error of the request described by what.
func requestFailed(what, socket string, err error) error {
	return &daemonError{what: what, socket: socket, st: status.Convert(err)}
}

// Error is the daemon's message without gRPC's "rpc error: code = ..."
// wrapping, or a hint when there is no daemon to answer.
func (e *daemonError) Error() string {
	msg := e.st.Message()
	if e.st.Code() == codes.Unavailable && strings.Contains(msg, "dial unix") {
		msg = fmt.Sprintf("cannot reach bpfd at %s (is it running?): %s", e.socket, lastClause(msg))
	}
	return e.what + ": " + oneLine(msg)
}

// exitCode maps an error to bpfctl's exit code; the daemon's status codes
// map by what they mean to the user.
func exitCode(err error) int {
	var usage cliutil.UsageError
	var daemon *daemonError
	switch {
	case err == nil:
		return cliutil.ExitOK
	case errors.As(err, &usage):
		return cliutil.ExitUsage
	case errors.As(err, &daemon):
		switch daemon.st.Code() {
		case codes.InvalidArgument:
			return cliutil.ExitUsage
		case codes.PermissionDenied, codes.Unauthenticated:
			return cliutil.ExitDenied
		case codes.NotFound:
			return cliutil.ExitNotFound
		}
	}
	return cliutil.ExitError
}

// errorMessage renders err as the one line bpfctl prints.
func errorMessage(err error) string { return oneLine(err.Error()) }

// lastClause returns the part of a dial error after its last ": ", e.g. "no
// such file or directory".
func lastClause(s string) string {
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return strings.TrimSuffix(s[i+2:], "\"")
	}
	return s
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
