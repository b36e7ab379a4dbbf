package supplychain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// fetch is one Fetch or Pull of an OCI artifact. Its steps, in order:
//
//  1. locate: find the artifact's root, in the cache only when this origin
//     has served it before and the pull policy allows, else at the origin
//     (which confirms that the origin has it);
//  2. judge: verify the signatures (and attestations) this origin served,
//     pulled as evidence without the layers when they are not cached;
//  3. only once admitted, pull the content (layers included) if it is not
//     cached, and read or check the objects.
type fetch struct {
	c      *Chain
	res    *Result
	ref    artifact.Reference
	name   string // the origin's name: what the policy judges
	policy PullPolicy
	check  bool // Pull: check the objects, keep none
	// namespace is the Kubernetes namespace asking; "" for none.
	namespace string

	origin *artifact.Target // opened when needed
	root   ocispec.Descriptor
	entry  *cacheEntry

	evidencePulled, contentPulled bool
	// annotations are the annotations of the manifest the objects were
	// read from.
	annotations map[string]string
}

func (f *fetch) close() {
	if f.origin != nil {
		f.origin.Close()
	}
}

func (f *fetch) run(ctx context.Context) (err error) {
	if err := f.locate(ctx); err != nil {
		return err
	}
	f.res.Digest = f.root.Digest
	defer func() {
		if f.evidencePulled || f.contentPulled {
			f.res.Pulls++
		} else {
			f.res.CacheHits++
		}
	}()
	c := f.c.cache
	unlock := c.lock(f.root.Digest)
	defer unlock()
	if f.entry = c.entry(f.root.Digest); f.entry == nil {
		f.entry = &cacheEntry{Digest: f.root.Digest, MediaType: f.root.MediaType, Size: f.root.Size}
	}

	report, err := f.judge(ctx)
	f.record(report)
	if err != nil {
		return err
	}
	if err := f.ensureContent(ctx); err != nil {
		return err
	}
	objects, err := f.objects(ctx)
	if err != nil {
		return err
	}
	f.recordTag(ctx)
	c.touch(f.root.Digest, time.Now().UTC())
	f.res.Objects = objects
	f.res.Annotations = f.annotations
	return nil
}

// tag returns the cache's tag for a reference by tag: "NAME:TAG".
func (f *fetch) tag() string { return f.ref.Name() + ":" + f.ref.Selector() }

// locate finds the root descriptor. The cache serves it without asking the
// origin only when the reference is by digest (or, under PullNever, by a
// tag pulled before), the pull policy is not Always, and this origin has
// served it before: a digest cached from other origins is confirmed at
// this one, and refused under PullNever.
func (f *fetch) locate(ctx context.Context) error {
	c := f.c.cache
	confirming := false
	if f.policy == PullNever || f.policy == PullIfNotPresent && f.ref.Digest != "" {
		key := f.ref.Digest.String()
		if f.ref.Digest == "" {
			key = f.tag()
		}
		root, ok, err := c.resolve(ctx, key)
		if err != nil {
			return err
		}
		switch {
		case ok && f.servedBy(root):
			f.root = root
			return nil
		case ok && f.policy == PullNever:
			return fmt.Errorf("%s is in the cache, but was never fetched from %s; under pull policy Never an artifact is served only under the names it was fetched from: %w", root.Digest, f.name, ErrNotCached)
		case ok:
			confirming = true
			f.c.log.Info("cache: artifact cached from other origins; confirming it at this one", "image", f.name, "digest", root.Digest)
		case f.policy == PullNever:
			return ErrNotCached // the caller names the reference
		}
	}
	err := f.openOrigin(ctx)
	if err == nil {
		f.root, err = f.origin.ResolveReference(ctx)
	}
	if err != nil && confirming {
		return fmt.Errorf("%s is in the cache from other origins, and cannot be confirmed at %s: %w", f.ref.Digest, f.name, err)
	}
	return err
}

// servedBy reports whether this origin has served root before.
func (f *fetch) servedBy(root ocispec.Descriptor) bool {
	c := f.c.cache
	unlock := c.lock(root.Digest)
	defer unlock()
	e := c.entry(root.Digest)
	return e != nil && e.origin(f.name) != nil
}

func (f *fetch) openOrigin(ctx context.Context) error {
	if f.origin != nil {
		return nil
	}
	opts := f.c.open
	opts.PlainHTTP = slices.Contains(f.c.plain, f.ref.Registry)
	t, err := artifact.Open(ctx, f.ref, opts)
	if err != nil {
		return err
	}
	f.origin = t
	return nil
}

