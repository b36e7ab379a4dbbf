package localregistry

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// startTimeout bounds how long Start waits for the registry to serve.
// The test VM's emulated CPU, on a busy host, can take more than 10s to start
// the registry's 80 MB binary.
const startTimeout = 30 * time.Second

// Registry is a running registry process.
type Registry struct {
	// Host is "127.0.0.1:PORT", ready to prefix a repository.
	Host string
	// Dir is the registry's storage root.
	Dir string
	cmd *exec.Cmd
	log *lockedBuffer
}

// Options configure Start. The zero value is a registry with distribution's
// defaults: no authentication, and deletes refused (405 Method Not Allowed),
// as on most production registries.
type Options struct {
	// BasicAuth, if set, makes the registry demand HTTP basic authentication
	// with these credentials (an htpasswd file with a bcrypt hash).
	BasicAuth *Credentials
	// DeleteEnabled lets clients delete manifests and blobs
	// (storage.delete.enabled).
	DeleteEnabled bool
}

// Credentials are a user name and password.
type Credentials struct {
	User, Password string
}

// Start starts the registry binary bin serving on a free loopback port, with
// its configuration and storage under dir (which must exist and which the
// caller removes), and returns once it answers. The caller stops it with
// Stop; on error nothing is left running.
func Start(bin, dir string, opts Options) (*Registry, error) {
	host, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	r := &Registry{Host: host, Dir: filepath.Join(dir, "data"), log: &lockedBuffer{}}
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: %t
http:
  addr: %s
`, r.Dir, opts.DeleteEnabled, r.Host)
	if opts.BasicAuth != nil {
		auth, err := writeHtpasswd(dir, *opts.BasicAuth)
		if err != nil {
			return nil, err
		}
		config += auth
	}
	configPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return nil, fmt.Errorf("registry config: %w", err)
	}
	r.cmd = exec.Command(bin, "serve", configPath)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	r.cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start registry: %w", err)
	}
	if err := waitHTTP("http://"+r.Host+"/v2/", startTimeout); err != nil {
		r.Stop()
		return nil, fmt.Errorf("registry on %s: %w\n%s", r.Host, err, r.log)
	}
	return r, nil
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

// writeHtpasswd writes an htpasswd file for c into dir and returns the
// configuration that uses it.
func writeHtpasswd(dir string, c Credentials) (string, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(c.Password), bcrypt.MinCost)
	if err != nil {
		return "", fmt.Errorf("registry password: %w", err)
	}
	path := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(path, []byte(c.User+":"+string(hash)+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("registry htpasswd: %w", err)
	}
	return fmt.Sprintf("auth:\n  htpasswd:\n    realm: bpfd-test\n    path: %s\n", path), nil
}

// freeLoopbackAddr returns a 127.0.0.1 address with a port that was free a
// moment ago.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
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

// lockedBuffer is the registry's output, written by the process's copying
// goroutines and read when it fails to start.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
