package daemon

import "errors"

// Errors wrapped, with the identity of the thing, by this package.
var (
	// ErrNotCached: the pull policy is Never and the cache lacks the
	// artifact (or the tag was never pulled).
	ErrNotCached = errors.New("not in the cache and the pull policy is Never")
	// ErrPermissionDenied: a client's uid and gid are not among the allowed
	// ones.
	ErrPermissionDenied = errors.New("client not allowed")
)
