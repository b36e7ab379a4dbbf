package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bpfd-dev/bpfd/internal/supplychain"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// Revocation: a program runs because the trust policy admitted its
// artifact when it was loaded. When the policy changes (SIGHUP) and at each
// start, bpfd judges every loaded program's artifact again under the policy
// in force, offline, with the signatures its origin served as the cache
// keeps them (supplychain.Chain.Rejudge), and checks that the rule still
// allows the program's type. A program no longer admitted is marked (List,
// Get, the metric bpfd_programs_not_admitted, an audit line) and, with
// revocation: unload, unloaded.

// admission is the trust policy's latest judgement of a loaded program.
type admission struct {
	Admitted bool
	// Pending: adopted at start and not judged yet (startjudgement.go);
	// nothing else is set.
	Pending bool
	// Decision is allow, allow-unsigned, warn or deny; empty when the
	// artifact could not be judged.
	Decision verify.Decision
	// Reason and Detail say why it is not admitted, or why a warn.
	Reason, Detail string
	Rule, Policy   string
	CheckedAt      time.Time
}

// Reasons a program is not admitted besides the policy's denial reasons.
const (
	// reasonProgramType: the rule no longer allows the program's type.
	reasonProgramType = "program-type"
	// reasonNoSignatures: the cache lacks the signatures its origin
	// served (a cache emptied, or written by an earlier bpfd).
	reasonNoSignatures = "no-signatures"
	// reasonUnjudgeable: its provenance or signatures cannot be read.
	reasonUnjudgeable = "error"
)

// admissions holds each loaded program's admission, by id. Ids are never
// reused, so an unloaded program's entry is only ever read by nobody.
type admissions struct {
	mu sync.Mutex
	m  map[runtime.ID]admission
}

func (a *admissions) get(id runtime.ID) (admission, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.m[id]
	return v, ok
}

func (a *admissions) set(id runtime.ID, v admission) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[runtime.ID]admission{}
	}
	a.m[id] = v
}

// replace sets the admission of id when it has one (a program unloaded
// meanwhile has none) and returns the one it replaced.
func (a *admissions) replace(id runtime.ID, v admission) (admission, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	prev, ok := a.m[id]
	if ok {
		a.m[id] = v
	}
	return prev, ok
}

func (a *admissions) forget(ids ...runtime.ID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, id := range ids {
		delete(a.m, id)
	}
}

// notAdmitted counts the programs marked not admitted.
func (a *admissions) notAdmitted() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, v := range a.m {
		if !v.Admitted && !v.Pending {
			n++
		}
	}
	return n
}

// awaiting counts the programs adopted at start and not judged yet.
func (a *admissions) awaiting() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, v := range a.m {
		if v.Pending {
			n++
		}
	}
	return n
}

// admitted is the admission of programs just loaded with res's verdict.
func admittedBy(res *supplychain.Result) admission {
	a := admission{Admitted: true, CheckedAt: time.Now().UTC()}
	if v := res.Verdict; v != nil {
		a.Decision, a.Reason, a.Detail, a.Rule, a.Policy = v.Decision, string(v.Reason), v.Detail, v.Rule, v.Policy
	}
	return a
}

// originOf returns the name a program's artifact was fetched from: the
// recorded origin, or, for records written before origins were, the
// reference's name.
func originOf(p runtime.Provenance) (string, error) {
	if p.Origin != "" {
		return p.Origin, nil
	}
	ref, err := artifact.ParseReference(p.Reference)
	if err != nil {
		return "", err
	}
	return ref.Name(), nil
}

// artifactKey names an artifact as fetched from one origin.
// denied reports whether the policy in force refused the program on its
// evidence: a denial or a type the rule no longer allows. A program that
// could not be judged (its signatures no longer cached, or unreadable) is
// not denied: revocation: unload leaves it loaded and reported, for
// missing evidence is no revocation, and an upgrade over an older cache
// must not unload what it adopts.
func (a admission) denied() bool {
	return !a.Admitted && (a.Decision == verify.DecisionDeny || a.Reason == reasonProgramType)
}

type artifactKey struct {
	origin    string
	digest    digest.Digest
	namespace string // the owner's: a tenant's programs are judged for it
}

