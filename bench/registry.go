package main

import (
	"os"
	"path/filepath"

	"github.com/bpfd-dev/bpfd/internal/testing/localregistry"
)

// startRegistry starts distribution's registry (bin/tools/registry) on a
// loopback port, with its storage under env.Dir. The caller stops it.
func (env *Env) startRegistry() (*localregistry.Registry, error) {
	dir, err := os.MkdirTemp(env.Dir, "registry-")
	if err != nil {
		return nil, err
	}
	return localregistry.Start(filepath.Join(env.Tools, "registry"), dir, localregistry.Options{})
}
