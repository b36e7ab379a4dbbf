package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	godigest "github.com/opencontainers/go-digest"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// TestTagLsDiscover tags, lists and discovers on a real registry and in a
// layout: ls hides the tags of signatures unless --all, discover shows the
// signature and the attestation with their predicate types and the legacy
// .sig tag, with no key.
func TestTagLsDiscover(t *testing.T) {
	reg := testutil.StartRegistry(t)
	dir := t.TempDir()
	prefix := keyFiles(t)
	predicate := writeProvenance(t, dir, trustedBuilder)
	for _, repo := range []string{reg.Host + "/tags/xdp", "oci:" + dir + "/layout"} {
		t.Run(strings.SplitN(repo, ":", 2)[0], func(t *testing.T) {
			ref := repo + ":v1"
			digest := strings.TrimSpace(mustImage(t, cliutil.ExitOK, "build", "--dest", ref, object("xdp_counter")).stdout)
			mustImage(t, cliutil.ExitOK, "sign", "--key", prefix+".key", ref)
			mustImage(t, cliutil.ExitOK, "sign", "--format", "legacy", "--key", prefix+".key", ref)
			mustImage(t, cliutil.ExitOK, "attest", "--key", prefix+".key", "--type", "slsaprovenance", "--predicate", predicate, ref)
			var tagged tagOutput
			if err := json.Unmarshal([]byte(mustImage(t, cliutil.ExitOK, "tag", "-o", "json", ref, "v2", "stable").stdout), &tagged); err != nil || tagged.Digest != digest {
				t.Fatalf("tag: %v %+v", err, tagged)
			}
			if got := strings.Fields(mustImage(t, cliutil.ExitOK, "ls", repo).stdout); !slices.Equal(got, []string{"stable", "v1", "v2"}) {
				t.Errorf("ls: %q, want stable v1 v2", got)
			}
			all := strings.Fields(mustImage(t, cliutil.ExitOK, "ls", "--all", repo).stdout)
			if !slices.Contains(all, verify.LegacySignatureTag(digestOf(digest))) {
				t.Errorf("ls --all: %q lacks the .sig tag", all)
			}
			var d discoverOutput
			if err := json.Unmarshal([]byte(mustImage(t, cliutil.ExitOK, "discover", "-o", "json", repo+":stable").stdout), &d); err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, r := range d.Referrers {
				kinds = append(kinds, r.Kind+" "+r.PredicateType)
			}
			slices.Sort(kinds)
			if diff := cmp.Diff([]string{"attestation https://slsa.dev/provenance/v0.2", "signature https://sigstore.dev/cosign/sign/v1"}, kinds); diff != "" || d.Digest != digest {
				t.Errorf("discover referrers (-want +got):\n%s\ndigest %s", diff, d.Digest)
			}
			if len(d.Tags) != 1 || d.Tags[0].Tag != verify.LegacySignatureTag(digestOf(digest)) {
				t.Errorf("discover tags %+v", d.Tags)
			}
			text := mustImage(t, cliutil.ExitOK, "discover", ref).stdout
			for _, s := range []string{"├── sha256:", "└── sha256:", "signature https://sigstore.dev/cosign/sign/v1", "tag " + verify.LegacySignatureTag(digestOf(digest))} {
				if !strings.Contains(text, s) {
					t.Errorf("discover text lacks %q:\n%s", s, text)
				}
			}
			for _, bad := range []string{"sha256-" + strings.Repeat("a", 64), "-x", "a/b"} {
				if r := image(t, "tag", ref, bad); r.code != cliutil.ExitUsage {
					t.Errorf("tag %q: exit %d, %s", bad, r.code, r.stderr)
				}
			}
		})
	}
	if r := image(t, "ls", reg.Host+"/nothing/here"); r.code != cliutil.ExitNotFound {
		t.Errorf("ls of a missing repository: exit %d, %s", r.code, r.stderr)
	}
}

// TestPublicKey prints the public key of a private key made by keygen.
func TestPublicKey(t *testing.T) {
	prefix := keyFiles(t)
	want, err := os.ReadFile(prefix + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if got := mustImage(t, cliutil.ExitOK, "public-key", "--key", prefix+".key").stdout; got != string(want) {
		t.Errorf("public-key:\n%s\nwant:\n%s", got, want)
	}
	out := filepath.Join(t.TempDir(), "again.pub")
	mustImage(t, cliutil.ExitOK, "public-key", "--key", prefix+".key", "--outfile", out)
	if got, err := os.ReadFile(out); err != nil || string(got) != string(want) {
		t.Errorf("--outfile: %v\n%s", err, got)
	}
}

// TestPolicyCheck checks a valid policy, one with lint findings and one that
// does not load.
func TestPolicyCheck(t *testing.T) {
	dir := t.TempDir()
	prefix := keyFiles(t)
	write := func(name, rules string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("apiVersion: bpfd.io/v1alpha1\nkind: TrustPolicy\nrules:\n"+rules), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write("good.yaml", "- name: net\n  images: [registry.example.com/net/*]\n  authorities: [{key: {path: "+prefix+".pub}}]\n")
	lint := write("lint.yaml", "- name: team\n  images: [\"oci:team/**\", \"registry.example.com/**\"]\n  authorities: [{key: {path: "+prefix+".pub}}]\n- name: net\n  images: [registry.example.com/net/*]\n  authorities: [{key: {path: "+prefix+".pub}}]\n")
	bad := write("bad.yaml", "- name: net\n  images: [registry.example.com/net/*]\n  authorities: [{key: {path: missing.pub}}]\n")

	if r := mustImage(t, cliutil.ExitOK, "policy", "check", good); !strings.Contains(r.stdout, good+": valid, 1 rules, fingerprint sha256:") {
		t.Errorf("good policy: %q", r.stdout)
	}
	r := mustImage(t, cliutil.ExitError, "policy", "check", lint)
	for _, s := range []string{
		lint + `:5: rules[0].images[0]: lint: "oci:team/**" can never match: oci: names are absolute paths`,
		lint + `:8: rules[1]: lint: rule "net" is shadowed`,
	} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("lint output lacks %q:\n%s", s, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, lint+": 3 problems reported") {
		t.Errorf("stderr %q", r.stderr)
	}
	r = mustImage(t, cliutil.ExitError, "policy", "check", bad)
	if want := bad + ":6: rules[0].authorities[0].key.path: error: unreadable key file"; !strings.Contains(r.stdout, want) || r.stderr != "bpfctl-image: "+bad+": 1 problems reported\n" {
		t.Errorf("invalid policy: stdout %q, stderr %q; want %q and one line", r.stdout, r.stderr, want)
	}
	r = mustImage(t, cliutil.ExitError, "policy", "check", "-o", "json", bad)
	var out policyCheckOutput
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Valid || len(out.Problems) != 1 || out.Problems[0].Severity != "error" || out.Problems[0].Line != 6 {
		t.Errorf("invalid policy: %v %+v", err, out)
	}
	if r := image(t, "policy", "nope"); r.code != cliutil.ExitUsage {
		t.Errorf("policy nope: exit %d", r.code)
	}
	if r := image(t, "policy", "check"); r.code != cliutil.ExitUsage {
		t.Errorf("policy check without a file: exit %d", r.code)
	}
}

func digestOf(s string) godigest.Digest { return godigest.Digest(s) }
