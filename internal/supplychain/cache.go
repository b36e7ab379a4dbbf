package supplychain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/errdef"

	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// cache is bpfd's content-addressed store of artifacts: an OCI image layout
// in the cache dir holding every artifact pulled, by digest, with its
// signatures (OCI referrers and cosign ".sig" tags) and, tagged "NAME:TAG",
// the tags it was pulled by, so that `oras` or `bpfctl-image inspect
// oci:DIR@DIGEST` can read it. Beside the layout, entries/<alg>/<hex>.json
// records for each artifact where it came from and the trust decision that
// last admitted it.
//
// Blobs are checked against their digests on every read; a damaged artifact
// is repaired by deleting what does not match (and the manifests above it)
// and pulling again.
type cache struct {
	dir   string
	store *oci.Store
	log   *slog.Logger

	mu    sync.Mutex
	locks map[digest.Digest]*digestLock

	// pulls counts the pulls under way. A failed pull may leave a file in
	// ingest/ (on a full disk the layout store leaves an empty one behind),
	// so ingestDirty is set and ingest/ is emptied once no pull is under
	// way, rather than only at the next start.
	ingestMu    sync.Mutex
	pulls       int
	ingestDirty bool
}

type digestLock struct {
	sync.Mutex
	users int
}

// cacheEntry is the record kept beside each cached artifact.
type cacheEntry struct {
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	// Images are the names it was pulled from ("host/repo", "oci:/path").
	Images   []string  `json:"images"`
	PulledAt time.Time `json:"pulledAt"`
	// Admission is the last trust decision that admitted it; nil when it
	// was never admitted.
	Admission *admission `json:"admission,omitempty"`
}

// admission is a trust decision that admitted an artifact.
type admission struct {
	// Policy is the fingerprint of the policy that decided.
	Policy   string    `json:"policy"`
	Rule     string    `json:"rule,omitempty"`
	Decision string    `json:"decision"`
	Signers  []string  `json:"signers,omitempty"`
	At       time.Time `json:"at"`
}

// openCache opens (creating it if needed) the cache in dir. A layout whose
// index cannot be read (a crash while it was written) is set aside as
// index.json.damaged and the cache starts empty of tags: its blobs are
// checked and fetched again as they are used.
func openCache(ctx context.Context, dir string, log *slog.Logger) (*cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache dir: %w", err)
	}
	// Half-written blobs of an interrupted pull.
	if err := os.RemoveAll(filepath.Join(dir, ingestDir)); err != nil {
		return nil, fmt.Errorf("cache dir: %w", err)
	}
	store, err := oci.NewWithContext(ctx, dir)
	if err != nil {
		index := filepath.Join(dir, ocispec.ImageIndexFile)
		if _, statErr := os.Stat(index); statErr != nil {
			return nil, fmt.Errorf("cache %s: %w", dir, err)
		}
		log.Error("cache index unreadable; setting it aside and starting with an empty index", "path", index, "error", err)
		if err := os.Rename(index, index+".damaged"); err != nil {
			return nil, fmt.Errorf("cache %s: %w", dir, err)
		}
		if store, err = oci.NewWithContext(ctx, dir); err != nil {
			return nil, fmt.Errorf("cache %s: %w", dir, err)
		}
	}
	// Deletions are precise (repair): nothing else goes with a node.
	store.AutoGC = false
	return &cache{dir: dir, store: store, log: log, locks: map[digest.Digest]*digestLock{}}, nil
}

// lock serializes the work on one artifact; the caller calls the function
// returned to unlock.
func (c *cache) lock(d digest.Digest) func() {
	c.mu.Lock()
	l := c.locks[d]
	if l == nil {
		l = &digestLock{}
		c.locks[d] = l
	}
	l.users++
	c.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		c.mu.Lock()
		if l.users--; l.users == 0 {
			delete(c.locks, d)
		}
		c.mu.Unlock()
	}
}

// resolve returns the manifest or index the cache holds under reference: a
// digest or a "NAME:TAG" tag; false when it holds none.
func (c *cache) resolve(ctx context.Context, reference string) (ocispec.Descriptor, bool, error) {
	desc, err := c.store.Resolve(ctx, reference)
	if errors.Is(err, errdef.ErrNotFound) {
		return ocispec.Descriptor{}, false, nil
	}
	if err != nil {
		return ocispec.Descriptor{}, false, fmt.Errorf("cache: %w", err)
	}
	if !isManifestType(desc.MediaType) {
		return ocispec.Descriptor{}, false, nil // a blob, not an artifact
	}
	return desc, true, nil
}

func isManifestType(mt string) bool {
	return strings.Contains(mt, "manifest") || mt == ocispec.MediaTypeImageIndex
}

// has reports whether the cache holds root's manifest.
func (c *cache) has(ctx context.Context, root ocispec.Descriptor) (bool, error) {
	ok, err := c.store.Exists(ctx, root)
	if err != nil {
		return false, fmt.Errorf("cache: %w", err)
	}
	return ok, nil
}

// ingestDir is where the layout store writes blobs before moving them in.
const ingestDir = "ingest"

// pull copies root, its referrers and cosign tags from src into the cache.
func (c *cache) pull(ctx context.Context, src *artifact.Target, root ocispec.Descriptor) error {
	c.ingestMu.Lock()
	c.pulls++
	c.ingestMu.Unlock()
	result, err := artifact.Copy(ctx, src, root, c.store, "", artifact.CopyOptions{})
	// A referrer skipped as invalid may have failed half-way into ingest/.
	c.pullDone(err != nil || skippedInvalid(result))
	if err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	return nil
}

