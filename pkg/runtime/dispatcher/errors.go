package dispatcher

import (
	"errors"
	"fmt"
)

// Errors wrapped, with the identity of the thing, by this package.
var (
	// ErrInvalid: a member, hook or option is malformed: a priority out of
	// range, an unknown proceed-on action, members out of priority order, a
	// program of the wrong type, a map reference with no map.
	ErrInvalid = errors.New("invalid")
	// ErrTooMany: more programs than the mode takes on one hook.
	ErrTooMany = errors.New("too many programs")
	// ErrUnsupported: the kernel lacks what the mode needs (extension
	// programs for freplace mode).
	ErrUnsupported = errors.New("not supported by this kernel")
	// ErrConflict: the hook runs a program this dispatcher did not attach.
	ErrConflict = errors.New("conflict")
)

// MemberError reports that one program could not join the chain: the
// verifier rejected it, or it could not be attached to its slot. The hook
// still runs the chain it ran before.
type MemberError struct {
	// ID and Name are the member's.
	ID   uint64
	Name string
	Err  error
}

func (e *MemberError) Error() string {
	return fmt.Sprintf("program %s (id %d): %v", e.Name, e.ID, e.Err)
}

func (e *MemberError) Unwrap() error { return e.Err }

func memberError(m *Member, format string, args ...any) error {
	return &MemberError{ID: m.ID, Name: m.Name, Err: fmt.Errorf(format, args...)}
}
