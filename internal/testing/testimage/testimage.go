// Package testimage builds and signs bytecode artifacts from BPF objects, and
// writes trust policies, for the tests and benchmarks of the daemon: what
// bpfctl-image build, keygen and sign do, as functions.
package testimage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"oras.land/oras-go/v2/content/memory"

	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// Build builds an artifact of the object files and writes it to dst, a
// registry or oci: reference with a tag (default latest). It returns the
// reference pinned to the artifact's digest (NAME@DIGEST).
func Build(ctx context.Context, dst string, objects ...string) (string, error) {
	return BuildAnnotated(ctx, dst, nil, objects...)
}

// BuildAnnotated is Build with annotations on the manifest.
func BuildAnnotated(ctx context.Context, dst string, annotations map[string]string, objects ...string) (string, error) {
	var files []artifact.ObjectFile
	for _, o := range objects {
		f, err := artifact.ReadObjectFile(o)
		if err != nil {
			return "", err
		}
		files = append(files, f)
	}
	staged := memory.New()
	root, err := artifact.Build(ctx, staged, files, artifact.BuildOptions{Tool: "bpfd-testimage", Annotations: annotations})
	if err != nil {
		return "", err
	}
	ref, err := artifact.ParseReference(dst)
	if err != nil {
		return "", err
	}
	target, err := artifact.Open(ctx, ref, artifact.OpenOptions{Create: true})
	if err != nil {
		return "", err
	}
	defer target.Close()
	if _, err := artifact.Copy(ctx, staged, root, target, ref.Selector(), artifact.CopyOptions{SkipReferrers: true}); err != nil {
		return "", err
	}
	return ref.Name() + "@" + root.Digest.String(), nil
}

// Key is a signing key with its public key written to a file.
type Key struct {
	Private *verify.PrivateKey
	// PubFile is the public key's PEM file; Fingerprint its fingerprint.
	PubFile     string
	Fingerprint string
}

// NewKey generates a key pair and writes the public key to dir/name.pub.
func NewKey(dir, name string) (*Key, error) {
	const password = "testimage"
	pair, err := verify.GenerateKeyPair([]byte(password))
	if err != nil {
		return nil, err
	}
	priv, err := verify.LoadPrivateKey(pair.PrivatePEM, []byte(password))
	if err != nil {
		return nil, err
	}
	pub := filepath.Join(dir, name+".pub")
	if err := os.WriteFile(pub, pair.PublicPEM, 0o644); err != nil {
		return nil, err
	}
	return &Key{Private: priv, PubFile: pub, Fingerprint: priv.Public().Fingerprint()}, nil
}

// Sign signs the artifact ref names, in format, where it is stored.
func (k *Key) Sign(ctx context.Context, ref string, format verify.Format) error {
	r, err := artifact.ParseReference(ref)
	if err != nil {
		return err
	}
	target, err := artifact.Open(ctx, r, artifact.OpenOptions{})
	if err != nil {
		return err
	}
	defer target.Close()
	desc, err := target.ResolveReference(ctx)
	if err != nil {
		return err
	}
	_, err = verify.Sign(ctx, target, verify.Subject{Name: r.Name(), Descriptor: desc}, k.Private, verify.SignOptions{Format: format})
	return err
}

// Attest attests, with k, that the artifact ref names has predicate (JSON)
// of predicateType (a URI or cosign's short name), where it is stored.
func (k *Key) Attest(ctx context.Context, ref, predicateType string, predicate []byte) error {
	r, err := artifact.ParseReference(ref)
	if err != nil {
		return err
	}
	target, err := artifact.Open(ctx, r, artifact.OpenOptions{})
	if err != nil {
		return err
	}
	defer target.Close()
	desc, err := target.ResolveReference(ctx)
	if err != nil {
		return err
	}
	_, err = verify.Attest(ctx, target, verify.Subject{Name: r.Name(), Descriptor: desc}, k.Private, predicateType, predicate, verify.AttestOptions{})
	return err
}

// Rule is one rule of a trust policy.
type Rule struct {
	Name   string
	Images []string
	// Keys are public key files; none means allowUnsigned.
	Keys []string
	// Kinds are the allowed program types; none means any.
	Kinds []string
	// Provenance, if set, requires SLSA provenance (v0.2) by this
	// builder id, signed by the key file ProvenanceKey.
	Provenance, ProvenanceKey string
}

// WritePolicy writes a trust policy of rules, default deny, to path.
func WritePolicy(path string, rules ...Rule) error {
	var b strings.Builder
	b.WriteString("apiVersion: bpfd.io/v1alpha1\nkind: TrustPolicy\ndefault: deny\nrules:\n")
	for _, r := range rules {
		fmt.Fprintf(&b, "- name: %s\n  images: [%s]\n", r.Name, quoteAll(r.Images))
		if len(r.Keys) == 0 {
			b.WriteString("  allowUnsigned: true\n")
		} else {
			b.WriteString("  authorities:\n")
			for _, k := range r.Keys {
				fmt.Fprintf(&b, "  - key: {path: %q}\n", k)
			}
		}
		if len(r.Kinds) > 0 {
			fmt.Fprintf(&b, "  allow: {programTypes: [%s]}\n", strings.Join(r.Kinds, ", "))
		}
		if r.Provenance != "" {
			fmt.Fprintf(&b, "  require:\n    attestations:\n    - name: provenance\n      predicateType: slsaprovenance\n      authorities: [{key: {path: %q}}]\n      conditions: {builderId: %q}\n", r.ProvenanceKey, r.Provenance)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
