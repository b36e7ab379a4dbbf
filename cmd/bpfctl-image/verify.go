package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

var verifyCommand = &cli.Command{
	Name:      "verify",
	Usage:     "verify an artifact's signatures against a key or a trust policy, offline",
	ArgsUsage: "REF",
	Description: `Resolves REF once to a digest and checks every signature stored for that
digest, in both cosign formats (Sigstore bundle referrers and the legacy
sha256-<hex>.sig manifest), against --key (a PEM public key: any valid
signature by it admits the artifact) or --policy (a trust policy file, see
docs/policy.md). Nothing but REF's own store is contacted: a layout or an
archive verifies with no network at all.

Prints a report: the digest, each signature (format, key fingerprint or
certificate identity, valid or why not), the rule that applied and the
decision; --output json prints the same as a versioned document
(docs/policy.md). Exits 0 when the artifact is admitted, 3 when it is
denied, 4 when REF is not found, 1 on other errors.

--namespace NS judges REF as bpfd does a load on behalf of the Kubernetes
namespace NS (a tenant's): admitted only when the governing rule lists NS
in its namespaces (or "*"); never by the policy's default.`,
	Flags: flags([]cli.Flag{
		&cli.StringFlag{Name: "key", Usage: "trust the PEM public `KEY` file", EnvVars: []string{"BPFCTL_IMAGE_VERIFY_KEY"}},
		&cli.StringFlag{Name: "policy", Usage: "trust policy `FILE` (apiVersion bpfd.io/v1alpha1, kind TrustPolicy)", EnvVars: []string{"BPFCTL_IMAGE_POLICY"}},
		&cli.StringFlag{Name: "namespace", Usage: "verify for a load on behalf of the Kubernetes `NAMESPACE` (a tenant's)", EnvVars: []string{"BPFCTL_IMAGE_VERIFY_NAMESPACE"}},
		outputFlag,
	}, registryFlags),
	Action: verifyAction,
}

// verifyOutput is verify's JSON output (kind VerificationReport, documented
// in docs/policy.md): the report and what was asked.
type verifyOutput struct {
	Envelope
	// Reference is REF as given.
	Reference string `json:"reference"`
	*verify.Report
	// Programs are the programs of an admitted bytecode artifact, read and
	// checked against its objects, with whether the rule lets each load.
	Programs []verifyProgram `json:"programs,omitempty"`
}

// verifyProgram is one program of an admitted artifact.
type verifyProgram struct {
	Name     string          `json:"name"`
	Object   string          `json:"object"`
	Platform string          `json:"platform,omitempty"`
	Kinds    []progtype.Kind `json:"kinds"`
	// Allowed reports whether the rule's programTypes admit one of its
	// kinds (the daemon refuses the others at load time).
	Allowed bool `json:"allowed"`
}

