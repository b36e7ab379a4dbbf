package artifact

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
)

// ReferrerOptions configure ListReferrers. The zero value lists referrers of
// every type within the default Limits.
type ReferrerOptions struct {
	// ArtifactTypes, if not empty, keeps only referrers whose artifact
	// type (that of their content, not the one the listing claims) is one
	// of these; the others are skipped with SkipType. With exactly one
	// type, a registry's referrers API is asked to filter by it. Empty
	// keeps every type.
	ArtifactTypes []string
	// Limits: ReferrersPerSubject and ManifestSize apply.
	Limits Limits
}

// ReferrerList is what ListReferrers found.
type ReferrerList struct {
	// Referrers are the referrers kept, each fetched, verified and with
	// the subject asked for, in the order listed.
	Referrers []*Node
	// Skipped are the entries of the listing that were not kept, and why.
	Skipped []SkippedReferrer
}

// SkipReason says why a referrer was not kept or copied.
type SkipReason string

// The reasons a referrer is skipped.
const (
	// SkipType: its artifact type is not one asked for.
	SkipType SkipReason = "type"
	// SkipLimit: it is past a count of Limits (ReferrersPerSubject,
	// Referrers, ReferrerDepth) or over a size (ManifestSize, BlobSize,
	// ReferrerSize, or what is left of TotalSize or Blobs). A SkipLimit
	// for ReferrersPerSubject stands for the rest of the listing too.
	SkipLimit SkipReason = "limit"
	// SkipInvalid: its content is missing, does not match its digest, does
	// not parse, or names another subject; or the listing itself is
	// malformed (Descriptor is then zero).
	SkipInvalid SkipReason = "invalid"
)

// SkippedReferrer is a referrer (or cosign-tagged manifest) that was not
// kept or copied.
type SkippedReferrer struct {
	// Descriptor is the referrer as listed.
	Descriptor ocispec.Descriptor
	// Subject is the digest of the manifest it refers to.
	Subject digest.Digest
	Reason  SkipReason
	// Detail says what was wrong, in a phrase.
	Detail string
}

func (s SkippedReferrer) String() string {
	what := "referrers"
	if s.Descriptor.Digest != "" {
		what = "referrer " + s.Descriptor.Digest.String()
	}
	return fmt.Sprintf("%s of %s skipped (%s): %s", what, s.Subject, s.Reason, s.Detail)
}

// errStopListing ends a referrer listing early.
var errStopListing = errors.New("stop listing")