// judge judges program p again; verdicts caches the verdicts of the pass,
// by artifact.
func (s *server) judge(ctx context.Context, p runtime.Program, verdicts map[artifactKey]*supplychain.Verdict, errs map[artifactKey]error) admission {
	a := admission{CheckedAt: time.Now().UTC(), Policy: s.chain.PolicyFingerprint()}
	origin, err := originOf(p.Provenance)
	if err != nil {
		a.Reason, a.Detail = reasonUnjudgeable, fmt.Sprintf("reference %q: %v", p.Provenance.Reference, err)
		return a
	}
	key := artifactKey{origin, digest.Digest(p.Provenance.Digest), p.Owner.Namespace}
	v, seen := verdicts[key]
	err = errs[key]
	if !seen && err == nil {
		v, err = s.chain.RejudgeFor(ctx, origin, key.digest, key.namespace)
		verdicts[key], errs[key] = v, err
	}
	switch {
	case errors.Is(err, supplychain.ErrNoEvidence):
		a.Reason, a.Detail = reasonNoSignatures, err.Error()+"; pull it again (bpfctl pull) to judge it"
		return a
	case err != nil:
		a.Reason, a.Detail = reasonUnjudgeable, err.Error()
		return a
	}
	a.Decision, a.Reason, a.Detail, a.Rule, a.Policy = v.Decision, string(v.Reason), v.Detail, v.Rule, v.Policy
	switch {
	case v.Decision == verify.DecisionDeny:
	case v.AllowedKinds != nil && !slices.Contains(v.AllowedKinds, p.Kind):
		a.Reason, a.Detail = reasonProgramType, fmt.Sprintf("rule %q allows program types %v, not %s", v.Rule, v.AllowedKinds, p.Kind)
	default:
		a.Admitted = true
	}
	return a
}

// rejudge judges the programs again under the policy in force (all of them
// when progs is nil), marks them, writes an audit line for each not
// admitted or whose admission changed, and with revocation: unload unloads
// those not admitted. trigger says why: start, reload, load.
func (s *server) rejudge(ctx context.Context, trigger string, progs []runtime.Program) error {
	// One pass at a time: a reload's judgement waits for the start's, so
	// that the later policy's verdicts are the ones that stay.
	s.rejudgeMu.Lock()
	defer s.rejudgeMu.Unlock()
	if progs == nil {
		// The records are all a judgement reads: no kernel read per
		// program.
		var err error
		if progs, err = s.manager.List(ctx, runtime.ListOptions{Records: true}); err != nil {
			return fmt.Errorf("rejudge: %w", err)
		}
	}
	verdicts, errs := map[artifactKey]*supplychain.Verdict{}, map[artifactKey]error{}
	var revoked []runtime.Program
	kept := 0
	for _, p := range progs {
		if !p.Managed {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("rejudge: %d programs judged, then: %w", kept+len(revoked), err)
		}
		a := s.judge(ctx, p, verdicts, errs)
		prev, had := s.admissions.replace(p.ID, a)
		if !had {
			continue // unloaded meanwhile
		}
		had = !prev.Pending
		if !a.Admitted {
			revoked = append(revoked, p)
		} else {
			kept++
		}
		if !a.Admitted || had && prev.Admitted != a.Admitted {
			s.audit.write(ctx, rejudgeRecord(trigger, p, a, ""))
		}
	}
	s.log.Info("programs judged again under the trust policy in force", "trigger", trigger, "admitted", kept, "not_admitted", len(revoked), "policy", s.chain.PolicyFingerprint(), "revocation", s.revocation)
	if s.revocation != RevocationUnload {
		for _, p := range revoked {
			s.log.Warn("program no longer admitted by the trust policy; it stays loaded (revocation: report)", "program_id", p.ID, "program", p.Name, "reference", p.Provenance.Reference)
		}
		return nil
	}
	var failed []error
	for _, p := range revoked {
		a, _ := s.admissions.get(p.ID)
		if !a.denied() {
			s.log.Warn("program not judged: it stays loaded until the trust policy denies it", "program_id", p.ID, "program", p.Name, "reference", p.Provenance.Reference, "reason", a.Reason, "detail", a.Detail)
			continue
		}
		err := s.manager.Unload(ctx, p.ID)
		outcome := "unloaded"
		switch {
		case errors.Is(err, runtime.ErrProgramNotFound):
			outcome = "gone"
			s.admissions.forget(p.ID)
		case err != nil:
			outcome = "unload-failed"
			failed = append(failed, fmt.Errorf("program %d: %w", p.ID, err))
			s.log.Error("cannot unload a program no longer admitted", "program_id", p.ID, "error", err)
		default:
			s.admissions.forget(p.ID)
			s.metrics.revoked()
			s.log.Warn("unloaded a program no longer admitted by the trust policy (revocation: unload)", "program_id", p.ID, "program", p.Name, "reference", p.Provenance.Reference, "reason", a.Reason)
		}
		s.audit.write(ctx, rejudgeRecord(trigger, p, a, outcome))
	}
	return errors.Join(failed...)
}

// rejudgeRecord is the audit line of a program judged again.
func rejudgeRecord(trigger string, p runtime.Program, a admission, outcome string) auditRecord {
	return auditRecord{
		Action:    "rejudge",
		Peer:      runtime.Requester{PID: int32(os.Getpid())},
		Reference: p.Provenance.Reference,
		Programs:  []string{p.Name},
		IDs:       []runtime.ID{p.ID},
		Rejudge:   &rejudgeInfo{Trigger: trigger, Digest: p.Provenance.Digest, Admission: a, Outcome: outcome},
	}
}
