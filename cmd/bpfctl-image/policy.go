package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

var policyCommand = &cli.Command{
	Name:   "policy",
	Usage:  "work with trust policy files",
	Action: cliutil.UnknownCommand,
	Subcommands: []*cli.Command{{
		Name:      "check",
		Usage:     "validate and lint a trust policy file",
		ArgsUsage: "FILE",
		Description: `Loads the trust policy as bpfd does (keys and trusted roots read, patterns
compiled), reports every problem with its line, then lints what is valid but
cannot be meant: image patterns that can never match a reference name (a
relative oci:team/**, a tag or digest in a pattern, capital letters in a
repository), patterns, or whole rules, that an earlier rule covers, so that
they never govern (rules apply by first match), and rules that let every
namespace ("*") load images unsigned. Namespaces must be Kubernetes namespace
names or "*" alone; globs over them are refused. Exits 0 when there is nothing
to report, 1 when the policy is invalid or a lint finding was reported.`,
		Flags:  []cli.Flag{outputFlag},
		Action: policyCheck,
	}},
}

// policyCheckOutput is what `policy check --output json` writes.
type policyCheckOutput struct {
	Envelope
	Policy string `json:"policy"`
	// Valid reports whether the policy loads; Fingerprint is then its
	// fingerprint.
	Valid       bool   `json:"valid"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Rules       int    `json:"rules"`
	// Problems are the validation errors (severity error) or lint findings
	// (severity lint), in line order.
	Problems []policyProblem `json:"problems"`
}

type policyProblem struct {
	Severity string `json:"severity"`
	Line     int    `json:"line,omitempty"`
	Field    string `json:"field,omitempty"`
	Message  string `json:"message"`
}

// errPolicyProblems is policy check's result when it reported problems.
var errPolicyProblems = errors.New("problems reported")

func policyCheck(c *cli.Context) error {
	args, err := arguments(c, 1, 1, "one policy file")
	if err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	path := args[0]
	out := policyCheckOutput{Envelope: newEnvelope("PolicyCheck"), Policy: path, Problems: []policyProblem{}}
	pol, err := verify.LoadPolicy(path)
	var perr *verify.PolicyError
	switch {
	case errors.As(err, &perr):
		for _, p := range perr.Problems {
			out.Problems = append(out.Problems, policyProblem{"error", p.Line, p.Field, p.Message})
		}
	case err != nil:
		return err // unreadable: the one-line error says why
	default:
		out.Valid, out.Fingerprint, out.Rules = true, pol.Fingerprint(), len(pol.Rules)
		for _, p := range pol.Lint() {
			out.Problems = append(out.Problems, policyProblem{"lint", p.Line, p.Field, p.Message})
		}
	}
	err = nil // the problems are the report
	if asJSON {
		err = cliutil.WriteJSON(c.App.Writer, out)
	} else {
		for _, p := range out.Problems {
			loc := path
			if p.Line > 0 {
				loc = fmt.Sprintf("%s:%d", path, p.Line)
			}
			if p.Field != "" {
				loc += ": " + p.Field
			}
			fmt.Fprintf(c.App.Writer, "%s: %s: %s\n", loc, p.Severity, p.Message)
		}
		if out.Valid {
			fmt.Fprintf(c.App.Writer, "%s: valid, %d rules, fingerprint %s; %d lint findings\n", path, out.Rules, out.Fingerprint, len(out.Problems))
		}
	}
	if err != nil {
		return err
	}
	if len(out.Problems) > 0 {
		return fmt.Errorf("%s: %d %w", path, len(out.Problems), errPolicyProblems)
	}
	return nil
}
