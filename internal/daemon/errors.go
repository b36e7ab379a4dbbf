package daemon

import (
	"errors"
	"fmt"

	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

// Errors wrapped, with the identity of the thing, by this package.
var (
	// ErrPermissionDenied: the client may not do this: its uid and gid
	// are not among the allowed ones, or, being neither root nor an
	// admin, it sets an owner or names a program it does not own
	// (NotOwnerError).
	ErrPermissionDenied = errors.New("client not allowed")
	// ErrNotJudged: the program was adopted at start and is not judged
	// yet under the trust policy in force (the start pass ended early):
	// bpfd neither lends its maps nor changes its owner until it is.
	ErrNotJudged = errors.New("not judged yet under the trust policy in force")
)

// NotOwnerError reports that a client that is neither root nor an admin
// named a program another uid owns. It matches ErrPermissionDenied.
type NotOwnerError struct {
	ID        runtime.ID
	OwnerUID  uint32
	ClientUID uint32
	// Action is what the client asked to do with it: "unload", "use the
	// maps of".
	Action string
}

func (e *NotOwnerError) Error() string {
	return fmt.Sprintf("program %d: owned by uid %d; uid %d may %s only its own programs (root and socket.adminGIDs may %s any): %v",
		e.ID, e.OwnerUID, e.ClientUID, e.Action, e.Action, ErrPermissionDenied)
}

func (e *NotOwnerError) Unwrap() error { return ErrPermissionDenied }
