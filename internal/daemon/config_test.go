package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bpfd-dev/bpfd/internal/testing/testimage"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := ParseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		APIVersion: ConfigAPIVersion, Kind: ConfigKind,
		Socket:   SocketConfig{Path: "/run/bpfd/bpfd.sock", Group: "bpfd", MaxRequestBytes: 1 << 20},
		StateDir: "/var/lib/bpfd", CacheDir: "/var/lib/bpfd/cache", BpffsDir: "/run/bpfd/fs",
		PolicyFile: "/etc/bpfd/policy.yaml", PullPolicy: "IfNotPresent",
		Log:        LogConfig{Level: "info", Format: "text"},
		Dispatcher: DispatcherConfig{Mode: "auto"},
		Cache:      CacheConfig{MaxSize: 4 << 30, Limits: defaultLimits},
		Revocation: "report",
		CSI: CSIConfig{Socket: "/var/lib/kubelet/plugins/csi.bpfd.io/csi.sock", PodsDir: "/var/lib/kubelet/pods",
			StagingDir: "/var/lib/kubelet/plugins/csi.bpfd.io/staging"},
	}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestParseConfig(t *testing.T) {
	cases := map[string]struct {
		in      string
		check   func(*Config) string
		wantErr []string
	}{
		"full": {
			in: `apiVersion: bpfd.io/v1alpha1
kind: DaemonConfig
socket: {path: /tmp/x/bpfd.sock, allowedUIDs: [1000]}
stateDir: /tmp/x/state
pullPolicy: Never
log: {level: debug, format: json}
metrics: {address: "127.0.0.1:9464"}
dispatcher: {mode: linked}
`,
			check: func(c *Config) string {
				return cmp.Diff([]string{"/tmp/x/state/cache", "Never", "linked"}, []string{c.CacheDir, c.PullPolicy, c.Dispatcher.Mode})
			},
		},
		"every error at once": {
			in: `stateDir: relative/path
pullPolicy: Sometimes
log: {level: loud}
metrics: {address: nope}
socket: {adminGIDs: [10, 10, 4294967295]}
`,
			wantErr: []string{`stateDir: "relative/path" is not an absolute path`, `pullPolicy: "Sometimes"`, `log.level: "loud"`, `metrics.address: "nope"`,
				"socket.adminGIDs: 10 is listed twice", "socket.adminGIDs: 4294967295 is not a valid id"},
		},
		"unknown keys with lines": {
			in:      "stateDir: /x\nsokcet: {path: /y}\nlog: {colour: red}\n",
			wantErr: []string{"line 2: field sokcet not found", "line 3: field colour not found"},
		},
		"wrong kind":   {in: "kind: TrustPolicy\n", wantErr: []string{`kind: "TrustPolicy" is not DaemonConfig`}},
		"wrong type":   {in: "socket: {maxRequestBytes: lots}\n", wantErr: []string{"line 1: cannot unmarshal"}},
		"not yaml":     {in: "socket: [\n", wantErr: []string{"not valid YAML"}},
		"tiny request": {in: "socket: {maxRequestBytes: 10}\n", wantErr: []string{"socket.maxRequestBytes: 10 is outside"}},
		"cache sizes": {
			in: "revocation: unload\ncache: {maxSize: 2Gi, limits: {blobSize: 1048576, totalSize: 512Mi, referrersPerSubject: 12}}\n",
			check: func(c *Config) string {
				l := c.Cache.Limits.Artifact()
				return cmp.Diff([]int64{2 << 30, 1 << 20, 512 << 20, 12, int64(defaultLimits.ManifestSize)},
					[]int64{int64(c.Cache.MaxSize), l.BlobSize, l.TotalSize, int64(l.ReferrersPerSubject), l.ManifestSize}) +
					cmp.Diff("unload", c.Revocation)
			},
		},
		"cache errors": {
			in: "revocation: sometimes\ncache: {maxSize: 1Mi, limits: {blobSize: 2Gi, referrers: -1, referrersPerSubject: 5000}}\n",
			wantErr: []string{`revocation: "sometimes"`, "cache.limits.referrers: -1 is not positive", "cache.limits.referrersPerSubject: 5000 is more than",
				"cache.limits.blobSize: 2Gi is more than cache.limits.totalSize, 1Gi", "cache.maxSize: 1Mi is less than cache.limits.totalSize, 1Gi"},
		},
		"size not a size":   {in: "cache: {maxSize: 4GB}\n", wantErr: []string{`line 1: "4GB" is not a size`}},
		"size not a scalar": {in: "cache: {maxSize: [1]}\n", wantErr: []string{"line 1: a size is a number of bytes"}},
		"csi": {
			in: "csi: {enabled: true, nodeName: worker-1, socket: /run/csi/csi.sock}\n",
			check: func(c *Config) string {
				return cmp.Diff(CSIConfig{Enabled: true, NodeName: "worker-1", Socket: "/run/csi/csi.sock", PodsDir: "/var/lib/kubelet/pods", StagingDir: "/run/csi/staging"}, c.CSI)
			},
		},
		"csi without a node name": {in: "csi: {enabled: true}\n", wantErr: []string{"csi.nodeName: empty"}},
		"csi's bad paths and node": {
			in:      "csi: {enabled: true, nodeName: Worker_1, socket: csi.sock, podsDir: pods}\n",
			wantErr: []string{`csi.nodeName: "Worker_1" is not a node name`, `csi.socket: "csi.sock" is not an absolute path`, `csi.podsDir: "pods" is not an absolute path`},
		},
		"csi on the API's socket": {in: "csi: {enabled: true, nodeName: n, socket: /run/bpfd/bpfd.sock}\n", wantErr: []string{"csi.socket: \"/run/bpfd/bpfd.sock\" is the API's socket"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(tc.in))
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if diff := tc.check(cfg); diff != "" {
					t.Error(diff)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bpfd.yaml")
	if _, err := LoadConfig(path, false); err != nil {
		t.Errorf("missing default config: %v, want defaults", err)
	}
	if _, err := LoadConfig(path, true); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("missing explicit config: %v, want an error naming it", err)
	}
	if err := os.WriteFile(path, []byte("pullPolicy: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(path, false); err == nil || !strings.HasPrefix(err.Error(), "config "+path+": ") {
		t.Errorf("bad config: %v, want an error naming the file", err)
	}
}

// TestExampleConfig keeps the shipped example loadable and equal to the
// defaults it claims to show.
func TestExampleConfig(t *testing.T) {
	cfg, err := LoadConfig("../../config/bpfd.yaml", true)
	if err != nil {
		t.Fatal(err)
	}
	defaults, _ := ParseConfig(nil)
	if diff := cmp.Diff(defaults, cfg); diff != "" {
		t.Errorf("config/bpfd.yaml differs from the defaults it documents (-defaults +example):\n%s", diff)
	}
}

// TestConfigOverrides: flags override the file before the defaults, so a
// state dir given by flag moves the cache dir that defaults to it, and a
// cache dir in the file stays.
func TestConfigOverrides(t *testing.T) {
	state := func(c *Config) { c.StateDir = "/srv/bpfd" }
	cfg, err := ParseConfig(nil, state)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CacheDir != "/srv/bpfd/cache" {
		t.Errorf("cache dir %s, want it under the overridden state dir", cfg.CacheDir)
	}
	cfg, err = ParseConfig([]byte("cacheDir: /var/cache/bpfd\n"), state)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CacheDir != "/var/cache/bpfd" || cfg.StateDir != "/srv/bpfd" {
		t.Errorf("state %s, cache %s", cfg.StateDir, cfg.CacheDir)
	}
	if _, err := ParseConfig(nil, func(c *Config) { c.PullPolicy = "Sometimes" }); err == nil {
		t.Error("an invalid override passed validation")
	}
}

// TestExamplePolicy keeps the shipped example trust policy valid, with key
// files where it names them.
func TestExamplePolicy(t *testing.T) {
	data, err := os.ReadFile("../../config/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"platform", "security"} {
		if _, err := testimage.NewKey(filepath.Join(dir, "keys"), name); err != nil {
			t.Fatal(err)
		}
	}
	policy, err := verify.LoadPolicy(filepath.Join(dir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(policy.Rules); n != 4 {
		t.Errorf("%d rules, want 4", n)
	}
}
