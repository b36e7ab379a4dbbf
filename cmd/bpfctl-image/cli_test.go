package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

// TestCommandLine checks the command line's conventions: -o is the output
// format, destinations are --dest, an unknown command is a usage error, a
// missing --registry-config file is an error, and build refuses an object
// named metadata.json.
func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	layout := "oci:" + dir + "/layout:v1"
	ok(t, "build", "--dest", layout, object("xdp_counter"))
	meta := filepath.Join(dir, "metadata.json")
	data, err := os.ReadFile(object("xdp_counter"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(meta, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	cases := map[string]struct {
		args     []string
		wantCode int
		wantMsg  string
	}{
		"unknown command":            {args: []string{"bogus"}, wantCode: cliutil.ExitUsage, wantMsg: `unknown command "bogus": see bpfctl-image --help`},
		"pull -o json, no --dest":    {args: []string{"pull", "-o", "json", layout}, wantCode: cliutil.ExitUsage, wantMsg: "pull: --dest DIR is required"},
		"build -o REF, the old way":  {args: []string{"build", "-o", layout, object("xdp_counter")}, wantCode: cliutil.ExitUsage, wantMsg: `--output "` + layout + `": want text or json (-o is the output format; build and pull write to --dest)`},
		"missing registry config":    {args: []string{"inspect", "--registry-config", dir + "/nope.json", layout}, wantCode: cliutil.ExitUsage, wantMsg: "--registry-config " + dir + "/nope.json: no such file"},
		"object named metadata.json": {args: []string{"build", "--dest", "oci:" + dir + "/new:v1", meta}, wantCode: cliutil.ExitError, wantMsg: meta + ": invalid BPF object: an object may not be named metadata.json, which pull writes beside the objects"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			before := snapshot(t, dir)
			r := bpfctlImage(t, tc.args...)
			if r.code != tc.wantCode || !strings.Contains(r.stderr, tc.wantMsg) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit %d and one line holding %q", r.code, r.stderr, tc.wantCode, tc.wantMsg)
			}
			if after := snapshot(t, dir); len(after) != len(before) {
				t.Errorf("files changed: %d before, %d after (pull -o json must not create ./json)", len(before), len(after))
			}
		})
	}
	var out inspectOutput
	if err := json.Unmarshal([]byte(ok(t, "inspect", "-o", "json", layout)), &out); err != nil || out.Kind != "Inspect" {
		t.Errorf("inspect -o json: %v, kind %q", err, out.Kind)
	}
	text := ok(t, "pull", "--platform", "linux/arm64", "--dest", dir+"/out", layout)
	if first := strings.SplitN(text, "\n", 2)[0]; !strings.Contains(first, "for linux/arm64: the artifact's only manifest (not an index)") {
		t.Errorf("pull does not say which platform it chose:\n%s", text)
	}
}

// TestJSONEnvelope runs every command that writes JSON and checks that each
// document starts with schemaVersion 1 and its kind.
func TestJSONEnvelope(t *testing.T) {
	reg := testutil.StartRegistry(t)
	dir := t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "pw")
	layout := "oci:" + dir + "/layout:v1"
	keys := filepath.Join(dir, "k")
	policyFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte("apiVersion: bpfd.io/v1alpha1\nkind: TrustPolicy\nrules:\n- name: local\n  images: [\"oci:/**\"]\n  allowUnsigned: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runs := []struct {
		kind string
		args []string
	}{
		{"Build", []string{"build", "--dest", layout, object("xdp_counter")}},
		{"Keygen", []string{"keygen", "--out", keys}},
		{"Sign", []string{"sign", "--key", keys + ".key", layout}},
		{"Push", []string{"push", layout, reg.Host + "/json/xdp:v1"}},
		{"Copy", []string{"copy", reg.Host + "/json/xdp:v1", "oci:" + dir + "/copy:v1"}},
		{"Pull", []string{"pull", "--dest", dir + "/pulled", layout}},
		{"Inspect", []string{"inspect", layout}},
		{"VerificationReport", []string{"verify", "--key", keys + ".pub", layout}},
		{"Attest", []string{"attest", "--key", keys + ".key", "--type", "spdx", "--predicate", policyFile, layout}},
		{"Tag", []string{"tag", layout, "v2"}},
		{"Tags", []string{"ls", "oci:" + dir + "/layout"}},
		{"Discover", []string{"discover", layout}},
		{"PublicKey", []string{"public-key", "--key", keys + ".key"}},
		{"PolicyCheck", []string{"policy", "check", policyFile}},
		{"Version", []string{"version"}},
	}
	for _, r := range runs {
		out := ok(t, append(r.args, "-o", "json")...)
		var env Envelope
		if err := json.Unmarshal([]byte(out), &env); err != nil {
			t.Fatalf("%s: %v\n%s", r.args[0], err, out)
		}
		if env.SchemaVersion != 1 || env.Kind != r.kind {
			t.Errorf("%s -o json: schemaVersion %d, kind %q; want 1, %q", r.args[0], env.SchemaVersion, env.Kind, r.kind)
		}
		if !strings.HasPrefix(out, "{\n  \"schemaVersion\": 1,\n  \"kind\": ") {
			t.Errorf("%s -o json does not begin with its envelope:\n%.80s", r.args[0], out)
		}
	}
}

