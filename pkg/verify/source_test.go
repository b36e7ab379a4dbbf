package verify

import (
	"oras.land/oras-go/v2/content/memory"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/registry/remote"
)

// The stores bpfd signs into and verifies from.
var (
	_ Source      = (*remote.Repository)(nil)
	_ Destination = (*remote.Repository)(nil)
	_ Source      = (*oci.Store)(nil)
	_ Destination = (*oci.Store)(nil)
	_ Source      = (*memory.Store)(nil)
	_ Destination = (*memory.Store)(nil)
)
