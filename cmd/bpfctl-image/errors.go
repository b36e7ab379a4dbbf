package main

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"

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

// authFailure is a registry's refusal to serve without, or with the given,
// credentials.
type authFailure struct {
	refs  []string // the registry references of the command line
	hosts []string // their registries
	why   string
	err   error
}

func (e *authFailure) Error() string {
	host := strings.Join(e.hosts, " or ")
	login := "bpfctl-image login " + e.hosts[0]
	msg := fmt.Sprintf("registry %s refused access (%s): log in with '%s', or give --registry-config with a Docker config that has credentials for it", host, e.why, login)
	if len(e.refs) > 0 {
		msg = strings.Join(e.refs, ", ") + ": " + msg
	}
	return msg
}

func (e *authFailure) Unwrap() error { return e.err }

// explainAuth turns a registry's authentication or authorization failure
// (decided by the error's type: no credential for a basic challenge, or a
// 401 or 403 answer) into one line naming the registries of the command
// line's references and saying how to log in. Other errors are returned as
// they are.
func explainAuth(err error, args []string) error {
	var resp *errcode.ErrorResponse
	var why string
	switch {
	case errors.Is(err, auth.ErrBasicCredentialNotFound):
		why = "no credentials are stored for it"
	case errors.As(err, &resp) && resp.StatusCode == http.StatusUnauthorized:
		why = "401 Unauthorized: no credentials, or they were not accepted"
	case errors.As(err, &resp) && resp.StatusCode == http.StatusForbidden:
		why = "403 Forbidden: the credentials lack permission"
	default:
		return err
	}
	f := &authFailure{why: why, err: err}
	for _, a := range args {
		ref, perr := artifact.ParseReference(a)
		if perr != nil || ref.Transport != artifact.Registry {
			continue
		}
		f.refs = append(f.refs, ref.String())
		if !slices.Contains(f.hosts, ref.Registry) {
			f.hosts = append(f.hosts, ref.Registry)
		}
	}
	if resp != nil && resp.URL != nil && !slices.Contains(f.hosts, resp.URL.Host) {
		f.hosts = []string{resp.URL.Host}
	}
	if len(f.hosts) == 0 {
		return err
	}
	return f
}

// classifyNotFound returns artifact.ErrNotFound for a store's "not found"
// (oras-go's errdef.ErrNotFound, a registry's 404), err otherwise.
func classifyNotFound(err error) error {
	var resp *errcode.ErrorResponse
	if errors.Is(err, errdef.ErrNotFound) || (errors.As(err, &resp) && resp.StatusCode == http.StatusNotFound) {
		return artifact.ErrNotFound
	}
	return err
}
