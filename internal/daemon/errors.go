package daemon

import "errors"

// Errors wrapped, with the identity of the thing, by this package.
var (
	// ErrPermissionDenied: a client's uid and gid are not among the allowed
	// ones.
	ErrPermissionDenied = errors.New("client not allowed")
)
