package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bpfd-dev/bpfd/internal/testing/testimage"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// TestRevocationThroughSignals runs bpfd as a process with revocation:
// report and with revocation: unload. A program is loaded from a signed
// artifact; then the policy trusts another key only. SIGHUP judges the
// running program again: under report it stays, marked not admitted;
// under unload it is unloaded. A restart under such a policy judges the
// programs it adopts the same way.
func TestRevocationThroughSignals(t *testing.T) {
	for _, mode := range []string{"report", "unload"} {
		t.Run(mode, func(t *testing.T) {
			n := newNode(t)
			if err := os.WriteFile(filepath.Join(n.dir, "bpfd.yaml"), fmt.Appendf(nil, "apiVersion: bpfd.io/v1alpha1\nkind: DaemonConfig\nrevocation: %s\n", mode), 0o600); err != nil {
				t.Fatal(err)
			}
			ref := n.image(t, "tracepoint", "tracepoint_counter.bpf.o")
			other, err := testimage.NewKey(n.dir, "other")
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()

			b := n.start(t)
			client, closeClient := n.client(t)
			load := func(tp string) *pb.Program {
				t.Helper()
				resp, err := client.Load(ctx, &pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: ref}, Programs: []*pb.LoadProgram{tracepoint(tp)}})
				if err != nil {
					t.Fatalf("Load: %v\n%s", err, b.log())
				}
				return resp.GetPrograms()[0]
			}
			// check waits for the program's state after a judgement: gone
			// under unload, marked not admitted under report.
			check := func(p *pb.Program, when string) {
				t.Helper()
				if mode == "unload" {
					// The judgement is logged before the programs not
					// admitted are unloaded.
					eventually(t, when+": the program unloaded", func() string {
						if got, err := client.Get(ctx, &pb.GetRequest{Id: p.GetId()}); status.Code(err) != codes.NotFound {
							return fmt.Sprintf("Get %d: %v, %v; want NotFound", p.GetId(), got.GetProgram().GetAdmission(), err)
						}
						return ""
					})
					eventually(t, "the revoked kernel program freed", func() string {
						if kernelHas(p.GetKernel().GetProgramId()) {
							return fmt.Sprintf("kernel program %d still loaded", p.GetKernel().GetProgramId())
						}
						return ""
					})
					return
				}
				got, err := client.Get(ctx, &pb.GetRequest{Id: p.GetId()})
				a := got.GetProgram().GetAdmission()
				if err != nil || a.GetState() != pb.AdmissionState_ADMISSION_STATE_NOT_ADMITTED || a.GetReason() != "untrusted-key" {
					t.Errorf("%s: admission %v (%v), want not admitted: untrusted-key", when, a, err)
				}
				if !kernelHas(p.GetKernel().GetProgramId()) {
					t.Errorf("%s: kernel program %d gone under revocation: report", when, p.GetKernel().GetProgramId())
				}
			}

			// SIGHUP.
			p := load("syscalls/sys_enter_getpid")
			if a := p.GetAdmission(); a.GetState() != pb.AdmissionState_ADMISSION_STATE_ADMITTED {
				t.Fatalf("admission at load %v", a)
			}
			n.trust(t, other)
			b.cmd.Process.Signal(syscall.SIGHUP)
			b.waitLog(t, "trigger=reload")
			check(p, "after SIGHUP")
			if mode == "unload" {
				b.waitLog(t, "unloaded a program no longer admitted")
			}

			// Restart: a program loaded under the trusted key, adopted
			// under a policy that no longer trusts it.
			n.trust(t, n.key)
			b.cmd.Process.Signal(syscall.SIGHUP)
			eventually(t, "the second reload's judgement", func() string {
				if strings.Count(b.log(), "trigger=reload") < 2 {
					return "not logged"
				}
				return ""
			})
			q := load("syscalls/sys_enter_getppid")
			closeClient()
			if st := b.stop(t, syscall.SIGTERM); st.ExitCode() != 0 {
				t.Fatalf("exit after SIGTERM: %v", st)
			}
			n.trust(t, other)
			b = n.start(t)
			client, closeClient = n.client(t)
			defer closeClient()
			b.waitLog(t, "programs adopted at start judged")
			check(q, "after a restart")

			resp, err := client.List(ctx, &pb.ListRequest{})
			if err != nil {
				t.Fatal(err)
			}
			var ids []uint64
			for _, p := range resp.GetPrograms() {
				ids = append(ids, p.GetId())
			}
			if len(ids) > 0 {
				if _, err := client.Unload(ctx, &pb.UnloadRequest{Ids: ids}); err != nil {
					t.Error(err)
				}
			}
			b.stop(t, syscall.SIGTERM)
		})
	}
}
