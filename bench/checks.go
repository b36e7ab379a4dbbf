package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// The checks confirm, untimed after each run, that a side did all of its
// work: the rows compare tools doing the same thing, never one doing less.

// repository opens repository name of the registry.
func (sc *supplyChain) repository(name string) (*remote.Repository, error) {
	repo, err := remote.NewRepository(sc.reg.Host + "/" + name)
	if err != nil {
		return nil, err
	}
	repo.PlainHTTP = true
	return repo, nil
}

// checkPushed confirms that repository name's artifactTag is an index of one
// manifest for each of p's platforms whose layers are exactly that
// platform's files, by title and digest.
func (sc *supplyChain) checkPushed(ctx context.Context, p *payload, name string) error {
	repo, err := sc.repository(name)
	if err != nil {
		return err
	}
	root, err := repo.Resolve(ctx, artifactTag)
	if err != nil {
		return err
	}
	var index ocispec.Index
	if err := fetchJSON(ctx, repo, root, &index); err != nil {
		return err
	}
	if len(index.Manifests) != len(p.Platforms) {
		return fmt.Errorf("%s: index %s lists %d manifests, want %d", name, root.Digest, len(index.Manifests), len(p.Platforms))
	}
	for _, po := range p.Platforms {
		var entry *ocispec.Descriptor
		for i, m := range index.Manifests {
			if m.Platform != nil && artifact.FormatPlatform(*m.Platform) == po.Platform {
				entry = &index.Manifests[i]
			}
		}
		if entry == nil {
			return fmt.Errorf("%s: index %s has no %s manifest", name, root.Digest, po.Platform)
		}
		var manifest ocispec.Manifest
		if err := fetchJSON(ctx, repo, *entry, &manifest); err != nil {
			return err
		}
		layers := map[string]digest.Digest{}
		for _, l := range manifest.Layers {
			layers[l.Annotations[ocispec.AnnotationTitle]] = l.Digest
		}
		if !maps.Equal(layers, po.Digests) {
			return fmt.Errorf("%s: %s manifest %s: layers %v, want the files %v", name, po.Platform, entry.Digest, layers, po.Digests)
		}
	}
	return nil
}

// checkPulled confirms that dir holds each of po's files, byte for byte.
func checkPulled(dir string, po platformObjects) error {
	for name, want := range po.Digests {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if got := digest.FromBytes(data); got != want {
			return fmt.Errorf("%s: pulled %s, want %s", filepath.Join(dir, name), got, want)
		}
	}
	return nil
}

// checkSigned confirms that repository name holds exactly one signature of
// a's digest, in format, valid under sc's key.
func (sc *supplyChain) checkSigned(ctx context.Context, a *builtArtifact, name, format string) error {
	repo, err := sc.repository(name)
	if err != nil {
		return err
	}
	desc, err := repo.Resolve(ctx, a.Digest.String())
	if err != nil {
		return err
	}
	report, err := verify.NewVerifier(sc.policy, verify.VerifierOptions{}).VerifyArtifact(ctx, repo, verify.Subject{Name: repo.Reference.String(), Descriptor: desc})
	if err != nil {
		return err
	}
	if n := len(report.Signatures); n != 1 || string(report.Signatures[0].Format) != format || !report.Signatures[0].Valid {
		return fmt.Errorf("%s: signatures %+v, want one valid %s signature", name, report.Signatures, format)
	}
	return nil
}

func fetchJSON(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, v any) error {
	data, err := content.FetchAll(ctx, repo, desc)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}
