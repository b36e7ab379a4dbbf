package supplychain

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"

	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// Chain resolves a reference to a digest once, pulls that digest with its
// signatures into the cache as the pull policy says (see PullPolicy),
// verifies it against the trust policy in force on every use, and returns
// the objects for this host with the verdict that admitted them.
//
// A cached artifact whose blobs no longer match their digests is repaired
// and pulled again (not under PullNever). A cached artifact the policy
// denies is pulled again once before the denial stands, so that signatures
// added at the origin since are seen.
//
// A Chain is safe for concurrent use: fetches of one digest are
// serialized, others run in parallel.
type Chain struct {
	cache *cache
	trust *trust
	open  artifact.OpenOptions
	plain []string
	log   *slog.Logger
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
	c, err := openCache(ctx, opts.CacheDir, log)
	if err != nil {
		return nil, err
	}
	client := opts.HTTPClient
	if client == nil {
		client = artifact.DefaultHTTPClient()
	}
	return &Chain{
		cache: c,
		trust: t,
		open:  artifact.OpenOptions{CredentialsFile: opts.CredentialsFile, HTTPClient: client},
		plain: opts.PlainHTTPRegistries,
		log:   log,
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
	err := c.fetch(ctx, res, ref, policy, namespace)
	if err != nil {
		res.Objects = nil
	}
	return res, pullError(ref, err)
}

// ReloadPolicy re-reads the trust policy file; an invalid file leaves the
// policy in force and returns why (matching verify.ErrInvalidPolicy). It
// reports whether the policy changed.
func (c *Chain) ReloadPolicy() (bool, error) { return c.trust.reload() }

// PolicyFingerprint returns the fingerprint of the trust policy in force.
func (c *Chain) PolicyFingerprint() string { return c.trust.fingerprint() }

func (c *Chain) fetch(ctx context.Context, res *Result, raw string, policy PullPolicy, namespace string) error {
	if _, err := ParsePullPolicy(string(policy)); err != nil {
		return err
	}
	ref, err := artifact.ParseReference(raw)
	if err != nil {
		return err
	}
	if ref.Transport == artifact.File {
		return c.local(ctx, res, ref, namespace)
	}
	f := &fetch{c: c, res: res, ref: ref, policy: policy, namespace: namespace}
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
	var denial *verify.DenialError
	switch {
	case errors.As(err, &denial):
		r.Verdict = verdictOf(denial.Report)
		if r.Verdict == nil {
			r.Verdict = &Verdict{Decision: verify.DecisionDeny}
		}
		r.Verdict.Decision, r.Verdict.Reason = verify.DecisionDeny, denial.Reason
	case err != nil:
		r.Verdict = nil
	default:
		r.Verdict = verdictOf(report)
	}
}
