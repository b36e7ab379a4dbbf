package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

// Judging the programs adopted at start. New adopts the programs the state
// store and the kernel hold and marks each pending: not judged yet under
// the trust policy in force. Serve answers at once and judges them in the
// background (judgeAtStart), one artifact after the other, bounded by
// startJudgementTimeout. Until a program is judged, and, under revocation:
// unload, unloaded when not admitted, nothing may make it outlive its
// revocation: a Load borrowing its maps, an UpdateOwner of it and the CSI
// driver's publishing of its maps into pods wait for the pass, and are
// refused (ErrNotJudged) for a program still pending after it. Unload, List,
// Get and map access answer meanwhile; List and Get show
// ADMISSION_STATE_PENDING, the metric bpfd_programs_awaiting_judgement
// counts those programs, and the pass ends with the log line "programs
// adopted at start judged" and Daemon.StartJudged closing.

// startJudgementTimeout bounds the start pass: it reads only the cache
// (no registry), so it ends long before unless the disk stalls.
const startJudgementTimeout = 2 * time.Minute

// startJudgementHook, when set, runs before the start pass judges
// anything: tests hold the pass with it.
var startJudgementHook func()

// markPending marks every program adopted at start pending, before
// serving.
func (s *server) markPending(ctx context.Context) error {
	progs, err := s.manager.List(ctx, runtime.ListOptions{Records: true})
	if err != nil {
		return err
	}
	for _, p := range progs {
		s.admissions.set(p.ID, admission{Pending: true})
	}
	return nil
}

// judgeAtStart judges the programs adopted at start again under the
// policy in force, then closes s.startJudged.
func (s *server) judgeAtStart(ctx context.Context) {
	defer close(s.startJudged)
	if startJudgementHook != nil {
		startJudgementHook()
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, startJudgementTimeout)
	defer cancel()
	if err := s.rejudge(ctx, "start", nil); err != nil {
		s.log.Error("programs no longer admitted could not all be judged or unloaded", "error", err)
	}
	s.log.Info("programs adopted at start judged", "duration", time.Since(start).Round(time.Microsecond), "pending", s.admissions.awaiting())
}

// awaitJudged waits until the start pass has ended, then refuses a
// program of ids still not judged (the pass ended early): what the caller
// does with them could let a program outlive its revocation. what names
// the request for the error.
func (s *server) awaitJudged(ctx context.Context, what string, ids ...runtime.ID) error {
	select {
	case <-s.startJudged:
	case <-ctx.Done():
		return fmt.Errorf("%s: waiting for the programs adopted at start to be judged under the trust policy: %w", what, ctx.Err())
	}
	for _, id := range ids {
		if a, ok := s.admissions.get(id); ok && a.Pending {
			return fmt.Errorf("%s: program %d: %w", what, id, ErrNotJudged)
		}
	}
	return nil
}
