package artifact

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2"
)

// execute writes the plan to dst: the blobs dst lacks, streamed and
// verified, several at a time; then the manifests, children before parents;
// then the cosign-style tags. A blob of a referrer that turns out missing or
// tampered skips that referrer (and its own referrers); any other failure
// ends the copy.
func (p *copyPlan) execute(ctx context.Context, dst oras.Target) (*CopyResult, error) {
	result := &CopyResult{Root: p.graphs[0].root.Descriptor}
	var written atomic.Int64
	copied := func(desc ocispec.Descriptor) {
		written.Add(desc.Size)
		if p.opts.OnCopied != nil {
			p.opts.OnCopied(desc)
		}
	}
	if err := p.copyBlobs(ctx, dst, copied); err != nil {
		return nil, err
	}
	p.propagateSkips()

	pushed := map[digest.Digest]bool{}
	for _, g := range p.graphs {
		if g.skip != nil {
			continue
		}
		for _, n := range g.nodes {
			if pushed[n.Descriptor.Digest] {
				continue
			}
			if err := p.pushNode(ctx, dst, n, copied); err != nil {
				return nil, fmt.Errorf("%s: %w", nodeName(n.Descriptor), err)
			}
			pushed[n.Descriptor.Digest] = true
		}
		switch {
		case g == p.graphs[0]:
		case g.tag != "":
			result.Tags = append(result.Tags, g.tag)
		default:
			result.Referrers = append(result.Referrers, g.root.Descriptor)
		}
	}
	for _, g := range p.graphs {
		if g.skip != nil || g.tag == "" {
			continue
		}
		if err := dst.Tag(ctx, g.root.Descriptor, g.tag); err != nil {
			return nil, fmt.Errorf("tag %s: %w", g.tag, classify(err))
		}
	}
	result.Skipped = p.skipped
	for _, g := range p.graphs {
		if g.skip != nil {
			result.Skipped = append(result.Skipped, *g.skip)
		}
	}
	result.Bytes = written.Load()
	return result, nil
}

// blobJob is one blob to copy and the graphs that reference it.
type blobJob struct {
	desc   ocispec.Descriptor
	graphs []*graph
}

// copyBlobs streams every blob of the plan that dst lacks, verified, at most
// Concurrency at once.
func (p *copyPlan) copyBlobs(ctx context.Context, dst oras.Target, copied func(ocispec.Descriptor)) error {
	var jobs []*blobJob
	byDigest := map[digest.Digest]*blobJob{}
	for _, g := range p.graphs {
		for _, b := range g.blobs {
			j, ok := byDigest[b.Digest]
			if !ok {
				j = &blobJob{desc: b}
				byDigest[b.Digest] = j
				jobs = append(jobs, j)
			}
			j.graphs = append(j.graphs, g)
		}
	}
	concurrency := p.opts.Concurrency
	if concurrency <= 0 {
		concurrency = DefaultCopyConcurrency
	}
	var mu sync.Mutex // guards the graphs' skip
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(concurrency)
	for _, j := range jobs {
		eg.Go(func() error {
			err := p.copyOneBlob(ctx, dst, j.desc, copied)
			if err == nil {
				return nil
			}
			if !errors.Is(err, ErrUnreachable) { // about the registry, not the blob
				err = fmt.Errorf("%s: %w", blobName(j.desc), err)
			}
			if j.graphs[0] == p.graphs[0] || !isContentFault(err) || ctx.Err() != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			for _, g := range j.graphs {
				if g.skip == nil {
					g.skip = &SkippedReferrer{Descriptor: g.root.Descriptor, Subject: subjectOf(g), Reason: SkipInvalid, Detail: err.Error()}
				}
			}
			return nil
		})
	}
	return eg.Wait()
}

// copyOneBlob copies desc unless dst has it.
func (p *copyPlan) copyOneBlob(ctx context.Context, dst oras.Target, desc ocispec.Descriptor, copied func(ocispec.Descriptor)) error {
	exists, err := dst.Exists(ctx, desc)
	if err != nil {
		return classify(err)
	}
	if exists {
		return nil
	}
	var progress func(int64)
	if p.opts.OnProgress != nil {
		progress = func(n int64) { p.opts.OnProgress(desc, n) }
	}
	if err := copyBlob(ctx, p.src, dst, desc, progress); err != nil {
		return err
	}
	copied(desc)
	return nil
}

// pushNode writes manifest or index n to dst unless dst has it.
func (p *copyPlan) pushNode(ctx context.Context, dst oras.Target, n *Node, copied func(ocispec.Descriptor)) error {
	desc := ocispec.Descriptor{MediaType: n.Descriptor.MediaType, Digest: n.Descriptor.Digest, Size: n.Descriptor.Size, ArtifactType: n.Descriptor.ArtifactType}
	exists, err := dst.Exists(ctx, desc)
	if err != nil {
		return classify(err)
	}
	if exists {
		return nil
	}
	if n.Data != nil {
		err = dst.Push(ctx, desc, bytes.NewReader(n.Data))
	} else {
		err = copyBlob(ctx, p.src, dst, desc, nil)
	}
	switch err = tolerateReferrersIndexDelete(err); {
	case isAlreadyExists(err):
		return nil
	case err != nil:
		return classify(err)
	}
	copied(desc)
	return nil
}

// propagateSkips skips the referrers of skipped graphs: their subject is not
// copied.
func (p *copyPlan) propagateSkips() {
	for _, g := range p.graphs {
		if g.skip != nil {
			continue
		}
		for a := g.parent; a != nil; a = a.parent {
			if a.skip != nil {
				g.skip = &SkippedReferrer{Descriptor: g.root.Descriptor, Subject: subjectOf(g), Reason: a.skip.Reason, Detail: "its subject " + a.root.Descriptor.Digest.String() + " was skipped"}
				break
			}
		}
	}
}

// subjectOf returns the digest of the manifest g refers to.
func subjectOf(g *graph) digest.Digest {
	if g.root.Subject != nil {
		return g.root.Subject.Digest
	}
	return ""
}