// skippedInvalid reports whether a copy left a referrer behind for its
// content (missing, tampered, malformed).
func skippedInvalid(result *artifact.CopyResult) bool {
	if result == nil {
		return false
	}
	for _, s := range result.Skipped {
		if s.Reason == artifact.SkipInvalid {
			return true
		}
	}
	return false
}

// pullDone ends a pull; after failures it empties ingest/ once no pull is
// under way.
func (c *cache) pullDone(failed bool) {
	c.ingestMu.Lock()
	defer c.ingestMu.Unlock()
	c.pulls--
	c.ingestDirty = c.ingestDirty || failed
	if c.pulls > 0 || !c.ingestDirty {
		return
	}
	c.ingestDirty = false
	if err := os.RemoveAll(filepath.Join(c.dir, ingestDir)); err != nil {
		c.log.Warn("cache: cannot remove the half-written blobs of failed pulls", "path", filepath.Join(c.dir, ingestDir), "error", err)
	}
}

// tag records that name (NAME:TAG) resolved to root, unless it already
// does.
func (c *cache) tag(ctx context.Context, root ocispec.Descriptor, name string) error {
	if cur, ok, err := c.resolve(ctx, name); err == nil && ok && cur.Digest == root.Digest {
		return nil
	}
	if err := c.store.Tag(ctx, root, name); err != nil {
		return fmt.Errorf("cache: tag %s: %w", name, err)
	}
	return nil
}

// repair checks every blob of root's graph, of its referrers' and of its
// cosign tags' against its digest. It deletes those missing or damaged,
// with every manifest above them, so that the next pull fetches them again,
// and returns how many it deleted.
func (c *cache) repair(ctx context.Context, root ocispec.Descriptor) (int, error) {
	r := &repairer{c: c, seen: map[digest.Digest]bool{}}
	nodes := []ocispec.Descriptor{root}
	for len(nodes) > 0 {
		n := nodes[0]
		nodes = nodes[1:]
		ok, err := r.check(ctx, n)
		if err != nil {
			return r.removed, err
		}
		if !ok {
			continue
		}
		// Signatures: referrers (OCI 1.1 subjects) and cosign's .sig tag.
		preds, err := c.store.Predecessors(ctx, n)
		if err != nil {
			return r.removed, fmt.Errorf("cache: referrers of %s: %w", n.Digest, err)
		}
		for _, p := range preds {
			if p.Digest != "" && !r.seen[p.Digest] {
				nodes = append(nodes, p)
			}
		}
		if sig, ok, err := c.resolve(ctx, verify.LegacySignatureTag(n.Digest)); err == nil && ok && !r.seen[sig.Digest] {
			nodes = append(nodes, sig)
		}
	}
	return r.removed, nil
}

type repairer struct {
	c       *cache
	seen    map[digest.Digest]bool
	removed int
}

// check verifies node and what it refers to, deleting what is damaged; it
// reports whether node is whole.
func (r *repairer) check(ctx context.Context, node ocispec.Descriptor) (bool, error) {
	if r.seen[node.Digest] {
		return true, nil
	}
	r.seen[node.Digest] = true
	if _, err := content.FetchAll(ctx, r.c.store, node); err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return false, r.delete(ctx, node, err)
	}
	successors, err := content.Successors(ctx, r.c.store, node)
	if err != nil {
		return false, r.delete(ctx, node, err)
	}
	whole := true
	for _, s := range successors {
		ok, err := r.check(ctx, s)
		if err != nil {
			return false, err
		}
		whole = whole && ok
	}
	if !whole {
		return false, r.delete(ctx, node, errors.New("refers to damaged content"))
	}
	return true, nil
}

func (r *repairer) delete(ctx context.Context, node ocispec.Descriptor, why error) error {
	r.c.log.Warn("cache: removing damaged content", "digest", node.Digest, "media_type", node.MediaType, "reason", why)
	err := r.c.store.Delete(ctx, node)
	if err != nil && !errors.Is(err, errdef.ErrNotFound) && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cache: remove damaged %s: %w", node.Digest, err)
	}
	r.removed++
	return nil
}

// entryPath returns where the record of the artifact d is kept.
func (c *cache) entryPath(d digest.Digest) string {
	return filepath.Join(c.dir, "entries", d.Algorithm().String(), d.Encoded()+".json")
}

// entry returns the record of the artifact root, or a new one.
func (c *cache) entry(root ocispec.Descriptor) *cacheEntry {
	e := &cacheEntry{Digest: root.Digest, MediaType: root.MediaType, Size: root.Size}
	data, err := os.ReadFile(c.entryPath(root.Digest))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("cache: unreadable entry record; starting a new one", "digest", root.Digest, "error", err)
		}
		return e
	}
	if err := json.Unmarshal(data, e); err != nil || e.Digest != root.Digest {
		c.log.Warn("cache: damaged entry record; starting a new one", "digest", root.Digest, "error", err)
		return &cacheEntry{Digest: root.Digest, MediaType: root.MediaType, Size: root.Size}
	}
	return e
}

// save writes e atomically.
func (c *cache) save(e *cacheEntry) error {
	path := c.entryPath(e.Digest)
	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("cache entry %s: %w", e.Digest, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".entry-*")
	if err != nil {
		return fmt.Errorf("cache entry %s: %w", e.Digest, err)
	}
	_, err = tmp.Write(append(data, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("cache entry %s: %w", e.Digest, err)
	}
	return nil
}
