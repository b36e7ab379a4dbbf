package daemon

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// TestRevocation loads a signed program, then changes the trust policy
// under it, offline (the origin is gone): on a policy reload and at the
// next start every loaded program is judged again. Under report the
// program stays, marked not admitted (Get, List, the metric, an audit
// line); under unload it is unloaded. A rule that no longer allows the
// program's type revokes it too; the policy restored admits it again.
func TestRevocation(t *testing.T) {
	for _, mode := range []string{RevocationReport, RevocationUnload} {
		t.Run(mode, func(t *testing.T) {
			addr := testutil.FreeLoopbackAddr(t)
			td := newTestDaemon(t, func(c *Config) { c.Revocation, c.Metrics.Address = mode, addr })
			ctx := context.Background()
			other := newSigner(t)
			ref := td.image(t, "tracepoint", true, "tracepoint_counter.bpf.o")
			p := td.mustLoad(t, ref, tracepointProg("tracepoint_counter", "syscalls/sys_enter_getpid"))[0]
			if a := p.GetAdmission(); a.GetState() != pb.AdmissionState_ADMISSION_STATE_ADMITTED || a.GetRule() != "images" || a.GetDecision() != "allow" {
				t.Fatalf("admission at load %v, want admitted by rule images", a)
			}
			// Judged offline: the origin is gone.
			if err := os.RemoveAll(filepath.Join(td.images, "tracepoint")); err != nil {
				t.Fatal(err)
			}
			images := "oci:" + td.images + "/**"

			// Unchanged policy, reloaded: still admitted.
			if err := td.d.ReloadPolicy(); err != nil {
				t.Fatal(err)
			}
			td.wantAdmission(t, p, pb.AdmissionState_ADMISSION_STATE_ADMITTED, "")

			// Another key trusted: not admitted.
			writePolicy(t, td.cfg.PolicyFile, policyRule{Name: "images", Images: []string{images}, Keys: []string{other.pub}})
			if err := td.d.ReloadPolicy(); err != nil {
				t.Fatal(err)
			}
			line := td.lastAudit(t, "rejudge")
			if line["trigger"] != "reload" || line["admitted"] != false || line["reason"] != "untrusted-key" || !slices.Equal(numbersOf(line["ids"]), []uint64{p.GetId()}) {
				t.Errorf("audit line %v: want trigger reload, not admitted, untrusted-key, program %d", line, p.GetId())
			}
			if mode == RevocationUnload {
				if line["outcome"] != "unloaded" {
					t.Errorf("audit line %v: want outcome unloaded", line)
				}
				_, err := td.client.Get(ctx, &pb.GetRequest{Id: p.GetId()})
				wantCode(t, err, codes.NotFound)
				// The kernel frees a program a moment after its last
				// reference goes.
				eventually(t, "the revoked kernel program gone", func() bool { return !kernelHasProgram(p.GetKernel().GetProgramId()) })
				if pins, _ := os.ReadDir(p.GetPinPath()); len(pins) != 0 {
					t.Errorf("pins left under %s: %v", p.GetPinPath(), pins)
				}
				wantMetrics(t, addr, "bpfd_programs_not_admitted 0", "bpfd_programs_revoked_total 1")
				return
			}
			got := td.wantAdmission(t, p, pb.AdmissionState_ADMISSION_STATE_NOT_ADMITTED, "untrusted-key")
			if got.GetDetail() == "" || got.GetPolicyFingerprint() != td.d.chain.PolicyFingerprint() {
				t.Errorf("admission %v: want a detail and the policy in force", got)
			}
			if !kernelHasProgram(p.GetKernel().GetProgramId()) {
				t.Errorf("kernel program %d gone under revocation: report", p.GetKernel().GetProgramId())
			}
			list, err := td.client.List(ctx, &pb.ListRequest{})
			if err != nil || len(list.GetPrograms()) != 1 || list.GetPrograms()[0].GetAdmission().GetState() != pb.AdmissionState_ADMISSION_STATE_NOT_ADMITTED {
				t.Errorf("List %v (%v): want the program marked not admitted", list, err)
			}
			wantMetrics(t, addr, "bpfd_programs_not_admitted 1", "bpfd_programs_revoked_total 0")

			// The trusted key again, but the rule allows xdp only.
			writePolicy(t, td.cfg.PolicyFile, policyRule{Name: "images", Images: []string{images}, Keys: []string{td.key.pub}, Kinds: []string{"xdp"}})
			if err := td.d.ReloadPolicy(); err != nil {
				t.Fatal(err)
			}
			td.wantAdmission(t, p, pb.AdmissionState_ADMISSION_STATE_NOT_ADMITTED, "program-type")

			// At start: the program adopted is judged under the policy
			// the restart reads.
			writePolicy(t, td.cfg.PolicyFile, policyRule{Name: "images", Images: []string{images}, Keys: []string{other.pub}})
			td.restart(t)
			td.awaitStartJudged(t)
			td.wantAdmission(t, p, pb.AdmissionState_ADMISSION_STATE_NOT_ADMITTED, "untrusted-key")
			if line := td.lastAudit(t, "rejudge"); line["trigger"] != "start" {
				t.Errorf("audit line %v: want trigger start", line)
			}

			// Restored: admitted again, and the audit log says so.
			td.writePolicy(t)
			if err := td.d.ReloadPolicy(); err != nil {
				t.Fatal(err)
			}
			td.wantAdmission(t, p, pb.AdmissionState_ADMISSION_STATE_ADMITTED, "")
			if line := td.lastAudit(t, "rejudge"); line["trigger"] != "reload" || line["admitted"] != true {
				t.Errorf("audit line %v: want the program admitted again on reload", line)
			}
			wantMetrics(t, addr, "bpfd_programs_not_admitted 0")
		})
	}
}

