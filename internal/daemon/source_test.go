package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"oras.land/oras-go/v2/content/oci"

	"github.com/bpfd-dev/bpfd/internal/testing/testimage"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// sourceEnv is a Source over a cache and a policy in a temporary directory,
// with artifacts in OCI layouts under dir/images.
type sourceEnv struct {
	dir      string
	images   string
	policy   string
	cacheDir string
	key      *signer
	metrics  *Metrics
	src      *Source
}

func newSourceEnv(t *testing.T) *sourceEnv {
	t.Helper()
	dir := t.TempDir()
	e := &sourceEnv{
		dir:      dir,
		images:   filepath.Join(dir, "images"),
		policy:   filepath.Join(dir, "policy.yaml"),
		cacheDir: filepath.Join(dir, "cache"),
		key:      newSigner(t),
		metrics:  NewMetrics(testLogger(t)),
	}
	writePolicy(t, e.policy, policyRule{Name: "images", Images: []string{"oci:" + e.images + "/**"}, Keys: []string{e.key.pub}})
	e.open(t)
	return e
}

func (e *sourceEnv) open(t *testing.T) {
	t.Helper()
	src, err := NewSource(context.Background(), SourceOptions{CacheDir: e.cacheDir, PolicyFile: e.policy, Logger: testLogger(t), Metrics: e.metrics})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	e.src = src
}

// signed builds and signs an artifact of objects at images/name:v1 and
// returns its tag reference and its digest reference.
func (e *sourceEnv) signed(t *testing.T, name string, objects ...string) (tagRef, digestRef string) {
	t.Helper()
	tagRef = "oci:" + filepath.Join(e.images, name) + ":v1"
	digestRef = buildArtifact(t, tagRef, objects...)
	e.key.sign(t, digestRef, verify.FormatBundle)
	return tagRef, digestRef
}

func (e *sourceEnv) hitsMisses() [2]float64 {
	return [2]float64{promtest.ToFloat64(e.metrics.cacheHits), promtest.ToFloat64(e.metrics.cacheMisses)}
}

func TestSourcePullPolicies(t *testing.T) {
	e := newSourceEnv(t)
	ctx := context.Background()
	tagRef, digestRef := e.signed(t, "xdp", "xdp_counter.bpf.o")
	dgst := strings.SplitN(digestRef, "@", 2)[1]

	steps := []struct {
		name       string
		ref        string
		policy     runtime.PullPolicy
		wantErr    error
		hitsMisses [2]float64
	}{
		{"never before any pull", digestRef, runtime.PullNever, ErrNotCached, [2]float64{0, 0}},
		{"tag pulls", tagRef, runtime.PullIfNotPresent, nil, [2]float64{0, 1}},
		{"digest from the cache", digestRef, runtime.PullIfNotPresent, nil, [2]float64{1, 1}},
		{"tag resolved again, content cached", tagRef, runtime.PullIfNotPresent, nil, [2]float64{2, 1}},
		{"tag from the cache", tagRef, runtime.PullNever, nil, [2]float64{3, 1}},
		{"always pulls", digestRef, runtime.PullAlways, nil, [2]float64{3, 2}},
		{"unknown tag never pulled", strings.Replace(tagRef, ":v1", ":v2", 1), runtime.PullNever, ErrNotCached, [2]float64{3, 2}},
	}
	for _, s := range steps {
		bc, err := e.src.Bytecode(ctx, s.ref, s.policy)
		if s.wantErr != nil {
			if !errors.Is(err, s.wantErr) {
				t.Fatalf("%s: %v, want %v", s.name, err, s.wantErr)
			}
		} else if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		} else {
			want := runtime.Provenance{Reference: s.ref, Digest: dgst, Signer: fingerprint(t, e.key.pub), Rule: "images", PolicyFingerprint: e.src.PolicyFingerprint()}
			if diff := cmp.Diff(want, bc.Provenance); diff != "" {
				t.Errorf("%s: provenance (-want +got):\n%s", s.name, diff)
			}
			if len(bc.Objects) != 1 || bc.Objects[0].Name != "xdp_counter.bpf.o" || len(bc.Objects[0].ELF) == 0 {
				t.Errorf("%s: objects %v", s.name, bc.Objects)
			}
		}
		if got := e.hitsMisses(); got != s.hitsMisses {
			t.Errorf("%s: cache hits, misses = %v, want %v", s.name, got, s.hitsMisses)
		}
	}

	// The cache records the admission, and stays readable as a layout.
	entry := e.src.cache.entry(ocispec.Descriptor{Digest: digest.Digest(dgst)})
	if entry.Admission == nil || entry.Admission.Policy != e.src.PolicyFingerprint() || entry.Admission.Rule != "images" || entry.Admission.Decision != "allow" {
		t.Errorf("cache entry %+v: want an admission by rule images under the policy in force", entry)
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
	if _, err := e.src.Bytecode(ctx, digestRef, runtime.PullIfNotPresent); err != nil {
		t.Errorf("digest without its origin: %v", err)
	}
	if _, err := e.src.Bytecode(ctx, tagRef, runtime.PullIfNotPresent); !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("tag without its origin: %v, want not found", err)
	}
}

