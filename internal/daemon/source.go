package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// Source is the runtime.Source of the daemon: it resolves a reference to a
// digest once, pulls that digest with its signatures into the cache as the
// pull policy says, verifies it against the trust policy in force on every
// use, and hands the runtime the objects for this host with their
// provenance.
//
//   - PullIfNotPresent: a reference by digest that the cache holds is used
//     without contacting its origin, so it loads while the registry is down;
//     a tag is resolved at its origin every time and fails closed when the
//     origin cannot be reached.
//   - PullAlways: resolved and pulled every time (new signatures too).
//   - PullNever: the cache only, by digest or by a tag pulled before.
//
// A cached artifact whose blobs no longer match their digests is repaired
// and pulled again (not under PullNever). A cached artifact the policy
// denies is pulled again once before the denial stands, so that signatures
// added at the origin since are seen.
type Source struct {
	cache   *cache
	trust   *trust
	open    artifact.OpenOptions
	plain   []string
	log     *slog.Logger
	metrics *Metrics
}

var _ runtime.Source = (*Source)(nil)

// SourceOptions configure a Source.
type SourceOptions struct {
	// CacheDir holds the cache. Required.
	CacheDir string
	// PolicyFile is the trust policy. Required.
	PolicyFile string
	// CredentialsFile is a Docker config.json with registry credentials;
	// empty means the user's Docker configuration.
	CredentialsFile string
	// PlainHTTPRegistries are reached over plain HTTP (loopback ones always
	// are).
	PlainHTTPRegistries []string
	// Logger receives the Source's log; none when nil.
	Logger *slog.Logger
	// Metrics, if set, counts cache hits and misses and verification
	// outcomes.
	Metrics *Metrics
}

// NewSource opens the cache and reads the trust policy.
func NewSource(ctx context.Context, opts SourceOptions) (*Source, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t, err := loadTrust(opts.PolicyFile, log)
	if err != nil {
		return nil, err
	}
	c, err := openCache(ctx, opts.CacheDir, log)
	if err != nil {
		return nil, err
	}
	return &Source{
		cache:   c,
		trust:   t,
		open:    artifact.OpenOptions{CredentialsFile: opts.CredentialsFile, HTTPClient: artifact.DefaultHTTPClient()},
		plain:   opts.PlainHTTPRegistries,
		log:     log,
		metrics: opts.Metrics,
	}, nil
}

// Close releases the Source's idle registry connections.
func (s *Source) Close() error {
	s.open.HTTPClient.CloseIdleConnections()
	return nil
}

// Bytecode implements runtime.Source.
func (s *Source) Bytecode(ctx context.Context, ref string, policy runtime.PullPolicy) (*runtime.Bytecode, error) {
	bc, err := s.get(ctx, ref, policy)
	return bc, markPull(err)
}

// Pull resolves, pulls and verifies ref into the cache without loading
// anything, and returns the provenance that admitted it.
func (s *Source) Pull(ctx context.Context, ref string, policy runtime.PullPolicy) (runtime.Provenance, error) {
	bc, err := s.get(ctx, ref, policy)
	if err != nil {
		return runtime.Provenance{}, markPull(err)
	}
	return bc.Provenance, nil
}

// pullError marks a failure to resolve, pull or read an artifact, as
// opposed to the trust policy's verdict, for the API's error reason.
type pullError struct{ err error }

func (e *pullError) Error() string { return e.err.Error() }
func (e *pullError) Unwrap() error { return e.err }

func markPull(err error) error {
	var denial *verify.DenialError
	if err == nil || errors.As(err, &denial) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &pullError{err}
}

// ReloadPolicy re-reads the trust policy file; an invalid file leaves the
// policy in force. It reports whether the policy changed.
func (s *Source) ReloadPolicy() (bool, error) { return s.trust.reload() }

// PolicyFingerprint returns the fingerprint of the trust policy in force.
func (s *Source) PolicyFingerprint() string { return s.trust.fingerprint() }

func (s *Source) get(ctx context.Context, raw string, policy runtime.PullPolicy) (*runtime.Bytecode, error) {
	ref, err := artifact.ParseReference(raw)
	if err != nil {
		return nil, err
	}
	if ref.Transport == artifact.File {
		return s.local(ctx, raw, ref)
	}
	f := &fetch{s: s, ref: ref, raw: raw, policy: policy}
	defer f.close()
	return f.run(ctx)
}

