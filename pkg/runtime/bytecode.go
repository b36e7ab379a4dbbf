package runtime

import "github.com/bpfd-dev/bpfd/pkg/progtype"

// Bytecode is what Load loads programs from: ELF objects that the caller
// has already resolved, fetched and admitted, and the provenance that
// admitted them. bpfd's daemon builds it from what its supply chain
// verified; the Manager trusts it and never sees images or signatures.
type Bytecode struct {
	// Objects are the artifact's ELF objects for this host's platform. A
	// program name must be unique across them.
	Objects []Object
	// Provenance records what admitted the objects.
	Provenance Provenance
}

// Object is one BPF ELF object.
type Object struct {
	// Name is the object's name in the artifact, e.g. "xdp_counter.bpf.o".
	Name string
	// ELF is the object file's content.
	ELF []byte
}

// Provenance records where bytecode came from and which trust-policy decision
// admitted it. The Manager stores it with every program it loads.
type Provenance struct {
	// Reference is the reference as requested.
	Reference string `json:"reference"`
	// Origin is the name the bytecode was fetched from, which the trust
	// policy judged ("host/repo", "oci:/path", "file:/path"). Records
	// written before origins were recorded have none: it is Reference's
	// name.
	Origin string `json:"origin,omitempty"`
	// Digest is the manifest digest the reference resolved to and that was
	// verified; empty for local files.
	Digest string `json:"digest,omitempty"`
	// Signer is the key fingerprint or identity that satisfied the policy;
	// empty when the rule allowed unsigned bytecode.
	Signer string `json:"signer,omitempty"`
	// Rule names the trust-policy rule that matched.
	Rule string `json:"rule,omitempty"`
	// PolicyFingerprint identifies the policy file that decided.
	PolicyFingerprint string `json:"policyFingerprint,omitempty"`
	// AllowedKinds are the program kinds the rule allows; nil allows any.
	// Load refuses a program of another kind with ErrPermission.
	AllowedKinds []progtype.Kind `json:"allowedKinds,omitempty"`
}