// TestVersionStamped builds bpfctl-image and bpfctl with the Makefile's
// -ldflags: --version, the version command and the build.tool of an artifact
// carry the stamped version and commit. The bash completion script it prints
// completes commands through the binary.
func TestVersionStamped(t *testing.T) {
	root, err := testutil.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ldflags, err := exec.Command("make", "-s", "--no-print-directory", "-C", root, "print-ldflags", "VERSION=v9.8.7-test", "COMMIT=0123456789abcdef0123456789abcdef01234567").Output()
	if err != nil {
		t.Fatalf("make print-ldflags: %v", err)
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-ldflags", strings.TrimSpace(string(ldflags)), "-o", bin+"/", "./cmd/bpfctl-image", "./cmd/bpfctl")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const want = "v9.8.7-test (commit 0123456789ab)"
	for _, prog := range []string{"bpfctl-image", "bpfctl"} {
		out, err := exec.Command(filepath.Join(bin, prog), "--version").Output()
		if err != nil || strings.TrimSpace(string(out)) != prog+" version "+want {
			t.Errorf("%s --version: %q (%v), want %q", prog, out, err, prog+" version "+want)
		}
		out, err = exec.Command(filepath.Join(bin, prog), "version", "-o", "json").Output()
		var v struct{ Version, Commit string }
		if err != nil || json.Unmarshal(out, &v) != nil || v.Version != "v9.8.7-test" || v.Commit != "0123456789abcdef0123456789abcdef01234567" {
			t.Errorf("%s version -o json: %s (%v)", prog, out, err)
		}
	}
	dir := t.TempDir()
	image := filepath.Join(bin, "bpfctl-image")
	if out, err := exec.Command(image, "build", "--dest", "oci:"+dir+":v1", object("xdp_counter")).CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(image, "inspect", "-o", "json", "oci:"+dir+":v1").Output()
	var inspected inspectOutput
	if err != nil || json.Unmarshal(out, &inspected) != nil {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	if got := inspected.Manifests[0].Config.Build.Tool; got != "bpfctl-image "+want {
		t.Errorf("build.tool %q, want %q", got, "bpfctl-image "+want)
	}

	// On a terminal (script(1) gives the command one), pull and copy show
	// their progress on stderr; piped, above, they showed none.
	tty := exec.Command("script", "-qec", image+" copy oci:"+dir+":v1 oci:"+dir+"/copy:v1 && "+image+" pull --dest "+dir+"/pulled oci:"+dir+":v1", "/dev/null")
	out, err = tty.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "\rcopied 3 blobs, ") || !strings.Contains(string(out), "\rpulled 3 blobs, ") {
		t.Errorf("progress on a terminal: %v\n%q", err, out)
	}

	script := `source <("$BIN" completion bash); COMP_WORDS=("$BIN" ve); COMP_CWORD=1; _bpfctl_image_complete; echo "${COMPREPLY[@]}"`
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "BIN="+image)
	out, err = cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "verify version" {
		t.Errorf("bash completion of 've': %q (%v), want \"verify version\"", out, err)
	}
}

// TestNoIngestDir checks that layouts and archives bpfctl-image writes hold
// only the OCI image layout: no empty ingest/ directory.
func TestNoIngestDir(t *testing.T) {
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	ok(t, "build", "--dest", "oci:"+layout+":v1", object("xdp_counter"))
	ok(t, "copy", "oci:"+layout+":v1", "oci-archive:"+dir+"/a.tar:v1")
	ok(t, "tag", "oci:"+layout+":v1", "v2")
	if _, err := os.Stat(filepath.Join(layout, "ingest")); !os.IsNotExist(err) {
		t.Errorf("layout has ingest/: %v", err)
	}
	out, err := exec.Command("tar", "-tf", dir+"/a.tar").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "ingest") {
		t.Errorf("archive holds ingest/:\n%s", out)
	}
}
