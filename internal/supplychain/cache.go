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
	"slices"
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

// cache is bpfd's store of artifacts, in the cache dir:
//
//	oci-layout, index.json, blobs/   the content: an OCI image layout of
//	                                 every artifact pulled (manifests,
//	                                 configs, layers) by digest, tagged
//	                                 "NAME:TAG" by the tags it was pulled
//	                                 by; no signatures
//	evidence/<alg>/<hex>/<id>/       for each origin an artifact was fetched
//	                                 from, what that origin served besides
//	                                 the layers: an OCI layout of its own
//	                                 with the manifests and configs, the
//	                                 signature and attestation referrers and
//	                                 cosign's .sig and .att tags, replaced
//	                                 whole on each pull from that origin
//	entries/<alg>/<hex>.json         each artifact's record (cacheEntry):
//	                                 the media type of its content, its
//	                                 origins with their evidence, when each
//	                                 was pulled and what it last decided
//	bpfd-cache.json                  the format version
//
// The trust policy judges an artifact by the name it was fetched from, with
// the signatures that origin served: one origin's signatures are never read
// when another's name is judged, and no origin can overwrite another's
// (a ".sig" tag is per origin). Blobs are checked against their digests on
// every read; damaged content is repaired by deleting what does not match
// (and the manifests above it) and pulling it again.
//
// Fetches share gc; collection (Collect) takes it alone, and only when no
// fetch is under way.
type cache struct {
	dir    string
	store  *oci.Store
	log    *slog.Logger
	limits artifact.Limits

	gc sync.RWMutex

	mu       sync.Mutex
	locks    map[digest.Digest]*digestLock
	entries  map[digest.Digest]*cacheEntry
	evidence map[string]*oci.ReadOnlyStore

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

// cacheFormat is the version of the cache's layout this bpfd writes. Caches
// of version 1 (no bpfd-cache.json) kept every origin's signatures together
// in the content layout; their records name no origins, so that what they
// hold is confirmed at its origin before it is used again.
const (
	cacheFormat     = 2
	cacheFormatFile = "bpfd-cache.json"
	evidenceDir     = "evidence"
	entriesDir      = "entries"
	// ingestDir is where the layout store writes blobs before moving
	// them in; tmpDir holds objects being checked (Pull).
	ingestDir = "ingest"
	tmpDir    = "tmp"
)

// cacheEntry is the record kept beside each cached artifact.
type cacheEntry struct {
	Digest digest.Digest `json:"digest"`
	// MediaType is that of the artifact's content, as read (never the one
	// a registry or layout claimed).
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
	// Origins are the names it was fetched from, each with what that
	// origin served.
	Origins []*originRecord `json:"origins,omitempty"`
	// UsedAt is when a fetch last used it, as last saved.
	UsedAt time.Time `json:"usedAt,omitzero"`
}

// originRecord is one origin of an artifact.
type originRecord struct {
	// Name is the origin's name, as policies match it ("host/repo",
	// "oci:/path").
	Name string `json:"name"`
	// Evidence is the origin's evidence layout, relative to the cache dir.
	Evidence string    `json:"evidence"`
	PulledAt time.Time `json:"pulledAt"`
	// Decision is the trust policy's last decision on the artifact under
	// this name; nil before any.
	Decision *decision `json:"decision,omitempty"`
}

// decision is a trust decision recorded for an origin.
type decision struct {
	// Policy is the fingerprint of the policy that decided.
	Policy   string    `json:"policy"`
	Rule     string    `json:"rule,omitempty"`
	Decision string    `json:"decision"`
	Reason   string    `json:"reason,omitempty"`
	Signers  []string  `json:"signers,omitempty"`
	At       time.Time `json:"at"`
}

func (e *cacheEntry) origin(name string) *originRecord {
	for _, o := range e.Origins {
		if o.Name == name {
			return o
		}
	}
	return nil
}

func (e *cacheEntry) clone() *cacheEntry {
	c := *e
	c.Origins = make([]*originRecord, len(e.Origins))
	for i, o := range e.Origins {
		oc := *o
		if o.Decision != nil {
			d := *o.Decision
			d.Signers = slices.Clone(d.Signers)
			oc.Decision = &d
		}
		c.Origins[i] = &oc
	}
	return &c
}

// openCache opens (creating it if needed) the cache in dir. A layout whose
// index cannot be read (a crash while it was written) is set aside as
// index.json.damaged and the cache starts empty of tags: its blobs are
// checked and fetched again as they are used.
func openCache(ctx context.Context, dir string, limits artifact.Limits, log *slog.Logger) (*cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache dir: %w", err)
	}
	// Half-written blobs of an interrupted pull, objects being checked.
	for _, d := range []string{ingestDir, tmpDir} {
		if err := os.RemoveAll(filepath.Join(dir, d)); err != nil {
			return nil, fmt.Errorf("cache dir: %w", err)
		}
	}
	if err := checkFormat(dir, log); err != nil {
		return nil, err
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
	// Deletions are precise (repair, Collect): nothing else goes with a
	// node.
	store.AutoGC = false
	return &cache{
		dir: dir, store: store, log: log, limits: limits,
		locks: map[digest.Digest]*digestLock{}, entries: map[digest.Digest]*cacheEntry{}, evidence: map[string]*oci.ReadOnlyStore{},
	}, nil
}

// checkFormat reads the cache's format version, writing it to a new or
// older cache, and refuses a cache of a later bpfd.
func checkFormat(dir string, log *slog.Logger) error {
	path := filepath.Join(dir, cacheFormatFile)
	var f struct {
		Version int `json:"version"`
	}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, serr := os.Stat(filepath.Join(dir, ocispec.ImageIndexFile)); serr == nil {
			log.Info("cache of an earlier bpfd: its signatures are not bound to their origins and are not used; artifacts are confirmed at their origin when next fetched", "path", dir)
		}
	case err != nil:
		return fmt.Errorf("cache %s: %w", dir, err)
	case json.Unmarshal(data, &f) != nil || f.Version < 1:
		log.Warn("cache format file unreadable; rewriting it", "path", path)
	case f.Version > cacheFormat:
		return fmt.Errorf("cache %s: format %d, this bpfd reads %d: use an empty cache dir or the bpfd that wrote it", dir, f.Version, cacheFormat)
	case f.Version == cacheFormat:
		return nil
	}
	return writeFileAtomic(path, fmt.Appendf(nil, "{\"version\": %d}\n", cacheFormat))
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

// resolve returns the manifest or index the content layout holds under
// reference: a digest or a "NAME:TAG" tag; false when it holds none.
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

// has reports whether the content layout holds root's manifest, which a
// pull writes after every blob below it.
func (c *cache) has(ctx context.Context, root ocispec.Descriptor) (bool, error) {
	ok, err := c.store.Exists(ctx, root)
	if err != nil {
		return false, fmt.Errorf("cache: %w", err)
	}
	return ok, nil
}

// pullContent copies the artifact root from src into the content layout,
// without its referrers.
func (c *cache) pullContent(ctx context.Context, src *artifact.Target, root ocispec.Descriptor) error {
	c.pullStarted()
	_, err := artifact.Copy(ctx, src, root, c.store, "", artifact.CopyOptions{SkipReferrers: true, Limits: c.limits})
	c.pullDone(err != nil)
	if err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	return nil
}

func (c *cache) pullStarted() {
	c.ingestMu.Lock()
	c.pulls++
	c.ingestMu.Unlock()
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

// repair checks every blob of root's graph in the content layout against
// its digest. It deletes those missing or damaged, with every manifest
// above them, so that the next pull fetches them again, and returns how
// many it deleted.
func (c *cache) repair(ctx context.Context, root ocispec.Descriptor) (int, error) {
	r := &repairer{c: c, seen: map[digest.Digest]bool{}}
	if _, err := r.check(ctx, root); err != nil {
		return r.removed, err
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
	return filepath.Join(c.dir, entriesDir, d.Algorithm().String(), d.Encoded()+".json")
}

// entry returns a copy of the record of the artifact d, or nil when there
// is none. The caller holds d's lock.
func (c *cache) entry(d digest.Digest) *cacheEntry {
	c.mu.Lock()
	e, ok := c.entries[d]
	c.mu.Unlock()
	if !ok {
		e = c.readEntry(d)
		c.mu.Lock()
		c.entries[d] = e // nil too: known to be absent
		c.mu.Unlock()
	}
	if e == nil {
		return nil
	}
	return e.clone()
}

// readEntry reads the record of d from its file; nil when there is none or
// it cannot be read.
func (c *cache) readEntry(d digest.Digest) *cacheEntry {
	data, err := os.ReadFile(c.entryPath(d))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("cache: unreadable entry record; starting a new one", "digest", d, "error", err)
		}
		return nil
	}
	e := &cacheEntry{}
	if err := json.Unmarshal(data, e); err != nil || e.Digest != d {
		c.log.Warn("cache: damaged entry record; starting a new one", "digest", d, "error", err)
		return nil
	}
	e.Origins = slices.DeleteFunc(e.Origins, func(o *originRecord) bool { return o == nil || o.Name == "" || !validEvidencePath(o.Evidence, d) })
	return e
}

// save writes e atomically and keeps a copy. The caller holds e's lock.
func (c *cache) save(e *cacheEntry) error {
	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	path := c.entryPath(e.Digest)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("cache entry %s: %w", e.Digest, err)
	}
	if err := writeFileAtomic(path, append(data, '\n')); err != nil {
		return fmt.Errorf("cache entry %s: %w", e.Digest, err)
	}
	c.mu.Lock()
	c.entries[e.Digest] = e.clone()
	c.mu.Unlock()
	return nil
}

// touch notes that a fetch used the artifact d at t; the record keeps it
// from its next save.
func (c *cache) touch(d digest.Digest, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[d]; e != nil {
		e.UsedAt = t
	}
}

// forget removes the record of d. The caller holds gc alone.
func (c *cache) forget(d digest.Digest) error {
	c.mu.Lock()
	delete(c.entries, d)
	c.mu.Unlock()
	if err := os.Remove(c.entryPath(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cache entry %s: %w", d, err)
	}
	return nil
}

// writeFileAtomic writes data to path through a temporary file renamed
// over it.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// decisionOf records a verification's report.
func decisionOf(report *verify.Report, at time.Time) *decision {
	if report == nil {
		return nil
	}
	return &decision{Policy: report.Policy, Rule: report.Rule, Decision: string(report.Decision), Reason: string(report.Reason), Signers: report.Signers(), At: at}
}

func (d *decision) same(o *decision) bool {
	return d != nil && o != nil && d.Policy == o.Policy && d.Rule == o.Rule && d.Decision == o.Decision && d.Reason == o.Reason && slices.Equal(d.Signers, o.Signers)
}