func verifyAction(c *cli.Context) error {
	args, err := arguments(c, 1, 1, "one reference to verify")
	if err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	policy, source, err := loadTrust(c)
	if err != nil {
		return err
	}
	ref, err := parseReference(args[0])
	if err != nil {
		return err
	}
	v := verify.NewVerifier(policy, verify.VerifierOptions{Logger: slog.New(slog.NewTextHandler(c.App.ErrWriter, nil))})

	var report *verify.Report
	var programs []verifyProgram
	var verr error
	if ref.Transport == artifact.File {
		subject, err := localSubject(ref)
		if err != nil {
			return err
		}
		subject.Namespace = c.String("namespace")
		report, verr = v.Verify(subject, nil)
	} else {
		target, err := open(c, ref, false)
		if err != nil {
			return err
		}
		desc, err := resolve(c, target, ref)
		if err == nil {
			report, verr = v.VerifyArtifact(c.Context, target, verify.Subject{Name: ref.Name(), Descriptor: desc, Namespace: c.String("namespace")})
		}
		if err == nil && verr == nil {
			// Only what the policy admitted is read further: the objects,
			// checked against the config the report's programs come from.
			programs, err = admittedPrograms(c, target, desc, report)
		}
		if cerr := target.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	var denial *verify.DenialError
	if verr != nil && !errors.As(verr, &denial) {
		return verr
	}
	if asJSON {
		err = cliutil.WriteJSON(c.App.Writer, verifyOutput{Envelope: newEnvelope("VerificationReport"), Reference: args[0], Report: report, Programs: programs})
	} else {
		err = renderReport(c.App.Writer, ref, source, report, programs)
	}
	if err != nil {
		return err
	}
	return verr
}

// loadTrust returns the policy --key or --policy names, and a description
// of where it came from.
func loadTrust(c *cli.Context) (*verify.Policy, string, error) {
	keyPath, policyPath := c.String("key"), c.String("policy")
	switch {
	case keyPath == "" && policyPath == "":
		return nil, "", cliutil.Usagef("verify: want --key or --policy")
	case keyPath != "" && policyPath != "":
		return nil, "", cliutil.Usagef("verify: --key and --policy exclude each other")
	case policyPath != "":
		p, err := verify.LoadPolicy(policyPath)
		if err != nil {
			return nil, "", err
		}
		return p, policyPath, nil
	}
	pemBytes, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, "", fmt.Errorf("public key: %w", err)
	}
	key, err := verify.ParsePublicKey(pemBytes)
	if err != nil {
		return nil, "", fmt.Errorf("public key %s: %w", keyPath, err)
	}
	p, err := verify.KeyPolicy(key)
	if err != nil {
		return nil, "", err
	}
	return p, "--key " + keyPath, nil
}

