package supplychain

import "fmt"

// PullPolicy says when Fetch pulls an artifact the cache already has.
type PullPolicy string

// The pull policies. The zero value means PullIfNotPresent.
const (
	// PullIfNotPresent pulls only what the cache lacks (the default). A
	// reference by digest that the cache holds is used without contacting
	// its origin, so it loads while the registry is down; a tag is
	// resolved at its origin every time and fails closed when the origin
	// cannot be reached.
	PullIfNotPresent PullPolicy = "IfNotPresent"
	// PullAlways resolves and pulls on every fetch (new signatures too).
	PullAlways PullPolicy = "Always"
	// PullNever uses the cache only, by digest or by a tag pulled before,
	// and fails with ErrNotCached when the artifact is absent.
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
