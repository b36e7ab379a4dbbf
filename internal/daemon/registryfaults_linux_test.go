package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc/codes"
	"oras.land/oras-go/v2/content"

	"github.com/bpfd-dev/bpfd/internal/testing/localregistry"
	"github.com/bpfd-dev/bpfd/internal/testing/testimage"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/verify"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// faultyRegistry is a registry process behind a FaultProxy, and a daemon
// whose policy trusts the test key for the proxy's faults/ repositories.
type faultyRegistry struct {
	reg   *localregistry.Registry
	proxy *testutil.FaultProxy
	td    *testDaemon
}

func newFaultyRegistry(t *testing.T) *faultyRegistry {
	t.Helper()
	reg := testutil.StartRegistry(t)
	f := &faultyRegistry{reg: reg, proxy: testutil.StartFaultProxy(t, reg.Host), td: newTestDaemon(t)}
	f.td.writePolicy(t, policyRule{Name: "faults", Images: []string{f.proxy.Host + "/faults/*"}, Keys: []string{f.td.key.pub}})
	if err := f.td.d.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	return f
}

// settle closes the idle registry connections of the daemon and the
// proxy (all in this process), so that descriptors count what requests
// left open.
func (f *faultyRegistry) settle() {
	f.td.d.chain.Close()
	f.proxy.CloseIdleConnections()
}

// push builds and signs an artifact of the object files at
// faults/name:v1 in the registry; it returns the reference through the
// proxy, by tag and by digest, and the artifact's layer.
func (f *faultyRegistry) push(t *testing.T, name string, objects ...string) (tag, byDigest string, layer ocispec.Descriptor) {
	t.Helper()
	ref := buildArtifact(t, f.reg.Host+"/faults/"+name+":v1", objects...)
	f.td.key.sign(t, ref, verify.FormatBundle)
	d := strings.SplitN(ref, "@", 2)[1]
	m := remoteManifest(t, f.reg.Host+"/faults/"+name+"@"+d)
	return f.proxy.Host + "/faults/" + name + ":v1", f.proxy.Host + "/faults/" + name + "@" + d, m.Layers[0]
}

// blob matches the GET of one blob (or manifest, by digest) of repository
// faults/name.
func blob(name string, d digest.Digest) func(*http.Request) bool {
	return func(r *http.Request) bool {
		return r.Method == http.MethodGet && (r.URL.Path == "/v2/faults/"+name+"/blobs/"+d.String() || r.URL.Path == "/v2/faults/"+name+"/manifests/"+d.String())
	}
}

