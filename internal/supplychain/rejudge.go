package supplychain

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// Rejudge judges the artifact d as fetched from origin once more, under the
// trust policy in force, offline: with the signatures and attestations that
// origin served, as the cache recorded them. It is how bpfd re-checks the
// programs it runs when the policy changes (and at start). origin is the
// name the artifact was fetched from (Result.Origin); a local file's
// ("file:/path", no digest) is judged by its name alone.
//
// It returns the verdict, a denial included (Decision deny, with its
// reason). It fails only when it cannot judge: the cache holds no
// signatures of d from origin (ErrNoEvidence) while the policy needs them,
// or they cannot be read.
func (c *Chain) Rejudge(ctx context.Context, origin string, d digest.Digest) (*Verdict, error) {
	return c.RejudgeFor(ctx, origin, d, "")
}

// RejudgeFor is Rejudge for a program loaded on behalf of a Kubernetes
// namespace (FetchFor): a policy whose rule no longer admits the namespace
// denies it (verify.ReasonNamespaceNotAdmitted).
func (c *Chain) RejudgeFor(ctx context.Context, origin string, d digest.Digest, namespace string) (*Verdict, error) {
	v := c.trust.current()
	subject := verify.Subject{Name: origin, Namespace: namespace}
	if d == "" || !v.Policy().Covers(origin) {
		return verdictFrom(v.VerifyEvidence(subject, nil, nil))
	}
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("digest %q: %w", d, err)
	}
	c.cache.gc.RLock()
	defer c.cache.gc.RUnlock()
	unlock := c.cache.lock(d)
	defer unlock()
	subject.Descriptor = ocispec.Descriptor{Digest: d}
	e := c.cache.entry(d)
	var o *originRecord
	if e != nil {
		subject.Descriptor.MediaType, subject.Descriptor.Size = e.MediaType, e.Size
		o = e.origin(origin)
	}
	var (
		report *verify.Report
		err    error
	)
	if o != nil {
		src, serr := c.cache.evidenceStore(ctx, o.Evidence)
		if serr == nil {
			report, err = v.VerifyArtifact(ctx, src, subject)
			return verdictFrom(report, err)
		}
		if !errors.Is(serr, errEvidenceGone) {
			return nil, serr
		}
	}
	// No evidence: a rule that needs none (allowUnsigned, warn) still
	// admits; otherwise the artifact cannot be judged.
	if report, err = v.VerifyEvidence(subject, nil, nil); err == nil {
		return verdictOf(report), nil
	}
	return nil, fmt.Errorf("%s from %s: %w", d, origin, ErrNoEvidence)
}

// verdictFrom turns a verification's outcome into a verdict: a denial is a
// verdict, any other error is returned.
func verdictFrom(report *verify.Report, err error) (*Verdict, error) {
	var denial *verify.DenialError
	switch {
	case errors.As(err, &denial):
		v := verdictOf(denial.Report)
		if v == nil {
			v = &Verdict{}
		}
		v.Decision, v.Reason, v.Detail = verify.DecisionDeny, denial.Reason, denial.Detail
		return v, nil
	case err != nil:
		return nil, err
	}
	return verdictOf(report), nil
}
