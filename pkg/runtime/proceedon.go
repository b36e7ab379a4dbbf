package runtime

import (
	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// proceedOn returns the proceed-on set named by names for a program of kind
// k (xdp or tc): the return values after which the next program on the hook
// runs. No names is the default set (dispatcher.DefaultProceedOn). An
// unknown name is ErrInvalid.
func proceedOn(k progtype.Kind, names []string) (dispatcher.ProceedOn, error) {
	if len(names) == 0 {
		return dispatcher.DefaultProceedOn(k), nil
	}
	p, err := dispatcher.ParseProceedOn(k, names)
	return p, classify(err, ErrInvalid)
}

// canonicalProceedOn returns names as complete() stores them: the default
// set when empty, each action once, in the order of its return value.
func canonicalProceedOn(k progtype.Kind, names []string) []string {
	p, err := proceedOn(k, names)
	if err != nil {
		return names // validate reports it
	}
	return p.Names(k)
}
