// Package peercred identifies the clients of a gRPC server on a unix socket
// by their peer credentials: the uid, gid and pid of the process that
// connected (SO_PEERCRED) and its supplementary groups (SO_PEERGROUPS), as
// the kernel recorded them when it connected. bpfd's daemon decides with
// them who may use its API and what a client owns.
package peercred