// localSubject describes a local object file, with its digest.
func localSubject(ref artifact.Reference) (verify.Subject, error) {
	f, err := os.Open(ref.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return verify.Subject{}, fmt.Errorf("%s: %w", ref, artifact.ErrNotFound)
	}
	if err != nil {
		return verify.Subject{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return verify.Subject{}, fmt.Errorf("%s: %w", ref, err)
	}
	return verify.Subject{Name: ref.Name(), Descriptor: ocispec.Descriptor{Digest: digest.NewDigest(digest.SHA256, h), Size: n}}, nil
}

// admittedPrograms reads the programs of the admitted artifact desc, every
// platform's, checked against their objects: a config that disagrees with
// them is an error, and so is any other fault of a bytecode artifact. An
// artifact of another kind (verify checks any signed artifact) has none.
func admittedPrograms(c *cli.Context, src *artifact.Target, desc ocispec.Descriptor, r *verify.Report) ([]verifyProgram, error) {
	d, err := artifact.Inspect(c.Context, src, desc)
	switch {
	case errors.Is(err, artifact.ErrNotBytecode):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("%s: %w", src.Ref, err)
	}
	programs := []verifyProgram{}
	for _, m := range d.Manifests {
		platform := ""
		if m.Platform != nil {
			platform = artifact.FormatPlatform(*m.Platform)
		}
		for _, o := range m.Config.Objects {
			for _, p := range o.Programs {
				allowed := len(p.Kinds) > 0 && (len(r.AllowedProgramTypes) == 0 || slices.ContainsFunc(p.Kinds, func(k progtype.Kind) bool { return slices.Contains(r.AllowedProgramTypes, k) }))
				programs = append(programs, verifyProgram{Name: p.Name, Object: o.Name, Platform: platform, Kinds: p.Kinds, Allowed: allowed})
			}
		}
	}
	return programs, nil
}

// renderRequirements writes the outcome of each attestation requirement.
func renderRequirements(w io.Writer, reqs []verify.RequirementResult) error {
	if len(reqs) == 0 {
		return nil
	}
	fmt.Fprintln(w, "Attestations required:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, q := range reqs {
		outcome := "met"
		if !q.Satisfied {
			outcome = fmt.Sprintf("NOT MET: %s: %s", q.Reason, q.Detail)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", q.Name, q.PredicateType, outcome)
		for _, a := range q.Attestations {
			who := a.Key
			if a.Identity != nil {
				who = "certificate " + a.Identity.String()
			} else if who != "" {
				who = "key " + who
			}
			verdict := "valid, trusted by " + a.Authority
			if !a.Valid {
				verdict = string(a.Reason) + ": " + a.Detail
			}
			fmt.Fprintf(tw, "\t%s %s\t%s\t%s\n", a.Format, a.Manifest, dash(who), verdict)
		}
	}
	return tw.Flush()
}

// renderReport writes the report for people.
func renderReport(w io.Writer, ref artifact.Reference, source string, r *verify.Report, programs []verifyProgram) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Image:\t%s\n", r.Image)
	if ref.Tag != "" && ref.Digest == "" {
		fmt.Fprintf(tw, "Tag:\t%s (resolved once, to the digest below)\n", ref.Tag)
	}
	fmt.Fprintf(tw, "Digest:\t%s\n", r.Digest)
	fmt.Fprintf(tw, "Policy:\t%s (%s)\n", r.Policy, source)
	if r.Namespace != "" {
		fmt.Fprintf(tw, "Namespace:\t%s (a load on its behalf)\n", r.Namespace)
	}
	switch {
	case r.Rule != "":
		fmt.Fprintf(tw, "Rule:\t%s (%s, threshold %d)\n", r.Rule, r.Mode, r.Threshold)
	default:
		fmt.Fprintf(tw, "Rule:\tnone matched; the policy's default applied\n")
	}
	fmt.Fprintf(tw, "Signatures:\t%d\n", len(r.Signatures))
	if err := tw.Flush(); err != nil {
		return err
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i, s := range r.Signatures {
		signer := s.Key
		if s.Identity != nil {
			signer = "certificate " + s.Identity.String()
		} else if signer != "" {
			signer = "key " + signer
		} else {
			signer = "unknown key"
		}
		verdict := "valid"
		if !s.Valid {
			verdict = "INVALID"
		}
		fmt.Fprintf(tw, "  %d.\t%s\t%s\t%s\n", i+1, s.Format, verdict, signer)
		if s.Valid {
			fmt.Fprintf(tw, "\t\t\ttrusted by %s\n", s.Authority)
		} else {
			fmt.Fprintf(tw, "\t\t\t%s: %s\n", s.Reason, s.Detail)
		}
		fmt.Fprintf(tw, "\t\t\tstored in manifest %s\n", s.Manifest)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := renderRequirements(w, r.Requirements); err != nil {
		return err
	}
	switch r.Decision {
	case verify.DecisionAllow:
		fmt.Fprintf(w, "Decision: allow\n")
	case verify.DecisionAllowUnsigned:
		fmt.Fprintf(w, "Decision: allow-unsigned (admitted without verified signatures)\n")
	default:
		fmt.Fprintf(w, "Decision: %s: %s: %s\n", r.Decision, r.Reason, r.Findings[0].Detail)
		for _, f := range r.Findings[1:] {
			fmt.Fprintf(w, "  also %s: %s\n", f.Reason, f.Detail)
		}
	}
	if r.Decision != verify.DecisionDeny {
		kinds := "any"
		if len(r.AllowedProgramTypes) > 0 {
			s := make([]string, len(r.AllowedProgramTypes))
			for i, k := range r.AllowedProgramTypes {
				s[i] = string(k)
			}
			kinds = strings.Join(s, ", ")
		}
		fmt.Fprintf(w, "Program types allowed: %s\n", kinds)
	}
	if len(programs) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PROGRAM\tKINDS\tOBJECT\tPLATFORM\tMAY LOAD")
		for _, p := range programs {
			kinds := make([]string, len(p.Kinds))
			for i, k := range p.Kinds {
				kinds[i] = string(k)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Name, dash(strings.Join(kinds, ",")), p.Object, dash(p.Platform), yesNo(p.Allowed))
		}
		return tw.Flush()
	}
	return nil
}
