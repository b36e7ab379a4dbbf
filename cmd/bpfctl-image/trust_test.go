package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

const password = "correct horse"

// cliRun is one in-process run of bpfctl-image.
type cliRun struct {
	code           int
	stdout, stderr string
}

// image runs bpfctl-image in-process with COSIGN_PASSWORD set.
func image(t *testing.T, args ...string) cliRun {
	t.Helper()
	t.Setenv("COSIGN_PASSWORD", password)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"bpfctl-image"}, args...), &stdout, &stderr)
	return cliRun{code, stdout.String(), stderr.String()}
}

// mustImage runs bpfctl-image and fails the test unless it exits with want.
func mustImage(t *testing.T, want int, args ...string) cliRun {
	t.Helper()
	r := image(t, args...)
	if r.code != want {
		t.Fatalf("bpfctl-image %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

// keyFiles makes a key pair with keygen and returns PREFIX.
func keyFiles(t *testing.T) string {
	t.Helper()
	prefix := filepath.Join(t.TempDir(), "cosign")
	mustImage(t, cliutil.ExitOK, "keygen", "--out", prefix)
	return prefix
}

// newLayoutArtifact stores a small artifact in a new OCI layout, tagged tag,
// and returns the layout directory and its manifest.
func newLayoutArtifact(t *testing.T, body, tag string) (string, ocispec.Descriptor) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	store, err := oci.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, pushTestArtifact(t, store, body, tag)
}

func pushTestArtifact(t *testing.T, dst oras.Target, body, tag string) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	data, err := os.ReadFile("../../bytecode/xdp_counter.bpf.o")
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, body...) // distinct content per artifact
	layer := content.NewDescriptorFromBytes("application/vnd.bpfd.test.object", data)
	if err := dst.Push(ctx, layer, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	desc, err := oras.PackManifest(ctx, dst, oras.PackManifestVersion1_1, "application/vnd.bpfd.test", oras.PackManifestOptions{
		Layers:              []ocispec.Descriptor{layer},
		ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: "2024-01-01T00:00:00Z"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.Tag(ctx, desc, tag); err != nil {
		t.Fatal(err)
	}
	return desc
}

// verifyJSON runs verify --output json and decodes the report.
func verifyJSON(t *testing.T, want int, args ...string) verifyOutput {
	t.Helper()
	r := mustImage(t, want, append([]string{"verify", "--output", "json"}, args...)...)
	var out verifyOutput
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("verify output is not JSON: %v\n%s", err, r.stdout)
	}
	if out.SchemaVersion != 1 || out.Kind != "VerificationReport" || out.Report == nil {
		t.Fatalf("verify output %s lacks its version, kind or report", r.stdout)
	}
	return out
}

// TestSignVerifyCLI signs and verifies from the command line on each kind of
// store, in each format, and checks exit codes and outputs.
func TestSignVerifyCLI(t *testing.T) {
	reg := testutil.StartRegistry(t)
	key, other := keyFiles(t), keyFiles(t)

	stores := map[string]func(t *testing.T) (ref string, digest string){
		"layout": func(t *testing.T) (string, string) {
			dir, desc := newLayoutArtifact(t, "layout", "v1")
			return "oci:" + dir + ":v1", desc.Digest.String()
		},
		"archive": func(t *testing.T) (string, string) {
			dir, desc := newLayoutArtifact(t, "archive", "v1")
			tarPath := filepath.Join(t.TempDir(), "a.tar")
			if out, err := exec.Command("tar", "-C", dir, "-cf", tarPath, ".").CombinedOutput(); err != nil {
				t.Fatalf("tar: %v\n%s", err, out)
			}
			return "oci-archive:" + tarPath + ":v1", desc.Digest.String()
		},
		"registry": func(t *testing.T) (string, string) {
			name := "cli/" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
			repo, err := remote.NewRepository(reg.Host + "/" + name)
			if err != nil {
				t.Fatal(err)
			}
			repo.PlainHTTP = true
			desc := pushTestArtifact(t, repo, name, "v1")
			return reg.Host + "/" + name + ":v1", desc.Digest.String()
		},
	}
	for storeName, newArtifact := range stores {
		for _, format := range []string{"bundle", "legacy"} {
			t.Run(storeName+"/"+format, func(t *testing.T) {
				ref, digest := newArtifact(t)
				r := mustImage(t, cliutil.ExitOK, "sign", "--key", key+".key", "--format", format, ref)
				if got := strings.TrimSpace(r.stdout); got != digest {
					t.Errorf("sign printed %q, want the digest %s", got, digest)
				}
				if !strings.Contains(r.stderr, "@"+digest) {
					t.Errorf("sign did not say which digest it signs: %s", r.stderr)
				}

				out := verifyJSON(t, cliutil.ExitOK, "--key", key+".pub", ref)
				if out.Decision != verify.DecisionAllow || out.Digest.String() != digest || len(out.Signatures) != 1 || string(out.Signatures[0].Format) != format || !out.Signatures[0].Valid {
					t.Errorf("report %+v: want one valid %s signature over %s", out.Report, format, digest)
				}
				text := mustImage(t, cliutil.ExitOK, "verify", "--key", key+".pub", ref).stdout
				for _, want := range []string{digest, "Decision: allow", format + "  valid"} {
					if !strings.Contains(text, want) {
						t.Errorf("text report lacks %q:\n%s", want, text)
					}
				}

				out = verifyJSON(t, cliutil.ExitDenied, "--key", other+".pub", ref)
				if out.Decision != verify.DecisionDeny || out.Reason != verify.ReasonUntrustedKey {
					t.Errorf("wrong key: report %+v, want deny: untrusted-key", out.Report)
				}
				r = mustImage(t, cliutil.ExitDenied, "verify", "--key", other+".pub", ref)
				if !strings.Contains(r.stderr, "denied by the trust policy: untrusted-key") {
					t.Errorf("wrong key: stderr %q does not say why", r.stderr)
				}
				for _, s := range []string{r.stdout, r.stderr} {
					for _, boilerplate := range []string{"transparency log", "MEMLOCK", "tlog"} {
						if strings.Contains(s, boilerplate) {
							t.Errorf("output mentions %q:\n%s", boilerplate, s)
						}
					}
				}
			})
		}
	}
}

// TestVerifyTagMovedCLI moves a tag to new content after its digest was
// signed: verifying the tag fails, verifying the signed digest succeeds.
func TestVerifyTagMovedCLI(t *testing.T) {
	key := keyFiles(t)
	dir, signed := newLayoutArtifact(t, "good", "v1")
	mustImage(t, cliutil.ExitOK, "sign", "--key", key+".key", "oci:"+dir+":v1")
	store, err := oci.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	moved := pushTestArtifact(t, store, "evil", "v1")

	out := verifyJSON(t, cliutil.ExitDenied, "--key", key+".pub", "oci:"+dir+":v1")
	if out.Digest != moved.Digest || out.Reason != verify.ReasonUnsigned {
		t.Errorf("tag: report %+v, want %s denied as unsigned", out.Report, moved.Digest)
	}
	out = verifyJSON(t, cliutil.ExitOK, "--key", key+".pub", "oci:"+dir+"@"+signed.Digest.String())
	if out.Digest != signed.Digest || out.Decision != verify.DecisionAllow {
		t.Errorf("digest: report %+v, want %s allowed", out.Report, signed.Digest)
	}
}

func TestVerifyPolicyCLI(t *testing.T) {
	key := keyFiles(t)
	dir, desc := newLayoutArtifact(t, "a", "v1")
	mustImage(t, cliutil.ExitOK, "sign", "--key", key+".key", "oci:"+dir+":v1")
	obj, err := filepath.Abs("../../bytecode/tracepoint_counter.bpf.o")
	if err != nil {
		t.Fatal(err)
	}
	policyDir := t.TempDir()
	writePolicy := func(rules string) string {
		path := filepath.Join(policyDir, "policy.yaml")
		if err := os.WriteFile(path, []byte("apiVersion: bpfd.io/v1alpha1\nkind: TrustPolicy\nrules:\n"+rules), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	if err := os.Link(key+".pub", filepath.Join(policyDir, "team.pub")); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		rules     string
		ref       string
		namespace string
		code      int
		want      verify.Decision
		reason    verify.Reason
		kinds     []string
	}{
		"in scope": {
			rules: "- name: team\n  images: ['oci:" + filepath.Dir(dir) + "/**']\n  authorities: [{key: {path: team.pub}}]\n  allow: {programTypes: [tracepoint]}\n",
			ref:   "oci:" + dir + "@" + desc.Digest.String(), code: cliutil.ExitOK, want: verify.DecisionAllow, kinds: []string{"tracepoint"},
		},
		"out of scope": {
			rules: "- name: team\n  images: ['registry.example.com/team/*']\n  authorities: [{key: {path: team.pub}}]\n",
			ref:   "oci:" + dir + ":v1", code: cliutil.ExitDenied, want: verify.DecisionDeny, reason: verify.ReasonOutOfScope,
		},
		"local file allowed unsigned": {
			rules: "- name: local\n  images: ['file:" + filepath.Dir(obj) + "/*']\n  allowUnsigned: true\n",
			ref:   "file:" + obj, code: cliutil.ExitOK, want: verify.DecisionAllowUnsigned,
		},
		"local file needs signatures": {
			rules: "- name: all\n  images: ['**']\n  authorities: [{key: {path: team.pub}}]\n",
			ref:   "file:" + obj, code: cliutil.ExitDenied, want: verify.DecisionDeny, reason: verify.ReasonUnsigned,
		},
		"for an admitted namespace": {
			rules: "- name: team\n  images: ['oci:" + filepath.Dir(dir) + "/**']\n  authorities: [{key: {path: team.pub}}]\n  namespaces: [team-a]\n",
			ref:   "oci:" + dir + ":v1", namespace: "team-a", code: cliutil.ExitOK, want: verify.DecisionAllow,
		},
		"for another namespace": {
			rules: "- name: team\n  images: ['oci:" + filepath.Dir(dir) + "/**']\n  authorities: [{key: {path: team.pub}}]\n  namespaces: [team-a]\n",
			ref:   "oci:" + dir + ":v1", namespace: "team-b", code: cliutil.ExitDenied, want: verify.DecisionDeny, reason: verify.ReasonNamespaceNotAdmitted,
		},
		"local file for a namespace its rule does not list": {
			rules: "- name: local\n  images: ['file:" + filepath.Dir(obj) + "/*']\n  allowUnsigned: true\n",
			ref:   "file:" + obj, namespace: "team-a", code: cliutil.ExitDenied, want: verify.DecisionDeny, reason: verify.ReasonNamespaceNotAdmitted,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			args := []string{"--policy", writePolicy(tc.rules), tc.ref}
			if tc.namespace != "" {
				args = append([]string{"--namespace", tc.namespace}, args...)
			}
			out := verifyJSON(t, tc.code, args...)
			if out.Namespace != tc.namespace {
				t.Errorf("report namespace %q, want %q", out.Namespace, tc.namespace)
			}
			var kinds []string
			for _, k := range out.AllowedProgramTypes {
				kinds = append(kinds, string(k))
			}
			got := []any{out.Decision, out.Reason, kinds}
			if diff := cmp.Diff([]any{tc.want, tc.reason, tc.kinds}, got); diff != "" {
				t.Errorf("decision, reason, kinds (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCLIErrors checks the errors of keygen, sign and verify: each one line
// naming the cause, with the documented exit code.
func TestCLIErrors(t *testing.T) {
	key := keyFiles(t)
	dir, _ := newLayoutArtifact(t, "a", "v1")
	layout := "oci:" + dir + ":v1"
	notKey := filepath.Join(t.TempDir(), "not-a-key.pub")
	if err := os.WriteFile(notKey, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badPolicy := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(badPolicy, []byte("apiVersion: bpfd.io/v1alpha1\nkind: TrustPolicy\nrules:\n- name: r\n  images: ['[']\n  authorities: []\n  mood: happy\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		args   []string
		env    map[string]string
		code   int
		stderr []string
	}{
		"verify without trust":   {args: []string{"verify", layout}, code: cliutil.ExitUsage, stderr: []string{"want --key or --policy"}},
		"verify with both":       {args: []string{"verify", "--key", key + ".pub", "--policy", badPolicy, layout}, code: cliutil.ExitUsage, stderr: []string{"exclude each other"}},
		"verify without ref":     {args: []string{"verify", "--key", key + ".pub"}, code: cliutil.ExitUsage, stderr: []string{"want one reference"}},
		"verify bad reference":   {args: []string{"verify", "--key", key + ".pub", "nohost:v1"}, code: cliutil.ExitUsage},
		"verify missing tag":     {args: []string{"verify", "--key", key + ".pub", "oci:" + dir + ":nope"}, code: cliutil.ExitNotFound, stderr: []string{":nope: not found"}},
		"verify missing layout":  {args: []string{"verify", "--key", key + ".pub", "oci:" + dir + "-none"}, code: cliutil.ExitNotFound},
		"verify not a key":       {args: []string{"verify", "--key", notKey, layout}, code: cliutil.ExitError, stderr: []string{"public key " + notKey + ": no PEM block: invalid key"}},
		"verify key is private":  {args: []string{"verify", "--key", key + ".key", layout}, code: cliutil.ExitError, stderr: []string{`"ENCRYPTED SIGSTORE PRIVATE KEY" is not a public key`}},
		"verify bad policy":      {args: []string{"verify", "--policy", badPolicy, layout}, code: cliutil.ExitError, stderr: []string{"3 problems", badPolicy + ":5: rules[0].images[0]: bad image pattern", badPolicy + ":6: rules[0].authorities: empty", badPolicy + ":7: rules[0].mood: unknown field"}},
		"verify bad output":      {args: []string{"verify", "--output", "yaml", "--key", key + ".pub", layout}, code: cliutil.ExitUsage},
		"sign wrong password":    {args: []string{"sign", "--key", key + ".key", layout}, env: map[string]string{"COSIGN_PASSWORD": "wrong"}, code: cliutil.ExitError, stderr: []string{"signing key " + key + ".key: wrong password for the private key"}},
		"sign no password":       {args: []string{"sign", "--key", key + ".key", layout}, env: map[string]string{"COSIGN_PASSWORD": "-unset-"}, code: cliutil.ExitError, stderr: []string{"no password: set COSIGN_PASSWORD"}},
		"sign with a public key": {args: []string{"sign", "--key", key + ".pub", layout}, code: cliutil.ExitError, stderr: []string{`PEM block "PUBLIC KEY" is not an encrypted cosign private key`}},
		"sign without key":       {args: []string{"sign", layout}, code: cliutil.ExitUsage, stderr: []string{"--key is required"}},
		"sign bad format":        {args: []string{"sign", "--key", key + ".key", "--format", "x509", layout}, code: cliutil.ExitUsage, stderr: []string{`signature format "x509"`}},
		"sign a local file":      {args: []string{"sign", "--key", key + ".key", "file:/tmp/x.bpf.o"}, code: cliutil.ExitUsage, stderr: []string{"a local file cannot be signed"}},
		"sign missing tag":       {args: []string{"sign", "--key", key + ".key", "oci:" + dir + ":nope"}, code: cliutil.ExitNotFound},
		"keygen over a key":      {args: []string{"keygen", "--out", key}, code: cliutil.ExitError, stderr: []string{key + ".key exists: not overwriting"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var r cliRun
			if pw, ok := tc.env["COSIGN_PASSWORD"]; ok {
				r = imageWithPassword(t, pw, tc.args...)
			} else {
				r = image(t, tc.args...)
			}
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\n%s", r.code, tc.code, r.stderr)
			}
			for _, want := range tc.stderr {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
				}
			}
			if tc.code != cliutil.ExitDenied && r.stdout != "" {
				t.Errorf("stdout on error: %q", r.stdout)
			}
		})
	}
	// Nothing was written by the failed signs.
	out := verifyJSON(t, cliutil.ExitDenied, "--key", key+".pub", layout)
	if out.Reason != verify.ReasonUnsigned {
		t.Errorf("failed signs left signatures: %+v", out.Report)
	}
}

// imageWithPassword runs bpfctl-image with COSIGN_PASSWORD=pw, or unset
// when pw is "-unset-" (stdin is not a terminal in tests).
func imageWithPassword(t *testing.T, pw string, args ...string) cliRun {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if pw == "-unset-" {
		t.Setenv("COSIGN_PASSWORD", "")
		os.Unsetenv("COSIGN_PASSWORD")
	} else {
		t.Setenv("COSIGN_PASSWORD", pw)
	}
	code := run(context.Background(), append([]string{"bpfctl-image"}, args...), &stdout, &stderr)
	return cliRun{code, stdout.String(), stderr.String()}
}

// TestVerifyOffline builds bpfctl-image and runs keygen, sign and verify on
// an OCI layout inside a new network namespace, where no network exists at
// all: verification needs nothing but the layout.
func TestVerifyOffline(t *testing.T) {
	testutil.RequirePrivileged(t)
	bin := filepath.Join(t.TempDir(), "bpfctl-image")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir, desc := newLayoutArtifact(t, "offline", "v1")
	prefix := filepath.Join(t.TempDir(), "k")
	offline := func(args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "COSIGN_PASSWORD="+password, "HOME="+t.TempDir())
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", strings.Join(args, " "), err)
		}
		return out.String(), code
	}
	if out, code := offline("keygen", "--out", prefix); code != 0 {
		t.Fatalf("keygen (no network): exit %d\n%s", code, out)
	}
	// The namespace really has no network: a registry serving on this
	// host's loopback is out of reach.
	reg := testutil.StartRegistry(t)
	repo, err := remote.NewRepository(reg.Host + "/offline/probe")
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	pushTestArtifact(t, repo, "probe", "v1")
	if out, code := offline("verify", "--key", prefix+".pub", reg.Host+"/offline/probe:v1"); code != cliutil.ExitError || !strings.Contains(out, "network is unreachable") {
		t.Fatalf("the registry is reachable from the test's network namespace: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{
		{"sign", "--key", prefix + ".key", "oci:" + dir + ":v1"},
		{"sign", "--key", prefix + ".key", "--format", "legacy", "oci:" + dir + ":v1"},
		{"verify", "--key", prefix + ".pub", "oci:" + dir + ":v1"},
	} {
		out, code := offline(args...)
		if code != 0 {
			t.Fatalf("bpfctl-image %s (no network): exit %d\n%s", strings.Join(args, " "), code, out)
		}
		t.Logf("bpfctl-image %s:\n%s", strings.Join(args, " "), out)
	}
	out, _ := offline("verify", "--output", "json", "--key", prefix+".pub", "oci:"+dir+"@"+desc.Digest.String())
	if !strings.Contains(out, `"decision": "allow"`) || strings.Count(out, `"valid": true`) != 2 {
		t.Errorf("offline verify did not accept both signatures:\n%s", out)
	}
}