// wantAdmission gets p and checks its admission's state and reason.
func (td *testDaemon) wantAdmission(t *testing.T, p *pb.Program, state pb.AdmissionState, reason string) *pb.Admission {
	t.Helper()
	got, err := td.client.Get(context.Background(), &pb.GetRequest{Id: p.GetId()})
	if err != nil {
		t.Fatalf("Get %d: %v", p.GetId(), err)
	}
	a := got.GetProgram().GetAdmission()
	if a.GetState() != state || a.GetReason() != reason {
		t.Fatalf("admission %v, want %v (reason %q)", a, state, reason)
	}
	return a
}

// wantMetrics scrapes /metrics at addr and checks it has each line.
func wantMetrics(t *testing.T, addr string, lines ...string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, l := range lines {
		if !strings.Contains(string(body), "\n"+l+"\n") {
			t.Errorf("/metrics lacks %q", l)
		}
	}
}

// TestRevocationNeedsADenial: under revocation: unload, a program whose
// signatures the cache no longer holds (a cache emptied, or written by an
// earlier bpfd) is reported, not unloaded: missing evidence is no denial,
// and an upgrade must not unload every program it adopts.
func TestRevocationNeedsADenial(t *testing.T) {
	td := newTestDaemon(t, func(c *Config) { c.Revocation = RevocationUnload })
	ctx := context.Background()
	ref := td.image(t, "tracepoint", true, "tracepoint_counter.bpf.o")
	p := td.mustLoad(t, ref, tracepointProg("tracepoint_counter", "syscalls/sys_enter_getpid"))[0]
	if err := os.RemoveAll(filepath.Join(td.cfg.CacheDir, "evidence")); err != nil {
		t.Fatal(err)
	}
	td.restart(t)
	td.awaitStartJudged(t)
	td.wantAdmission(t, p, pb.AdmissionState_ADMISSION_STATE_NOT_ADMITTED, "no-signatures")
	if _, err := td.client.Get(ctx, &pb.GetRequest{Id: p.GetId()}); err != nil {
		t.Fatalf("Get %d after a start without its signatures: %v, want it loaded", p.GetId(), err)
	}
	if !kernelHasProgram(p.GetKernel().GetProgramId()) {
		t.Errorf("kernel program %d unloaded for want of evidence", p.GetKernel().GetProgramId())
	}
	if line := td.lastAudit(t, "rejudge"); line["outcome"] == "unloaded" || line["reason"] != "no-signatures" {
		t.Errorf("audit line %v: want no-signatures, not unloaded", line)
	}
}
