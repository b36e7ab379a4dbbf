package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/memory"
	"oras.land/oras-go/v2/errdef"

	"github.com/bpfd-dev/bpfd/internal/testing/badinput"
)

// The fuzz targets of this package take their seeds from testdata/bad; `make
// fuzz` runs each for FUZZTIME.

func corpusTable(tb testing.TB, surface string) (*badinput.Corpus, *badinput.Table) {
	tb.Helper()
	c, err := badinput.Locate()
	if err != nil {
		tb.Fatal(err)
	}
	table, err := c.Table(surface)
	if err != nil {
		tb.Fatal(err)
	}
	return c, table
}

// FuzzParsePolicy parses a trust policy whose relative paths are found in
// testdata/bad/policy: it must fail with a *PolicyError listing problems, or
// return a policy that holds what validation promises.
func FuzzParsePolicy(f *testing.F) {
	_, table := corpusTable(f, "policy")
	for _, e := range table.Entries {
		data, err := os.ReadFile(e.FilePaths()[0])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`apiVersion: bpfd.io/v1alpha1
kind: TrustPolicy
default: allow-unsigned
rules:
- name: net
  images: ["registry.example.com/net/*", "oci:/var/lib/bpfd/images/**"]
  threshold: 2
  mode: warn
  authorities:
  - key: {path: ../signature/corpus.pub}
  - keyless: {trustedRoot: keys/empty-trusted-root.json, issuer: https://accounts.example.com, subjectRegExp: "^ci@"}
  allow: {programTypes: [xdp, tc]}
- name: local
  images: ["file:/var/lib/bpf/**"]
  allowUnsigned: true
`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy(data, ParseOptions{Source: "fuzz.yaml", BaseDir: table.Dir()})
		if err != nil {
			var pe *PolicyError
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalidPolicy) || len(pe.Problems) == 0 {
				t.Fatalf("error %q is not a *PolicyError with problems", err)
			}
			return
		}
		if p.Fingerprint() == "" {
			t.Fatal("a policy without a fingerprint")
		}
		names := map[string]bool{}
		for i, r := range p.Rules {
			switch {
			case r.Name == "" || names[r.Name]:
				t.Fatalf("rules[%d]: name %q empty or repeated", i, r.Name)
			case len(r.Images) == 0 || len(r.globs) != len(r.Images):
				t.Fatalf("rules[%d]: %d images, %d patterns", i, len(r.Images), len(r.globs))
			case r.AllowUnsigned && (len(r.Authorities) > 0 || r.Threshold != 0):
				t.Fatalf("rules[%d]: allowUnsigned with %d authorities, threshold %d", i, len(r.Authorities), r.Threshold)
			case !r.AllowUnsigned && (r.Threshold < 1 || r.Threshold > len(r.Authorities)):
				t.Fatalf("rules[%d]: threshold %d of %d authorities", i, r.Threshold, len(r.Authorities))
			}
			names[r.Name] = true
			for j, a := range r.Authorities {
				if (a.Key == nil) == (a.Keyless == nil) {
					t.Fatalf("rules[%d].authorities[%d]: key %v, keyless %v", i, j, a.Key != nil, a.Keyless != nil)
				}
			}
		}
	})
}

// The blobs of a signature FuzzVerifySignatures stores. The corpus's
// signature entries name theirs so.
var signatureBlobs = []string{"manifest.json", "layer.json", "statement.json"}