// local admits a local object file: the policy decides by its name alone,
// before the file is read.
func (s *Source) local(ctx context.Context, raw string, ref artifact.Reference) (*runtime.Bytecode, error) {
	subject := verify.Subject{Name: ref.Name()}
	report, err := s.trust.current().VerifyArtifact(ctx, nil, subject)
	s.noteVerdict(ctx, report, err)
	if err != nil {
		return nil, err
	}
	obj, err := artifact.ReadObjectFileDigest(ref.Path, ref.Digest)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("local file %s: %w", ref.Path, runtime.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return &runtime.Bytecode{
		Objects:    []runtime.Object{{Name: obj.Name, ELF: obj.Data}},
		Provenance: provenance(raw, "", report),
	}, nil
}

// fetch is one request for an OCI artifact.
type fetch struct {
	s      *Source
	ref    artifact.Reference
	raw    string
	policy runtime.PullPolicy

	origin *artifact.Target // opened when needed
	root   ocispec.Descriptor
	pulled bool // pulled by this request
}

func (f *fetch) close() {
	if f.origin != nil {
		f.origin.Close()
	}
}

func (f *fetch) run(ctx context.Context) (*runtime.Bytecode, error) {
	if err := f.locate(ctx); err != nil {
		return nil, err
	}
	noteDigest(ctx, f.root.Digest.String())
	c := f.s.cache
	unlock := c.lock(f.root.Digest)
	defer unlock()
	if !f.pulled {
		if err := f.ensureCached(ctx); err != nil {
			return nil, err
		}
	}

	objects, err := f.objects(ctx)
	if err != nil {
		return nil, err
	}
	report, err := f.verify(ctx)
	if err != nil {
		return nil, err
	}

	f.record(report)
	return &runtime.Bytecode{Objects: objects, Provenance: provenance(f.raw, f.root.Digest.String(), report)}, nil
}

// record updates the cache entry's record when something changed: a pull,
// a new name, another decision (a changed policy, new signatures).
func (f *fetch) record(report *verify.Report) {
	c := f.s.cache
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
		f.s.log.Info("cache: artifact re-verified under a changed trust policy", "image", name, "digest", f.root.Digest, "previous_policy", prev.Policy, "policy", now.Policy, "decision", now.Decision)
	}
	now.At = time.Now().UTC()
	entry.Admission = &now
	if err := c.save(entry); err != nil {
		// The record is informative; the artifact was verified just now.
		f.s.log.Warn("cache: cannot record the admission", "digest", f.root.Digest, "error", err)
	}
}

