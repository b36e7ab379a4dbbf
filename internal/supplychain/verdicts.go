package supplychain

import (
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// maxVerdicts bounds the admissions remembered under one policy; past it
// they are forgotten all at once and judged again as they are asked for.
const maxVerdicts = 4096

// verdicts remembers the admissions one verifier (one reading of the trust
// policy) made, so that loading the same artifact again does not verify
// the same signatures again. A verdict is remembered for exactly what it
// judged: the digest (with the media type and size the policy was shown),
// the origin it was fetched from, the evidence that origin served (its
// place in the cache and when it was pulled: signatures pulled again are
// judged again), and the namespace that asked. A reload of the policy
// replaces the verifier and with it every remembered verdict, whether or
// not the policy changed.
//
// Only admissions that hold whatever the time are remembered: none that
// rests on a certificate (keyless, whose validity may be checked at the
// current time) or on attestations. Denials are never remembered: a denial
// from the cache is checked again at the origin (fetch.judge).
//
// A remembered verdict says nothing of the bytes: the objects are read
// from the cache and checked against their digests on every fetch.
type verdicts struct {
	v  *verify.Verifier
	mu sync.Mutex
	m  map[verdictKey]*verify.Report
}

// verdictKey is what a remembered verdict judged.
type verdictKey struct {
	digest    digest.Digest
	mediaType string
	size      int64
	origin    string
	evidence  string
	pulledAt  time.Time
	namespace string
}

func newVerdicts(v *verify.Verifier) *verdicts {
	return &verdicts{v: v, m: map[verdictKey]*verify.Report{}}
}

// get returns the verdict remembered for k under v, nil when there is none
// or v is not the verifier these verdicts are of (a reload since).
func (r *verdicts) get(v *verify.Verifier, k verdictKey) *verify.Report {
	if r == nil || r.v != v {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[k]
}

// put remembers report, v's verdict on k, when it admits whatever the time.
func (r *verdicts) put(v *verify.Verifier, k verdictKey, report *verify.Report) {
	if r == nil || r.v != v || !timeless(report) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.m) >= maxVerdicts {
		clear(r.m)
	}
	r.m[k] = report
}

// timeless reports whether report admits its artifact whatever the time:
// an admission resting on keys alone (or on no signature), with no
// certificate and no attestation.
func timeless(report *verify.Report) bool {
	if report == nil || report.Decision == verify.DecisionDeny || len(report.Requirements) > 0 {
		return false
	}
	for _, s := range report.Signatures {
		if s.Identity != nil {
			return false
		}
	}
	return true
}
