// Package csi is csi.bpfd.io, the CSI node driver bpfd serves on each node:
// it gives a pod, through a CSI ephemeral inline volume, the maps of one
// BpfProgramConfig's programs loaded on the node (volume attribute config),
// or of one BpfTenantProgramConfig of the pod's own namespace (attribute
// tenantConfig), so that the application's user-space half reads (and,
// when it asks, writes) them without privileges.
//
// NodePublishVolume assembles a fresh bpffs, pins exactly the requested
// maps there (clones of bpfd's pins: the same kernel maps), gives the
// directory and the pins to the pod's fsGroup with group read (and write
// only when the pod asks), and mounts that directory at the target path the
// kubelet names. A pod gets a config's maps only when the config admits its
// namespace (spec.mapReaderNamespaces, recorded by bpfd with the programs'
// owner); the namespace comes from the pod info the kubelet passes, checked
// against the pod's uid in the target path, never from the volume's
// attributes alone. A program is a config's when its recorded owner names
// the config and the config's namespace: none for a cluster config, the
// pod's for a tenant config, whose maps are admitted to that namespace
// alone; a tenant config named like a cluster config is another config. NodeUnpublishVolume unmounts and removes the target.
// Nothing but maps of the config's own is ever pinned in a volume: no
// programs, no links, no map another config owns, no map whose entries are
// programs or maps.
//
// The driver knows bpfd's state only through the Programs interface, which
// bpfd implements over its runtime.
package csi
