package main

import (
	"fmt"
	"os"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

var attestCommand = &cli.Command{
	Name:      "attest",
	Usage:     "attach a signed in-toto attestation (SLSA provenance, SPDX, ...) to an artifact, offline",
	ArgsUsage: "REF",
	Description: `Resolves REF once to a digest, and signs with --key an in-toto statement
that this digest has the predicate in --predicate FILE, of the predicate type
--type names: slsaprovenance (SLSA provenance v0.2, as cosign), slsaprovenance1,
spdx, spdxjson, cyclonedx, link, openvex, vuln, or a URI. The attestation is
stored as cosign v3's attest stores it: a Sigstore bundle in an OCI referrer of
the artifact, labelled with the predicate type; cosign verify-attestation reads
it, and a trust policy's require.attestations can demand it (docs/policy.md).
The predicate is a JSON document (SPDX may be tag-value text). No transparency
log is contacted. Prints the digest attested.`,
	Flags: flags([]cli.Flag{
		&cli.StringFlag{Name: "key", Usage: "cosign private `KEY` file (password from $COSIGN_PASSWORD or the terminal)", EnvVars: []string{"BPFCTL_IMAGE_ATTEST_KEY"}},
		&cli.StringFlag{Name: "predicate", Usage: "predicate `FILE`", EnvVars: []string{"BPFCTL_IMAGE_ATTEST_PREDICATE"}},
		&cli.StringFlag{Name: "type", Usage: "predicate `TYPE`: slsaprovenance, slsaprovenance1, spdx, ... or a URI", EnvVars: []string{"BPFCTL_IMAGE_ATTEST_TYPE"}},
		outputFlag,
	}, registryFlags),
	Action: attestAction,
}

// attestOutput is attest's JSON output.
type attestOutput struct {
	Envelope
	// Reference is REF as given; Digest what it resolved to and was attested.
	Reference     string `json:"reference"`
	Digest        string `json:"digest"`
	PredicateType string `json:"predicateType"`
	// Attestation is the referrer manifest written.
	Attestation ocispec.Descriptor `json:"attestation"`
}

// maxPredicateSize bounds a predicate file: the bundle holding it must fit
// the 4 MiB a verifier reads.
const maxPredicateSize = 3 << 20

func attestAction(c *cli.Context) error {
	args, err := arguments(c, 1, 1, "one reference to attest")
	if err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	if c.String("type") == "" || c.String("predicate") == "" {
		return cliutil.Usagef("attest: --type and --predicate are required")
	}
	predicateType, err := verify.PredicateType(c.String("type"))
	if err != nil {
		return cliutil.Usagef("attest: --type: %v", err)
	}
	predicate, err := os.ReadFile(c.String("predicate"))
	if err != nil {
		return fmt.Errorf("predicate: %w", err)
	}
	if len(predicate) > maxPredicateSize {
		return fmt.Errorf("predicate %s: %d bytes, more than the %d an attestation may hold", c.String("predicate"), len(predicate), maxPredicateSize)
	}
	ref, err := parseReference(args[0])
	if err != nil {
		return err
	}
	if ref.Transport == artifact.File {
		return cliutil.Usagef("%s: a local file cannot be attested; build an artifact from it and attest that", ref)
	}
	key, err := loadSigningKey(c)
	if err != nil {
		return err
	}
	target, err := open(c, ref, false)
	if err != nil {
		return err
	}
	desc, err := resolve(c, target, ref)
	if err != nil {
		target.Close()
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "Attesting %s@%s (%s)\n", ref.Name(), desc.Digest, predicateType)
	att, err := verify.Attest(c.Context, target, verify.Subject{Name: ref.Name(), Descriptor: desc}, key, predicateType, predicate, verify.AttestOptions{})
	if cerr := target.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("predicate %s: %w", c.String("predicate"), err)
	}
	if asJSON {
		return cliutil.WriteJSON(c.App.Writer, attestOutput{Envelope: newEnvelope("Attest"), Reference: ref.String(), Digest: desc.Digest.String(), PredicateType: predicateType, Attestation: att})
	}
	_, err = fmt.Fprintln(c.App.Writer, desc.Digest)
	return err
}
