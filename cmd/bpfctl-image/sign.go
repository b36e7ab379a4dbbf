package main

import (
	"errors"
	"fmt"
	"os"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/urfave/cli/v2"
	"oras.land/oras-go/v2/errdef"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

var signCommand = &cli.Command{
	Name:      "sign",
	Usage:     "sign an artifact's digest with a cosign key, offline",
	ArgsUsage: "REF",
	Description: `Resolves REF once to the digest of its manifest or index, prints that digest
and signs it: what is signed is always the digest, never the tag. The key is
a cosign private key (bpfctl-image keygen or cosign generate-key-pair); its
password comes from $COSIGN_PASSWORD or the terminal.

Formats: bundle (default) stores a Sigstore bundle v0.3 as an OCI referrer of
the artifact (registries without the referrers API get the sha256-<hex> tag
index, as with cosign v3); legacy appends to cosign's sha256-<hex>.sig
manifest. No transparency log or certificate authority is contacted.`,
	Flags: flags([]cli.Flag{
		&cli.StringFlag{Name: "key", Usage: "cosign private `KEY` file", EnvVars: []string{"BPFCTL_IMAGE_SIGN_KEY"}},
		&cli.StringFlag{Name: "format", Value: string(verify.FormatBundle), Usage: "signature `FORMAT`: bundle or legacy", EnvVars: []string{"BPFCTL_IMAGE_SIGN_FORMAT"}},
		&cli.StringFlag{Name: "certificate", Usage: "PEM signing certificate `FILE` for the key, to make a certificate (keyless-style) signature", EnvVars: []string{"BPFCTL_IMAGE_SIGN_CERTIFICATE"}},
		&cli.StringFlag{Name: "certificate-chain", Usage: "PEM `FILE` with the certificate's chain, kept with legacy signatures", EnvVars: []string{"BPFCTL_IMAGE_SIGN_CERTIFICATE_CHAIN"}},
		&cli.StringFlag{Name: "identity", Usage: "`NAME` a legacy signature gives as its docker-reference (default: REF without tag or digest)", EnvVars: []string{"BPFCTL_IMAGE_SIGN_IDENTITY"}},
		outputFlag,
	}, registryFlags),
	Action: signAction,
}

// signResult is sign's JSON output.
type signResult struct {
	Envelope
	// Reference is REF as given; Digest what it resolved to and was signed.
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	Format    string `json:"format"`
	// Signature is the manifest written: the referrer or the ".sig" manifest.
	Signature ocispec.Descriptor `json:"signature"`
	// Tag is the ".sig" tag of a legacy signature.
	Tag string `json:"tag,omitempty"`
}

func signAction(c *cli.Context) error {
	args, err := arguments(c, 1, 1, "one reference to sign")
	if err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	format, err := verify.ParseFormat(c.String("format"))
	if err != nil {
		return cliutil.UsageError{Err: err}
	}
	ref, err := parseReference(args[0])
	if err != nil {
		return err
	}
	if ref.Transport == artifact.File {
		return cliutil.Usagef("%s: a local file cannot be signed; build an artifact from it and sign that", ref)
	}
	opts := verify.SignOptions{Format: format, Identity: c.String("identity")}
	if opts.Certificate, err = readOptional(c.String("certificate")); err != nil {
		return err
	}
	if opts.CertificateChain, err = readOptional(c.String("certificate-chain")); err != nil {
		return err
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
	fmt.Fprintf(c.App.ErrWriter, "Signing %s@%s\n", ref.Name(), desc.Digest)
	sig, err := verify.Sign(c.Context, target, verify.Subject{Name: ref.Name(), Descriptor: desc}, key, opts)
	if cerr := target.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}

	res := signResult{Envelope: newEnvelope("Sign"), Reference: ref.String(), Digest: desc.Digest.String(), Format: string(format), Signature: sig}
	if format == verify.FormatLegacy {
		res.Tag = verify.LegacySignatureTag(desc.Digest)
	}
	if asJSON {
		return cliutil.WriteJSON(c.App.Writer, res)
	}
	fmt.Fprintln(c.App.Writer, res.Digest)
	return nil
}

// loadSigningKey reads and decrypts the --key file.
func loadSigningKey(c *cli.Context) (*verify.PrivateKey, error) {
	path := c.String("key")
	if path == "" {
		return nil, cliutil.Usagef("%s: --key is required", c.Command.Name)
	}
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	password, err := readPassword(c.App.ErrWriter, "Enter the password for "+path, false)
	if err != nil {
		return nil, err
	}
	key, err := verify.LoadPrivateKey(pemBytes, password)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	return key, nil
}

// resolve resolves ref in target once: its digest, else its tag.
func resolve(c *cli.Context, target *artifact.Target, ref artifact.Reference) (ocispec.Descriptor, error) {
	desc, err := target.Resolve(c.Context, ref.Selector())
	if errors.Is(err, errdef.ErrNotFound) {
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w", ref, artifact.ErrNotFound)
	}
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w", ref, err)
	}
	return desc, nil
}

// readOptional reads the file at path, or returns nil for "".
func readOptional(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	return os.ReadFile(path)
}
