package artifact

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
)

// maxNesting bounds how deep indexes may nest within one graph.
const maxNesting = 8

// maxHeldNodeBytes bounds the manifest bytes a copy plan keeps in memory;
// past it, manifests are fetched (and verified) again when written.
const maxHeldNodeBytes = 16 << 20

// copyPlan is what Copy found to copy: the artifact's graph, then each
// referrer's and tagged manifest's graph, with every size checked.
type copyPlan struct {
	src    oras.ReadOnlyGraphTarget
	opts   CopyOptions
	limits Limits
	// graphs[0] is the artifact.
	graphs []*graph
	// known holds the digests of every node and blob planned; total and
	// count are their bytes and number.
	known       map[digest.Digest]bool
	total       int64
	count       int
	held        int64
	referrers   int
	skipped     []SkippedReferrer
	tagSuffixes []string
}

// graph is one manifest or index and what it references: the artifact, a
// referrer, or a manifest found under a cosign-style tag.
type graph struct {
	root *Node
	// nodes are its manifests and indexes, children before parents.
	nodes []*Node
	// blobs are its configs and layers.
	blobs []ocispec.Descriptor
	// seen holds the digests of nodes and blobs; size is their bytes.
	seen map[digest.Digest]bool
	size int64
	// parent is the graph whose node is this referrer's subject; nil for
	// the artifact and tagged manifests.
	parent *graph
	// tag is the cosign-style tag of a tagged manifest.
	tag string
	// depth is a referrer's distance from the artifact: 1 for the
	// artifact's own referrers.
	depth int
	// skip, once set, says why the graph is not copied.
	skip *SkippedReferrer
}

func newGraph() *graph { return &graph{seen: map[digest.Digest]bool{}} }

func newCopyPlan(src oras.ReadOnlyGraphTarget, opts CopyOptions) *copyPlan {
	p := &copyPlan{src: src, opts: opts, limits: opts.Limits.WithDefaults(), known: map[digest.Digest]bool{}}
	p.tagSuffixes = opts.TagSuffixes
	if p.tagSuffixes == nil {
		p.tagSuffixes = CosignTagSuffixes
	}
	return p
}

// planArtifact reads the artifact's graph. Everything wrong with it is an
// error.
func (p *copyPlan) planArtifact(ctx context.Context, root ocispec.Descriptor) error {
	g := newGraph()
	if err := p.walk(ctx, g, root, 0, p.opts.SkipLayers); err != nil {
		return err
	}
	if err := p.admit(g, "artifact "+root.Digest.String()); err != nil {
		return err
	}
	p.graphs = append(p.graphs, g)
	return nil
}

// planReferrers finds the referrers of the artifact's nodes, and theirs in
// turn up to Limits.ReferrerDepth, and reads their graphs.
func (p *copyPlan) planReferrers(ctx context.Context) error {
	type subject struct {
		desc  ocispec.Descriptor
		graph *graph
		depth int
	}
	var queue []subject
	artifact := p.graphs[0]
	for _, n := range artifact.nodes {
		queue = append(queue, subject{n.Descriptor, artifact, 1})
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		list, err := ListReferrers(ctx, p.src, s.desc, ReferrerOptions{ArtifactTypes: p.opts.ReferrerTypes, Limits: p.limits})
		if err != nil {
			return err
		}
		p.skipped = append(p.skipped, list.Skipped...)
		for _, n := range list.Referrers {
			if p.known[n.Descriptor.Digest] {
				continue // listed for another subject too, or part of the artifact
			}
			g := newGraph()
			g.parent, g.depth = s.graph, s.depth
			added, err := p.addReferrer(ctx, g, n, s.desc)
			if err != nil {
				return err
			}
			if !added {
				continue
			}
			if s.depth < p.limits.ReferrerDepth {
				queue = append(queue, subject{n.Descriptor, g, s.depth + 1})
			} else if more, err := hasReferrers(ctx, p.src, n.Descriptor); err != nil {
				return err
			} else if more {
				p.skip(ocispec.Descriptor{}, n.Descriptor, SkipLimit, fmt.Sprintf("referrers more than %d deep (limit ReferrerDepth)", p.limits.ReferrerDepth))
			}
		}
	}
	return nil
}

