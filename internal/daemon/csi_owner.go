package daemon

import "github.com/bpfd-dev/bpfd/pkg/runtime"

// ownerOf returns the config p's recorded owner names, the tenant namespace
// it belongs to (empty for a cluster-scoped config) and the namespaces it
// lets mount the config's maps. Only root and admins may set an owner (see
// access), so no other client of bpfd can claim a config or admit
// namespaces to its maps.
func ownerOf(p runtime.Program) (config, namespace string, readerNamespaces []string) {
	return p.Owner.Config, p.Owner.Namespace, p.Owner.MapReaderNamespaces
}
