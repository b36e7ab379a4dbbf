package supplychain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// CacheEntry describes one artifact in the cache.
type CacheEntry struct {
	Digest digest.Digest
	// MediaType is that of the artifact's content (manifest or index).
	MediaType string
	// Size is the bytes its content and its origins' signatures take in
	// the cache; a blob it shares with other artifacts counts for each.
	Size int64
	// Complete says whether its content is cached: false when only its
	// signatures were pulled (say, the policy denied it).
	Complete bool
	// Origins are the names it was fetched from.
	Origins []CachedOrigin
	// UsedAt is when a fetch last used it (or it was last pulled).
	UsedAt time.Time
}

// CachedOrigin is one name an artifact was fetched from.
type CachedOrigin struct {
	Name string
	// PulledAt is when its signatures were last pulled from there.
	PulledAt time.Time
	// Verdict is the trust policy's last decision under this name; nil
	// before any.
	Verdict *Verdict
}

// CollectOptions configure Collect. The zero value collects the cache down
// to its size limit, keeping nothing in particular.
type CollectOptions struct {
	// Keep are artifacts that must stay, with their signatures from every
	// origin: those of the programs loaded (so that they can be judged
	// again offline) and of loads under way.
	Keep []digest.Digest
	// All removes every artifact not kept, not only as many as the size
	// limit requires.
	All bool
	// Since, if set, keeps the artifacts used at or after it too: those a
	// request used while the caller worked out Keep (say, a load not yet
	// recorded).
	Since time.Time
}

// Collection is what Collect did.
type Collection struct {
	// Removed are the artifacts removed, least recently used first.
	Removed []CacheEntry
	// Freed is the bytes removed, leftovers included (blobs no artifact
	// references, signatures of replaced pulls); Size the bytes the cache
	// holds after.
	Freed, Size int64
}

// collectPoll is how often Collect checks whether fetches are still under
// way.
const collectPoll = 50 * time.Millisecond

// Collect removes artifacts from the cache: with opts.All every one not in
// opts.Keep, else the least recently used ones not in opts.Keep until the
// cache is within Options.MaxSize (none without a limit). It also removes
// what no artifact's record references: blobs left by failed pulls,
// signatures of replaced pulls, a cache of an earlier bpfd's referrers.
// Collect waits until no fetch is under way without keeping new ones out:
// it fails with the context's error if none comes.
func (c *Chain) Collect(ctx context.Context, opts CollectOptions) (*Collection, error) {
	c.collecting.Lock()
	defer c.collecting.Unlock()
	for !c.cache.gc.TryLock() {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cache: collect: waiting for fetches under way: %w", ctx.Err())
		case <-time.After(collectPoll):
		}
	}
	defer c.cache.gc.Unlock()
	return c.cache.collect(ctx, opts, c.maxSize)
}

// Entries lists the artifacts in the cache, by digest, and returns the
// bytes it holds.
func (c *Chain) Entries(ctx context.Context) ([]CacheEntry, int64, error) {
	c.cache.gc.RLock()
	defer c.cache.gc.RUnlock()
	u, err := c.cache.usage(ctx)
	if err != nil {
		return nil, 0, err
	}
	out := make([]CacheEntry, len(u.entries))
	for i, e := range u.entries {
		out[i] = u.describe(e)
	}
	return out, u.total, nil
}

// usage is what the cache holds: each artifact's record, the blobs of its
// content and the bytes of its evidence.
type usage struct {
	entries []*cacheEntry
	// blobs[d] are the sizes of the blobs of artifact d's content graph
	// that the cache holds; complete[d] says whether it holds the root.
	blobs    map[digest.Digest]map[digest.Digest]int64
	complete map[digest.Digest]bool
	evidence map[digest.Digest]int64
	// refs counts the artifacts each blob belongs to.
	refs map[digest.Digest]int
	// total is the bytes the cache holds: blobs, evidence and leftovers.
	total int64
	// files are the blob files of the content layout, with their sizes.
	files map[digest.Digest]int64
}