// ListReferrers lists the referrers of subject in src (OCI 1.1: the
// manifests whose subject it is) and fetches each, bounded and verified: a
// registry's referrers API or, without one, its "sha256-<hex>" tag schema
// (when src is a remote repository or a *Target of one), or the manifests
// of an OCI layout or memory store that name subject (found through
// content.PredecessorFinder).
//
// Nothing a referrer holds makes it fail: a referrer that is not of a type
// asked for, past Limits.ReferrersPerSubject, over Limits.ManifestSize, not
// found, tampered, unparsable or naming another subject is skipped, and
// reported in the list's Skipped. It fails only when src cannot be asked:
// errors wrap ErrUnreachable, an authentication failure or the context's
// error.
func ListReferrers(ctx context.Context, src content.ReadOnlyGraphStorage, subject ocispec.Descriptor, opts ReferrerOptions) (*ReferrerList, error) {
	limits := opts.Limits.WithDefaults()
	wanted := func(t string) bool { return len(opts.ArtifactTypes) == 0 || slices.Contains(opts.ArtifactTypes, t) }
	filter := ""
	if len(opts.ArtifactTypes) == 1 {
		filter = opts.ArtifactTypes[0]
	}
	list := &ReferrerList{}
	skip := func(d ocispec.Descriptor, reason SkipReason, detail string) {
		list.Skipped = append(list.Skipped, SkippedReferrer{Descriptor: d, Subject: subject.Digest, Reason: reason, Detail: detail})
	}
	seen := map[digest.Digest]bool{}
	examined, otherTypes := 0, 0
	err := referrerCandidates(ctx, src, subject, filter, func(page []ocispec.Descriptor, listed bool) error {
		for _, d := range page {
			if d.ArtifactType != "" && !wanted(d.ArtifactType) {
				// Skipped without fetching or counting, so that
				// referrers of other types cannot crowd out those
				// asked for; reported up to a bound.
				if otherTypes++; otherTypes <= limits.ReferrersPerSubject {
					skip(d, SkipType, fmt.Sprintf("artifact type %q", d.ArtifactType))
				}
				continue
			}
			if seen[d.Digest] {
				continue
			}
			seen[d.Digest] = true
			if examined == limits.ReferrersPerSubject {
				skip(d, SkipLimit, fmt.Sprintf("more than %d referrers listed (limit ReferrersPerSubject); this and the rest are skipped", limits.ReferrersPerSubject))
				return errStopListing
			}
			examined++
			n, err := fetchNode(ctx, src, d, limits.ManifestSize)
			if err != nil {
				if !isContentFault(err) {
					return fmt.Errorf("referrer %s: %w", d.Digest, err)
				}
				reason := SkipInvalid
				if errors.Is(err, ErrLimit) {
					reason = SkipLimit
				}
				skip(d, reason, err.Error())
				continue
			}
			switch {
			case !listed && (n.Subject == nil || n.Subject.Digest != subject.Digest):
				// An index that lists subject, not a referrer.
			case n.Subject == nil:
				skip(d, SkipInvalid, "it has no subject")
			case n.Subject.Digest != subject.Digest:
				skip(d, SkipInvalid, "its subject is "+n.Subject.Digest.String())
			case !wanted(n.Descriptor.ArtifactType):
				skip(n.Descriptor, SkipType, fmt.Sprintf("artifact type %q", n.Descriptor.ArtifactType))
			default:
				list.Referrers = append(list.Referrers, n)
			}
		}
		return nil
	})
	if n := otherTypes - limits.ReferrersPerSubject; n > 0 {
		skip(ocispec.Descriptor{}, SkipType, fmt.Sprintf("%d more referrers of types not asked for", n))
	}
	switch {
	case err == nil, errors.Is(err, errStopListing):
	case errors.Is(err, errdef.ErrTooManyPages):
		skip(ocispec.Descriptor{}, SkipLimit, err.Error())
	case isContentFault(classify(err)):
		skip(ocispec.Descriptor{}, SkipInvalid, "listing: "+err.Error())
	default:
		return nil, fmt.Errorf("referrers of %s: %w", subject.Digest, classify(err))
	}
	return list, nil
}

// referrerCandidates calls fn with the descriptors that may be referrers of
// subject: a registry's listing (listed: each claims to be a referrer), or
// the manifests of a store that reference subject (which include indexes
// listing it, not only referrers).
func referrerCandidates(ctx context.Context, src content.ReadOnlyGraphStorage, subject ocispec.Descriptor, artifactType string, fn func(page []ocispec.Descriptor, listed bool) error) error {
	if t, ok := src.(*Target); ok {
		src = t.GraphTarget
	}
	if rl, ok := src.(registry.ReferrerLister); ok {
		return rl.Referrers(ctx, subject, artifactType, func(page []ocispec.Descriptor) error { return fn(page, true) })
	}
	preds, err := src.Predecessors(ctx, subject)
	if err != nil {
		return err
	}
	var manifests []ocispec.Descriptor
	for _, p := range preds {
		if isManifestType(p.MediaType) {
			manifests = append(manifests, p)
		}
	}
	if len(manifests) == 0 {
		return nil
	}
	return fn(manifests, false)
}

// isContentFault reports whether err is about content (missing, tampered,
// malformed, too large) rather than about reaching it.
func isContentFault(err error) bool {
	for _, e := range []error{ErrNotFound, ErrDigestMismatch, ErrUnsupported, ErrLimit} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