// judge verifies the artifact under the origin's name with the evidence
// that origin served: the cached evidence when the pull policy allows, else
// pulled now. A denial of cached evidence is checked once more against the
// origin (unless under PullNever) before it stands, so that signatures added
// there since are seen.
func (f *fetch) judge(ctx context.Context) (*verify.Report, error) {
	if f.entry.origin(f.name) == nil || f.policy == PullAlways {
		if err := f.pullEvidence(ctx); err != nil {
			return nil, err
		}
	}
	report, err := f.verify(ctx)
	if errors.Is(err, errEvidenceGone) {
		if f.policy == PullNever {
			return nil, fmt.Errorf("%s: the signatures %s served are no longer in the cache: %w", f.root.Digest, f.name, ErrNotCached)
		}
		f.c.log.Warn("cache: signatures missing from the cache; pulling them again", "image", f.name, "digest", f.root.Digest)
		if err := f.pullEvidence(ctx); err != nil {
			return nil, err
		}
		report, err = f.verify(ctx)
	}
	var denial *verify.DenialError
	// Signatures the origin serves now cannot admit a namespace that the
	// rule does not: that denial needs no second look.
	if errors.As(err, &denial) && denial.Reason != verify.ReasonNamespaceNotAdmitted && !f.evidencePulled && f.policy != PullNever {
		if perr := f.pullEvidence(ctx); perr != nil {
			f.c.log.Warn("cache: denied from the cache and the origin cannot be read again; the denial stands", "image", f.name, "digest", f.root.Digest, "error", perr)
		} else {
			report, err = f.verify(ctx)
		}
	}
	f.res.noteVerdict(report, err)
	return report, err
}

// verify judges the origin's recorded evidence under the policy in force,
// or returns the admission that policy made of the same evidence before
// (verdicts.go).
func (f *fetch) verify(ctx context.Context) (*verify.Report, error) {
	o := f.entry.origin(f.name)
	if o == nil {
		return nil, fmt.Errorf("%s from %s: %w", f.root.Digest, f.name, errEvidenceGone)
	}
	src, err := f.c.cache.evidenceStore(ctx, o.Evidence)
	if err != nil {
		return nil, err
	}
	v, remembered := f.c.trust.current(), f.c.trust.verdicts()
	key := verdictKey{digest: f.root.Digest, mediaType: f.root.MediaType, size: f.root.Size, origin: f.name, evidence: o.Evidence, pulledAt: o.PulledAt, namespace: f.namespace}
	if report := remembered.get(v, key); report != nil {
		f.res.VerdictRemembered = true
		return report, nil
	}
	f.res.VerdictRemembered = false
	report, err := v.VerifyArtifact(ctx, src, verify.Subject{Name: f.name, Descriptor: f.root, Namespace: f.namespace})
	if err == nil {
		remembered.put(v, key, report)
	}
	return report, err
}

// pullEvidence pulls what the origin serves of the artifact but its layers
// and records it as the origin's evidence, replacing what it served before.
func (f *fetch) pullEvidence(ctx context.Context) error {
	if err := f.openOrigin(ctx); err != nil {
		return err
	}
	c := f.c.cache
	start := time.Now()
	rel, result, err := c.pullEvidence(ctx, f.origin, f.root)
	if err != nil {
		return err
	}
	f.evidencePulled = true
	f.root.MediaType = result.Root.MediaType // the content's, not the one claimed
	f.entry.MediaType, f.entry.Size = result.Root.MediaType, result.Root.Size
	o := f.entry.origin(f.name)
	old := ""
	if o == nil {
		o = &originRecord{Name: f.name}
		f.entry.Origins = append(f.entry.Origins, o)
	} else {
		old = o.Evidence
	}
	o.Evidence, o.PulledAt = rel, time.Now().UTC()
	if err := c.save(f.entry); err != nil {
		c.removeEvidence(rel)
		return err
	}
	if old != "" && old != rel {
		c.removeEvidence(old)
	}
	attrs := []any{"image", f.name, "digest", f.root.Digest, "referrers", len(result.Referrers), "tags", len(result.Tags), "duration", time.Since(start).Round(time.Millisecond)}
	if n := len(result.Skipped); n > 0 {
		attrs = append(attrs, "skipped", n, "first_skipped", result.Skipped[0].String())
	}
	f.c.log.Info("cache: pulled signatures", attrs...)
	return nil
}