func (u *usage) describe(e *cacheEntry) CacheEntry {
	ce := CacheEntry{Digest: e.Digest, MediaType: e.MediaType, Complete: u.complete[e.Digest], UsedAt: lastUsed(e)}
	for _, size := range u.blobs[e.Digest] {
		ce.Size += size
	}
	ce.Size += u.evidence[e.Digest]
	for _, o := range e.Origins {
		co := CachedOrigin{Name: o.Name, PulledAt: o.PulledAt}
		if d := o.Decision; d != nil {
			co.Verdict = &Verdict{Decision: verify.Decision(d.Decision), Reason: verify.Reason(d.Reason), Rule: d.Rule, Signers: d.Signers, Policy: d.Policy}
		}
		ce.Origins = append(ce.Origins, co)
	}
	return ce
}

// lastUsed is when an artifact was last used or pulled.
func lastUsed(e *cacheEntry) time.Time {
	t := e.UsedAt
	for _, o := range e.Origins {
		if o.PulledAt.After(t) {
			t = o.PulledAt
		}
	}
	return t
}

// usage reads what the cache holds. The caller holds gc.
func (c *cache) usage(ctx context.Context) (*usage, error) {
	u := &usage{
		blobs: map[digest.Digest]map[digest.Digest]int64{}, complete: map[digest.Digest]bool{},
		evidence: map[digest.Digest]int64{}, refs: map[digest.Digest]int{},
	}
	ds, err := c.recordedDigests()
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		unlock := c.lock(d)
		e := c.entry(d)
		unlock()
		if e == nil {
			continue
		}
		u.entries = append(u.entries, e)
		blobs := map[digest.Digest]int64{}
		if root, ok, err := c.resolve(ctx, d.String()); err == nil && ok {
			u.complete[d] = true
			c.walk(ctx, root, blobs)
		}
		u.blobs[d] = blobs
		for b := range blobs {
			u.refs[b]++
		}
		for _, o := range e.Origins {
			u.evidence[d] += dirSize(filepath.Join(c.dir, o.Evidence))
		}
	}
	if u.files, err = c.blobFiles(); err != nil {
		return nil, err
	}
	for _, size := range u.files {
		u.total += size
	}
	u.total += dirSize(filepath.Join(c.dir, evidenceDir))
	return u, nil
}

// walk adds the blobs of node's graph that the content layout holds to
// blobs, with their sizes.
func (c *cache) walk(ctx context.Context, node ocispec.Descriptor, blobs map[digest.Digest]int64) {
	if _, seen := blobs[node.Digest]; seen {
		return
	}
	blobs[node.Digest] = node.Size
	n, err := artifact.FetchNode(ctx, c.store, node, c.limits)
	if err != nil {
		return // damaged or missing: the rest is found, or repaired, when used
	}
	for _, s := range n.Successors() {
		if isManifestType(s.MediaType) {
			c.walk(ctx, s, blobs)
		} else if ok, err := c.store.Exists(ctx, s); err == nil && ok {
			blobs[s.Digest] = s.Size
		}
	}
}

