package supplychain

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/oci"

	"github.com/bpfd-dev/bpfd/internal/testing/testimage"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// copyArtifact copies the artifact ref names, with its referrers and
// cosign tags, to the layout dir, tagged v1, and returns dir's reference
// by digest.
func copyArtifact(t *testing.T, ref, dir string, opts artifact.CopyOptions) string {
	t.Helper()
	ctx := context.Background()
	src, root := openRef(t, ref)
	dst, err := oci.NewWithContext(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := artifact.Copy(ctx, src, root, dst, "v1", opts); err != nil {
		t.Fatal(err)
	}
	return "oci:" + dir + "@" + root.Digest.String()
}

// TestOriginBinding: the policy judges the name an artifact was fetched
// from with the signatures that origin served. An artifact denied (or
// admitted) under one name and cached is not admitted under another name
// whose rule is laxer unless it is at that origin: confirmed there first,
// refused under Never and when the origin does not have it.
func TestOriginBinding(t *testing.T) {
	e := newChainEnv(t)
	ctx := context.Background()
	k2 := newSigner(t)
	strict := filepath.Join(e.dir, "strict")
	lax := filepath.Join(e.dir, "lax")
	writePolicy(t, e.policy,
		policyRule{Name: "strict", Images: []string{"oci:" + strict + "/**"}, Keys: []string{e.key.pub}},
		policyRule{Name: "lax", Images: []string{"oci:" + lax + "/**"}},
	)
	if _, err := e.chain.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	// An unsigned artifact (well, signed by a key no rule trusts) under the
	// strict name: denied, its signatures cached.
	evil := buildArtifact(t, "oci:"+filepath.Join(strict, "evil")+":v1", "xdp_counter.bpf.o")
	k2.sign(t, evil, verify.FormatBundle)
	var denial *verify.DenialError
	if _, err := e.chain.Fetch(ctx, evil, PullIfNotPresent); !errors.As(err, &denial) {
		t.Fatalf("unsigned under the strict rule: %v, want a denial", err)
	}
	d := rootOf(t, evil).Digest
	laundered := "oci:" + filepath.Join(lax, "anything") + "@" + d.String()
	for _, policy := range []PullPolicy{PullIfNotPresent, PullNever, PullAlways} {
		res, err := e.chain.Fetch(ctx, laundered, policy)
		if err == nil || res.Admitted() {
			t.Fatalf("%s: laundered through the lax rule: admitted %+v", policy, res.Verdict)
		}
		var pe *PullError
		if !errors.As(err, &pe) || !(errors.Is(err, artifact.ErrNotFound) || errors.Is(err, ErrNotCached)) {
			t.Errorf("%s: %v, want a *PullError: not found at the lax origin", policy, err)
		}
	}
	// Admitted under the strict name once trusted; still not laundered,
	// and Never names the reason.
	e.key.sign(t, evil, verify.FormatBundle)
	if _, err := e.chain.Fetch(ctx, evil, PullAlways); err != nil {
		t.Fatalf("signed by the trusted key: %v", err)
	}
	_, err := e.chain.Fetch(ctx, laundered, PullNever)
	if !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "never fetched from oci:"+filepath.Join(lax, "anything")) {
		t.Errorf("Never under a name it never came from: %v, want not cached, naming the origin", err)
	}
	// At the lax origin for real, it is admitted there, by the lax rule.
	copyArtifact(t, evil, filepath.Join(lax, "anything"), artifact.CopyOptions{SkipReferrers: true})
	res, err := e.chain.Fetch(ctx, laundered, PullIfNotPresent)
	if err != nil {
		t.Fatalf("from the lax origin that has it: %v", err)
	}
	if res.Verdict.Rule != "lax" || res.Verdict.Decision != verify.DecisionAllowUnsigned || res.Origin != "oci:"+filepath.Join(lax, "anything") {
		t.Errorf("verdict %+v origin %s, want allow-unsigned by rule lax", res.Verdict, res.Origin)
	}
	// Now it came from there too: Never serves it under both names.
	for _, ref := range []string{laundered, evil} {
		if _, err := e.chain.Fetch(ctx, ref, PullNever); err != nil {
			t.Errorf("Never, %s: %v", ref, err)
		}
	}
}

