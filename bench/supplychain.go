package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/bpfd-dev/bpfd/internal/testing/localregistry"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// payloadSizes are the artifacts the push and pull rows move.
var payloadSizes = []struct {
	name string
	size int64
}{
	{"1 MiB", 1 << 20},
	{"32 MiB", 32 << 20},
}

// artifactTag is the tag every artifact of these rows has.
const artifactTag = "v1"

// supplyChain is what the push, pull, sign and verify rows share: one
// registry on loopback, the tools, and a key pair.
type supplyChain struct {
	reg *localregistry.Registry
	dir string
	// Paths of the tools.
	bpfctlImage, oras, cosign2, cosign3 string
	// env is every tool's environment: a HOME (so no ~/.docker/config.json
	// or cosign TUF cache of the machine's is read) and the key's password.
	env []string
	// key and pub are a cosign key pair; trustedRoot an empty Sigstore
	// trusted root, which is all cosign v2 needs to verify a bundle by key.
	key, pub, trustedRoot string
	// policy trusts pub; the checks verify signatures with it.
	policy *verify.Policy
}

// keyPassword protects the benchmarks' signing key.
const keyPassword = "bench"

// supplyChainRows sets up a registry, the payloads and their OCI layouts
// (built with bpfctl-image), a key pair and the signed repositories the
// verify rows read, and returns the push, pull, sign and verify rows.
func supplyChainRows(ctx context.Context, env *Env) (_ []Row, _ func(), err error) {
	sc := &supplyChain{
		dir:         filepath.Join(env.Dir, "supply-chain"),
		bpfctlImage: filepath.Join(env.Bin, "bpfctl-image"),
		oras:        filepath.Join(env.Tools, "oras"),
		cosign2:     filepath.Join(env.Tools, "cosign2"),
		cosign3:     filepath.Join(env.Tools, "cosign3"),
	}
	home := filepath.Join(sc.dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, nil, err
	}
	sc.env = []string{"HOME=" + home, "DOCKER_CONFIG=" + filepath.Join(home, ".docker"), "TUF_ROOT=" + filepath.Join(home, "tuf"), "COSIGN_PASSWORD=" + keyPassword}
	if sc.reg, err = env.startRegistry(); err != nil {
		return nil, nil, err
	}
	cleanup := sc.reg.Stop
	defer func() {
		if err != nil {
			cleanup()
		}
	}()

	var rows []Row
	var artifacts []*builtArtifact
	for _, s := range payloadSizes {
		a, err := sc.buildArtifact(ctx, env, s.name, s.size, payloadPlatforms)
		if err != nil {
			return nil, nil, fmt.Errorf("%s artifact: %w", s.name, err)
		}
		artifacts = append(artifacts, a)
	}
	for _, a := range artifacts {
		rows = append(rows, sc.pushRows(a)...)
	}
	for _, a := range artifacts {
		row, err := sc.pullRow(ctx, a)
		if err != nil {
			return nil, nil, err
		}
		rows = append(rows, row)
	}
	signRows, err := sc.signatureRows(ctx, artifacts[0])
	if err != nil {
		return nil, nil, err
	}
	rows = append(rows, signRows...)
	bigRows, err := sc.bigArtifactRows(ctx, env)
	if err != nil {
		return nil, nil, err
	}
	return append(rows, bigRows...), cleanup, nil
}

// A builtArtifact is a payload built into an OCI layout.
type builtArtifact struct {
	*payload
	// Layout is the OCI layout directory; the artifact is tagged
	// artifactTag in it.
	Layout string
	Digest digest.Digest
	// Blobs is how many blobs the layout holds.
	Blobs int
}

// buildArtifact makes a payload for platforms and builds it with
// bpfctl-image into an OCI layout.
func (sc *supplyChain) buildArtifact(ctx context.Context, env *Env, name string, size int64, platforms []string) (*builtArtifact, error) {
	p, err := makePayload(ctx, env, sc.dir, name, size, platforms)
	if err != nil {
		return nil, err
	}
	a := &builtArtifact{payload: p}
	if a.Layout, err = os.MkdirTemp(sc.dir, "layout-"); err != nil {
		return nil, err
	}
	args := []string{"build", "--dest", "oci:" + a.Layout + ":" + artifactTag}
	for _, po := range p.Platforms {
		args = append(args, "--platform", po.Platform+"="+strings.Join(po.Paths(), ","))
	}
	if err := runCommands(ctx, sc.bpfctlImageCommand(args...)); err != nil {
		return nil, err
	}
	store, err := oci.NewFromFS(ctx, os.DirFS(a.Layout))
	if err != nil {
		return nil, err
	}
	root, err := store.Resolve(ctx, artifactTag)
	if err != nil {
		return nil, err
	}
	a.Digest = root.Digest
	blobs, err := os.ReadDir(filepath.Join(a.Layout, "blobs", "sha256"))
	if err != nil {
		return nil, err
	}
	a.Blobs = len(blobs)
	return a, nil
}

// copyToRegistry copies a's artifact from its layout to repository repo of
// the registry, tagged artifactTag.
func (sc *supplyChain) copyToRegistry(ctx context.Context, a *builtArtifact, repo string) error {
	store, err := oci.NewFromFS(ctx, os.DirFS(a.Layout))
	if err != nil {
		return err
	}
	dst, err := remote.NewRepository(sc.reg.Host + "/" + repo)
	if err != nil {
		return err
	}
	dst.PlainHTTP = true
	if _, err := oras.Copy(ctx, store, artifactTag, dst, artifactTag, oras.DefaultCopyOptions); err != nil {
		return fmt.Errorf("copy to %s: %w", dst.Reference, err)
	}
	return nil
}

// ref returns the reference of repo in the registry, with suffix (":tag" or
// "@digest").
func (sc *supplyChain) ref(repo, suffix string) string {
	return sc.reg.Host + "/" + repo + suffix
}

func (sc *supplyChain) bpfctlImageCommand(args ...string) command {
	return command{Path: sc.bpfctlImage, Args: args, Env: sc.env}
}

func (sc *supplyChain) orasCommand(dir string, args ...string) command {
	return command{Path: sc.oras, Args: args, Dir: dir, Env: sc.env}
}

// freshRepos names a new repository for each run, so that no run finds what
// an earlier one left there: blobs a push would skip, signatures a sign
// would add to.
type freshRepos struct {
	prefix string
	n      int
	// Name is the current repository.
	Name string
}

func (f *freshRepos) next() {
	f.n++
	f.Name = fmt.Sprintf("%s-%d", f.prefix, f.n)
}

// humanBytes formats n with binary units.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.3g MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.3g KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d B", n)
	}
}

// repoSlug turns a payload's name ("1 MiB") into a repository name part
// ("1mib").
func repoSlug(name string) string {
	return strings.ToLower(strings.ReplaceAll(name, " ", ""))
}