func fingerprint(t *testing.T, pubFile string) string {
	t.Helper()
	data, err := os.ReadFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := verify.ParsePublicKey(data)
	if err != nil {
		t.Fatal(err)
	}
	return pub.Fingerprint()
}

// TestSourceRegistryDown pulls from a real registry, kills it, and loads
// again: a cached digest still loads with IfNotPresent, a tag fails closed
// (Unavailable), Never serves the tag pulled before.
func TestSourceRegistryDown(t *testing.T) {
	reg := testutil.StartRegistry(t)
	e := newSourceEnv(t)
	writePolicy(t, e.policy, policyRule{Name: "registry", Images: []string{reg.Host + "/net/*"}, Keys: []string{e.key.pub}})
	if _, err := e.src.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tagRef := reg.Host + "/net/xdp:v1"
	digestRef := buildArtifact(t, tagRef, "xdp_counter.bpf.o")
	e.key.sign(t, digestRef, verify.FormatLegacy)

	if _, err := e.src.Bytecode(ctx, tagRef, runtime.PullIfNotPresent); err != nil {
		t.Fatalf("pull by tag: %v", err)
	}
	reg.Stop()

	cases := map[string]struct {
		ref    string
		policy runtime.PullPolicy
		want   codes.Code
	}{
		"digest, IfNotPresent": {digestRef, runtime.PullIfNotPresent, codes.OK},
		"digest, Never":        {digestRef, runtime.PullNever, codes.OK},
		"tag, Never":           {tagRef, runtime.PullNever, codes.OK},
		"tag, IfNotPresent":    {tagRef, runtime.PullIfNotPresent, codes.Unavailable},
		"digest, Always":       {digestRef, runtime.PullAlways, codes.Unavailable},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := e.src.Bytecode(ctx, tc.ref, tc.policy)
			if got := statusCode(err); got != tc.want {
				t.Fatalf("%v (code %v), want code %v", err, got, tc.want)
			}
		})
	}
}

// TestSourceRepairsDamagedCache damages cached blobs: a damaged layer is
// detected by its digest and pulled again; under Never it is an error; a
// damaged signature is pulled again before it could deny.
func TestSourceRepairsDamagedCache(t *testing.T) {
	e := newSourceEnv(t)
	ctx := context.Background()
	_, digestRef := e.signed(t, "xdp", "xdp_counter.bpf.o")
	want, err := e.src.Bytecode(ctx, digestRef, runtime.PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	manifest := readManifest(t, e.cacheDir, rootOf(t, digestRef))
	layer := manifest.Layers[0]

	damage(t, e.cacheDir, layer.Digest)
	got, err := e.src.Bytecode(ctx, digestRef, runtime.PullIfNotPresent)
	if err != nil {
		t.Fatalf("load after damaging the cached layer: %v", err)
	}
	if !cmp.Equal(want.Objects, got.Objects) {
		t.Error("objects differ after the repair")
	}
	if n := promtest.ToFloat64(e.metrics.cacheRepairs); n != 1 {
		t.Errorf("%v repairs counted, want 1", n)
	}

	damage(t, e.cacheDir, layer.Digest)
	_, err = e.src.Bytecode(ctx, digestRef, runtime.PullNever)
	if !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("Never with a damaged cache: %v, want not cached, damaged", err)
	}
	if _, err := e.src.Bytecode(ctx, digestRef, runtime.PullIfNotPresent); err != nil {
		t.Fatalf("load after a Never found damage: %v", err)
	}

	// Damage the signature: the cached copy no longer verifies; it is
	// repaired from the origin before the policy's verdict.
	for _, d := range signatureBlobs(t, e.cacheDir, rootOf(t, digestRef)) {
		damage(t, e.cacheDir, d)
	}
	if _, err := e.src.Bytecode(ctx, digestRef, runtime.PullIfNotPresent); err != nil {
		t.Fatalf("load after damaging the cached signature: %v", err)
	}
	if _, err := e.src.Bytecode(ctx, digestRef, runtime.PullNever); err != nil {
		t.Fatalf("the repaired signature from the cache: %v", err)
	}
}