// hasReferrers reports whether desc has any referrer listed.
func hasReferrers(ctx context.Context, src oras.ReadOnlyGraphTarget, desc ocispec.Descriptor) (bool, error) {
	found := false
	err := referrerCandidates(ctx, src, desc, "", func(page []ocispec.Descriptor, listed bool) error {
		found = len(page) > 0 // for a store, maybe an index that lists desc: rare enough
		return errStopListing
	})
	if err != nil && !errors.Is(err, errStopListing) && !isContentFault(classify(err)) {
		return false, fmt.Errorf("referrers of %s: %w", desc.Digest, classify(err))
	}
	return found, nil
}

// planTags finds the manifests tagged "sha256-<hex>"+suffix for each of the
// artifact's nodes and reads their graphs.
func (p *copyPlan) planTags(ctx context.Context) error {
	for _, n := range p.graphs[0].nodes {
		for _, suffix := range p.tagSuffixes {
			t := referrerTag(n.Descriptor, suffix)
			desc, err := p.src.Resolve(ctx, t)
			if err != nil {
				err = classify(err)
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if isContentFault(err) {
					p.skip(ocispec.Descriptor{}, n.Descriptor, SkipInvalid, fmt.Sprintf("tag %s: %v", t, err))
					continue
				}
				return fmt.Errorf("tag %s: %w", t, err)
			}
			g := newGraph()
			g.tag = t
			node, err := fetchNode(ctx, p.src, desc, p.limits.ManifestSize)
			if err != nil {
				if !isContentFault(err) {
					return fmt.Errorf("tag %s: %s: %w", t, nodeName(desc), err)
				}
				p.skipErr(desc, n.Descriptor, fmt.Errorf("tag %s: %w", t, err))
				continue
			}
			if _, err := p.addReferrer(ctx, g, node, n.Descriptor); err != nil {
				return err
			}
		}
	}
	return nil
}

// addReferrer reads the graph of the referrer (or tagged manifest) n of
// subject into g and adds it to the plan, unless it goes over a limit or
// its content is at fault: then it is skipped and addReferrer returns
// false. It fails only when src cannot be reached.
func (p *copyPlan) addReferrer(ctx context.Context, g *graph, n *Node, subject ocispec.Descriptor) (bool, error) {
	what := "referrer " + n.Descriptor.Digest.String()
	if g.tag != "" {
		what = "tag " + g.tag
	}
	if p.referrers >= p.limits.Referrers {
		p.skip(n.Descriptor, subject, SkipLimit, fmt.Sprintf("more than %d referrers and tagged manifests in all (limit Referrers)", p.limits.Referrers))
		return false, nil
	}
	if err := p.walkNode(ctx, g, n, 0, false); err != nil {
		if !isContentFault(err) {
			return false, fmt.Errorf("%s: %w", what, err)
		}
		p.skipErr(n.Descriptor, subject, err)
		return false, nil
	}
	if g.size > p.limits.ReferrerSize {
		p.skipErr(n.Descriptor, subject, &LimitError{What: what, Limit: "ReferrerSize", Value: g.size, Max: p.limits.ReferrerSize})
		return false, nil
	}
	if err := p.admit(g, what); err != nil {
		p.skipErr(n.Descriptor, subject, err)
		return false, nil
	}
	p.referrers++
	p.graphs = append(p.graphs, g)
	return true, nil
}

// walk fetches the node desc describes and reads its graph into g.
func (p *copyPlan) walk(ctx context.Context, g *graph, desc ocispec.Descriptor, nesting int, skipLayers bool) error {
	if g.seen[desc.Digest] {
		return nil
	}
	n, err := fetchNode(ctx, p.src, desc, p.limits.ManifestSize)
	if err != nil {
		return fmt.Errorf("%s: %w", nodeName(desc), err)
	}
	return p.walkNode(ctx, g, n, nesting, skipLayers)
}

