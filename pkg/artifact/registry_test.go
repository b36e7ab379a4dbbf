package artifact

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/memory"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

// These tests run against a real registry (distribution's, which has no
// referrers API) and the real oras and cosign CLIs, all from bin/tools.

func TestRegistryRoundTrip(t *testing.T) {
	ctx := context.Background()
	reg := testutil.StartRegistry(t)
	objects := []ObjectFile{example(t, "packet_counters"), example(t, "xdp_verdict")}
	staged := memory.New()
	root, err := Build(ctx, staged, objects, BuildOptions{Tool: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ref := mustReference(t, reg.Host+"/bytecode/counters:v1")
	if _, err := Copy(ctx, staged, root, mustOpen(t, ref, OpenOptions{}), ref.Tag, CopyOptions{}); err != nil {
		t.Fatal(err)
	}

	target := mustOpen(t, ref, OpenOptions{})
	desc, err := target.ResolveReference(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != root.Digest {
		t.Fatalf("registry has %s, built %s", desc.Digest, root.Digest)
	}
	bc, err := Fetch(ctx, target, desc, HostPlatform())
	if err != nil {
		t.Fatal(err)
	}
	want := []ObjectFile{{Name: objects[0].Name, Data: objects[0].Data}, {Name: objects[1].Name, Data: objects[1].Data}}
	if diff := cmp.Diff(want, bc.Objects); diff != "" {
		t.Errorf("objects pulled (-want +got):\n%s", diff)
	}
	if _, err := mustOpen(t, mustReference(t, reg.Host+"/bytecode/counters:v2"), OpenOptions{}).ResolveReference(ctx); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing tag: %v, want ErrNotFound", err)
	}
}

// TestOrasPullsWhatWePush: the oras CLI pulls our artifact's objects under
// their file names.
func TestOrasPullsWhatWePush(t *testing.T) {
	ctx := context.Background()
	reg := testutil.StartRegistry(t)
	objects := []ObjectFile{example(t, "tc_counter"), example(t, "xdp_counter")}
	staged := memory.New()
	root, err := Build(ctx, staged, objects, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref := mustReference(t, reg.Host+"/bytecode/oras:v1")
	if _, err := Copy(ctx, staged, root, mustOpen(t, ref, OpenOptions{}), "v1", CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	runTool(t, "", "oras", "pull", "--plain-http", "-o", dir, ref.String())
	for _, o := range objects {
		got, err := os.ReadFile(filepath.Join(dir, o.Name))
		if err != nil {
			t.Fatalf("oras pull did not write %s: %v", o.Name, err)
		}
		if !bytes.Equal(got, o.Data) {
			t.Errorf("oras pulled a different %s", o.Name)
		}
	}
}

// TestWeReadWhatOrasPushes: an artifact pushed by the oras CLI with bpfd's
// media types and a config from Describe reads as ours.
func TestWeReadWhatOrasPushes(t *testing.T) {
	ctx := context.Background()
	reg := testutil.StartRegistry(t)
	xdp := example(t, "xdp_verdict")
	cfg, err := Describe([]ObjectFile{xdp})
	if err != nil {
		t.Fatal(err)
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range map[string][]byte{"config.json": cfgJSON, xdp.Name: xdp.Data} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ref := mustReference(t, reg.Host+"/bytecode/pushed-by-oras:v1")
	runTool(t, dir, "oras", "push", "--plain-http", "--artifact-type", ArtifactType,
		"--config", "config.json:"+MediaTypeConfig, ref.String(), xdp.Name+":"+MediaTypeObject)

	target := mustOpen(t, ref, OpenOptions{})
	desc, err := target.ResolveReference(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Inspect(ctx, target, desc)
	if err != nil {
		t.Fatal(err)
	}
	if m := d.Manifests[0]; m.Format != FormatBpfd || len(m.Config.Objects) != 1 || m.Config.Objects[0].DataSections[1].Globals[0].Name != "verdict" {
		t.Errorf("inspect of the oras push: %+v", m)
	}
	bc, err := Fetch(ctx, target, desc, HostPlatform())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bc.Objects[0].Data, xdp.Data) {
		t.Error("fetched object differs from the one oras pushed")
	}
}

// TestCopyCarriesSignaturesThroughALayout signs an artifact in a registry
// with cosign (a legacy .sig tag in one repository, an OCI 1.1 bundle
// referrer, indexed under the sha256-<hex> tag schema, in another), copies
// each into an OCI layout, as for an air-gapped audit, and from there to a
// mirror repository, where cosign still verifies it.
func TestCopyCarriesSignaturesThroughALayout(t *testing.T) {
	ctx := context.Background()
	reg := testutil.StartRegistry(t)
	home := t.TempDir()
	env := []string{"HOME=" + home, "COSIGN_PASSWORD=", "COSIGN_EXPERIMENTAL=1", "DOCKER_CONFIG=" + home}
	runToolEnv(t, home, env, "cosign2", "generate-key-pair")
	key, pub := filepath.Join(home, "cosign.key"), filepath.Join(home, "cosign.pub")
	trustedRoot := filepath.Join(home, "trusted_root.json")
	if err := os.WriteFile(trustedRoot, []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o644); err != nil {
		t.Fatal(err)
	}

	staged := memory.New()
	root, err := Build(ctx, staged, []ObjectFile{example(t, "xdp_counter")}, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		sign, verify []string
		wantTags     int
		wantRefs     int
	}{
		"legacy": {
			sign:     []string{"sign", "--key", key, "--tlog-upload=false", "--yes"},
			verify:   []string{"verify", "--key", pub, "--insecure-ignore-tlog=true"},
			wantTags: 1,
		},
		"bundle": {
			sign:     []string{"sign", "--key", key, "--tlog-upload=false", "--yes", "--new-bundle-format", "--registry-referrers-mode=oci-1-1"},
			verify:   []string{"verify", "--key", pub, "--insecure-ignore-tlog=true", "--new-bundle-format", "--trusted-root", trustedRoot},
			wantRefs: 1,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			src := mustReference(t, reg.Host+"/signed/"+name+":v1")
			if _, err := Copy(ctx, staged, root, mustOpen(t, src, OpenOptions{}), "v1", CopyOptions{}); err != nil {
				t.Fatal(err)
			}
			pinned := src
			pinned.Tag = ""
			pinned = pinned.WithDigest(root.Digest)
			runToolEnv(t, home, env, "cosign2", append(tc.sign, pinned.String())...)

			audit := mustReference(t, "oci:"+filepath.Join(t.TempDir(), "audit")+":v1")
			layout := mustOpen(t, audit, OpenOptions{Create: true})
			result, err := Copy(ctx, mustOpen(t, src, OpenOptions{}), root, layout, "v1", CopyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(result.Tags) != tc.wantTags || len(result.Referrers) != tc.wantRefs {
				t.Errorf("registry to layout carried %v and %d referrers; want %d tags, %d referrers", result.Tags, len(result.Referrers), tc.wantTags, tc.wantRefs)
			}
			for _, r := range result.Referrers {
				if r.ArtifactType != "application/vnd.dev.sigstore.bundle.v0.3+json" {
					t.Errorf("referrer %s: artifactType %q, want the bundle's", r.Digest, r.ArtifactType)
				}
			}

			mirror := mustReference(t, reg.Host+"/mirror/"+name+":v1")
			if _, err := Copy(ctx, mustOpen(t, audit, OpenOptions{}), root, mustOpen(t, mirror, OpenOptions{}), "v1", CopyOptions{}); err != nil {
				t.Fatal(err)
			}
			pinned = mirror
			pinned.Tag = ""
			pinned = pinned.WithDigest(root.Digest)
			runToolEnv(t, home, env, "cosign2", append(tc.verify, pinned.String())...)
		})
	}
}

// TestCopyReferrersThroughRegistry copies the signed artifact of
// TestCopyCarriesReferrers from a layout to the registry, which indexes its
// referrers under the sha256-<hex> tag schema, and back into a layout.
func TestCopyReferrersThroughRegistry(t *testing.T) {
	ctx := context.Background()
	reg := testutil.StartRegistry(t)
	src := memory.New()
	s := buildSigned(t, src)

	remote := mustOpen(t, mustReference(t, reg.Host+"/signed/index:v1"), OpenOptions{})
	if _, err := Copy(ctx, src, s.root, remote, "v1", CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	checkSigned(t, mustOpen(t, remote.Ref, OpenOptions{}), s, "v1")

	audit := mustReference(t, "oci:"+filepath.Join(t.TempDir(), "audit"))
	result, err := Copy(ctx, mustOpen(t, remote.Ref, OpenOptions{}), s.root, mustOpen(t, audit, OpenOptions{Create: true}), "v1", CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(result.Referrers) != 3 || len(result.Tags) != 1 {
		t.Errorf("registry to layout: %d referrers, tags %v", len(result.Referrers), result.Tags)
	}
	checkSigned(t, mustOpen(t, audit, OpenOptions{}), s, "v1")
}

// runTool runs a tool from bin/tools (on PATH under `make test`) in dir and
// fails the test, with its output, when it fails.
func runTool(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	return runToolEnv(t, dir, nil, name, args...)
}

func runToolEnv(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(testutil.Tool(t, name), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestCopySignaturesToRegistryWithAndWithoutDeletes copies an artifact with
// three signatures of its root to a registry without the referrers API,
// which indexes them under the sha256-<hex> tag, replacing the index with
// each one. A registry that refuses deletes (distribution's default) keeps
// the replaced indexes; either way the copy succeeds and tags the artifact,
// and a later referrer is indexed with the others.
func TestCopySignaturesToRegistryWithAndWithoutDeletes(t *testing.T) {
	ctx := context.Background()
	for name, opts := range map[string][]testutil.RegistryOption{
		"deletes refused": nil,
		"deletes enabled": {testutil.WithDeletes()},
	} {
		t.Run(name, func(t *testing.T) {
			reg := testutil.StartRegistry(t, opts...)
			src := memory.New()
			root := generic(t, src, 100)
			var sigs []ocispec.Descriptor
			for i := range 3 {
				sigs = append(sigs, refer(t, src, root, "application/vnd.example.signature", i, 10))
			}
			ref := mustReference(t, reg.Host+"/signed/many:v1")
			result, err := Copy(ctx, src, root, mustOpen(t, ref, OpenOptions{}), "v1", CopyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(result.Referrers) != 3 {
				t.Errorf("copied %d referrers, want 3", len(result.Referrers))
			}
			target := mustOpen(t, ref, OpenOptions{})
			if got, err := target.ResolveReference(ctx); err != nil || got.Digest != root.Digest {
				t.Fatalf("%s: %v, %v; want %s", ref, got.Digest, err, root.Digest)
			}

			// One more, pushed straight to the registry as a signer would.
			sigs = append(sigs, refer(t, target, root, "application/vnd.example.signature", 3, 10))
			list, err := ListReferrers(ctx, mustOpen(t, ref, OpenOptions{}), root, ReferrerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var got, want []string
			for _, n := range list.Referrers {
				got = append(got, n.Descriptor.Digest.String())
			}
			for _, s := range sigs {
				want = append(want, s.Digest.String())
			}
			slices.Sort(got)
			slices.Sort(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("referrers in the registry (-want +got):\n%s", diff)
			}
		})
	}
}
