package daemon

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/badinput"
)

// FuzzParseConfig parses a daemon configuration, seeded from
// testdata/bad/config: it must fail or return a configuration that
// validates, with absolute paths and a bounded request size; nothing may
// panic. `make fuzz` runs it for FUZZTIME.
func FuzzParseConfig(f *testing.F) {
	c, err := badinput.Locate()
	if err != nil {
		f.Fatal(err)
	}
	table, err := c.Table("config")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range table.Entries {
		data, err := os.ReadFile(e.FilePaths()[0])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(nil))
	f.Add([]byte(`apiVersion: bpfd.io/v1alpha1
kind: DaemonConfig
socket: {path: /run/bpfd/bpfd.sock, group: bpfd, allowedUIDs: [1000], allowedGIDs: [1000], maxRequestBytes: 65536}
stateDir: /var/lib/bpfd
cacheDir: /var/cache/bpfd
bpffsDir: /run/bpfd/fs
policyFile: /etc/bpfd/policy.yaml
pullPolicy: Always
registryAuthFile: /etc/bpfd/auth.json
plainHTTPRegistries: ["registry.local:5000"]
log: {level: debug, format: json, auditFile: /var/log/bpfd/audit.log}
metrics: {address: "127.0.0.1:9464"}
dispatcher: {mode: linked}
`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("ParseConfig returned a configuration that does not validate: %v", err)
		}
		for _, p := range []string{cfg.Socket.Path, cfg.StateDir, cfg.CacheDir, cfg.BpffsDir, cfg.PolicyFile} {
			if !filepath.IsAbs(p) {
				t.Fatalf("path %q is not absolute", p)
			}
		}
		if cfg.Socket.MaxRequestBytes < 4096 || cfg.Socket.MaxRequestBytes > 64<<20 {
			t.Fatalf("maxRequestBytes %d", cfg.Socket.MaxRequestBytes)
		}
	})
}
