package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bpfd-dev/bpfd/pkg/artifact"
)

// pushRows compares pushing a's files to a fresh repository each run, two
// ways each:
//
//   - from the object files: `bpfctl-image build --dest REGISTRY`, which reads
//     the ELF objects, extracts their metadata and pushes the index, against
//     what an oras user runs for a multi-platform artifact: `oras push
//     --artifact-platform` of each platform's files, then `oras manifest
//     index create` over them;
//   - from an OCI layout (a's, built with bpfctl-image): `bpfctl-image push`
//     against `oras cp --from-oci-layout`, the same blobs byte for byte.
func (sc *supplyChain) pushRows(a *builtArtifact) []Row {
	shape := fmt.Sprintf("%s (%d platforms, %s in %d blobs)", a.Name, len(a.Platforms), humanBytes(a.Bytes), a.Blobs)
	fromFiles := func(repos *freshRepos) func(context.Context) error {
		return func(ctx context.Context) error {
			args := []string{"build", "--dest", sc.ref(repos.Name, ":"+artifactTag)}
			for _, po := range a.Platforms {
				args = append(args, "--platform", po.Platform+"="+strings.Join(po.Paths(), ","))
			}
			return runCommands(ctx, sc.bpfctlImageCommand(args...))
		}
	}
	orasFromFiles := func(repos *freshRepos) func(context.Context) error {
		return func(ctx context.Context) error {
			var cmds []command
			index := []string{"manifest", "index", "create", "--plain-http", "--artifact-type", artifact.ArtifactType, sc.ref(repos.Name, ":"+artifactTag)}
			for _, po := range a.Platforms {
				tag := strings.ReplaceAll(po.Platform, "/", "-")
				args := []string{"push", "--plain-http", "--artifact-type", artifact.ArtifactType, "--artifact-platform", po.Platform, sc.ref(repos.Name, ":"+tag)}
				cmds = append(cmds, sc.orasCommand(po.Dir, append(args, po.Files...)...))
				index = append(index, tag)
			}
			return runCommands(ctx, append(cmds, sc.orasCommand("", index...))...)
		}
	}
	fromLayout := func(repos *freshRepos) func(context.Context) error {
		return func(ctx context.Context) error {
			return runCommands(ctx, sc.bpfctlImageCommand("push", "oci:"+a.Layout+":"+artifactTag, sc.ref(repos.Name, ":"+artifactTag)))
		}
	}
	orasFromLayout := func(repos *freshRepos) func(context.Context) error {
		return func(ctx context.Context) error {
			return runCommands(ctx, sc.orasCommand("", "cp", "--from-oci-layout", "--to-plain-http", a.Layout+":"+artifactTag, sc.ref(repos.Name, ":"+artifactTag)))
		}
	}
	slug := repoSlug(a.Name)
	side := func(name, prefix string, run func(*freshRepos) func(context.Context) error) *Side {
		repos := &freshRepos{prefix: prefix}
		return &Side{
			Name:    name,
			Prepare: func(context.Context) error { repos.next(); return nil },
			Run:     run(repos),
			Check:   func(ctx context.Context) error { return sc.checkPushed(ctx, a.payload, repos.Name) },
		}
	}
	return []Row{
		{
			Name: "push " + shape + " from object files",
			Ours: *side("bpfctl-image build --dest REGISTRY", "push-files-bpfctl-"+slug, fromFiles),
			Peer: side(fmt.Sprintf("oras push ×%d + oras manifest index create", len(a.Platforms)), "push-files-oras-"+slug, orasFromFiles),
		},
		{
			Name: "push " + shape + " from an OCI layout",
			Ours: *side("bpfctl-image push", "push-layout-bpfctl-"+slug, fromLayout),
			Peer: side("oras cp --from-oci-layout", "push-layout-oras-"+slug, orasFromLayout),
		},
	}
}

// pullPlatform is the platform the pull rows pull.
const pullPlatform = "linux/amd64"

// pullRow compares pulling pullPlatform's objects of a, pushed once to the
// registry, into an emptied directory: `bpfctl-image pull` (index,
// manifest, config and layers, each checked against its digest; writes the
// objects and metadata.json) against `oras pull --platform` (index,
// manifest and layers; oras skips the config).
func (sc *supplyChain) pullRow(ctx context.Context, a *builtArtifact) (Row, error) {
	slug := repoSlug(a.Name)
	repo := "pull-" + slug
	if err := sc.copyToRegistry(ctx, a, repo); err != nil {
		return Row{}, err
	}
	var po platformObjects
	for _, p := range a.Platforms {
		if p.Platform == pullPlatform {
			po = p
		}
	}
	var size int64
	for _, f := range po.Paths() {
		info, err := os.Stat(f)
		if err != nil {
			return Row{}, err
		}
		size += info.Size()
	}
	ref := sc.ref(repo, ":"+artifactTag)
	side := func(name string, pull func(out string) command) *Side {
		out := filepath.Join(sc.dir, "pulled-"+strings.Fields(name)[0]+"-"+slug)
		return &Side{
			Name:    name,
			Prepare: func(context.Context) error { return os.RemoveAll(out) },
			Run:     func(ctx context.Context) error { return runCommands(ctx, pull(out)) },
			Check:   func(context.Context) error { return checkPulled(out, po) },
		}
	}
	return Row{
		// Index, manifest, config and the layers.
		Name: fmt.Sprintf("pull %s's %s objects (%s in %d blobs)", a.Name, pullPlatform, humanBytes(size), 3+len(po.Files)),
		Ours: *side("bpfctl-image pull", func(out string) command {
			return sc.bpfctlImageCommand("pull", "--platform", pullPlatform, "--dest", out, ref)
		}),
		Peer: side("oras pull --platform", func(out string) command {
			return sc.orasCommand("", "pull", "--plain-http", "--platform", pullPlatform, "-o", out, ref)
		}),
	}, nil
}
