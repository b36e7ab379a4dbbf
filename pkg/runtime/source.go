package runtime

import (
	"context"
	"fmt"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// A Source hands the Manager verified bytecode. bpfd's daemon implements it
// with pkg/artifact and pkg/verify: it resolves the reference to a digest,
// pulls it into its cache according to the pull policy and checks it against
// the node's trust policy. The Manager trusts what a Source returns and never
// sees images or signatures.
type Source interface {
	// Bytecode returns the objects that ref names for this host, with the
	// provenance that admitted them.
	//
	// Errors are returned to Load's caller wrapped with the reference, so a
	// Source may return its own error types (a policy denial, an unreachable
	// registry) and the caller can still match them with errors.As; a Source
	// should wrap ErrNotFound when the reference does not exist.
	Bytecode(ctx context.Context, ref string, policy PullPolicy) (*Bytecode, error)
}

// Bytecode is what a Source returns: ELF objects and their provenance.
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

// PullPolicy says when a Source fetches an artifact it already has.
type PullPolicy string

// The pull policies. The zero value means PullIfNotPresent.
const (
	// PullIfNotPresent fetches only what the cache lacks (the default).
	PullIfNotPresent PullPolicy = "IfNotPresent"
	// PullAlways resolves and fetches on every load.
	PullAlways PullPolicy = "Always"
	// PullNever uses the cache only and fails when the artifact is absent.
	PullNever PullPolicy = "Never"
)

// ParsePullPolicy returns the pull policy named s; "" is PullIfNotPresent.
func ParsePullPolicy(s string) (PullPolicy, error) {
	switch p := PullPolicy(s); p {
	case "":
		return PullIfNotPresent, nil
	case PullIfNotPresent, PullAlways, PullNever:
		return p, nil
	}
	return "", fmt.Errorf("pull policy %q (want Always, IfNotPresent or Never): %w", s, ErrInvalid)
}
