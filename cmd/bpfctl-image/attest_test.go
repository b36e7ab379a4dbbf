package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

const (
	trustedBuilder = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v2.0.0"
	otherBuilder   = "https://ci.example.com/self-hosted"
)

// writeProvenance writes a SLSA provenance v0.2 predicate by builder, of the
// repository git+https://github.com/example/bpf, and returns its path.
func writeProvenance(t *testing.T, dir, builder string) string {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("provenance-%d.json", len(builder)))
	p := fmt.Sprintf(`{"builder":{"id":%q},"buildType":"https://github.com/slsa-framework/slsa-github-generator/generic@v1",
"invocation":{"configSource":{"uri":"git+https://github.com/example/bpf@refs/tags/v1.0.0","digest":{"sha1":"0123456789abcdef0123456789abcdef01234567"},"entryPoint":".github/workflows/release.yml"}},
"materials":[{"uri":"git+https://github.com/example/bpf@refs/tags/v1.0.0"}]}`, builder)
	if err := os.WriteFile(path, []byte(p), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// cosignRun runs a real cosign CLI offline (HOME in the test's directory).
func cosignRun(t *testing.T, name, home string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(testutil.Tool(t, name), args...)
	cmd.Env = append(os.Environ(), "HOME="+home, "TUF_ROOT="+filepath.Join(home, "tuf"), "COSIGN_PASSWORD="+password)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestAttestInterop attests SLSA provenance to artifacts on a real registry
// with bpfctl-image and with cosign v2 and v3 in both of their formats, and
// verifies with a policy that requires provenance from one builder: every
// producer's attestation admits the artifact; an artifact without
// provenance, or with provenance from another builder, is denied. cosign v2
// and v3 verify-attestation accept bpfctl-image's attestation.
func TestAttestInterop(t *testing.T) {
	reg := testutil.StartRegistry(t)
	dir := t.TempDir()
	home := t.TempDir()
	prefix := keyFiles(t)
	good, evil := writeProvenance(t, dir, trustedBuilder), writeProvenance(t, dir, otherBuilder)
	emptyRoot := filepath.Join(dir, "trusted_root.json")
	if err := os.WriteFile(emptyRoot, []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(`apiVersion: bpfd.io/v1alpha1
kind: TrustPolicy
rules:
- name: prod
  images: ["`+reg.Host+`/attest/**"]
  authorities: [{key: {path: `+prefix+`.pub}}]
  require:
    attestations:
    - name: provenance
      predicateType: slsaprovenance
      authorities: [{key: {path: `+prefix+`.pub}}]
      conditions:
        builderId: `+trustedBuilder+`
        sourceRepository: git+https://github.com/example/*
`), 0o644); err != nil {
		t.Fatal(err)
	}

	cosignAttest := func(name string, env []string, extra ...string) func(ref string) {
		return func(ref string) {
			args := append([]string{"attest", "--key", prefix + ".key", "--type", "slsaprovenance", "--predicate", good, "--tlog-upload=false", "--allow-http-registry", "--yes"}, extra...)
			if out, err := cosignRun(t, name, home, env, append(args, ref)...); err != nil {
				t.Fatalf("%s attest: %v\n%s", name, err, out)
			}
		}
	}
	cases := []struct {
		name       string
		attest     func(ref string)
		wantCode   int
		wantReason verify.Reason
		format     verify.Format
	}{
		{name: "bpfctl-image", attest: func(ref string) {
			mustImage(t, cliutil.ExitOK, "attest", "--key", prefix+".key", "--type", "slsaprovenance", "--predicate", good, ref)
		}, format: verify.FormatBundle},
		{name: "cosign3-bundle", attest: cosignAttest("cosign3", nil, "--use-signing-config=false"), format: verify.FormatBundle},
		{name: "cosign3-legacy", attest: cosignAttest("cosign3", nil, "--use-signing-config=false", "--new-bundle-format=false"), format: verify.FormatLegacy},
		{name: "cosign2-legacy", attest: cosignAttest("cosign2", nil), format: verify.FormatLegacy},
		{name: "cosign2-bundle", attest: cosignAttest("cosign2", []string{"COSIGN_EXPERIMENTAL=1"}, "--new-bundle-format"), format: verify.FormatBundle},
		{name: "none", wantCode: cliutil.ExitDenied, wantReason: verify.ReasonAttestationMissing},
		{name: "other-builder", attest: func(ref string) {
			mustImage(t, cliutil.ExitOK, "attest", "--key", prefix+".key", "--type", "slsaprovenance", "--predicate", evil, ref)
		}, wantCode: cliutil.ExitDenied, wantReason: verify.ReasonAttestationConditions, format: verify.FormatBundle},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ref := fmt.Sprintf("%s/attest/%s:v1", reg.Host, tc.name)
			// Distinct content per artifact: another object each time.
			objects := []string{"xdp_counter", "tc_counter", "tracepoint_counter", "kprobe_counter", "uprobe_counter", "fentry_counter", "cgroup_counter"}
			mustImage(t, cliutil.ExitOK, "build", "--dest", ref, object(objects[i]))
			mustImage(t, cliutil.ExitOK, "sign", "--key", prefix+".key", ref)
			if tc.attest != nil {
				tc.attest(ref)
			}
			out := verifyJSON(t, tc.wantCode, "--policy", policy, ref)
			if len(out.Requirements) != 1 {
				t.Fatalf("requirements %+v", out.Requirements)
			}
			req := out.Requirements[0]
			if req.Satisfied != (tc.wantReason == "") || req.Reason != tc.wantReason {
				t.Errorf("requirement %+v, want reason %q", req, tc.wantReason)
			}
			if tc.attest != nil && (len(req.Attestations) != 1 || req.Attestations[0].Format != tc.format) {
				t.Errorf("attestations %+v, want one in the %s format", req.Attestations, tc.format)
			}
			if tc.wantReason != "" && (out.Decision != verify.DecisionDeny || out.Reason != tc.wantReason) {
				t.Errorf("decision %s (%s), want deny (%s)", out.Decision, out.Reason, tc.wantReason)
			}
		})
	}

	// cosign v2 and v3 verify bpfctl-image's attestation, and find none on
	// the artifact without one.
	for _, c := range []struct {
		name string
		args []string
	}{
		{"cosign2", []string{"--new-bundle-format", "--trusted-root", emptyRoot}},
		{"cosign3", nil},
	} {
		for _, repo := range []string{"bpfctl-image", "none"} {
			ref := fmt.Sprintf("%s/attest/%s:v1", reg.Host, repo)
			args := append([]string{"verify-attestation", "--key", prefix + ".pub", "--type", "slsaprovenance", "--insecure-ignore-tlog=true", "--allow-http-registry"}, c.args...)
			out, err := cosignRun(t, c.name, home, nil, append(args, ref)...)
			switch {
			case repo == "bpfctl-image" && err != nil:
				t.Errorf("%s verify-attestation of bpfctl-image's attestation: %v\n%s", c.name, err, out)
			case repo == "bpfctl-image":
				var envelope struct{ Payload []byte }
				line := out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]
				if err := json.Unmarshal([]byte(line), &envelope); err != nil || !strings.Contains(string(envelope.Payload), trustedBuilder) {
					t.Errorf("%s verify-attestation printed %q (%v), want the statement", c.name, line, err)
				}
			case err == nil:
				t.Errorf("%s verify-attestation accepted an artifact without attestations:\n%s", c.name, out)
			}
		}
	}
}
