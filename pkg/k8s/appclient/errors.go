package appclient

import (
	"errors"
	"fmt"
)

// ErrRefused: a node refused to load the config's programs for a reason
// its agent only retries at its resync period (the trust policy, the
// kernel's verifier, or a request wrong for the artifact); waiting longer
// does not help. The error is a *RefusedError.
var ErrRefused = errors.New("refused")

// RefusedError is a node's refusal, as its BpfProgram reports it.
type RefusedError struct {
	Config, Node string
	// Reason is the BpfProgram's Ready reason, e.g. PolicyDenied.
	Reason  string
	Message string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("config %s on node %s: %s: %s", e.Config, e.Node, e.Reason, e.Message)
}

// Is makes a RefusedError match ErrRefused.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }
