package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// holdStartJudgement holds the judgement of the programs adopted at the
// next start until the returned function is called (or the test ends).
func holdStartJudgement(t *testing.T) (release func()) {
	held := make(chan struct{})
	var released bool
	release = func() {
		if !released {
			released = true
			close(held)
		}
	}
	startJudgementHook = func() { <-held }
	t.Cleanup(func() {
		release()
		startJudgementHook = nil
	})
	return release
}

// awaitStartJudged waits for the judgement of the programs adopted at
// start: the signal tests asserting a revocation at start wait for.
func (td *testDaemon) awaitStartJudged(t *testing.T) {
	t.Helper()
	select {
	case <-td.d.StartJudged():
	case <-time.After(30 * time.Second):
		t.Fatal("the programs adopted at start were not judged within 30s")
	}
}

// TestStartJudgementGatesBorrowing: bpfd serves before it judges the
// programs it adopted, and a program the new policy revokes must not lend
// its maps in the meantime. A program is loaded; the policy then trusts
// another key only; bpfd restarts under revocation: unload with its
// judgement held. It serves: List and Get answer, the program shows
// pending, the metric counts it. A Load borrowing its maps (from an
// artifact the new policy admits) waits instead of borrowing; once the
// judgement ends, the program is unloaded and the same Load is refused
// (NotFound): nothing borrowed its maps.
func TestStartJudgementGatesBorrowing(t *testing.T) {
	addr := testutil.FreeLoopbackAddr(t)
	td := newTestDaemon(t, func(c *Config) { c.Revocation, c.Metrics.Address = RevocationUnload, addr })
	ctx := context.Background()
	ref := td.image(t, "tracepoint", true, "tracepoint_counter.bpf.o")
	owner := td.mustLoad(t, ref, tracepointProg("tracepoint_counter", "syscalls/sys_enter_getpid"))[0]
	other := newSigner(t)
	writePolicy(t, td.cfg.PolicyFile,
		policyRule{Name: "images", Images: []string{"oci:" + td.images + "/**"}, Keys: []string{other.pub}},
		policyRule{Name: "local", Images: []string{"file:" + bytecodeDir + "/**"}})

	release := holdStartJudgement(t)
	td.restart(t)

	// Serving, not judged yet.
	got, err := td.client.Get(ctx, &pb.GetRequest{Id: owner.GetId()})
	if err != nil {
		t.Fatalf("Get %d while the judgement is held: %v", owner.GetId(), err)
	}
	if st := got.GetProgram().GetAdmission().GetState(); st != pb.AdmissionState_ADMISSION_STATE_PENDING {
		t.Errorf("admission %v while the judgement is held, want pending", got.GetProgram().GetAdmission())
	}
	list, err := td.client.List(ctx, &pb.ListRequest{})
	if err != nil || len(list.GetPrograms()) != 1 {
		t.Fatalf("List while the judgement is held: %v (%v), want the one program", list, err)
	}
	wantMetrics(t, addr, "bpfd_programs_awaiting_judgement 1", "bpfd_programs_not_admitted 0")

	// The attack: borrow the maps of the program about to be revoked.
	borrow := func(ctx context.Context) error {
		_, err := td.client.Load(ctx, &pb.LoadRequest{
			Bytecode:   &pb.Bytecode{Reference: "file:" + filepath.Join(bytecodeDir, "tracepoint_counter.bpf.o")},
			Programs:   []*pb.LoadProgram{tracepointProg("tracepoint_counter", "syscalls/sys_enter_getppid")},
			MapOwnerId: owner.GetId(),
		})
		return err
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = borrow(short)
	cancel()
	wantCode(t, err, codes.DeadlineExceeded)
	if list, err := td.client.List(ctx, &pb.ListRequest{}); err != nil || len(list.GetPrograms()) != 1 {
		t.Fatalf("List after the borrowing Load timed out: %v (%v), want the one program, nothing borrowing", list, err)
	}
	// UpdateOwner waits the same way.
	short, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = td.client.UpdateOwner(short, &pb.UpdateOwnerRequest{Ids: []uint64{owner.GetId()}, Owner: &pb.Owner{}})
	cancel()
	wantCode(t, err, codes.DeadlineExceeded)

	// A borrowing Load issued now waits for the judgement, then finds the
	// owner gone.
	result := make(chan error, 1)
	go func() { result <- borrow(ctx) }()
	release()
	td.awaitStartJudged(t)
	select {
	case err = <-result:
	case <-time.After(30 * time.Second):
		t.Fatal("the borrowing Load still waits after the judgement")
	}
	wantCode(t, err, codes.NotFound)
	_, err = td.client.Get(ctx, &pb.GetRequest{Id: owner.GetId()})
	wantCode(t, err, codes.NotFound)
	if list, err := td.client.List(ctx, &pb.ListRequest{}); err != nil || len(list.GetPrograms()) != 0 {
		t.Errorf("List after the judgement: %v (%v), want no program", list, err)
	}
	eventually(t, "the revoked kernel program gone", func() bool { return !kernelHasProgram(owner.GetKernel().GetProgramId()) })
	if pins, _ := os.ReadDir(owner.GetPinPath()); len(pins) != 0 {
		t.Errorf("pins left under %s: %v", owner.GetPinPath(), pins)
	}
	wantMetrics(t, addr, "bpfd_programs_awaiting_judgement 0", "bpfd_programs_revoked_total 1")
	if !strings.Contains(td.logged.String(), "programs adopted at start judged") {
		t.Error("no log line says the programs adopted at start were judged")
	}
}
