package artifact

import "errors"

// Errors wrapped, with the identity of the thing, by this package.
var (
	// ErrInvalidReference: a reference does not parse.
	ErrInvalidReference = errors.New("invalid reference")
	// ErrNotFound: a reference, tag, manifest or blob does not exist.
	ErrNotFound = errors.New("not found")
)
