package daemon

import (
	"slices"
	"strings"

	"github.com/bpfd-dev/bpfd/internal/supplychain"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

// This file is where what the supply chain admitted becomes what the runtime
// loads: the daemon resolves, pulls and verifies first (supplychain), then
// hands the verified bytecode to pkg/runtime. Nothing flows back down.

// bytecode returns the runtime's bytecode of an admitted artifact.
func bytecode(res *supplychain.Result) *runtime.Bytecode {
	bc := &runtime.Bytecode{Provenance: provenance(res)}
	for _, o := range res.Objects {
		bc.Objects = append(bc.Objects, runtime.Object{Name: o.Name, ELF: o.ELF})
	}
	return bc
}

// provenance is the runtime's record of what admitted an artifact.
func provenance(res *supplychain.Result) runtime.Provenance {
	p := runtime.Provenance{Reference: res.Reference, Origin: res.Origin, Digest: res.Digest.String()}
	if v := res.Verdict; v != nil {
		p.Signer = strings.Join(v.Signers, ", ")
		p.Rule = v.Rule
		p.PolicyFingerprint = v.Policy
		p.AllowedKinds = slices.Clone(v.AllowedKinds)
	}
	return p
}