func readManifest(t *testing.T, layout string, desc ocispec.Descriptor) ocispec.Manifest {
	t.Helper()
	data, err := os.ReadFile(blobPath(layout, desc.Digest))
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
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
		for _, l := range readManifest(t, layout, p).Layers {
			out = append(out, l.Digest)
		}
	}
	return out
}

func blobPath(layout string, d digest.Digest) string {
	return filepath.Join(layout, "blobs", d.Algorithm().String(), d.Encoded())
}

// damage flips the first byte of a blob in a layout.
func damage(t *testing.T, layout string, d digest.Digest) {
	t.Helper()
	path := blobPath(layout, d)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[0] ^= 0xff
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o444); err != nil {
		t.Fatal(err)
	}
}

// TestSourceDenials: what the policy refuses comes back as a
// *verify.DenialError with its reason; content that does not match its
// digest is refused too.
func TestSourceDenials(t *testing.T) {
	e := newSourceEnv(t)
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
	damage(t, tamperedDir, readManifest(t, tamperedDir, rootOf(t, tampered)).Layers[0].Digest)

	// Signed by the trusted key, but outside the images the rule covers.
	outside := buildArtifact(t, "oci:"+filepath.Join(e.dir, "outside")+":v1", "xdp_counter.bpf.o")
	trusted.sign(t, outside, verify.FormatBundle)

	cases := map[string]struct {
		ref        string
		wantReason verify.Reason
		wantErr    error
		wantCode   codes.Code
	}{
		"unsigned":         {ref: unsigned, wantReason: verify.ReasonUnsigned, wantCode: codes.PermissionDenied},
		"untrusted key":    {ref: otherOnly, wantReason: verify.ReasonUntrustedKey, wantCode: codes.PermissionDenied},
		"replayed":         {ref: replayed, wantReason: verify.ReasonDigestMismatch, wantCode: codes.PermissionDenied},
		"out of scope":     {ref: outside, wantReason: verify.ReasonOutOfScope, wantCode: codes.PermissionDenied},
		"tampered content": {ref: tampered, wantErr: artifact.ErrDigestMismatch, wantCode: codes.PermissionDenied},
		"missing layout":   {ref: "oci:" + filepath.Join(e.dir, "nowhere") + ":v1", wantErr: artifact.ErrNotFound, wantCode: codes.NotFound},
		"bad reference":    {ref: "oci:", wantErr: artifact.ErrInvalidReference, wantCode: codes.InvalidArgument},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := e.src.Bytecode(ctx, tc.ref, runtime.PullIfNotPresent)
			var denial *verify.DenialError
			if tc.wantReason != "" && (!errors.As(err, &denial) || denial.Reason != tc.wantReason) {
				t.Fatalf("%v, want a denial for %s", err, tc.wantReason)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("%v, want %v", err, tc.wantErr)
			}
			if got := statusCode(err); got != tc.wantCode {
				t.Errorf("code %v, want %v (%v)", got, tc.wantCode, err)
			}
		})
	}
	if n := promtest.ToFloat64(e.metrics.verifications.WithLabelValues("deny", "unsigned")); n < 1 {
		t.Errorf("deny/unsigned counted %v times", n)
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

// TestSourcePolicyReload: a denial turns into an admission once the policy
// trusts the signer, and an invalid policy file keeps the policy in force.
func TestSourcePolicyReload(t *testing.T) {
	e := newSourceEnv(t)
	ctx := context.Background()
	other := newSigner(t)
	ref := buildArtifact(t, "oci:"+filepath.Join(e.images, "xdp")+":v1", "xdp_counter.bpf.o")
	other.sign(t, ref, verify.FormatBundle)

	var denial *verify.DenialError
	if _, err := e.src.Bytecode(ctx, ref, runtime.PullIfNotPresent); !errors.As(err, &denial) {
		t.Fatalf("signed by an untrusted key: %v, want a denial", err)
	}
	before := e.src.PolicyFingerprint()
	writePolicy(t, e.policy, policyRule{Name: "images", Images: []string{"oci:" + e.images + "/**"}, Keys: []string{other.pub}, Kinds: []string{"xdp", "tc"}})
	if changed, err := e.src.ReloadPolicy(); err != nil || !changed {
		t.Fatalf("reload: changed %v, %v", changed, err)
	}
	if e.src.PolicyFingerprint() == before {
		t.Fatal("fingerprint unchanged after a reload with another key")
	}
	bc, err := e.src.Bytecode(ctx, ref, runtime.PullNever)
	if err != nil {
		t.Fatalf("after trusting the signer: %v", err)
	}
	if diff := cmp.Diff([]progtype.Kind{progtype.XDP, progtype.TC}, bc.Provenance.AllowedKinds); diff != "" {
		t.Errorf("allowed kinds (-want +got):\n%s", diff)
	}

	good := e.src.PolicyFingerprint()
	if err := os.WriteFile(e.policy, []byte("apiVersion: bpfd.io/v1alpha1\nkind: TrustPolicy\nrules:\n- name: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := e.src.ReloadPolicy(); !errors.Is(err, verify.ErrInvalidPolicy) {
		t.Fatalf("reload of an invalid policy: %v, want invalid policy", err)
	}
	if e.src.PolicyFingerprint() != good {
		t.Error("an invalid policy replaced the one in force")
	}
	if _, err := e.src.Bytecode(ctx, ref, runtime.PullNever); err != nil {
		t.Errorf("after a failed reload: %v", err)
	}
}

// TestSourceLocalFile: a local object loads only under a rule that allows
// it unsigned, and is read only once admitted.
func TestSourceLocalFile(t *testing.T) {
	e := newSourceEnv(t)
	writePolicy(t, e.policy,
		policyRule{Name: "images", Images: []string{"oci:" + e.images + "/**"}, Keys: []string{e.key.pub}},
		policyRule{Name: "local", Images: []string{"file:" + bytecodeDir + "/**"}, Kinds: []string{"tracepoint"}},
	)
	if _, err := e.src.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bc, err := e.src.Bytecode(ctx, "file:"+filepath.Join(bytecodeDir, "tracepoint_counter.bpf.o"), runtime.PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	want := runtime.Provenance{Reference: "file:" + filepath.Join(bytecodeDir, "tracepoint_counter.bpf.o"), Rule: "local", PolicyFingerprint: e.src.PolicyFingerprint(), AllowedKinds: []progtype.Kind{progtype.Tracepoint}}
	if diff := cmp.Diff(want, bc.Provenance); diff != "" {
		t.Errorf("provenance (-want +got):\n%s", diff)
	}
	// file:PATH@digest loads only the content it names.
	tp := filepath.Join(bytecodeDir, "tracepoint_counter.bpf.o")
	if _, err := e.src.Bytecode(ctx, "file:"+tp+"@"+fileDigest(t, tp).String(), runtime.PullIfNotPresent); err != nil {
		t.Errorf("file:PATH@its digest: %v", err)
	}
	other := fileDigest(t, filepath.Join(bytecodeDir, "xdp_counter.bpf.o"))
	if _, err := e.src.Bytecode(ctx, "file:"+tp+"@"+other.String(), runtime.PullIfNotPresent); !errors.Is(err, artifact.ErrDigestMismatch) {
		t.Errorf("file:PATH@another digest: %v, want ErrDigestMismatch", err)
	}
	if _, err := e.src.Bytecode(ctx, "file:"+filepath.Join(bytecodeDir, "missing.bpf.o"), runtime.PullIfNotPresent); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("missing local file: %v, want not found", err)
	}
	var denial *verify.DenialError
	if _, err := e.src.Bytecode(ctx, "file:/etc/passwd", runtime.PullIfNotPresent); !errors.As(err, &denial) || denial.Reason != verify.ReasonOutOfScope {
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
	c, err := openCache(context.Background(), dir, testLogger(t))
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

// BenchmarkSourceCachedDigest is the Source's part of a load from a cached
// digest: resolve in the cache, read and check the objects, verify the
// signature under the policy.
func BenchmarkSourceCachedDigest(b *testing.B) {
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
	src, err := NewSource(context.Background(), SourceOptions{CacheDir: filepath.Join(dir, "cache"), PolicyFile: policy})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Bytecode(context.Background(), ref, runtime.PullIfNotPresent); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := src.Bytecode(context.Background(), ref, runtime.PullIfNotPresent); err != nil {
			b.Fatal(err)
		}
	}
}
