package supplychain

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/oci"

	"github.com/bpfd-dev/bpfd/internal/testing/testimage"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// chainEnv is a Chain over a cache and a policy in a temporary directory,
// with artifacts in OCI layouts under dir/images.
type chainEnv struct {
	dir      string
	images   string
	policy   string
	cacheDir string
	key      *signer
	chain    *Chain
}

func newChainEnv(t *testing.T) *chainEnv {
	t.Helper()
	dir := t.TempDir()
	e := &chainEnv{
		dir:      dir,
		images:   filepath.Join(dir, "images"),
		policy:   filepath.Join(dir, "policy.yaml"),
		cacheDir: filepath.Join(dir, "cache"),
		key:      newSigner(t),
	}
	writePolicy(t, e.policy, policyRule{Name: "images", Images: []string{"oci:" + e.images + "/**"}, Keys: []string{e.key.pub}})
	e.open(t)
	return e
}

func (e *chainEnv) open(t *testing.T) {
	t.Helper()
	c, err := Open(context.Background(), Options{CacheDir: e.cacheDir, PolicyFile: e.policy, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e.chain = c
}

// signed builds and signs an artifact of objects at images/name:v1 and
// returns its tag reference and its digest reference.
func (e *chainEnv) signed(t *testing.T, name string, objects ...string) (tagRef, digestRef string) {
	t.Helper()
	tagRef = "oci:" + filepath.Join(e.images, name) + ":v1"
	digestRef = buildArtifact(t, tagRef, objects...)
	e.key.sign(t, digestRef, verify.FormatBundle)
	return tagRef, digestRef
}

func TestPullPolicies(t *testing.T) {
	e := newChainEnv(t)
	ctx := context.Background()
	tagRef, digestRef := e.signed(t, "xdp", "xdp_counter.bpf.o")
	dgst := strings.SplitN(digestRef, "@", 2)[1]

	steps := []struct {
		name       string
		ref        string
		policy     PullPolicy
		wantErr    error
		hitsMisses [2]int
	}{
		{"never before any pull", digestRef, PullNever, ErrNotCached, [2]int{0, 0}},
		{"tag pulls", tagRef, PullIfNotPresent, nil, [2]int{0, 1}},
		{"digest from the cache", digestRef, PullIfNotPresent, nil, [2]int{1, 0}},
		{"tag resolved again, content cached", tagRef, PullIfNotPresent, nil, [2]int{1, 0}},
		{"tag from the cache", tagRef, PullNever, nil, [2]int{1, 0}},
		{"always pulls", digestRef, PullAlways, nil, [2]int{0, 1}},
		{"unknown tag never pulled", strings.Replace(tagRef, ":v1", ":v2", 1), PullNever, ErrNotCached, [2]int{0, 0}},
	}
	for _, s := range steps {
		res, err := e.chain.Fetch(ctx, s.ref, s.policy)
		if s.wantErr != nil {
			var pe *PullError
			if !errors.Is(err, s.wantErr) || !errors.As(err, &pe) || pe.Reference != s.ref {
				t.Fatalf("%s: %v, want a *PullError for %s wrapping %v", s.name, err, s.ref, s.wantErr)
			}
			if res.Objects != nil || res.Verified {
				t.Errorf("%s: failed fetch returned %+v", s.name, res)
			}
		} else if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		} else {
			want := &Verdict{Decision: verify.DecisionAllow, Rule: "images", Signers: []string{testimage.Fingerprint(t, e.key.pub)}, Policy: e.chain.PolicyFingerprint()}
			if diff := cmp.Diff(want, res.Verdict); diff != "" {
				t.Errorf("%s: verdict (-want +got):\n%s", s.name, diff)
			}
			if res.Reference != s.ref || res.Digest.String() != dgst || !res.Verified || !res.Admitted() {
				t.Errorf("%s: result %+v, want %s admitted at %s", s.name, res, s.ref, dgst)
			}
			if len(res.Objects) != 1 || res.Objects[0].Name != "xdp_counter.bpf.o" || len(res.Objects[0].ELF) == 0 {
				t.Errorf("%s: objects %v", s.name, res.Objects)
			}
		}
		if got := [2]int{res.CacheHits, res.Pulls}; got != s.hitsMisses {
			t.Errorf("%s: cache hits, pulls = %v, want %v", s.name, got, s.hitsMisses)
		}
	}

	// The cache records the origin's decision, and stays readable as a
	// layout.
	entry := e.chain.cache.entry(digest.Digest(dgst))
	origin := entry.origin("oci:" + filepath.Join(e.images, "xdp"))
	if origin == nil || origin.Decision == nil || origin.Decision.Policy != e.chain.PolicyFingerprint() || origin.Decision.Rule != "images" || origin.Decision.Decision != "allow" {
		t.Errorf("cache entry %+v: want the origin's decision by rule images under the policy in force", entry)
	}
	if entry.MediaType != ocispec.MediaTypeImageManifest {
		t.Errorf("cache entry's media type %q, want the content's, %s", entry.MediaType, ocispec.MediaTypeImageManifest)
	}
	layout, err := oci.NewWithContext(ctx, e.cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := layout.Resolve(ctx, "oci:"+filepath.Join(e.images, "xdp")+":v1"); err != nil {
		t.Errorf("the cache layout has no tag for the pulled tag: %v", err)
	}

	// Without its origin, a digest still loads from the cache; a tag cannot
	// be resolved and fails closed.
	if err := os.RemoveAll(filepath.Join(e.images, "xdp")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.chain.Fetch(ctx, digestRef, PullIfNotPresent); err != nil {
		t.Errorf("digest without its origin: %v", err)
	}
	if _, err := e.chain.Fetch(ctx, tagRef, PullIfNotPresent); !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("tag without its origin: %v, want not found", err)
	}
}

// TestRegistryDown pulls from a real registry, kills it, and fetches
// again: a cached digest still loads with IfNotPresent, a tag fails closed
// (unreachable), Never serves the tag pulled before.
func TestRegistryDown(t *testing.T) {
	reg := testutil.StartRegistry(t)
	e := newChainEnv(t)
	writePolicy(t, e.policy, policyRule{Name: "registry", Images: []string{reg.Host + "/net/*"}, Keys: []string{e.key.pub}})
	if _, err := e.chain.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tagRef := reg.Host + "/net/xdp:v1"
	digestRef := buildArtifact(t, tagRef, "xdp_counter.bpf.o")
	e.key.sign(t, digestRef, verify.FormatLegacy)

	if _, err := e.chain.Fetch(ctx, tagRef, PullIfNotPresent); err != nil {
		t.Fatalf("pull by tag: %v", err)
	}
	reg.Stop()

	cases := map[string]struct {
		ref    string
		policy PullPolicy
		want   error
	}{
		"digest, IfNotPresent": {digestRef, PullIfNotPresent, nil},
		"digest, Never":        {digestRef, PullNever, nil},
		"tag, Never":           {tagRef, PullNever, nil},
		"tag, IfNotPresent":    {tagRef, PullIfNotPresent, artifact.ErrUnreachable},
		"digest, Always":       {digestRef, PullAlways, artifact.ErrUnreachable},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := e.chain.Fetch(ctx, tc.ref, tc.policy)
			var pe *PullError
			if tc.want == nil && err != nil || tc.want != nil && (!errors.Is(err, tc.want) || !errors.As(err, &pe)) {
				t.Fatalf("%v, want %v", err, tc.want)
			}
		})
	}
}

