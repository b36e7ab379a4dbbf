package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc/codes"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/verify"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// The attacks on the load path, each against the daemon serving on its
// socket and a registry process: a client with socket access only tries
// to get the daemon to admit what the node's trust policy does not, or to
// deny what it does.

// copyTo copies the artifact ref names, without its referrers, to the
// repository or layout name (tagged v1) and returns name@digest.
func copyTo(t *testing.T, ref, name string) string {
	t.Helper()
	ctx := context.Background()
	src, root := openRef(t, ref)
	r, err := artifact.ParseReference(name + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	dst, err := artifact.Open(ctx, r, artifact.OpenOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := artifact.Copy(ctx, src, root, dst, "v1", artifact.CopyOptions{SkipReferrers: true}); err != nil {
		t.Fatal(err)
	}
	return name + "@" + root.Digest.String()
}

var everyPullPolicy = []pb.PullPolicy{pb.PullPolicy_PULL_POLICY_IF_NOT_PRESENT, pb.PullPolicy_PULL_POLICY_NEVER, pb.PullPolicy_PULL_POLICY_ALWAYS}

// loadWith loads a tracepoint program of ref under a pull policy.
func (td *testDaemon) loadWith(ref string, pull pb.PullPolicy, tp string) (*pb.LoadResponse, error) {
	return td.client.Load(context.Background(), &pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: ref, PullPolicy: pull},
		Programs: []*pb.LoadProgram{tracepointProg("tracepoint_counter", tp)}})
}