// TestRegistryKilledMidPull kills the registry while the daemon pulls a
// 48 MiB artifact from it: the load fails closed with Unavailable, naming
// the registry, and leaves nothing loaded and no partial blob in the cache.
// Once the registry is back the same load succeeds.
func TestRegistryKilledMidPull(t *testing.T) {
	f := newFaultyRegistry(t)
	big := paddedObject(t, "tracepoint_counter.bpf.o", 48<<20)
	tag, _, layer := f.push(t, "big", big)
	prog := tracepointProg("tracepoint_counter", "syscalls/sys_enter_getpid")

	killed := make(chan struct{})
	f.proxy.SetFaults(func(r *http.Request) testutil.Fault {
		if !blob("big", layer.Digest)(r) {
			return testutil.Fault{}
		}
		return testutil.Fault{After: 8 << 20, Then: func() {
			close(killed) // first: the cut may end the load before Stop returns
			f.reg.Stop()  // SIGKILL
			f.proxy.Down()
		}}
	})
	before := f.td.snapshot(t)
	_, err := f.td.load(t, tag, prog)
	select {
	case <-killed:
	default:
		t.Fatalf("the load ended (%v) before the registry was killed", err)
	}
	wantCode(t, err, codes.Unavailable, f.proxy.Host)
	t.Logf("load while the registry died: %v", err)
	f.settle()
	f.td.assertUnchanged(t, before)
	assertNotCached(t, f.td.cfg.CacheDir, layer.Digest)

	// The registry comes back, on the same storage and address.
	reg, err := localregistry.Start(testutil.Tool(t, "registry"), filepath.Dir(f.reg.Dir), localregistry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	f.proxy.SetFaults(nil)
	f.proxy.SetUpstream(reg.Host)
	f.proxy.Up(t)
	p := f.td.mustLoad(t, tag, prog)[0]
	f.td.unload(t, p.GetId())
}

// TestSlowRegistry: a registry slow to answer every request still serves
// a load, more slowly; one that stops sending in the middle of a blob holds
// the load only until the client's deadline or, without one, the daemon's
// stall timeout, leaves nothing behind and does not hold up the next load
// of the same artifact.
func TestSlowRegistry(t *testing.T) {
	f := newFaultyRegistry(t)
	tag, _, layer := f.push(t, "slow", "tracepoint_counter.bpf.o")
	prog := tracepointProg("tracepoint_counter", "syscalls/sys_enter_getpid")

	const delay = 200 * time.Millisecond
	requests := 0
	f.proxy.SetFaults(func(*http.Request) testutil.Fault { requests++; return testutil.Fault{Delay: delay} })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	resp, err := f.td.client.Load(ctx, &pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: tag}, Programs: []*pb.LoadProgram{prog}})
	if err != nil {
		t.Fatalf("load from a registry answering after %v: %v", delay, err)
	}
	t.Logf("load from a registry answering each of %d requests after %v: %v", requests, delay, time.Since(start).Round(time.Millisecond))
	f.td.unload(t, resp.GetPrograms()[0].GetId())

	// A fresh cache, so that the next load pulls again, and a stall timeout
	// of 2s rather than the default 30s.
	f.td.stop(t)
	if err := os.RemoveAll(f.td.cfg.CacheDir); err != nil {
		t.Fatal(err)
	}
	f.td.httpClient = artifact.NewHTTPClient(artifact.HTTPClientOptions{StallTimeout: 2 * time.Second})
	f.td.start(t)
	f.proxy.SetFaults(func(r *http.Request) testutil.Fault {
		if blob("slow", layer.Digest)(r) {
			return testutil.Fault{After: 100, Stall: true}
		}
		return testutil.Fault{}
	})
	before := f.td.snapshot(t)
	ctx, cancel = context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start = time.Now()
	_, err = f.td.client.Load(ctx, &pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: tag}, Programs: []*pb.LoadProgram{prog}})
	wantCode(t, err, codes.DeadlineExceeded)
	t.Logf("load from a registry stalled in a blob, with a 1s deadline: %v after %v", err, time.Since(start).Round(time.Millisecond))
	f.settle()
	f.td.assertUnchanged(t, before)
	assertNotCached(t, f.td.cfg.CacheDir, layer.Digest)

	// Without a deadline the daemon gives up on its own once the blob has
	// stalled for the stall timeout (30s by default, 2s here).
	start = time.Now()
	_, err = f.td.load(t, tag, prog)
	wantCode(t, err, codes.Unavailable, f.proxy.Host, "sent nothing for 2s")
	t.Logf("load from a registry stalled in a blob, without a deadline: %v after %v", err, time.Since(start).Round(time.Millisecond))
	f.settle()
	f.td.assertUnchanged(t, before)
	assertNotCached(t, f.td.cfg.CacheDir, layer.Digest)

	f.proxy.SetFaults(nil)
	p := f.td.mustLoad(t, tag, prog)[0]
	f.td.unload(t, p.GetId())
}