// TestRepairsDamagedCache damages cached blobs: a damaged layer is
// detected by its digest and pulled again; under Never it is an error; a
// damaged signature is pulled again before it could deny.
func TestRepairsDamagedCache(t *testing.T) {
	e := newChainEnv(t)
	ctx := context.Background()
	_, digestRef := e.signed(t, "xdp", "xdp_counter.bpf.o")
	want, err := e.chain.Fetch(ctx, digestRef, PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	manifest := testimage.ReadManifest(t, e.cacheDir, rootOf(t, digestRef))
	layer := manifest.Layers[0]

	testimage.Damage(t, e.cacheDir, layer.Digest)
	got, err := e.chain.Fetch(ctx, digestRef, PullIfNotPresent)
	if err != nil {
		t.Fatalf("load after damaging the cached layer: %v", err)
	}
	if !cmp.Equal(want.Objects, got.Objects) {
		t.Error("objects differ after the repair")
	}
	if got.Repairs != 1 || got.Pulls != 1 {
		t.Errorf("%d repairs, %d pulls, want 1 and 1", got.Repairs, got.Pulls)
	}

	testimage.Damage(t, e.cacheDir, layer.Digest)
	res, err := e.chain.Fetch(ctx, digestRef, PullNever)
	if !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "damaged") || res.Repairs != 1 {
		t.Errorf("Never with a damaged cache: %v, %d repairs, want not cached, damaged, 1 repair", err, res.Repairs)
	}
	if _, err := e.chain.Fetch(ctx, digestRef, PullIfNotPresent); err != nil {
		t.Fatalf("load after a Never found damage: %v", err)
	}

	// Damage the signature: the cached copy no longer verifies; it is
	// pulled again from the origin before the policy's verdict.
	evidence := e.evidenceDir(t, digestRef)
	for _, d := range signatureBlobs(t, evidence, rootOf(t, digestRef)) {
		testimage.Damage(t, evidence, d)
	}
	if _, err := e.chain.Fetch(ctx, digestRef, PullIfNotPresent); err != nil {
		t.Fatalf("load after damaging the cached signature: %v", err)
	}
	if _, err := e.chain.Fetch(ctx, digestRef, PullNever); err != nil {
		t.Fatalf("the repaired signature from the cache: %v", err)
	}
}