// TestSignatureTagsPerOrigin: two origins serve one digest, each with its
// own legacy .sig tag. Pulling from the second never changes what the
// first's name is judged with (the cache's .sig tag used to be overwritten
// by whichever origin was pulled last), nor do its attestations count for
// the other.
func TestSignatureTagsPerOrigin(t *testing.T) {
	e := newChainEnv(t)
	ctx := context.Background()
	attacker := newSigner(t)
	good := filepath.Join(e.images, "good")
	bad := filepath.Join(e.images, "bad")
	provenance := filepath.Join(e.images, "provenance")
	writePolicy(t, e.policy,
		policyRule{Name: "provenance", Images: []string{"oci:" + provenance + "/**"}, Keys: []string{e.key.pub}, Provenance: "https://builder.example/ci", ProvenanceKey: e.key.pub},
		policyRule{Name: "images", Images: []string{"oci:" + e.images + "/**"}, Keys: []string{e.key.pub}},
	)
	if _, err := e.chain.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	goodRef := buildArtifact(t, "oci:"+good+":v1", "xdp_counter.bpf.o")
	e.key.sign(t, goodRef, verify.FormatLegacy)
	if err := e.key.key.Attest(ctx, goodRef, verify.PredicateSLSAProvenance02, []byte(`{"builder":{"id":"https://builder.example/ci"},"buildType":"https://example.com/make"}`)); err != nil {
		t.Fatal(err)
	}
	badRef := copyArtifact(t, goodRef, bad, artifact.CopyOptions{SkipReferrers: true})
	attacker.sign(t, badRef, verify.FormatLegacy)

	if _, err := e.chain.Fetch(ctx, goodRef, PullIfNotPresent); err != nil {
		t.Fatalf("good origin: %v", err)
	}
	var denial *verify.DenialError
	if _, err := e.chain.Fetch(ctx, badRef, PullIfNotPresent); !errors.As(err, &denial) || denial.Reason != verify.ReasonUntrustedKey {
		t.Fatalf("bad origin: %v, want untrusted-key", err)
	}
	if _, err := e.chain.Fetch(ctx, goodRef, PullNever); err != nil {
		t.Errorf("good origin from the cache after the bad one was pulled: %v", err)
	}
	d := rootOf(t, goodRef).Digest
	for _, name := range []string{"oci:" + good, "oci:" + bad} {
		o := e.chain.cache.entry(d).origin(name)
		store, err := oci.NewWithContext(ctx, filepath.Join(e.cacheDir, o.Evidence))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Resolve(ctx, verify.LegacySignatureTag(d)); err != nil {
			t.Errorf("%s: no .sig tag in its signatures: %v", name, err)
		}
	}
	if _, err := e.chain.cache.store.Resolve(ctx, verify.LegacySignatureTag(d)); err == nil {
		t.Error("the content layout holds a .sig tag")
	}

	// The good origin's attestation does not count for a name under a rule
	// that requires one, where only the artifact and its signature are.
	provRef := copyArtifact(t, badRef, filepath.Join(provenance, "x"), artifact.CopyOptions{SkipReferrers: true})
	e.key.sign(t, provRef, verify.FormatBundle)
	if _, err := e.chain.Fetch(ctx, provRef, PullIfNotPresent); !errors.As(err, &denial) || denial.Reason != verify.ReasonAttestationMissing {
		t.Errorf("an attestation of another origin counted: %v, want attestation-missing", err)
	}
}

// TestPolicyBeforeBytes: a name no rule covers is denied before its origin
// (here one that does not exist) or the cache is read; a denied
// artifact's layers are never pulled.
func TestPolicyBeforeBytes(t *testing.T) {
	e := newChainEnv(t)
	ctx := context.Background()
	nowhere := "oci:" + filepath.Join(e.dir, "uncovered", "nowhere") + ":v1"
	res, err := e.chain.Fetch(ctx, nowhere, PullAlways)
	var denial *verify.DenialError
	if !errors.As(err, &denial) || denial.Reason != verify.ReasonOutOfScope || res.Digest != "" {
		t.Fatalf("a name no rule covers: %v (digest %q), want an out-of-scope denial without a digest", err, res.Digest)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.cacheDir, "blobs", "sha256")); len(entries) != 0 {
		t.Errorf("the cache holds %d blobs after a denial of an uncovered name", len(entries))
	}

	unsigned := buildArtifact(t, "oci:"+filepath.Join(e.images, "unsigned")+":v1", "uprobe_counter.bpf.o")
	if _, err := e.chain.Fetch(ctx, unsigned, PullIfNotPresent); !errors.As(err, &denial) {
		t.Fatalf("unsigned: %v, want a denial", err)
	}
	manifest := testimage.ReadManifest(t, filepath.Join(e.images, "unsigned"), rootOf(t, unsigned))
	for _, l := range manifest.Layers {
		if _, err := os.Stat(testimage.BlobPath(e.cacheDir, l.Digest)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("layer %s of a denied artifact in the cache: %v", l.Digest, err)
		}
	}
	if _, err := os.Stat(testimage.BlobPath(e.cacheDir, manifest.Config.Digest)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("config of a denied artifact in the content layout: %v", err)
	}
}

// TestPull: Pull verifies and checks the objects, and returns none.
func TestPull(t *testing.T) {
	e := newChainEnv(t)
	ctx := context.Background()
	_, ref := e.signed(t, "xdp", "xdp_counter.bpf.o")
	res, err := e.chain.Pull(ctx, ref, PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	if res.Objects != nil || !res.Admitted() || res.Pulls != 1 {
		t.Errorf("Pull: %+v, want admitted, pulled, without objects", res)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.cacheDir, tmpDir)); len(entries) != 0 {
		t.Errorf("Pull left %d files in tmp/", len(entries))
	}
	// Not bytecode: Pull checks what Fetch checks.
	notBytecode := filepath.Join(e.images, "blob")
	store, err := oci.NewWithContext(ctx, notBytecode)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := packPlain(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	e.key.sign(t, "oci:"+notBytecode+"@"+desc.Digest.String(), verify.FormatBundle)
	if _, err := e.chain.Pull(ctx, "oci:"+notBytecode+"@"+desc.Digest.String(), PullIfNotPresent); !errors.Is(err, artifact.ErrUnsupported) {
		t.Errorf("Pull of an artifact that is not bytecode: %v, want unsupported", err)
	}
}

// packPlain writes an artifact that is not bytecode to store.
func packPlain(ctx context.Context, store *oci.Store) (ocispec.Descriptor, error) {
	layer, err := oras.PushBytes(ctx, store, "application/octet-stream", []byte("not bytecode"))
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc, err := oras.PackManifest(ctx, store, oras.PackManifestVersion1_1, "application/vnd.example.thing", oras.PackManifestOptions{Layers: []ocispec.Descriptor{layer}})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return desc, store.Tag(ctx, desc, "v1")
}
