package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/bpfd-dev/bpfd/pkg/verify"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// TestRequiredProvenanceThroughAPI runs bpfd with a policy that requires SLSA
// provenance from one builder, signed by a builder key: through the API, an
// artifact that has it is admitted, one without it or with provenance from
// another builder is denied with the requirement's reason, and nothing of
// the denied ones loads. The daemon reads the attestations from its cache,
// where they came with the signatures from the same origin.
func TestRequiredProvenanceThroughAPI(t *testing.T) {
	td := newTestDaemon(t)
	ctx := context.Background()
	builderKey := newSigner(t)
	const builder = "https://ci.example.com/trusted"
	td.writePolicy(t, policyRule{
		Name: "provenance", Images: []string{"oci:" + filepath.Join(td.images, "prov") + "/**"},
		Keys: []string{td.key.pub}, Provenance: builder, ProvenanceKey: builderKey.pub,
	})
	if err := td.d.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	provenance := func(id string) []byte {
		return fmt.Appendf(nil, `{"builder":{"id":%q},"buildType":"https://example.com/make","invocation":{"configSource":{"uri":"git+https://example.com/bpf@v1"}}}`, id)
	}
	// Distinct objects, so distinct digests: the cache keeps one copy of a
	// digest, with the referrers of every origin it came from.
	image := func(name, object string) string {
		tag := "oci:" + filepath.Join(td.images, "prov", name) + ":v1"
		ref := buildArtifact(t, tag, object)
		td.key.sign(t, ref, verify.FormatBundle)
		return tag
	}
	attested := image("attested", "tracepoint_counter.bpf.o")
	if err := builderKey.key.Attest(ctx, attested, "slsaprovenance", provenance(builder)); err != nil {
		t.Fatal(err)
	}
	other := image("other-builder", "kprobe_counter.bpf.o")
	if err := builderKey.key.Attest(ctx, other, "slsaprovenance", provenance("https://ci.example.com/rogue")); err != nil {
		t.Fatal(err)
	}
	none := image("none", "uprobe_counter.bpf.o")

	before := td.snapshot(t)
	for ref, reason := range map[string]string{none: "attestation-missing", other: "attestation-conditions-unmet"} {
		_, err := td.client.PullImage(ctx, &pb.PullImageRequest{Bytecode: &pb.Bytecode{Reference: ref}})
		wantCode(t, err, codes.PermissionDenied, reason)
		_, err = td.load(t, ref, tracepointProg("tracepoint_counter", "syscalls/sys_enter_getpid"))
		wantCode(t, err, codes.PermissionDenied, reason)
		if a := td.lastAudit(t, "load"); a["result"] == "ok" {
			t.Errorf("audit line %v", a)
		}
	}
	td.assertUnchanged(t, before)

	resp, err := td.client.PullImage(ctx, &pb.PullImageRequest{Bytecode: &pb.Bytecode{Reference: attested}})
	if err != nil {
		t.Fatalf("attested artifact refused: %v", err)
	}
	if got := resp.GetProvenance(); got.GetRule() != "provenance" {
		t.Errorf("provenance %v", got)
	}
	p := td.mustLoad(t, attested, tracepointProg("tracepoint_counter", "syscalls/sys_enter_getpid"))
	td.unload(t, p[0].GetId())
}