// evidenceDir returns the layout holding the signatures the cache pulled
// of ref from ref's origin.
func (e *chainEnv) evidenceDir(t *testing.T, ref string) string {
	t.Helper()
	r, err := artifact.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	entry := e.chain.cache.entry(rootOf(t, ref).Digest)
	if entry == nil || entry.origin(r.Name()) == nil {
		t.Fatalf("the cache records no signatures of %s from %s", ref, r.Name())
	}
	return filepath.Join(e.cacheDir, entry.origin(r.Name()).Evidence)
}

// signatureBlobs returns the layers of root's referrers in the layout.
func signatureBlobs(t *testing.T, layout string, root ocispec.Descriptor) []digest.Digest {
	t.Helper()
	store, err := oci.NewWithContext(context.Background(), layout)
	if err != nil {
		t.Fatal(err)
	}
	preds, err := store.Predecessors(context.Background(), root)
	if err != nil || len(preds) == 0 {
		t.Fatalf("no referrers of %s in %s (%v)", root.Digest, layout, err)
	}
	var out []digest.Digest
	for _, p := range preds {
		for _, l := range testimage.ReadManifest(t, layout, p).Layers {
			out = append(out, l.Digest)
		}
	}
	return out
}

// TestDenials: what the policy refuses comes back as a *verify.DenialError
// with its reason, recorded in the result's verdict; content that does not
// match its digest is refused too, as a *PullError.
func TestDenials(t *testing.T) {
	e := newChainEnv(t)
	ctx := context.Background()
	trusted, other := e.key, newSigner(t)

	// Each case has an object of its own: signatures found for a digest count
	// whichever name it was pulled by.
	unsigned := buildArtifact(t, "oci:"+filepath.Join(e.images, "unsigned")+":v1", "uprobe_counter.bpf.o")

	otherOnly := buildArtifact(t, "oci:"+filepath.Join(e.images, "other")+":v1", "tracepoint_counter.bpf.o")
	other.sign(t, otherOnly, verify.FormatBundle)

	// A trusted legacy signature of one artifact copied to another's .sig
	// tag: a replayed signature.
	replayDir := filepath.Join(e.images, "replay")
	signedOne := buildArtifact(t, "oci:"+replayDir+":a", "xdp_counter.bpf.o")
	trusted.sign(t, signedOne, verify.FormatLegacy)
	replayed := buildArtifact(t, "oci:"+replayDir+":b", "tc_counter.bpf.o")
	copyTag(t, replayDir, verify.LegacySignatureTag(rootOf(t, signedOne).Digest), verify.LegacySignatureTag(rootOf(t, replayed).Digest))

	// Signed, then its object changed in place: tampered content.
	_, tampered := e.signed(t, "tampered", "packet_counters.bpf.o") // an artifact no other case has
	tamperedDir := filepath.Join(e.images, "tampered")
	testimage.Damage(t, tamperedDir, testimage.ReadManifest(t, tamperedDir, rootOf(t, tampered)).Layers[0].Digest)

	// Signed by the trusted key, but outside the images the rule covers.
	outside := buildArtifact(t, "oci:"+filepath.Join(e.dir, "outside")+":v1", "xdp_counter.bpf.o")
	trusted.sign(t, outside, verify.FormatBundle)

	cases := map[string]struct {
		ref        string
		wantReason verify.Reason
		wantErr    error
	}{
		"unsigned":         {ref: unsigned, wantReason: verify.ReasonUnsigned},
		"untrusted key":    {ref: otherOnly, wantReason: verify.ReasonUntrustedKey},
		"replayed":         {ref: replayed, wantReason: verify.ReasonDigestMismatch},
		"out of scope":     {ref: outside, wantReason: verify.ReasonOutOfScope},
		"tampered content": {ref: tampered, wantErr: artifact.ErrDigestMismatch},
		"missing layout":   {ref: "oci:" + filepath.Join(e.images, "nowhere") + ":v1", wantErr: artifact.ErrNotFound},
		"bad reference":    {ref: "oci:", wantErr: artifact.ErrInvalidReference},
		"bad pull policy":  {ref: unsigned, wantErr: ErrInvalid},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			policy := PullIfNotPresent
			if name == "bad pull policy" {
				policy = "Sometimes"
			}
			res, err := e.chain.Fetch(ctx, tc.ref, policy)
			if res == nil || res.Reference != tc.ref || res.Objects != nil {
				t.Fatalf("result %+v: want one for %s without objects", res, tc.ref)
			}
			var (
				denial *verify.DenialError
				pe     *PullError
			)
			if tc.wantReason != "" {
				if !errors.As(err, &denial) || denial.Reason != tc.wantReason || errors.As(err, &pe) {
					t.Fatalf("%v, want a denial for %s", err, tc.wantReason)
				}
				if v := res.Verdict; !res.Verified || v == nil || v.Decision != verify.DecisionDeny || v.Reason != tc.wantReason || v.Policy != e.chain.PolicyFingerprint() {
					t.Errorf("verdict %+v, want deny for %s under the policy in force", v, tc.wantReason)
				}
				// A name no rule covers is denied before anything is read.
				if (res.Digest == "") != (tc.wantReason == verify.ReasonOutOfScope) {
					t.Errorf("a denial for %s with digest %q", tc.wantReason, res.Digest)
				}
			}
			if tc.wantErr != nil && (!errors.Is(err, tc.wantErr) || !errors.As(err, &pe)) {
				t.Fatalf("%v, want a *PullError wrapping %v", err, tc.wantErr)
			}
		})
	}
}

