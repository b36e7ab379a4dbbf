package supplychain

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// trust holds the node's trust policy, read from a file at start and again
// on each Reload. Requests take the verifier current when they verify; a
// reload never disturbs one under way.
type trust struct {
	path     string
	log      *slog.Logger
	verifier atomic.Pointer[verify.Verifier]
	// remembered are the admissions of the verifier in force (verdicts.go),
	// replaced with it.
	remembered atomic.Pointer[verdicts]
	reloadMu   sync.Mutex
}

// loadTrust reads the policy at path.
func loadTrust(path string, log *slog.Logger) (*trust, error) {
	t := &trust{path: path, log: log}
	v, err := t.read()
	if err != nil {
		return nil, err
	}
	t.remembered.Store(newVerdicts(v))
	t.verifier.Store(v)
	return t, nil
}

func (t *trust) read() (*verify.Verifier, error) {
	policy, err := verify.LoadPolicy(t.path) // its errors name the policy file
	if err != nil {
		return nil, err
	}
	return verify.NewVerifier(policy, verify.VerifierOptions{Logger: t.log}), nil
}

// current returns the verifier for the policy in force.
func (t *trust) current() *verify.Verifier { return t.verifier.Load() }

// fingerprint returns the fingerprint of the policy in force.
func (t *trust) fingerprint() string { return t.current().Policy().Fingerprint() }

// verdicts returns the admissions remembered under the verifier in force.
func (t *trust) verdicts() *verdicts { return t.remembered.Load() }

// reload re-reads the policy file. When the new file is invalid it keeps
// the policy in force and returns the error. It reports whether the policy
// changed.
func (t *trust) reload() (changed bool, err error) {
	t.reloadMu.Lock()
	defer t.reloadMu.Unlock()
	v, err := t.read()
	if err != nil {
		return false, err
	}
	// The new verifier's verdicts first: a fetch that takes the new
	// verifier never finds the old one's.
	t.remembered.Store(newVerdicts(v))
	old := t.verifier.Swap(v)
	return old.Policy().Fingerprint() != v.Policy().Fingerprint(), nil
}
