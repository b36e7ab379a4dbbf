package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

// Secrets the support-bundle test plants where a careless collector would
// pick them up; none may reach the archive.
var planted = []string{
	"PLANTEDPRIVATEKEYMATERIAL", "planted-config-password", "cGxhbnRlZDpyZWdpc3RyeQ==", "PLANTEDCOSIGNKEY",
	"plantedbearertoken0123456789", "planted-url-password", "planted-log-token", "planted-audit-secret",
}

// TestSupportBundle runs support-bundle against a real bpfd with an XDP
// program loaded, a config naming its policy, audit file, metrics address
// and registry credentials, a private key beside the policy and secrets
// planted in the config, the log and the audit log. The archive has its
// index first and every item from its source: versions, the kernel, the
// config, the programs, hooks and inventory as bpfctl prints them, the
// metrics, the audit and log lines, the policy's fingerprint in force and
// rule names; no planted secret, the credentials file or the key. With a
// small bound and a large log, the archive stays within it, the log cut.
func TestSupportBundle(t *testing.T) {
	n := startNode(t)
	v := testutil.NewVethPair(t)
	prog := n.loadJSON(t, "load", "image", n.signed, "--program", "xdp_counter:xdp", "--interface", v.Host)[0]
	dir := t.TempDir()
	authFile := filepath.Join(dir, "auth.json")
	write := func(path, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(authFile, `{"auths":{"registry.example":{"auth":"cGxhbnRlZDpyZWdpc3RyeQ=="}}}`)
	write(filepath.Join(filepath.Dir(n.policy), "cosign.key"), "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nPLANTEDCOSIGNKEY\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
	cfg := filepath.Join(dir, "bpfd.yaml")
	write(cfg, fmt.Sprintf(`# bpfd's config, with what must not leave the node:
# password: planted-config-password
# -----BEGIN EC PRIVATE KEY-----
# PLANTEDPRIVATEKEYMATERIAL
# -----END EC PRIVATE KEY-----
socket:
  path: %s
policyFile: %s
registryAuthFile: %s
log:
  auditFile: %s
metrics:
  address: %s
`, n.socket, n.policy, authFile, n.auditFile, n.metrics))
	logFile := filepath.Join(dir, "bpfd.log")
	write(logFile, `level=INFO msg="trust policy loaded"
level=DEBUG msg="pull" header="Authorization: Bearer plantedbearertoken0123456789"
level=WARN msg="retry" url=https://robot:planted-url-password@registry.example/bpf/x
level=DEBUG msg="auth" token=planted-log-token
level=INFO msg="the last line"
`)
	audit, err := os.OpenFile(n.auditFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(audit, `{"msg":"audit","action":"pull","result":"error","error":"registry said: \"password\":\"planted-audit-secret\""}`)
	audit.Close()

	out := filepath.Join(dir, "bundle.tar.gz")
	stdout := n.mustBpfctl(t, "support-bundle", "--config", cfg, "--log-file", logFile, "-f", out)
	if !strings.HasPrefix(stdout, "wrote "+out+" (10 items)") {
		t.Errorf("stdout %q: want every item collected", stdout)
	}
	archive, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 {
		t.Errorf("archive mode %v, want 0600", st.Mode().Perm())
	}
	files, index := readBundle(t, archive)
	redactions := map[string]int{}
	for _, f := range index.Files {
		if f.Error != "" || f.Truncated {
			t.Errorf("%s: %+v, want it collected whole", f.Name, f)
		}
		redactions[f.Name] = f.Redactions
	}
	for name, min := range map[string]int{"config/bpfd.yaml": 2, "bpfd.log": 3, "audit.log": 1} {
		if redactions[name] < min {
			t.Errorf("%s: %d redactions, want at least %d", name, redactions[name], min)
		}
	}
	for name, b := range files {
		for _, s := range append(planted, "ENCRYPTED SIGSTORE PRIVATE KEY") {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds the planted %q", name, s)
			}
		}
	}

	id := fmt.Sprint(prog.ID)
	var programs programListJSON
	if err := json.Unmarshal(files["programs.json"], &programs); err != nil || len(programs.Programs) == 0 {
		t.Errorf("programs.json: %v, %d programs", err, len(programs.Programs))
	}
	found := false
	for _, p := range programs.Programs {
		found = found || p.ID == prog.ID
	}
	if !found {
		t.Errorf("programs.json does not list program %s", id)
	}
	var inventory map[string]any
	if err := json.Unmarshal(files["inventory.json"], &inventory); err != nil || inventory["programs"] == nil {
		t.Errorf("inventory.json: %v, %.200s", err, files["inventory.json"])
	}
	fingerprint := regexp.MustCompile(`bpfd_policy_info\{fingerprint="(sha256:[0-9a-f]{64})"\} 1`).FindSubmatch(files["metrics.txt"])
	if fingerprint == nil {
		t.Fatalf("metrics.txt has no bpfd_policy_info:\n%.2000s", files["metrics.txt"])
	}
	for name, want := range map[string][]string{
		"version.txt":      {"bpfctl "},
		"kernel.txt":       {"release: ", "btf (/sys/kernel/btf/vmlinux): ", "bpffs mounts:", n.bpffs},
		"config/bpfd.yaml": {"policyFile: " + n.policy, "registryAuthFile: " + authFile},
		"hooks.txt":        {v.Host},
		"metrics.txt":      {"bpfd_programs_loaded"},
		"audit.log":        {`"action":"load"`, `"ids":[` + id + `]`},
		"bpfd.log":         {"the last line"},
		"policy.txt":       {"fingerprint in force: " + string(fingerprint[1]) + " (from metrics", "- images (mode enforce): oci:"},
	} {
		for _, w := range want {
			if !bytes.Contains(files[name], []byte(w)) {
				t.Errorf("%s lacks %q:\n%.3000s", name, w, files[name])
			}
		}
	}

	t.Run("bounded", func(t *testing.T) {
		var big bytes.Buffer
		for i := 0; big.Len() < 4<<20; i++ {
			fmt.Fprintf(&big, "level=INFO msg=\"line %d\" noise=%x\n", i, i*7919)
		}
		big.WriteString("level=INFO msg=\"the very last line\"\n")
		write(logFile, big.String())
		const bound = 300 << 10
		out := filepath.Join(dir, "small.tar.gz")
		n.mustBpfctl(t, "support-bundle", "--config", cfg, "--log-file", logFile, "-f", out, "--max-size", fmt.Sprint(bound))
		archive, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if len(archive) > bound {
			t.Errorf("archive of %d bytes, bound %d", len(archive), bound)
		}
		files, index := readBundle(t, archive)
		for _, f := range index.Files {
			if f.Name == "bpfd.log" && !f.Truncated {
				t.Errorf("bpfd.log of 4 MiB in a bundle of %d: not truncated", bound)
			}
		}
		if !bytes.HasSuffix(files["bpfd.log"], []byte("the very last line\"\n")) {
			t.Errorf("the cut log does not end with the log's end: %q", files["bpfd.log"][max(0, len(files["bpfd.log"])-100):])
		}
	})

	t.Run("refusals", func(t *testing.T) {
		if code, _, stderr := n.bpfctl(t, "support-bundle", "--max-size", "1000"); code != cliutil.ExitUsage || !strings.Contains(stderr, "--max-size 1000") {
			t.Errorf("--max-size 1000: exit %d, %q", code, stderr)
		}
		missing := filepath.Join(dir, "no-such-dir", "b.tar.gz")
		if code, _, stderr := n.bpfctl(t, "support-bundle", "--config", cfg, "-f", missing); code != cliutil.ExitError || !strings.Contains(stderr, "support bundle "+missing) {
			t.Errorf("unwritable file: exit %d, %q", code, stderr)
		}
	})
}