// record keeps the policy's decision under the origin's name when it
// changed (a pull, another policy, other signatures).
func (f *fetch) record(report *verify.Report) {
	o := f.entry.origin(f.name)
	if report == nil || o == nil {
		return
	}
	now := decisionOf(report, time.Now().UTC())
	if now.same(o.Decision) && !f.evidencePulled {
		return
	}
	if prev := o.Decision; prev != nil && prev.Policy != now.Policy {
		f.c.log.Info("cache: artifact re-verified under a changed trust policy", "image", f.name, "digest", f.root.Digest, "previous_policy", prev.Policy, "policy", now.Policy, "decision", now.Decision)
	}
	o.Decision = now
	f.entry.UsedAt = now.At
	if err := f.c.cache.save(f.entry); err != nil {
		// The record is informative; the artifact was verified just now.
		f.c.log.Warn("cache: cannot record the decision", "digest", f.root.Digest, "error", err)
	}
}

// recordTag records the tag a reference by tag resolved to.
func (f *fetch) recordTag(ctx context.Context) {
	if f.ref.Digest != "" {
		return
	}
	c := f.c.cache
	root, ok, err := c.resolve(ctx, f.root.Digest.String()) // as the content layout records it
	if err != nil || !ok {
		return
	}
	if err := c.tag(ctx, root, f.tag()); err != nil {
		f.c.log.Warn("cache: cannot record the tag", "tag", f.tag(), "digest", root.Digest, "error", err)
	}
}

// ensureContent pulls the artifact's content from the origin unless the
// cache has it.
func (f *fetch) ensureContent(ctx context.Context) error {
	ok, err := f.c.cache.has(ctx, f.root)
	if err != nil || ok {
		return err
	}
	if f.policy == PullNever {
		return fmt.Errorf("%s: %w", f.root.Digest, ErrNotCached)
	}
	return f.pullContent(ctx)
}

func (f *fetch) pullContent(ctx context.Context) error {
	if err := f.openOrigin(ctx); err != nil {
		return err
	}
	start := time.Now()
	if err := f.c.cache.pullContent(ctx, f.origin, f.root); err != nil {
		return err
	}
	f.contentPulled = true
	f.c.log.Info("cache: pulled", "image", f.name, "digest", f.root.Digest, "duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// objects reads the objects for this host from the cache (or, for a Pull,
// checks them without keeping them), repairing and pulling the artifact
// again once when its content is damaged.
func (f *fetch) objects(ctx context.Context) ([]Object, error) {
	objects, err := f.readObjects(ctx)
	if err != nil && (errors.Is(err, artifact.ErrDigestMismatch) || errors.Is(err, artifact.ErrNotFound)) {
		removed, rerr := f.c.cache.repair(ctx, f.root)
		if rerr != nil {
			return nil, rerr
		}
		if removed == 0 {
			return nil, err // not damage: e.g. no entry for this platform
		}
		f.res.Repairs++
		f.c.log.Warn("cache: damaged artifact repaired", "image", f.name, "digest", f.root.Digest, "removed", removed, "error", err)
		if f.policy == PullNever {
			return nil, fmt.Errorf("%s: the cached copy was damaged and is removed (%v); %w", f.root.Digest, err, ErrNotCached)
		}
		if err := f.pullContent(ctx); err != nil {
			return nil, err
		}
		objects, err = f.readObjects(ctx)
	}
	return objects, err
}

func (f *fetch) readObjects(ctx context.Context) ([]Object, error) {
	store := f.c.cache.store
	if f.check {
		return nil, f.checkObjects(ctx)
	}
	bc, err := artifact.Fetch(ctx, store, f.root, artifact.HostPlatform())
	if err != nil {
		return nil, err
	}
	f.annotations = bc.Annotations
	objects := make([]Object, len(bc.Objects))
	for i, o := range bc.Objects {
		objects[i] = Object{Name: o.Name, ELF: o.Data}
	}
	return objects, nil
}

// checkObjects reads and checks the objects for this host as Fetch does,
// streaming each through a temporary file rather than holding it.
func (f *fetch) checkObjects(ctx context.Context) error {
	dir := filepath.Join(f.c.cache.dir, tmpDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	var files []*os.File
	defer func() {
		for _, tf := range files {
			tf.Close()
			os.Remove(tf.Name())
		}
	}()
	_, err := artifact.FetchObjects(ctx, f.c.cache.store, f.root, artifact.HostPlatform(), func(name string, r io.Reader) (io.ReaderAt, error) {
		tf, err := os.CreateTemp(dir, "object-*")
		if err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
		files = append(files, tf)
		if _, err := io.Copy(tf, r); err != nil {
			return nil, err
		}
		return tf, nil
	})
	return err
}