// recordedDigests lists the artifacts that have a record.
func (c *cache) recordedDigests() ([]digest.Digest, error) {
	var out []digest.Digest
	root := filepath.Join(c.dir, entriesDir)
	algs, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	for _, alg := range algs {
		files, err := os.ReadDir(filepath.Join(root, alg.Name()))
		if err != nil {
			continue
		}
		for _, f := range files {
			hex, ok := strings.CutSuffix(f.Name(), ".json")
			d := digest.NewDigestFromEncoded(digest.Algorithm(alg.Name()), hex)
			if ok && d.Validate() == nil {
				out = append(out, d)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// blobFiles lists the blob files of the content layout with their sizes.
func (c *cache) blobFiles() (map[digest.Digest]int64, error) {
	out := map[digest.Digest]int64{}
	root := filepath.Join(c.dir, ocispec.ImageBlobsDir)
	algs, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	for _, alg := range algs {
		files, err := os.ReadDir(filepath.Join(root, alg.Name()))
		if err != nil {
			continue
		}
		for _, f := range files {
			d := digest.NewDigestFromEncoded(digest.Algorithm(alg.Name()), f.Name())
			info, err := f.Info()
			if d.Validate() != nil || err != nil || !info.Mode().IsRegular() {
				continue
			}
			out[d] = info.Size()
		}
	}
	return out, nil
}

// dirSize returns the bytes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// collect is Collect; the caller holds gc alone.
func (c *cache) collect(ctx context.Context, opts CollectOptions, maxSize int64) (*Collection, error) {
	u, err := c.usage(ctx)
	if err != nil {
		return nil, err
	}
	before := u.total
	keep := map[digest.Digest]bool{}
	for _, d := range opts.Keep {
		keep[d] = true
	}
	var candidates []*cacheEntry
	for _, e := range u.entries {
		if !keep[e.Digest] && (opts.Since.IsZero() || lastUsed(e).Before(opts.Since)) {
			candidates = append(candidates, e)
		}
	}
	slices.SortStableFunc(candidates, func(a, b *cacheEntry) int { return lastUsed(a).Compare(lastUsed(b)) })

	// Choose, the least recently used first, counting what each frees:
	// its evidence, and the blobs no other artifact left has.
	size := u.total
	removed := map[digest.Digest]bool{}
	col := &Collection{}
	for _, e := range candidates {
		if !opts.All && (maxSize <= 0 || size <= maxSize) {
			break
		}
		removed[e.Digest] = true
		col.Removed = append(col.Removed, u.describe(e))
		size -= u.evidence[e.Digest]
		for b, s := range u.blobs[e.Digest] {
			if u.refs[b]--; u.refs[b] == 0 {
				size -= s
			}
		}
	}

	// Sweep: what the artifacts left reference stays; the rest goes.
	live := map[digest.Digest]bool{}
	for _, e := range u.entries {
		if removed[e.Digest] {
			continue
		}
		for b := range u.blobs[e.Digest] {
			live[b] = true
		}
	}
	for _, e := range u.entries {
		if removed[e.Digest] {
			if err := c.forget(e.Digest); err != nil {
				return nil, err
			}
			c.log.Info("cache: removed", "digest", e.Digest, "last_used", lastUsed(e))
		}
	}
	if err := c.sweepContent(ctx, live, u.files); err != nil {
		return nil, err
	}
	if err := c.sweepEvidence(u.entries, removed); err != nil {
		return nil, err
	}
	after, err := c.usage(ctx)
	if err != nil {
		return nil, err
	}
	col.Size = after.total
	col.Freed = max(before-after.total, 0)
	if maxSize > 0 && col.Size > maxSize {
		c.log.Warn("cache: over its size limit with only what loaded programs need left", "size", col.Size, "max_size", maxSize)
	}
	return col, nil
}

// sweepContent removes from the content layout the manifests and blobs
// not live, with the tags of those manifests.
func (c *cache) sweepContent(ctx context.Context, live map[digest.Digest]bool, files map[digest.Digest]int64) error {
	data, err := os.ReadFile(filepath.Join(c.dir, ocispec.ImageIndexFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cache: %w", err)
	}
	var index ocispec.Index
	if len(data) > 0 {
		if err := json.Unmarshal(data, &index); err != nil {
			return fmt.Errorf("cache: index: %w", err)
		}
	}
	gone := map[digest.Digest]bool{}
	for _, m := range index.Manifests {
		if live[m.Digest] || gone[m.Digest] {
			continue
		}
		gone[m.Digest] = true
		m.Annotations = nil
		if err := c.store.Delete(ctx, m); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("cache: cannot remove a manifest", "digest", m.Digest, "error", err)
		}
	}
	for d := range files {
		if live[d] || gone[d] {
			continue
		}
		path := filepath.Join(c.dir, ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cache: %w", err)
		}
	}
	return nil
}

// sweepEvidence removes the evidence of removed artifacts, and evidence no
// record names (replaced, or left by an interrupted pull).
func (c *cache) sweepEvidence(entries []*cacheEntry, removed map[digest.Digest]bool) error {
	named := map[string]bool{}
	for _, e := range entries {
		if removed[e.Digest] {
			continue
		}
		for _, o := range e.Origins {
			named[filepath.Clean(o.Evidence)] = true
		}
	}
	root := filepath.Join(c.dir, evidenceDir)
	algs, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	for _, alg := range algs {
		artifacts, _ := os.ReadDir(filepath.Join(root, alg.Name()))
		for _, a := range artifacts {
			dirs, _ := os.ReadDir(filepath.Join(root, alg.Name(), a.Name()))
			left := 0
			for _, d := range dirs {
				rel := filepath.Join(evidenceDir, alg.Name(), a.Name(), d.Name())
				if named[rel] {
					left++
					continue
				}
				c.removeEvidence(rel)
			}
			if left == 0 {
				os.Remove(filepath.Join(root, alg.Name(), a.Name()))
			}
		}
	}
	return nil
}
