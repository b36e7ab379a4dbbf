package agent

import "errors"

var (
	// ErrNoDefaultRoute means the node has no default route, so it has no
	// primary interface to attach to.
	ErrNoDefaultRoute = errors.New("no default route")
	// ErrMapOwnerNotReady means a config's mapOwnerSelector does not match
	// exactly one config, or that config is not loaded on the node yet.
	ErrMapOwnerNotReady = errors.New("map owner not ready")
	// ErrNameTaken means an object holds the name of the node's BpfProgram
	// of a config that is not the node's report on that config.
	ErrNameTaken = errors.New("BpfProgram name taken")
	// ErrTenantScope means a tenant config asks for something outside its
	// pods that no grant allows.
	ErrTenantScope = errors.New("outside the tenant's pods")
)
