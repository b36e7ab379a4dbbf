package daemon

import (
	"context"
	"fmt"
	"slices"

	"github.com/bpfd-dev/bpfd/internal/peercred"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

// client returns the peer credentials of the request's client (see
// peercred: the socket's SO_PEERCRED and SO_PEERGROUPS).
func client(ctx context.Context) (peercred.Cred, error) {
	return peercred.FromContext(ctx)
}

// requesterOf is the runtime's record of a client.
func requesterOf(c peercred.Cred) runtime.Requester {
	return runtime.Requester{UID: c.UID, GID: c.GID, PID: c.PID}
}

// access decides which clients may use the API and what they may do:
//   - root always may; when allowed uids or gids are configured, only those
//     and root may use it; otherwise anyone who can open the socket (its
//     mode and group are the first gate);
//   - root and admins (a primary or supplementary group among adminGIDs)
//     may set a program's owner and act on any program; any other client
//     may unload, or use as map owner, only the programs whose owner uid is
//     its own.
type access struct {
	uids      []uint32
	gids      []uint32
	adminGIDs []uint32
}

func (a access) allows(c peercred.Cred) bool {
	if c.UID == 0 || len(a.uids) == 0 && len(a.gids) == 0 {
		return true
	}
	return slices.Contains(a.uids, c.UID) || slices.Contains(a.gids, c.GID)
}

// admin reports whether c may set owners and act on any program.
func (a access) admin(c peercred.Cred) bool {
	return c.UID == 0 || c.InGroup(a.adminGIDs)
}

// mayClaimTenant refuses a tenant scope from a client that is not an
// admin: the scope names pods and grants, which only the agent may.
func (a access) mayClaimTenant(c peercred.Cred, t *runtime.Tenant) error {
	if t == nil || a.admin(c) {
		return nil
	}
	return fmt.Errorf("tenant: uid %d may not set it, only root and members of socket.adminGIDs may: %w", c.UID, ErrPermissionDenied)
}

// mayClaimOwner refuses an owner claim from a client that is not an admin.
func (a access) mayClaimOwner(c peercred.Cred, o runtime.Owner) error {
	if a.admin(c) || o.Config == "" && o.Namespace == "" && len(o.MapReaderNamespaces) == 0 {
		return nil
	}
	return fmt.Errorf("owner: uid %d may not set it, only root and members of socket.adminGIDs may: %w", c.UID, ErrPermissionDenied)
}

// mayUse refuses a client that is not an admin acting on a program it does
// not own; what names the use ("unload", "use the maps of").
func (a access) mayUse(c peercred.Cred, what string, p runtime.Program) error {
	if a.admin(c) || p.Owner.UID == c.UID {
		return nil
	}
	return &NotOwnerError{ID: p.ID, OwnerUID: p.Owner.UID, ClientUID: c.UID, Action: what}
}

// mayAdminister refuses a client that is not an admin an action on bpfd
// itself (what names it: "list the cache").
func (a access) mayAdminister(c peercred.Cred, what string) error {
	if a.admin(c) {
		return nil
	}
	return fmt.Errorf("uid %d may not %s: only root and members of socket.adminGIDs may: %w", c.UID, what, ErrPermissionDenied)
}
