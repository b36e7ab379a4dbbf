package supplychain

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// fetch is one Fetch of an OCI artifact.
type fetch struct {
	c      *Chain
	res    *Result
	ref    artifact.Reference
	policy PullPolicy
	// namespace is the Kubernetes namespace asking; "" for none.
	namespace string

	origin *artifact.Target // opened when needed
	root   ocispec.Descriptor
	pulled bool // pulled by this request
}

func (f *fetch) close() {
	if f.origin != nil {
		f.origin.Close()
	}
}

func (f *fetch) run(ctx context.Context) error {
	if err := f.locate(ctx); err != nil {
		return err
	}
	f.res.Digest = f.root.Digest
	c := f.c.cache
	unlock := c.lock(f.root.Digest)
	defer unlock()
	if !f.pulled {
		if err := f.ensureCached(ctx); err != nil {
			return err
		}
	}

	objects, err := f.objects(ctx)
	if err != nil {
		return err
	}
	report, err := f.verify(ctx)
	if err != nil {
		return err
	}

	f.record(report)
	f.res.Objects = objects
	return nil
}

// record updates the cache entry's record when something changed: a pull,
// a new name, another decision (a changed policy, new signatures).
func (f *fetch) record(report *verify.Report) {
	c := f.c.cache
	entry := c.entry(f.root)
	now := admission{Policy: report.Policy, Rule: report.Rule, Decision: string(report.Decision), Signers: report.Signers()}
	name := f.ref.Name()
	prev := entry.Admission
	if !f.pulled && slices.Contains(entry.Images, name) && prev != nil &&
		prev.Policy == now.Policy && prev.Rule == now.Rule && prev.Decision == now.Decision && slices.Equal(prev.Signers, now.Signers) {
		return
	}
	if !slices.Contains(entry.Images, name) {
		entry.Images = append(entry.Images, name)
	}
	if f.pulled {
		entry.PulledAt = time.Now().UTC()
	}
	if prev != nil && prev.Policy != now.Policy {
		f.c.log.Info("cache: artifact re-verified under a changed trust policy", "image", name, "digest", f.root.Digest, "previous_policy", prev.Policy, "policy", now.Policy, "decision", now.Decision)
	}
	now.At = time.Now().UTC()
	entry.Admission = &now
	if err := c.save(entry); err != nil {
		// The record is informative; the artifact was verified just now.
		f.c.log.Warn("cache: cannot record the admission", "digest", f.root.Digest, "error", err)
	}
}

// locate finds the root descriptor: from the cache alone when the pull
// policy allows, else at the origin, pulling into the cache when needed.
func (f *fetch) locate(ctx context.Context) error {
	c := f.c.cache
	tag := ""
	if f.ref.Digest == "" {
		tag = f.ref.Name() + ":" + f.ref.Selector()
	}
	switch {
	case f.policy == PullNever:
		key := f.ref.Digest.String()
		if tag != "" {
			key = tag
		}
		root, ok, err := c.resolve(ctx, key)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotCached // the caller names the reference
		}
		f.root = root
		f.res.CacheHits++
		return nil
	case f.policy != PullAlways && f.ref.Digest != "":
		root, ok, err := c.resolve(ctx, f.ref.Digest.String())
		if err != nil {
			return err
		}
		if ok {
			f.root = root
			f.res.CacheHits++
			return nil
		}
	}

	if err := f.openOrigin(ctx); err != nil {
		return err
	}
	root, err := f.origin.ResolveReference(ctx)
	if err != nil {
		return err
	}
	f.root = root
	f.res.Digest = root.Digest
	unlock := c.lock(root.Digest)
	defer unlock()
	cached, err := c.has(ctx, root)
	if err != nil {
		return err
	}
	if f.policy == PullAlways || !cached {
		if err := f.pull(ctx); err != nil {
			return err
		}
	} else {
		f.res.CacheHits++
	}
	if tag != "" {
		if err := c.tag(ctx, root, tag); err != nil {
			f.c.log.Warn("cache: cannot record the tag", "tag", tag, "digest", root.Digest, "error", err)
		}
	}
	return nil
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

func (f *fetch) pull(ctx context.Context) error {
	if err := f.openOrigin(ctx); err != nil {
		return err
	}
	f.res.Pulls++
	start := time.Now()
	if err := f.c.cache.pull(ctx, f.origin, f.root); err != nil {
		return err
	}
	f.pulled = true
	f.c.log.Info("cache: pulled", "image", f.ref.Name(), "digest", f.root.Digest, "duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// ensureCached checks, for an artifact found in the cache, that its
// manifest is still there (an entry could have been repaired away by a
// request that failed to pull it again).
func (f *fetch) ensureCached(ctx context.Context) error {
	ok, err := f.c.cache.has(ctx, f.root)
	if err != nil || ok {
		return err
	}
	if f.policy == PullNever {
		return fmt.Errorf("%s: %w", f.root.Digest, ErrNotCached)
	}
	return f.pull(ctx)
}

// objects reads the objects for this host from the cache, repairing and
// pulling the artifact again once when its content is damaged.
func (f *fetch) objects(ctx context.Context) ([]Object, error) {
	bc, err := artifact.Fetch(ctx, f.c.cache.store, f.root, artifact.HostPlatform())
	if err != nil && (errors.Is(err, artifact.ErrDigestMismatch) || errors.Is(err, artifact.ErrNotFound)) {
		removed, rerr := f.c.cache.repair(ctx, f.root)
		if rerr != nil {
			return nil, rerr
		}
		if removed == 0 {
			return nil, err // not damage: e.g. no entry for this platform
		}
		f.res.Repairs++
		f.c.log.Warn("cache: damaged artifact repaired", "image", f.ref.Name(), "digest", f.root.Digest, "removed", removed, "error", err)
		if f.policy == PullNever {
			return nil, fmt.Errorf("%s: the cached copy was damaged and is removed (%v); %w", f.root.Digest, err, ErrNotCached)
		}
		if err := f.pull(ctx); err != nil {
			return nil, err
		}
		bc, err = artifact.Fetch(ctx, f.c.cache.store, f.root, artifact.HostPlatform())
	}
	if err != nil {
		return nil, err
	}
	objects := make([]Object, len(bc.Objects))
	for i, o := range bc.Objects {
		objects[i] = Object{Name: o.Name, ELF: o.Data}
	}
	return objects, nil
}

// verify judges the cached signatures under the policy in force. A denial
// of what the cache held is checked once more against the origin.
func (f *fetch) verify(ctx context.Context) (*verify.Report, error) {
	subject := verify.Subject{Name: f.ref.Name(), Descriptor: f.root, Namespace: f.namespace}
	report, err := f.c.trust.current().VerifyArtifact(ctx, f.c.cache.store, subject)
	var denial *verify.DenialError
	// Signatures added at the origin cannot admit a namespace its rule
	// does not: that denial needs no second look.
	if errors.As(err, &denial) && denial.Reason != verify.ReasonNamespaceNotAdmitted && !f.pulled && f.policy != PullNever {
		if _, rerr := f.c.cache.repair(ctx, f.root); rerr != nil {
			return nil, rerr
		}
		if perr := f.pull(ctx); perr != nil {
			f.c.log.Warn("cache: denied from the cache and the origin cannot be read again; the denial stands", "image", f.ref.Name(), "digest", f.root.Digest, "error", perr)
		} else {
			report, err = f.c.trust.current().VerifyArtifact(ctx, f.c.cache.store, subject)
		}
	}
	f.res.noteVerdict(report, err)
	return report, err
}