// TestRegistryServesOtherContent: a registry (or anything between it and
// bpfd) that answers a request for a digest with other bytes — a valid BPF
// object of the same size that counts by another step, another artifact's
// manifest, another artifact's valid signature — never gets them loaded:
// a pull fails closed with PermissionDenied, and what the cache verified
// before keeps loading, byte for byte.
func TestRegistryServesOtherContent(t *testing.T) {
	evil, evilTag := attackerObject(t)
	prog := tracepointProg("tracepoint_counter", "syscalls/sys_enter_getpid")
	genuineTag := programTag(t, filepath.Join(bytecodeDir, "tracepoint_counter.bpf.o"))
	if evilTag == genuineTag {
		t.Fatalf("the attacker's program has the genuine tag %s", evilTag)
	}

	cases := map[string]struct {
		// cached: the artifact is loaded (and cached) before the fault.
		cached bool
		pull   pb.PullPolicy
		byTag  bool
		// fault is the response the proxy gives instead of the genuine
		// one, for the layer, the manifest or the signature.
		fault func(t *testing.T, f *faultyRegistry, layer, manifest, signature ocispec.Descriptor) func(*http.Request) testutil.Fault
		// code is the load's status; OK loads the cached genuine object.
		code  codes.Code
		parts []string
	}{
		"layer swapped, nothing cached": {byTag: true, fault: swapLayer(evil), code: codes.PermissionDenied, parts: []string{"does not match its digest"}},
		// Always reads the manifest and signatures again, but not a blob
		// whose digest the cache verified (as kubelet's Always): the
		// genuine layer loads.
		"layer swapped, pull policy Always": {cached: true, pull: pb.PullPolicy_PULL_POLICY_ALWAYS, fault: swapLayer(evil), code: codes.OK},
		"layer swapped, cached digest":      {cached: true, pull: pb.PullPolicy_PULL_POLICY_IF_NOT_PRESENT, fault: swapLayer(evil), code: codes.OK},
		"manifest swapped": {byTag: true, code: codes.PermissionDenied, parts: []string{"does not match its digest"},
			fault: func(t *testing.T, f *faultyRegistry, _, manifest, _ ocispec.Descriptor) func(*http.Request) testutil.Fault {
				_, other, _ := f.push(t, "other", evil)
				body := remoteBlob(t, strings.Replace(other, f.proxy.Host, f.reg.Host, 1), nil)
				return func(r *http.Request) testutil.Fault {
					if blob("app", manifest.Digest)(r) {
						return testutil.Fault{Body: body}
					}
					return testutil.Fault{}
				}
			}},
		// The tampered signature is left behind (the copy reports it), so
		// the artifact is unsigned.
		"signature swapped for another artifact's": {byTag: true, code: codes.PermissionDenied, parts: []string{"unsigned"},
			fault: func(t *testing.T, f *faultyRegistry, _, _, signature ocispec.Descriptor) func(*http.Request) testutil.Fault {
				_, other, _ := f.push(t, "other", evil)
				otherRef := strings.Replace(other, f.proxy.Host, f.reg.Host, 1)
				sig := remoteSignature(t, otherRef)
				body := remoteBlob(t, otherRef, &sig)
				return func(r *http.Request) testutil.Fault {
					if blob("app", signature.Digest)(r) {
						return testutil.Fault{Body: body}
					}
					return testutil.Fault{}
				}
			}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFaultyRegistry(t)
			tag, byDigest, layer := f.push(t, "app", filepath.Join(bytecodeDir, "tracepoint_counter.bpf.o"))
			manifest := rootOf(t, strings.Replace(byDigest, f.proxy.Host, f.reg.Host, 1))
			signature := remoteSignature(t, strings.Replace(byDigest, f.proxy.Host, f.reg.Host, 1))
			if tc.cached {
				f.td.unload(t, f.td.mustLoad(t, byDigest, prog)[0].GetId())
			}
			f.proxy.SetFaults(tc.fault(t, f, layer, manifest, signature))
			ref := byDigest
			if tc.byTag {
				ref = tag
			}
			since := lastProgramID(t)
			before := f.td.snapshot(t)
			resp, err := f.td.client.Load(context.Background(), &pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: ref, PullPolicy: tc.pull}, Programs: []*pb.LoadProgram{prog}})
			assertNoProgramTagged(t, since, evilTag)
			if tc.code == codes.OK {
				if err != nil {
					t.Fatalf("load from the verified cache: %v", err)
				}
				if got := resp.GetPrograms()[0].GetKernel().GetTag(); got != genuineTag {
					t.Errorf("loaded program has tag %s, want the genuine %s", got, genuineTag)
				}
				f.td.unload(t, resp.GetPrograms()[0].GetId())
				return
			}
			wantCode(t, err, tc.code, tc.parts...)
			t.Logf("%s: %v", name, err)
			f.settle()
			f.td.assertUnchanged(t, before)
			assertNotCachedBytes(t, f.td.cfg.CacheDir, evil)
			if tc.cached {
				// The verified copy is intact and still loads.
				f.proxy.SetFaults(nil)
				p := f.td.mustLoad(t, byDigest, prog)[0]
				if got := p.GetKernel().GetTag(); got != genuineTag {
					t.Errorf("after the fault the cache loads tag %s, want the genuine %s", got, genuineTag)
				}
				f.td.unload(t, p.GetId())
			}
		})
	}
}

// swapLayer answers the request for the artifact's layer with evil's bytes.
func swapLayer(evil string) func(t *testing.T, f *faultyRegistry, layer, _, _ ocispec.Descriptor) func(*http.Request) testutil.Fault {
	return func(t *testing.T, f *faultyRegistry, layer, _, _ ocispec.Descriptor) func(*http.Request) testutil.Fault {
		body, err := os.ReadFile(evil)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(body)) != layer.Size {
			t.Fatalf("the attacker's object has %d bytes, the layer %d", len(body), layer.Size)
		}
		return func(r *http.Request) testutil.Fault {
			if blob("app", layer.Digest)(r) {
				return testutil.Fault{Body: body}
			}
			return testutil.Fault{}
		}
	}
}