// locate finds the root descriptor: from the cache alone when the pull
// policy allows, else at the origin, pulling into the cache when needed.
func (f *fetch) locate(ctx context.Context) error {
	c := f.s.cache
	tag := ""
	if f.ref.Digest == "" {
		tag = f.ref.Name() + ":" + f.ref.Selector()
	}
	switch {
	case f.policy == runtime.PullNever:
		key := f.ref.Digest.String()
		if tag != "" {
			key = tag
		}
		root, ok, err := c.resolve(ctx, key)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotCached // the runtime names the reference
		}
		f.root = root
		f.s.metrics.cacheHit()
		return nil
	case f.policy != runtime.PullAlways && f.ref.Digest != "":
		root, ok, err := c.resolve(ctx, f.ref.Digest.String())
		if err != nil {
			return err
		}
		if ok {
			f.root = root
			f.s.metrics.cacheHit()
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
	noteDigest(ctx, root.Digest.String())
	unlock := c.lock(root.Digest)
	defer unlock()
	cached, err := c.has(ctx, root)
	if err != nil {
		return err
	}
	if f.policy == runtime.PullAlways || !cached {
		if err := f.pull(ctx); err != nil {
			return err
		}
	} else {
		f.s.metrics.cacheHit()
	}
	if tag != "" {
		if err := c.tag(ctx, root, tag); err != nil {
			f.s.log.Warn("cache: cannot record the tag", "tag", tag, "digest", root.Digest, "error", err)
		}
	}
	return nil
}

func (f *fetch) openOrigin(ctx context.Context) error {
	if f.origin != nil {
		return nil
	}
	opts := f.s.open
	opts.PlainHTTP = slices.Contains(f.s.plain, f.ref.Registry)
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
	f.s.metrics.cacheMiss()
	start := time.Now()
	if err := f.s.cache.pull(ctx, f.origin, f.root); err != nil {
		return err
	}
	f.pulled = true
	f.s.log.Info("cache: pulled", "image", f.ref.Name(), "digest", f.root.Digest, "duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// ensureCached checks, for an artifact found in the cache, that its
// manifest is still there (an entry could have been repaired away by a
// request that failed to pull it again).
func (f *fetch) ensureCached(ctx context.Context) error {
	ok, err := f.s.cache.has(ctx, f.root)
	if err != nil || ok {
		return err
	}
	if f.policy == runtime.PullNever {
		return fmt.Errorf("%s: %w", f.root.Digest, ErrNotCached)
	}
	return f.pull(ctx)
}

// objects reads the objects for this host from the cache, repairing and
// pulling the artifact again once when its content is damaged.
func (f *fetch) objects(ctx context.Context) ([]runtime.Object, error) {
	bc, err := artifact.Fetch(ctx, f.s.cache.store, f.root, artifact.HostPlatform())
	if err != nil && (errors.Is(err, artifact.ErrDigestMismatch) || errors.Is(err, artifact.ErrNotFound)) {
		removed, rerr := f.s.cache.repair(ctx, f.root)
		if rerr != nil {
			return nil, rerr
		}
		if removed == 0 {
			return nil, err // not damage: e.g. no entry for this platform
		}
		f.s.metrics.cacheRepaired()
		f.s.log.Warn("cache: damaged artifact repaired", "image", f.ref.Name(), "digest", f.root.Digest, "removed", removed, "error", err)
		if f.policy == runtime.PullNever {
			return nil, fmt.Errorf("%s: the cached copy was damaged and is removed (%v); %w", f.root.Digest, err, ErrNotCached)
		}
		if err := f.pull(ctx); err != nil {
			return nil, err
		}
		bc, err = artifact.Fetch(ctx, f.s.cache.store, f.root, artifact.HostPlatform())
	}
	if err != nil {
		return nil, err
	}
	objects := make([]runtime.Object, len(bc.Objects))
	for i, o := range bc.Objects {
		objects[i] = runtime.Object{Name: o.Name, ELF: o.Data}
	}
	return objects, nil
}

// verify judges the cached signatures under the policy in force. A denial
// of what the cache held is checked once more against the origin.
func (f *fetch) verify(ctx context.Context) (*verify.Report, error) {
	subject := verify.Subject{Name: f.ref.Name(), Descriptor: f.root}
	report, err := f.s.trust.current().VerifyArtifact(ctx, f.s.cache.store, subject)
	var denial *verify.DenialError
	if errors.As(err, &denial) && !f.pulled && f.policy != runtime.PullNever {
		if _, rerr := f.s.cache.repair(ctx, f.root); rerr != nil {
			return nil, rerr
		}
		if perr := f.pull(ctx); perr != nil {
			f.s.log.Warn("cache: denied from the cache and the origin cannot be read again; the denial stands", "image", f.ref.Name(), "digest", f.root.Digest, "error", perr)
		} else {
			report, err = f.s.trust.current().VerifyArtifact(ctx, f.s.cache.store, subject)
		}
	}
	f.s.noteVerdict(ctx, report, err)
	return report, err
}

// noteVerdict records a verification's outcome for the request's audit
// line and the metrics.
func (s *Source) noteVerdict(ctx context.Context, report *verify.Report, err error) {
	var denial *verify.DenialError
	switch {
	case errors.As(err, &denial):
		s.metrics.verification(string(verify.DecisionDeny), string(denial.Reason))
		noteAdmission(ctx, denial.Report, string(denial.Reason))
	case err != nil:
		s.metrics.verification("error", "")
	default:
		s.metrics.verification(string(report.Decision), string(report.Reason))
		noteAdmission(ctx, report, string(report.Reason))
	}
}

// provenance turns a report into the runtime's record of it.
func provenance(ref, digest string, report *verify.Report) runtime.Provenance {
	return runtime.Provenance{
		Reference:         ref,
		Digest:            digest,
		Signer:            strings.Join(report.Signers(), ", "),
		Rule:              report.Rule,
		PolicyFingerprint: report.Policy,
		AllowedKinds:      slices.Clone(report.AllowedProgramTypes),
	}
}
