package daemon

import "github.com/bpfd-dev/bpfd/pkg/runtime"

// ownerOf returns the config p's recorded owner names and the namespaces
// it lets mount the config's maps. Programs record no owner yet, so they
// belong to no config and the driver publishes no maps: it fails closed.
func ownerOf(runtime.Program) (config string, readerNamespaces []string) { return "", nil }
