package podproc

import "errors"

// ErrInvalidPodUID means a pod uid given to Scan is not one the kubelet
// names a cgroup after: a lowercase UUID, or the 32 hex digits of a
// static pod's hash.
var ErrInvalidPodUID = errors.New("not a pod uid")