// walkNode reads n's graph into g: an index's manifests, a manifest's config
// and layers (but its layers with skipLayers), checking each size.
func (p *copyPlan) walkNode(ctx context.Context, g *graph, n *Node, nesting int, skipLayers bool) error {
	if nesting > maxNesting {
		return fmt.Errorf("%s: %w: indexes nested more than %d deep", nodeName(n.Descriptor), ErrUnsupported, maxNesting)
	}
	g.seen[n.Descriptor.Digest] = true
	g.size += n.Descriptor.Size
	if g.root == nil {
		g.root = n
	}
	if n.IsIndex() {
		for _, m := range n.Manifests {
			if err := p.walk(ctx, g, m, nesting+1, skipLayers); err != nil {
				return err
			}
		}
	} else {
		if err := p.addBlob(g, *n.Config, "ConfigSize", p.limits.ConfigSize); err != nil {
			return fmt.Errorf("%s: %w", nodeName(n.Descriptor), err)
		}
		for _, l := range n.Layers {
			if skipLayers {
				continue
			}
			if err := p.addBlob(g, l, "BlobSize", p.limits.BlobSize); err != nil {
				return fmt.Errorf("%s: %w", nodeName(n.Descriptor), err)
			}
		}
	}
	// Keep the bytes to write them later, within a bound; past it they
	// are fetched again.
	if p.held+int64(len(n.Data)) <= maxHeldNodeBytes {
		p.held += int64(len(n.Data))
	} else {
		n.Data = nil
	}
	g.nodes = append(g.nodes, n)
	return nil
}

// addBlob adds a config or layer to g, refusing one over max.
func (p *copyPlan) addBlob(g *graph, desc ocispec.Descriptor, limit string, max int64) error {
	if err := checkSize(blobName(desc), limit, desc.Size, max); err != nil {
		return err
	}
	if g.seen[desc.Digest] {
		return nil
	}
	g.seen[desc.Digest] = true
	g.size += desc.Size
	g.blobs = append(g.blobs, desc)
	return nil
}

// admit adds g's nodes and blobs to the plan's totals, refusing a graph that
// takes them over Limits.TotalSize or Limits.Blobs.
func (p *copyPlan) admit(g *graph, what string) error {
	var size int64
	count := 0
	for d := range g.seen {
		if !p.known[d] {
			count++
		}
	}
	for _, n := range g.nodes {
		if !p.known[n.Descriptor.Digest] {
			size += n.Descriptor.Size
		}
	}
	for _, b := range g.blobs {
		if !p.known[b.Digest] {
			size += b.Size
		}
	}
	if p.count+count > p.limits.Blobs {
		return &LimitError{What: what, Limit: "Blobs", Value: int64(p.count + count), Max: int64(p.limits.Blobs)}
	}
	if p.total+size > p.limits.TotalSize {
		return &LimitError{What: what, Limit: "TotalSize", Value: p.total + size, Max: p.limits.TotalSize}
	}
	p.count += count
	p.total += size
	for d := range g.seen {
		p.known[d] = true
	}
	return nil
}

// skip records a referrer or tagged manifest not copied.
func (p *copyPlan) skip(desc, subject ocispec.Descriptor, reason SkipReason, detail string) {
	p.skipped = append(p.skipped, SkippedReferrer{Descriptor: desc, Subject: subject.Digest, Reason: reason, Detail: detail})
}

// skipErr records a referrer or tagged manifest not copied because of err.
func (p *copyPlan) skipErr(desc, subject ocispec.Descriptor, err error) {
	reason := SkipInvalid
	if errors.Is(err, ErrLimit) {
		reason = SkipLimit
	}
	p.skip(desc, subject, reason, err.Error())
}