func copyTag(t *testing.T, layout, from, to string) {
	t.Helper()
	ctx := context.Background()
	store, err := oci.NewWithContext(ctx, layout)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := store.Resolve(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Tag(ctx, desc, to); err != nil {
		t.Fatal(err)
	}
}

// TestPolicyReload: a denial turns into an admission once the policy
// trusts the signer, and an invalid policy file keeps the policy in force.
func TestPolicyReload(t *testing.T) {
	e := newChainEnv(t)
	ctx := context.Background()
	other := newSigner(t)
	ref := buildArtifact(t, "oci:"+filepath.Join(e.images, "xdp")+":v1", "xdp_counter.bpf.o")
	other.sign(t, ref, verify.FormatBundle)

	var denial *verify.DenialError
	if _, err := e.chain.Fetch(ctx, ref, PullIfNotPresent); !errors.As(err, &denial) {
		t.Fatalf("signed by an untrusted key: %v, want a denial", err)
	}
	before := e.chain.PolicyFingerprint()
	writePolicy(t, e.policy, policyRule{Name: "images", Images: []string{"oci:" + e.images + "/**"}, Keys: []string{other.pub}, Kinds: []string{"xdp", "tc"}})
	if changed, err := e.chain.ReloadPolicy(); err != nil || !changed {
		t.Fatalf("reload: changed %v, %v", changed, err)
	}
	if e.chain.PolicyFingerprint() == before {
		t.Fatal("fingerprint unchanged after a reload with another key")
	}
	// The denied artifact's layers were never pulled: Never cannot serve
	// it; the signatures cached decide, and its layers are pulled once
	// admitted.
	if _, err := e.chain.Fetch(ctx, ref, PullNever); !errors.Is(err, ErrNotCached) {
		t.Fatalf("Never, after trusting the signer of an artifact denied before: %v, want not cached", err)
	}
	res, err := e.chain.Fetch(ctx, ref, PullIfNotPresent)
	if err != nil {
		t.Fatalf("after trusting the signer: %v", err)
	}
	if diff := cmp.Diff([]progtype.Kind{progtype.XDP, progtype.TC}, res.Verdict.AllowedKinds); diff != "" {
		t.Errorf("allowed kinds (-want +got):\n%s", diff)
	}

	good := e.chain.PolicyFingerprint()
	if err := os.WriteFile(e.policy, []byte("apiVersion: bpfd.io/v1alpha1\nkind: TrustPolicy\nrules:\n- name: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := e.chain.ReloadPolicy(); !errors.Is(err, verify.ErrInvalidPolicy) {
		t.Fatalf("reload of an invalid policy: %v, want invalid policy", err)
	}
	if e.chain.PolicyFingerprint() != good {
		t.Error("an invalid policy replaced the one in force")
	}
	if _, err := e.chain.Fetch(ctx, ref, PullNever); err != nil {
		t.Errorf("after a failed reload: %v", err)
	}
}

// TestLocalFile: a local object loads only under a rule that allows
// it unsigned, and is read only once admitted.
func TestLocalFile(t *testing.T) {
	e := newChainEnv(t)
	writePolicy(t, e.policy,
		policyRule{Name: "images", Images: []string{"oci:" + e.images + "/**"}, Keys: []string{e.key.pub}},
		policyRule{Name: "local", Images: []string{"file:" + bytecodeDir + "/**"}, Kinds: []string{"tracepoint"}},
	)
	if _, err := e.chain.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ref := "file:" + filepath.Join(bytecodeDir, "tracepoint_counter.bpf.o")
	res, err := e.chain.Fetch(ctx, ref, PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	want := &Result{Reference: ref, Origin: ref, Verified: true,
		Verdict: &Verdict{Decision: verify.DecisionAllowUnsigned, Rule: "local", Policy: e.chain.PolicyFingerprint(), AllowedKinds: []progtype.Kind{progtype.Tracepoint}},
		Objects: res.Objects}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if len(res.Objects) != 1 || res.Objects[0].Name != "tracepoint_counter.bpf.o" {
		t.Errorf("objects %v", res.Objects)
	}
	// file:PATH@digest loads only the content it names.
	tp := filepath.Join(bytecodeDir, "tracepoint_counter.bpf.o")
	if _, err := e.chain.Fetch(ctx, "file:"+tp+"@"+fileDigest(t, tp).String(), PullIfNotPresent); err != nil {
		t.Errorf("file:PATH@its digest: %v", err)
	}
	other := fileDigest(t, filepath.Join(bytecodeDir, "xdp_counter.bpf.o"))
	if _, err := e.chain.Fetch(ctx, "file:"+tp+"@"+other.String(), PullIfNotPresent); !errors.Is(err, artifact.ErrDigestMismatch) {
		t.Errorf("file:PATH@another digest: %v, want ErrDigestMismatch", err)
	}
	var pe *PullError
	if _, err := e.chain.Fetch(ctx, "file:"+filepath.Join(bytecodeDir, "missing.bpf.o"), PullIfNotPresent); !errors.Is(err, artifact.ErrNotFound) || !errors.As(err, &pe) {
		t.Errorf("missing local file: %v, want not found", err)
	}
	var denial *verify.DenialError
	if _, err := e.chain.Fetch(ctx, "file:/etc/passwd", PullIfNotPresent); !errors.As(err, &denial) || denial.Reason != verify.ReasonOutOfScope {
		t.Errorf("file outside the rule: %v, want an out-of-scope denial", err)
	}
}

// fileDigest returns the digest of the file at path.
func fileDigest(t *testing.T, path string) digest.Digest {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return digest.FromBytes(data)
}

// TestOpenCacheDamagedIndex: a cache whose index.json was cut short (a
// crash while it was written) opens empty of tags, the index set aside.
func TestOpenCacheDamagedIndex(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), []byte(`{"schemaVersion":2,"manif`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := openCache(context.Background(), dir, artifact.Limits{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.resolve(context.Background(), "sha256:"+strings.Repeat("0", 64)); ok || err != nil {
		t.Errorf("resolve in an empty cache: %v, %v", ok, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json.damaged")); err != nil {
		t.Errorf("damaged index not set aside: %v", err)
	}
}

// BenchmarkFetchCachedDigest is the supply chain's part of a load from a
// cached digest: resolve in the cache, read and check the objects, verify
// the signature under the policy.
func BenchmarkFetchCachedDigest(b *testing.B) {
	dir := b.TempDir()
	key, err := testimage.NewKey(dir, "key")
	if err != nil {
		b.Fatal(err)
	}
	ref, err := testimage.Build(context.Background(), "oci:"+filepath.Join(dir, "images", "tp")+":v1", filepath.Join(bytecodeDir, "tracepoint_counter.bpf.o"))
	if err != nil {
		b.Fatal(err)
	}
	if err := key.Sign(context.Background(), ref, verify.FormatBundle); err != nil {
		b.Fatal(err)
	}
	policy := filepath.Join(dir, "policy.yaml")
	if err := testimage.WritePolicy(policy, testimage.Rule{Name: "images", Images: []string{"oci:" + dir + "/images/**"}, Keys: []string{key.PubFile}}); err != nil {
		b.Fatal(err)
	}
	c, err := Open(context.Background(), Options{CacheDir: filepath.Join(dir, "cache"), PolicyFile: policy})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Fetch(context.Background(), ref, PullIfNotPresent); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Fetch(context.Background(), ref, PullIfNotPresent); err != nil {
			b.Fatal(err)
		}
	}
}
