package testutil

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Registry is a real OCI registry (distribution's registry binary) serving on
// a loopback port, with its storage in a temporary directory.
type Registry struct {
	// Host is "127.0.0.1:PORT", ready to prefix a repository.
	Host string
	// Dir is the registry's storage root.
	Dir string
	cmd *exec.Cmd
	log *bytes.Buffer
}

// RegistryOption configures StartRegistry.
type RegistryOption func(tb testing.TB, dir string) string

// WithBasicAuth makes the registry demand HTTP basic authentication as user
// with password (an htpasswd file with a bcrypt hash).
func WithBasicAuth(user, password string) RegistryOption {
	return func(tb testing.TB, dir string) string {
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			tb.Fatal(err)
		}
		path := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(path, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
			tb.Fatal(err)
		}
		return fmt.Sprintf("auth:\n  htpasswd:\n    realm: bpfd-test\n    path: %s\n", path)
	}
}

// StartRegistry starts distribution's registry (bin/tools/registry, found on
// PATH as `registry`) for the test and stops it at cleanup. It fails the test
// when the binary is missing: `make tools` builds it.
func StartRegistry(tb testing.TB, opts ...RegistryOption) *Registry {
	tb.Helper()
	bin, err := exec.LookPath("registry")
	if err != nil {
		tb.Fatalf("registry binary not found on PATH (run `make tools`, which builds bin/tools/registry): %v", err)
	}
	dir := tb.TempDir()
	r := &Registry{Dir: filepath.Join(dir, "data"), log: &bytes.Buffer{}}
	r.Host = freeLoopbackAddr(tb)
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, r.Dir, r.Host)
	for _, opt := range opts {
		config += opt(tb, dir)
	}
	configPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		tb.Fatal(err)
	}
	r.cmd = exec.Command(bin, "serve", configPath)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	r.cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	if err := r.cmd.Start(); err != nil {
		tb.Fatalf("start registry: %v", err)
	}
	tb.Cleanup(r.Stop)
	if err := waitHTTP("http://"+r.Host+"/v2/", 10*time.Second); err != nil {
		tb.Fatalf("registry on %s: %v\n%s", r.Host, err, r.log)
	}
	return r
}

// Stop kills the registry, as a crash would; later requests fail to connect.
// Stop is idempotent.
func (r *Registry) Stop() {
	if r.cmd == nil || r.cmd.Process == nil || r.cmd.ProcessState != nil {
		return
	}
	r.cmd.Process.Kill()
	r.cmd.Wait()
}

// freeLoopbackAddr returns a 127.0.0.1 address with a port that was free a
// moment ago.
func freeLoopbackAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitHTTP polls url until it answers, for at most timeout.
func waitHTTP(url string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not serving after %s: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
