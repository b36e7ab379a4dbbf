package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

// runMainEnv makes the test binary, re-executed by a test, run bpfd's main
// with its arguments instead of the tests.
const runMainEnv = "BPFD_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Exit(run(append([]string{"bpfd"}, os.Args[1:]...), os.Stderr))
	}
	testutil.LeakCheckMain(m)
}

// TestStartErrors: a bad configuration, flag or policy stops bpfd at start
// with one clear line and exit code 2, before it creates anything.
func TestStartErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	badConfig := write("bad.yaml", "stateDir: relative\npullPolicy: Sometimes\nsokcet: {}\n")
	badPolicy := write("policy.yaml", "apiVersion: bpfd.io/v1alpha1\nkind: TrustPolicy\nrules:\n- name: x\n  images: [\"oci:/x/[\"]\n  mode: audit\n")
	state := filepath.Join(dir, "state")

	cases := map[string]struct {
		args  []string
		code  int
		parts []string
	}{
		"unknown flag":         {[]string{"--bogus"}, exitConfig, []string{"flag provided but not defined: -bogus"}},
		"argument":             {[]string{"serve"}, exitConfig, []string{`unexpected argument "serve"`}},
		"missing config":       {[]string{"--config", filepath.Join(dir, "nope.yaml")}, exitConfig, []string{"config " + filepath.Join(dir, "nope.yaml"), "no such file"}},
		"invalid config":       {[]string{"--config", badConfig}, exitConfig, []string{"config " + badConfig + ": ", "line 3: field sokcet not found"}},
		"invalid flag value":   {[]string{"--pull-policy", "Sometimes", "--state-dir", state}, exitConfig, []string{`pullPolicy: "Sometimes" is not one of Always, IfNotPresent, Never`}},
		"admin gid too big":    {[]string{"--socket-admin-gid", "4294967296", "--state-dir", state}, exitConfig, []string{`invalid value "4294967296" for flag -socket-admin-gid`}},
		"admin gid twice":      {[]string{"--socket-admin-gid", "7", "--socket-admin-gid", "7", "--state-dir", state}, exitConfig, []string{"socket.adminGIDs: 7 is listed twice"}},
		"every config problem": {[]string{"--state-dir", "rel", "--log-format", "xml"}, exitConfig, []string{`stateDir: "rel" is not an absolute path; `, `log.format: "xml"`}},
		"missing policy":       {[]string{"--policy", filepath.Join(dir, "nope.policy"), "--state-dir", state}, exitConfig, []string{"trust policy", "nope.policy: no such file"}},
		"invalid policy":       {[]string{"--policy", badPolicy, "--state-dir", state}, exitConfig, []string{"invalid trust policy " + badPolicy + ": 3 problems: ", badPolicy + ":6: rules[0].mode"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(append([]string{"bpfd"}, tc.args...), &stderr)
			out := stderr.String()
			if code != tc.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tc.code, out)
			}
			if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "bpfd: ") {
				t.Errorf("stderr %q: want one line starting bpfd: ", out)
			}
			for _, p := range tc.parts {
				if !strings.Contains(out, p) {
					t.Errorf("stderr %q does not mention %q", out, p)
				}
			}
		})
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("a failed start created the state dir: %v", err)
	}
}
