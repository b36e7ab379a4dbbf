package mapview

import "errors"

// Errors wrapped, with the identity of the thing, by this package.
var (
	// ErrSize: the bytes are not as long as the type says.
	ErrSize = errors.New("wrong size")
	// ErrUnsupported: the type (a function, a pointer to encode, a nesting
	// deeper than MaxDepth) cannot be decoded or encoded.
	ErrUnsupported = errors.New("unsupported type")
	// ErrValue: a JSON value does not fit the type.
	ErrValue = errors.New("value does not fit the type")
)