// FuzzVerifySignatures stores a fuzzed signature manifest and its layer (a
// bundle or a simple-signing payload) and in-toto statement next to the
// corpus's subject, as a referrer or under the legacy .sig tag, in a memory
// store, and verifies the subject against a policy trusting the corpus key.
// The blobs are corpus templates ({{digest layer.json}}, {{dsse
// statement.json}}, ...), so mutations keep them linked and signed. The
// verdict must be an allow backed by a valid signature, or a denial; nothing
// may panic.
func FuzzVerifySignatures(f *testing.F) {
	c, table := corpusTable(f, "signature")
	vars, subjectBlobs, err := table.SubjectVars()
	if err != nil {
		f.Fatal(err)
	}
	key, err := c.SigningKey()
	if err != nil {
		f.Fatal(err)
	}
	pemBytes, err := os.ReadFile(c.PublicKeyPath())
	if err != nil {
		f.Fatal(err)
	}
	pub, err := ParsePublicKey(pemBytes)
	if err != nil {
		f.Fatal(err)
	}
	policy, err := KeyPolicy(pub)
	if err != nil {
		f.Fatal(err)
	}
	size, err := strconv.ParseInt(vars["subject.size"], 10, 64)
	if err != nil {
		f.Fatal(err)
	}
	subject := ocispec.Descriptor{MediaType: vars["subject.mediaType"], Digest: digest.Digest(vars["subject.digest"]), Size: size}

	for _, e := range table.Entries {
		var seed [3][]byte
		for i, name := range signatureBlobs {
			data, err := e.Raw(name)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				f.Fatal(err)
			}
			seed[i] = data
		}
		f.Add(seed[0], seed[1], seed[2], e.Format == "legacy")
	}
	f.Fuzz(func(t *testing.T, manifest, layer, statement []byte, legacy bool) {
		raw := map[string][]byte{"manifest.json": manifest, "layer.json": layer, "statement.json": statement}
		blobs, err := badinput.ExpandBlobs(raw, nil, vars, key)
		if err != nil {
			return // a template the mutation broke
		}
		ctx := context.Background()
		store := registryStore{memory.New(), map[digest.Digest][]byte{}}
		for d, data := range subjectBlobs {
			desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: d, Size: int64(len(data))}
			if d == subject.Digest {
				desc = subject
			}
			if err := store.Push(ctx, desc, data); err != nil {
				t.Fatal(err)
			}
		}
		for name, data := range blobs {
			desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(data), Size: int64(len(data))}
			if name == "manifest.json" {
				desc.MediaType = ocispec.MediaTypeImageManifest
			}
			// A manifest that does not parse is stored but not indexed:
			// Push's error says so.
			_ = store.Push(ctx, desc, data)
		}
		if legacy {
			sig := blobs["manifest.json"]
			desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(sig), Size: int64(len(sig))}
			if err := store.Tag(ctx, desc, vars["subject.sigtag"]); err != nil {
				t.Fatal(err)
			}
		}

		report, err := NewVerifier(policy, VerifierOptions{}).VerifyArtifact(ctx, store, Subject{Name: "registry.example.com/fuzz", Descriptor: subject})
		var denial *DenialError
		switch {
		case err == nil:
			valid := 0
			for _, s := range report.Signatures {
				if s.Valid {
					valid++
				}
			}
			if report.Decision != DecisionAllow || valid == 0 {
				t.Fatalf("admitted (%s) with %d valid signatures", report.Decision, valid)
			}
		case errors.As(err, &denial):
			if report == nil || report.Decision != DecisionDeny || denial.Reason == "" {
				t.Fatalf("denial %q with report %+v", err, report)
			}
		case errors.Is(err, ErrTooManySignatures):
		default:
			t.Fatalf("error %q is neither a verdict nor too many signatures", err)
		}
	})
}

// registryStore serves blobs by digest alone, as a registry does (oras-go's
// memory store also keys them by media type), and tags and referrers from a
// memory store.
type registryStore struct {
	*memory.Store
	blobs map[digest.Digest][]byte
}

func (s registryStore) Push(ctx context.Context, desc ocispec.Descriptor, data []byte) error {
	s.blobs[desc.Digest] = data
	return s.Store.Push(ctx, desc, bytes.NewReader(data))
}

func (s registryStore) Fetch(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	data, ok := s.blobs[desc.Digest]
	if !ok {
		return nil, fmt.Errorf("%s: %w", desc.Digest, errdef.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}
