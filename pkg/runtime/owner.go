package runtime

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/validate/content"
)

// Owner is who a program belongs to: the uid of the client that loaded it
// and, when a privileged client says so, the identity it loaded it for.
// bpfd's daemon lets a client that is neither root nor an admin unload, or
// borrow the maps of, only programs whose Owner.UID is its own.
type Owner struct {
	// UID is the uid of the client that loaded the program (its socket's
	// peer credentials). Records written before owners existed take it
	// from LoadedBy.
	UID uint32 `json:"uid"`
	// Config names what the program was loaded for, e.g. the bpfd-agent's
	// BpfProgramConfig; empty when not said.
	Config string `json:"config,omitempty"`
	// Namespace is the Kubernetes namespace the program belongs to (a
	// tenant's); empty for cluster-scoped or node-local programs.
	Namespace string `json:"namespace,omitempty"`
	// MapReaderNamespaces are the Kubernetes namespaces whose pods may read
	// the program's maps.
	MapReaderNamespaces []string `json:"mapReaderNamespaces,omitempty"`
}

// Limits on an owner's names: Kubernetes object names (DNS subdomains) and
// namespaces (DNS labels).
const (
	maxOwnerConfigLen    = content.DNS1123SubdomainMaxLength
	maxNamespaceLen      = content.DNS1123LabelMaxLength
	maxMapReaderEntries  = 64
	ownerNameDescription = "lower-case letters, digits, '-' and '.', starting and ending with a letter or digit"
)

// validate checks the owner's names, which must be Kubernetes names.
func (o *Owner) validate() error {
	if o.Config != "" && len(content.IsDNS1123Subdomain(o.Config)) > 0 {
		return fmt.Errorf("owner config %.64q: not a name of at most %d %s: %w", o.Config, maxOwnerConfigLen, ownerNameDescription, ErrInvalid)
	}
	if o.Namespace != "" && !namespaceName(o.Namespace) {
		return fmt.Errorf("owner namespace %.64q: not a namespace name (at most %d lower-case letters, digits and '-'): %w", o.Namespace, maxNamespaceLen, ErrInvalid)
	}
	if n := len(o.MapReaderNamespaces); n > maxMapReaderEntries {
		return fmt.Errorf("owner map reader namespaces: %d, at most %d: %w", n, maxMapReaderEntries, ErrInvalid)
	}
	seen := make(map[string]bool, len(o.MapReaderNamespaces))
	for _, ns := range o.MapReaderNamespaces {
		if !namespaceName(ns) {
			return fmt.Errorf("owner map reader namespace %.64q: not a namespace name (at most %d lower-case letters, digits and '-'): %w", ns, maxNamespaceLen, ErrInvalid)
		}
		if seen[ns] {
			return fmt.Errorf("owner map reader namespace %s: given twice: %w", ns, ErrInvalid)
		}
		seen[ns] = true
	}
	return nil
}

// namespaceName reports whether s is a Kubernetes namespace name: a DNS
// label.
func namespaceName(s string) bool { return len(content.IsDNS1123Label(s)) == 0 }