// TestCacheLaunderingThroughAPI: a probe signed by the platform key alone
// is denied under its own name (two keys required, tracepoints only), and
// so cached with its signatures. Asking for its digest under names whose
// rules are laxer (allowUnsigned, in a layout and a registry; mode warn; a
// threshold of one) never admits it, under any pull policy: nothing exists
// at those names. Where the artifact really is at the lax name, the lax
// rule admits it: the refusals are the origin's, not an accident.
func TestCacheLaunderingThroughAPI(t *testing.T) {
	reg := testutil.StartRegistry(t)
	td := newTestDaemon(t)
	obsKey := newSigner(t)
	mirror := filepath.Join(td.dir, "mirror")
	policy := fmt.Sprintf(`apiVersion: bpfd.io/v1alpha1
kind: TrustPolicy
default: deny
rules:
- name: obs
  images: [%[1]q]
  authorities: [{key: {path: %[2]q}}, {key: {path: %[3]q}}]
  threshold: 2
  allow: {programTypes: [tracepoint]}
- name: unsigned-mirror
  images: [%[4]q, %[5]q]
  allowUnsigned: true
- name: warn
  images: [%[6]q]
  authorities: [{key: {path: %[3]q}}]
  mode: warn
- name: one-key
  images: [%[7]q]
  authorities: [{key: {path: %[2]q}}, {key: {path: %[3]q}}]
`, reg.Host+"/bpf/obs/*", td.key.pub, obsKey.pub, "oci:"+mirror+"/**", reg.Host+"/mirror/**", reg.Host+"/warn/**", reg.Host+"/one-key/**")
	if err := os.WriteFile(td.cfg.PolicyFile, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := td.d.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	const tp = "syscalls/sys_enter_getpid"
	ref := buildArtifact(t, reg.Host+"/bpf/obs/probe:v1", "tracepoint_counter.bpf.o")
	td.key.sign(t, ref, verify.FormatBundle)
	_, err := td.loadWith(ref, pb.PullPolicy_PULL_POLICY_IF_NOT_PRESENT, tp)
	wantCode(t, err, codes.PermissionDenied, "threshold")
	digest := strings.SplitN(ref, "@", 2)[1]

	before := td.snapshot(t)
	for _, name := range []string{"oci:" + mirror + "/x", reg.Host + "/mirror/x", reg.Host + "/warn/x", reg.Host + "/one-key/x"} {
		for _, pull := range everyPullPolicy {
			resp, err := td.loadWith(name+"@"+digest, pull, tp)
			if err == nil {
				t.Errorf("%s@%s under %v: laundered: loaded %v", name, digest, pull, resp.GetPrograms())
				continue
			}
			wantCode(t, err, codes.NotFound)
		}
	}
	td.assertUnchanged(t, before)

	// At the lax name for real, the lax rule judges it there.
	laundered := copyTo(t, ref, reg.Host+"/one-key/x")
	td.key.sign(t, laundered, verify.FormatBundle)
	p := td.mustLoad(t, laundered, tracepointProg("tracepoint_counter", tp))[0]
	if p.GetProvenance().GetRule() != "one-key" || p.GetProvenance().GetOrigin() != reg.Host+"/one-key/x" {
		t.Errorf("provenance %v: want rule one-key, origin %s/one-key/x", p.GetProvenance(), reg.Host)
	}
	// ... but not copies without their signatures.
	_, err = td.loadWith(copyTo(t, ref, reg.Host+"/one-key/unsigned"), pb.PullPolicy_PULL_POLICY_IF_NOT_PRESENT, tp)
	wantCode(t, err, codes.PermissionDenied, "unsigned")
}

// TestUncoveredPullThroughAPI: a name no rule covers is refused before the
// daemon sends its registry a single request.
func TestUncoveredPullThroughAPI(t *testing.T) {
	reg := testutil.StartRegistry(t)
	proxy := testutil.StartFaultProxy(t, reg.Host)
	td := newTestDaemon(t)
	ref := buildArtifact(t, reg.Host+"/uncovered/probe:v1", "tracepoint_counter.bpf.o")
	var requests atomic.Int64
	proxy.SetFaults(func(*http.Request) testutil.Fault { requests.Add(1); return testutil.Fault{} })
	before := td.snapshot(t)
	for _, r := range []string{proxy.Host + "/uncovered/probe:v1", proxy.Host + "/uncovered/probe@" + strings.SplitN(ref, "@", 2)[1]} {
		for _, pull := range everyPullPolicy {
			_, err := td.loadWith(r, pull, "syscalls/sys_enter_getpid")
			wantCode(t, err, codes.PermissionDenied, "out-of-scope")
		}
		_, err := td.client.PullImage(context.Background(), &pb.PullImageRequest{Bytecode: &pb.Bytecode{Reference: r}})
		wantCode(t, err, codes.PermissionDenied, "out-of-scope")
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("the registry of an uncovered name got %d requests, want none", n)
	}
	td.assertUnchanged(t, before)
	list, err := td.client.ListCache(context.Background(), &pb.ListCacheRequest{})
	if err != nil || len(list.GetEntries()) != 0 {
		t.Errorf("cache after uncovered pulls: %v (%v), want empty", list.GetEntries(), err)
	}
}

// TestReferrerFloodThroughAPI: an attacker serves a copy of a legitimate
// digest with 1,001 junk referrers under a name of its own (a layout: a
// registry without the referrers API takes minutes to accept so many).
// Pulling it is a denial (it is unsigned there), never an error that
// sticks to the digest: the legitimate origin's artifact keeps loading
// under every pull policy.
func TestReferrerFloodThroughAPI(t *testing.T) {
	td := newTestDaemon(t)
	const tp = "syscalls/sys_enter_getpid"
	good := td.image(t, "good", true, "tracepoint_counter.bpf.o")
	floodDir := filepath.Join(td.images, "flood")
	flood := copyTo(t, good, "oci:"+floodDir)
	pushJunkReferrers(t, floodDir, rootOf(t, good), 1001)

	p := td.mustLoad(t, good, tracepointProg("tracepoint_counter", tp))[0]
	td.unload(t, p.GetId())
	before := td.snapshot(t)
	_, err := td.loadWith(flood, pb.PullPolicy_PULL_POLICY_IF_NOT_PRESENT, tp)
	wantCode(t, err, codes.PermissionDenied, "unsigned")
	td.assertUnchanged(t, before)
	for _, pull := range everyPullPolicy {
		resp, err := td.loadWith(good, pull, tp)
		if err != nil {
			t.Errorf("the legitimate origin under %v after the flood: %v", pull, err)
			continue
		}
		td.unload(t, ids(resp.GetPrograms())...)
	}
	// The flooded origin again: a denial again, not an error.
	_, err = td.loadWith(flood, pb.PullPolicy_PULL_POLICY_ALWAYS, tp)
	wantCode(t, err, codes.PermissionDenied, "unsigned")
}

// pushJunkReferrers writes n manifests of an unknown artifact type whose
// subject is subject into the layout dir.
func pushJunkReferrers(t *testing.T, dir string, subject ocispec.Descriptor, n int) {
	t.Helper()
	ctx := context.Background()
	store, err := oci.NewWithContext(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	empty := ocispec.DescriptorEmptyJSON
	if err := store.Push(ctx, empty, bytes.NewReader(empty.Data)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
		t.Fatal(err)
	}
	subject = ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	store.AutoSaveIndex = false
	for i := range n {
		m := ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, ArtifactType: "application/vnd.example.junk",
			Config: empty, Layers: []ocispec.Descriptor{empty}, Subject: &subject,
			Annotations: map[string]string{"n": strconv.Itoa(i)},
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Push(ctx, content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, b), bytes.NewReader(b)); err != nil {
			t.Fatalf("junk referrer %d: %v", i, err)
		}
	}
	if err := store.SaveIndex(); err != nil {
		t.Fatal(err)
	}
	refs, err := registry.Referrers(ctx, store, subject, "")
	if err != nil || len(refs) != n {
		t.Fatalf("the layout holds %d referrers (%v), want %d", len(refs), err, n)
	}
}

// TestMediaTypePoisoningThroughAPI: an attacker's origin serves a
// legitimate digest labelled as an index. Whatever it does to a pull from
// there, the media type the cache records is that of the verified content,
// and the legitimate origin's loads by digest keep working.
func TestMediaTypePoisoningThroughAPI(t *testing.T) {
	reg := testutil.StartRegistry(t)
	proxy := testutil.StartFaultProxy(t, reg.Host)
	td := newTestDaemon(t)
	td.writePolicy(t, policyRule{Name: "registry", Images: []string{reg.Host + "/**", proxy.Host + "/**"}, Keys: []string{td.key.pub}})
	if err := td.d.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	const tp = "syscalls/sys_enter_getpid"
	good := buildArtifact(t, reg.Host+"/good/probe:v1", "tracepoint_counter.bpf.o")
	td.key.sign(t, good, verify.FormatBundle)
	root := rootOf(t, good)
	copyTo(t, good, reg.Host+"/poison/probe")
	td.key.sign(t, reg.Host+"/poison/probe@"+root.Digest.String(), verify.FormatBundle)
	proxy.SetFaults(func(r *http.Request) testutil.Fault {
		if strings.HasSuffix(r.URL.Path, "/manifests/"+root.Digest.String()) || strings.HasSuffix(r.URL.Path, "/manifests/v1") {
			return testutil.Fault{Header: map[string]string{"Content-Type": ocispec.MediaTypeImageIndex}}
		}
		return testutil.Fault{}
	})
	// A layout whose index labels the manifest an index, signed there.
	poisonDir := filepath.Join(td.images, "poison")
	poisonedLayout := copyTo(t, good, "oci:"+poisonDir)
	td.key.sign(t, poisonedLayout, verify.FormatBundle)
	relabel(t, poisonDir, root, ocispec.MediaTypeImageIndex)

	before := td.snapshot(t)
	for _, poisoned := range []string{proxy.Host + "/poison/probe@" + root.Digest.String(), poisonedLayout} {
		for _, pull := range []pb.PullPolicy{pb.PullPolicy_PULL_POLICY_IF_NOT_PRESENT, pb.PullPolicy_PULL_POLICY_ALWAYS} {
			if resp, err := td.loadWith(poisoned, pull, tp); err == nil {
				// Labelled wrongly, but the bytes are the artifact's:
				// if it loads, it loads as what it is.
				td.unload(t, ids(resp.GetPrograms())...)
			} else if st := statusReason(err); st == "" {
				t.Errorf("the poisoned origin %s under %v: %v, want a classified error", poisoned, pull, err)
			}
		}
	}
	td.assertUnchanged(t, before)
	for _, pull := range everyPullPolicy {
		resp, err := td.loadWith(good, pull, tp)
		if err != nil {
			t.Errorf("the legitimate origin under %v after the poisoned one: %v", pull, err)
			continue
		}
		td.unload(t, ids(resp.GetPrograms())...)
	}
	list, err := td.client.ListCache(context.Background(), &pb.ListCacheRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range list.GetEntries() {
		if e.GetDigest() == root.Digest.String() && e.GetMediaType() != ocispec.MediaTypeImageManifest {
			t.Errorf("cache records %s as %s, want %s", e.GetDigest(), e.GetMediaType(), ocispec.MediaTypeImageManifest)
		}
	}
}

// relabel rewrites the media type of d's descriptors in the layout's
// index.json.
func relabel(t *testing.T, dir string, d ocispec.Descriptor, mediaType string) {
	t.Helper()
	path := filepath.Join(dir, "index.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var index ocispec.Index
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := range index.Manifests {
		if index.Manifests[i].Digest == d.Digest {
			index.Manifests[i].MediaType = mediaType
			n++
		}
	}
	if n == 0 {
		t.Fatalf("%s lists no %s", path, d.Digest)
	}
	if b, err = json.Marshal(index); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSigTagOverwriteThroughAPI: two origins serve one digest, each with a
// cosign .sig tag: the legitimate one signed by the trusted key, the
// attacker's by its own. Pulling the attacker's never changes what the
// legitimate origin's name is judged with.
func TestSigTagOverwriteThroughAPI(t *testing.T) {
	reg := testutil.StartRegistry(t)
	td := newTestDaemon(t)
	attacker := newSigner(t)
	td.writePolicy(t, policyRule{Name: "registry", Images: []string{reg.Host + "/**"}, Keys: []string{td.key.pub}})
	if err := td.d.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	const tp = "syscalls/sys_enter_getpid"
	good := buildArtifact(t, reg.Host+"/good/probe:v1", "tracepoint_counter.bpf.o")
	td.key.sign(t, good, verify.FormatLegacy)
	evil := copyTo(t, good, reg.Host+"/evil/probe")
	attacker.sign(t, evil, verify.FormatLegacy)

	p := td.mustLoad(t, good, tracepointProg("tracepoint_counter", tp))[0]
	td.unload(t, p.GetId())
	_, err := td.loadWith(evil, pb.PullPolicy_PULL_POLICY_ALWAYS, tp)
	wantCode(t, err, codes.PermissionDenied, "untrusted-key")
	for _, pull := range everyPullPolicy {
		resp, err := td.loadWith(good, pull, tp)
		if err != nil {
			t.Errorf("the legitimate origin under %v after the attacker's .sig: %v", pull, err)
			continue
		}
		td.unload(t, ids(resp.GetPrograms())...)
	}
	// And the other way round: the attacker's name never borrows the
	// legitimate .sig.
	_, err = td.loadWith(evil, pb.PullPolicy_PULL_POLICY_NEVER, tp)
	wantCode(t, err, codes.PermissionDenied, "untrusted-key")
}

// TestOversizedLayerThroughAPI: a signed artifact whose layer is 200 MiB,
// over cache.limits.blobSize (64 MiB), is refused from its manifest,
// naming the limit: the registry never serves a byte of the layer, and
// nothing is loaded or cached.
func TestOversizedLayerThroughAPI(t *testing.T) {
	f := newFaultyRegistry(t)
	ctx := context.Background()
	_, small, _ := f.push(t, "small", "tracepoint_counter.bpf.o")
	m := remoteManifest(t, strings.Replace(small, f.proxy.Host, f.reg.Host, 1))
	repo, err := remote.NewRepository(f.reg.Host + "/faults/oversized")
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	data := make([]byte, 200<<20)
	rand.Read(data)
	layer := content.NewDescriptorFromBytes(m.Layers[0].MediaType, data)
	layer.Annotations = m.Layers[0].Annotations
	if err := repo.Push(ctx, layer, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	data = nil
	config := remoteBlob(t, strings.Replace(small, f.proxy.Host, f.reg.Host, 1), &m.Config)
	if err := repo.Push(ctx, m.Config, bytes.NewReader(config)); err != nil {
		t.Fatal(err)
	}
	m.Layers = []ocispec.Descriptor{layer}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	root := content.NewDescriptorFromBytes(m.MediaType, b)
	if err := repo.PushReference(ctx, root, bytes.NewReader(b), "v1"); err != nil {
		t.Fatal(err)
	}
	f.td.key.sign(t, f.reg.Host+"/faults/oversized@"+root.Digest.String(), verify.FormatBundle)

	var layerGets atomic.Int64
	f.proxy.SetFaults(func(r *http.Request) testutil.Fault {
		if blob("oversized", layer.Digest)(r) {
			layerGets.Add(1)
		}
		return testutil.Fault{}
	})
	before := f.td.snapshot(t)
	for _, ref := range []string{f.proxy.Host + "/faults/oversized:v1", f.proxy.Host + "/faults/oversized@" + root.Digest.String()} {
		_, err := f.td.loadWith(ref, pb.PullPolicy_PULL_POLICY_ALWAYS, "syscalls/sys_enter_getpid")
		wantCode(t, err, codes.FailedPrecondition, "BlobSize")
		_, err = f.td.client.PullImage(ctx, &pb.PullImageRequest{Bytecode: &pb.Bytecode{Reference: ref}})
		wantCode(t, err, codes.FailedPrecondition, "BlobSize")
	}
	if n := layerGets.Load(); n != 0 {
		t.Errorf("the registry served the oversized layer %d times", n)
	}
	f.settle()
	f.td.assertUnchanged(t, before)
	assertNotCached(t, f.td.cfg.CacheDir, layer.Digest)
}
