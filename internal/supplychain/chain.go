package supplychain

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"

	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// Chain resolves a reference to a digest once, pulls that digest with its
// signatures into the cache as the pull policy says (see PullPolicy),
// verifies it against the trust policy in force on every use (an admission
// by keys alone is remembered until the policy is read again: verdicts.go),
// and returns the objects for this host with the verdict that admitted
// them.
//
// The policy judges the name the artifact and its signatures were fetched
// from. A name no rule covers is refused before anything is read. The cache
// keeps each origin's signatures apart: a digest cached from one origin is
// served under another name only once that origin has been asked for it
// and its signatures pulled from there (under PullNever, or with that
// origin down, it is refused). Signatures and attestations are pulled and
// verified before the artifact's layers are pulled or read.
//
// A cached artifact whose blobs no longer match their digests is repaired
// and pulled again (not under PullNever). A cached artifact the policy
// denies is checked once more against its origin before the denial stands,
// so that signatures added at the origin since are seen.
//
// A Chain is safe for concurrent use: fetches of one digest are
// serialized, others run in parallel.
type Chain struct {
	cache *cache
	trust *trust
	open  artifact.OpenOptions
	plain []string
	// maxSize is the cache's size limit; 0 for none.
	maxSize int64
	log     *slog.Logger
	// collecting is held by the one Collect under way.
	collecting sync.Mutex
}

// Options configure Open.
type Options struct {
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
	// HTTPClient reaches registries; nil means artifact.DefaultHTTPClient().
	HTTPClient *http.Client
	// Limits bound what a pull reads and writes (manifest, config and blob
	// sizes, blob and referrer counts, referrer depth, archive extraction);
	// the zero value is artifact's defaults. Referrers past the limits are
	// skipped, never a failure.
	Limits artifact.Limits
	// MaxSize is the size the cache is collected down to (Collect), in
	// bytes; 0 means no limit.
	MaxSize int64
	// Logger receives the Chain's log; none when nil.
	Logger *slog.Logger
}

// Open reads the trust policy and opens (creating it if needed) the cache.
// Its errors name the policy file or the cache dir.
func Open(ctx context.Context, opts Options) (*Chain, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t, err := loadTrust(opts.PolicyFile, log)
	if err != nil {
		return nil, err
	}
	c, err := openCache(ctx, opts.CacheDir, opts.Limits, log)
	if err != nil {
		return nil, err
	}
	client := opts.HTTPClient
	if client == nil {
		client = artifact.DefaultHTTPClient()
	}
	return &Chain{
		cache:   c,
		trust:   t,
		open:    artifact.OpenOptions{CredentialsFile: opts.CredentialsFile, HTTPClient: client, Limits: opts.Limits},
		plain:   opts.PlainHTTPRegistries,
		maxSize: opts.MaxSize,
		log:     log,
	}, nil
}

// Close releases the Chain's idle registry connections.
func (c *Chain) Close() error {
	c.open.HTTPClient.CloseIdleConnections()
	return nil
}

// Fetch resolves ref, pulls it as policy says and verifies it under the
// trust policy in force. On success the Result holds the objects for this
// host and the verdict that admitted them. It returns a Result also with an
// error, filled as far as it got.
//
// Errors: a *verify.DenialError when the policy denies the artifact, a
// *PullError when it cannot be resolved, pulled or read, the context's
// error when it ends, and errors of the policy's verification otherwise
// (e.g. signatures that cannot be read).
func (c *Chain) Fetch(ctx context.Context, ref string, policy PullPolicy) (*Result, error) {
	return c.FetchFor(ctx, ref, policy, "")
}

// FetchFor is Fetch on behalf of a Kubernetes namespace (a tenant's): the
// trust policy admits the artifact only under a governing rule that admits
// namespace (docs/policy.md), and denies it otherwise with
// verify.ReasonNamespaceNotAdmitted. An empty namespace is Fetch.
func (c *Chain) FetchFor(ctx context.Context, ref string, policy PullPolicy, namespace string) (*Result, error) {
	res := &Result{Reference: ref}
	err := c.fetch(ctx, res, ref, policy, false, namespace)
	if err != nil {
		res.Objects = nil
	}
	return res, pullError(ref, err)
}

// Pull is Fetch without the objects: it resolves, pulls and verifies ref,
// and checks its objects for this host as Fetch does, streaming them rather
// than holding them, so that pulling a large artifact takes little memory.
// The Result has no Objects; its errors are Fetch's.
func (c *Chain) Pull(ctx context.Context, ref string, policy PullPolicy) (*Result, error) {
	res := &Result{Reference: ref}
	err := c.fetch(ctx, res, ref, policy, true, "")
	return res, pullError(ref, err)
}

// ReloadPolicy re-reads the trust policy file; an invalid file leaves the
// policy in force and returns why (matching verify.ErrInvalidPolicy). It
// reports whether the policy changed.
func (c *Chain) ReloadPolicy() (bool, error) { return c.trust.reload() }

// PolicyFingerprint returns the fingerprint of the trust policy in force.
func (c *Chain) PolicyFingerprint() string { return c.trust.fingerprint() }

func (c *Chain) fetch(ctx context.Context, res *Result, raw string, policy PullPolicy, check bool, namespace string) error {
	if _, err := ParsePullPolicy(string(policy)); err != nil {
		return err
	}
	ref, err := artifact.ParseReference(raw)
	if err != nil {
		return err
	}
	res.Origin = ref.Name()
	if ref.Transport == artifact.File {
		return c.local(ctx, res, ref, namespace)
	}
	// Policy before bytes: a name no rule covers is denied before the
	// cache or the origin is read.
	if v := c.trust.current(); !v.Policy().Covers(ref.Name()) {
		report, err := v.VerifyEvidence(verify.Subject{Name: ref.Name(), Namespace: namespace}, nil, nil)
		res.noteVerdict(report, err)
		return err
	}
	c.cache.gc.RLock()
	defer c.cache.gc.RUnlock()
	f := &fetch{c: c, res: res, ref: ref, name: ref.Name(), policy: policy, check: check, namespace: namespace}
	defer f.close()
	return f.run(ctx)
}

// local admits a local object file: the policy decides by its name alone,
// before the file is read.
func (c *Chain) local(ctx context.Context, res *Result, ref artifact.Reference, namespace string) error {
	subject := verify.Subject{Name: ref.Name(), Namespace: namespace}
	report, err := c.trust.current().VerifyArtifact(ctx, nil, subject)
	res.noteVerdict(report, err)
	if err != nil {
		return err
	}
	obj, err := artifact.ReadObjectFileDigest(ref.Path, ref.Digest)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("local file %s: %w", ref.Path, artifact.ErrNotFound)
	}
	if err != nil {
		return err
	}
	res.Objects = []Object{{Name: obj.Name, ELF: obj.Data}}
	return nil
}

// noteVerdict records a verification's outcome.
func (r *Result) noteVerdict(report *verify.Report, err error) {
	r.Verified = true
	r.Verdict, _ = verdictFrom(report, err)
}
