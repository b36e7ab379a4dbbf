package verify

import "oras.land/oras-go/v2/content"

// Source is where signatures are read from: a registry repository
// (oras-go's remote.Repository), an OCI layout (oci.Store) or an opened
// layout archive. Fetch must return an error wrapping errdef.ErrNotFound for
// missing content, Resolve likewise for a missing tag, and Predecessors must
// list the referrers of a manifest (registries without the referrers API
// serve them through the "sha256-<hex>" tag, which remote.Repository reads).
type Source interface {
	content.Fetcher
	content.Resolver
	content.PredecessorFinder
}

// Destination is where Sign writes signatures: the same kinds of store as
// Source, opened for writing. Pushing an existing blob may fail with
// errdef.ErrAlreadyExists; Sign tolerates it.
type Destination interface {
	content.Storage
	content.TagResolver
}
