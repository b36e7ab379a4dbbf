package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

// withStdin runs f with standard input reading text.
func withStdin(t *testing.T, text string, f func()) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteString(text); err != nil {
		t.Fatal(err)
	}
	w.Close()
	old := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = old; r.Close() }()
	f()
}

// TestLoginLogout logs in to a real registry that demands a password, with
// the Docker config in DOCKER_CONFIG: a wrong password is refused and
// nothing stored, the right one is stored and used by push, logout forgets
// it, and a push without credentials says to log in.
func TestLoginLogout(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.WithBasicAuth("ci", "s3cret"))
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("DOCKER_CONFIG", home)
	config := filepath.Join(home, "config.json")
	ref := reg.Host + "/private/xdp:v1"

	withStdin(t, "wrong\n", func() {
		r := bpfctlImage(t, "login", "-u", "ci", "--password-stdin", reg.Host)
		if r.code != cliutil.ExitError || !strings.Contains(r.stderr, "registry "+reg.Host+" refused access (401 Unauthorized") || !strings.Contains(r.stderr, "bpfctl-image login "+reg.Host) {
			t.Errorf("wrong password: exit %d, %q", r.code, r.stderr)
		}
	})
	if _, err := os.Stat(config); err == nil {
		data, _ := os.ReadFile(config)
		if strings.Contains(string(data), reg.Host) {
			t.Errorf("a refused login stored credentials: %s", data)
		}
	}
	withStdin(t, "s3cret\n", func() {
		if out := ok(t, "login", "-u", "ci", "--password-stdin", reg.Host); !strings.Contains(out, "Login to "+reg.Host+" succeeded") {
			t.Errorf("login: %q", out)
		}
	})
	if data, err := os.ReadFile(config); err != nil || !strings.Contains(string(data), reg.Host) {
		t.Fatalf("%s after login: %v\n%s", config, err, data)
	}
	ok(t, "build", "--dest", ref, object("xdp_counter"))
	ok(t, "inspect", ref)

	if out := ok(t, "logout", reg.Host); !strings.Contains(out, "Removed the credentials for "+reg.Host) {
		t.Errorf("logout: %q", out)
	}
	r := bpfctlImage(t, "inspect", ref)
	want := ref + ": registry " + reg.Host + " refused access (no credentials are stored for it): log in with 'bpfctl-image login " + reg.Host + "'"
	if r.code != cliutil.ExitError || !strings.Contains(r.stderr, want) || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("inspect after logout: exit %d, %q\nwant one line holding %q", r.code, r.stderr, want)
	}
	if r := bpfctlImage(t, "login", "-u", "ci", "--password-stdin", "not a host"); r.code != cliutil.ExitUsage {
		t.Errorf("login to a bad host: exit %d, %q", r.code, r.stderr)
	}
}