// paddedObject writes a copy of bytecode/name followed by size random
// bytes (which ELF readers ignore) and returns its path: a large, valid
// object.
func paddedObject(t *testing.T, name string, size int) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(bytecodeDir, name))
	if err != nil {
		t.Fatal(err)
	}
	pad := make([]byte, size)
	rand.Read(pad)
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, append(data, pad...), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// attackerObject writes a copy of tracepoint_counter.bpf.o whose counter
// steps by a random amount instead of 1: the same size and programs, a
// valid object the verifier accepts, with a program tag of its own. It
// returns the path and that tag.
func attackerObject(t *testing.T) (string, string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(bytecodeDir, "tracepoint_counter.bpf.o"))
	if err != nil {
		t.Fatal(err)
	}
	// r6 = 1, the increment.
	insn := []byte{0xb7, 0x06, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00}
	if bytes.Count(data, insn) != 1 {
		t.Fatalf("tracepoint_counter.bpf.o: the instruction r6 = 1 is not there exactly once")
	}
	var step [4]byte
	rand.Read(step[:])
	binary.LittleEndian.PutUint32(step[:], binary.LittleEndian.Uint32(step[:])|2)
	evil := bytes.Replace(data, insn, append(insn[:4:4], step[:]...), 1)
	path := filepath.Join(t.TempDir(), "tracepoint_counter.bpf.o")
	if err := os.WriteFile(path, evil, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, programTag(t, path)
}

// programTag loads the tracepoint_counter program of the object at path
// into the kernel, unattached, and returns the tag the kernel gives it.
func programTag(t *testing.T, path string) string {
	t.Helper()
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	info, err := coll.Programs["tracepoint_counter"].Info()
	if err != nil {
		t.Fatal(err)
	}
	return info.Tag
}

// lastProgramID returns the highest kernel program id in use.
func lastProgramID(t *testing.T) ebpf.ProgramID {
	t.Helper()
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return id
		}
		id = next
	}
}

// assertNoProgramTagged fails when a kernel program loaded after since
// carries tag.
func assertNoProgramTagged(t *testing.T, since ebpf.ProgramID, tag string) {
	t.Helper()
	for id := since; ; {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		info, err := p.Info()
		p.Close()
		if err == nil && info.Tag == tag {
			t.Errorf("kernel program %d carries the tag %s of the bytes the registry swapped in", id, tag)
		}
	}
}

// assertNotCached fails when the cache holds blob d or a half-written blob.
func assertNotCached(t *testing.T, cache string, d digest.Digest) {
	t.Helper()
	if _, err := os.Stat(testimage.BlobPath(cache, d)); !os.IsNotExist(err) {
		t.Errorf("the cache holds blob %s (%v)", d, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(cache, "ingest")); len(entries) > 0 {
		t.Errorf("the cache holds %d half-written blobs in ingest/", len(entries))
	}
}

// assertNotCachedBytes fails when any blob of the cache holds the bytes
// of the file at path.
func assertNotCachedBytes(t *testing.T, cache, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	assertNotCached(t, cache, digest.FromBytes(data))
	filepath.WalkDir(filepath.Join(cache, "blobs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, _ := os.ReadFile(p); bytes.Equal(b, data) {
				t.Errorf("the cache holds the swapped-in bytes at %s", p)
			}
		}
		return nil
	})
}

// remoteManifest reads the manifest ref (by digest) names in its registry.
func remoteManifest(t *testing.T, ref string) ocispec.Manifest {
	t.Helper()
	var m ocispec.Manifest
	if err := json.Unmarshal(remoteBlob(t, ref, nil), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// remoteBlob returns the bytes of desc in the repository of ref, or with
// desc nil of the manifest ref names.
func remoteBlob(t *testing.T, ref string, desc *ocispec.Descriptor) []byte {
	t.Helper()
	target, root := openRef(t, ref)
	if desc == nil {
		desc = &root
	}
	data, err := content.FetchAll(context.Background(), target, *desc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// remoteSignature returns the layer of the first signature (a referrer)
// of the artifact ref names in its registry.
func remoteSignature(t *testing.T, ref string) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	target, root := openRef(t, ref)
	var sig ocispec.Descriptor
	err := target.Referrers(ctx, root, "", func(referrers []ocispec.Descriptor) error {
		for _, d := range referrers {
			if sig.Digest == "" {
				data, err := content.FetchAll(ctx, target, d)
				if err != nil {
					return err
				}
				var m ocispec.Manifest
				if err := json.Unmarshal(data, &m); err != nil {
					return err
				}
				sig = m.Layers[0]
			}
		}
		return nil
	})
	if err != nil || sig.Digest == "" {
		t.Fatalf("no signature of %s (%v)", ref, err)
	}
	return sig
}
