package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/bpfd-dev/bpfd/internal/csi"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// Config file identity. A file with another apiVersion or kind is refused.
const (
	ConfigAPIVersion = "bpfd.io/v1alpha1"
	ConfigKind       = "DaemonConfig"
)

// DefaultConfigPath is where bpfd looks for its configuration.
const DefaultConfigPath = "/etc/bpfd/bpfd.yaml"

// Config is bpfd's configuration file (/etc/bpfd/bpfd.yaml). Every field has
// a default; an empty file is a valid configuration. Paths must be absolute.
type Config struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`

	// Socket is the gRPC API's unix socket.
	Socket SocketConfig `yaml:"socket"`
	// StateDir holds the state store (default /var/lib/bpfd).
	StateDir string `yaml:"stateDir"`
	// CacheDir holds pulled artifacts by digest (default <stateDir>/cache).
	CacheDir string `yaml:"cacheDir"`
	// BpffsDir is where programs, links and maps are pinned; bpfd mounts a
	// bpffs there if there is none (default /run/bpfd/fs).
	BpffsDir string `yaml:"bpffsDir"`
	// PolicyFile is the trust policy (default /etc/bpfd/policy.yaml). It is
	// re-read on SIGHUP.
	PolicyFile string `yaml:"policyFile"`
	// PullPolicy is the default for requests that name none: Always,
	// IfNotPresent (default) or Never.
	PullPolicy string `yaml:"pullPolicy"`
	// RegistryAuthFile is a Docker config.json with registry credentials;
	// empty means none.
	RegistryAuthFile string `yaml:"registryAuthFile"`
	// PlainHTTPRegistries lists registries (host[:port]) reached over plain
	// HTTP. Loopback registries always are.
	PlainHTTPRegistries []string `yaml:"plainHTTPRegistries"`
	// Log configures the daemon's log and the audit log.
	Log LogConfig `yaml:"log"`
	// Metrics configures the Prometheus endpoint.
	Metrics MetricsConfig `yaml:"metrics"`
	// Dispatcher configures how programs share XDP and TC hooks.
	Dispatcher DispatcherConfig `yaml:"dispatcher"`
	// Cache bounds the artifact cache and what a pull may read.
	Cache CacheConfig `yaml:"cache"`
	// Revocation is what bpfd does with a loaded program that the trust
	// policy in force no longer admits, found at start and at each policy
	// reload: report (default) marks it (bpfctl list/get, the metric
	// bpfd_programs_not_admitted, the audit log); unload also unloads it
	// when the policy denies it (not when its signatures are missing).
	Revocation string `yaml:"revocation"`
	// CSI configures csi.bpfd.io, the CSI node driver that mounts the maps
	// of a config's programs into the pods it admits.
	CSI CSIConfig `yaml:"csi"`
	// Stats configures BPF run statistics.
	Stats StatsConfig `yaml:"stats"`
}

// CacheConfig bounds the artifact cache.
type CacheConfig struct {
	// MaxSize is the size the cache is collected down to after pulls (the
	// least recently used artifacts no loaded program needs go first).
	// Default 4Gi; at least limits.totalSize.
	MaxSize ByteSize `yaml:"maxSize"`
	// Limits bound each pull.
	Limits LimitsConfig `yaml:"limits"`
}

// LimitsConfig bounds what one pull reads and writes (artifact.Limits). A
// manifest, config or blob over its bound, or an artifact over totalSize or
// blobs, fails the pull before its bytes are fetched; referrers over their
// bounds or past their counts are skipped, never a failure.
type LimitsConfig struct {
	// ManifestSize bounds one manifest or index (default 4Mi).
	ManifestSize ByteSize `yaml:"manifestSize"`
	// ConfigSize bounds one config blob (default 4Mi).
	ConfigSize ByteSize `yaml:"configSize"`
	// BlobSize bounds one layer (default 64Mi, the largest object bpfd
	// loads).
	BlobSize ByteSize `yaml:"blobSize"`
	// TotalSize bounds an artifact with its signatures (default 1Gi).
	TotalSize ByteSize `yaml:"totalSize"`
	// Blobs bounds the distinct blobs of an artifact with its signatures
	// (default 10000).
	Blobs int `yaml:"blobs"`
	// ReferrerSize bounds one signature or attestation referrer with its
	// blobs (default 16Mi).
	ReferrerSize ByteSize `yaml:"referrerSize"`
	// ReferrersPerSubject bounds the referrers considered per manifest
	// (default 256, at most 1000).
	ReferrersPerSubject int `yaml:"referrersPerSubject"`
	// Referrers bounds the referrers and cosign-tagged manifests pulled
	// with an artifact (default 1024).
	Referrers int `yaml:"referrers"`
	// ArchiveSize and ArchiveEntries bound what an oci-archive: reference
	// extracts (default 1Gi, 100000).
	ArchiveSize    ByteSize `yaml:"archiveSize"`
	ArchiveEntries int      `yaml:"archiveEntries"`
}

// Artifact returns the limits as pkg/artifact takes them.
func (l LimitsConfig) Artifact() artifact.Limits {
	return artifact.Limits{
		ManifestSize: int64(l.ManifestSize), ConfigSize: int64(l.ConfigSize), BlobSize: int64(l.BlobSize),
		TotalSize: int64(l.TotalSize), Blobs: l.Blobs, ReferrerSize: int64(l.ReferrerSize),
		ReferrersPerSubject: l.ReferrersPerSubject, Referrers: l.Referrers, ReferrerDepth: 1,
		ArchiveSize: int64(l.ArchiveSize), ArchiveEntries: l.ArchiveEntries,
	}
}

// The revocation modes.
const (
	RevocationReport = "report"
	RevocationUnload = "unload"
)

// SocketConfig configures the unix socket.
type SocketConfig struct {
	// Path of the socket (default /run/bpfd/bpfd.sock), created mode 0660.
	Path string `yaml:"path"`
	// Group owns the socket (default "bpfd"): a group name, or a numeric
	// gid taken as it is; when no group of that name exists the socket
	// keeps bpfd's own group.
	Group string `yaml:"group"`
	// AllowedUIDs and AllowedGIDs, when either is set, restrict clients to
	// those uids or primary gids (root is always allowed).
	AllowedUIDs []uint32 `yaml:"allowedUIDs"`
	AllowedGIDs []uint32 `yaml:"allowedGIDs"`
	// AdminGIDs are the groups whose members (by primary or supplementary
	// group), like root, may set a program's owner and unload or borrow the
	// maps of any program. Other clients may unload, or name as map owner,
	// only the programs their uid loaded. Default none.
	AdminGIDs []uint32 `yaml:"adminGIDs"`
	// MaxRequestBytes bounds a request message (default 1 MiB).
	MaxRequestBytes int `yaml:"maxRequestBytes"`
}

// LogConfig configures logging.
type LogConfig struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is text (default) or json.
	Format string `yaml:"format"`
	// AuditFile receives one line per load and unload decision; empty means
	// the daemon's log stream (with log=audit).
	AuditFile string `yaml:"auditFile"`
}

// MetricsConfig configures the metrics endpoint.
type MetricsConfig struct {
	// Address serves Prometheus metrics at /metrics, e.g. 127.0.0.1:9464;
	// empty (default) serves none.
	Address string `yaml:"address"`
}

// DispatcherConfig configures shared XDP and TC hooks.
type DispatcherConfig struct {
	// Mode is auto (default: probe the kernel once at start), freplace or
	// linked.
	Mode string `yaml:"mode"`
}

// StatsConfig configures BPF run statistics.
type StatsConfig struct {
	// Enabled keeps BPF statistics on while bpfd runs: the kernel counts
	// every program's runs and run time, and the chains of XDP and TC hooks
	// account each member's, which costs a little on every run (default
	// false: on only while a client's Top call is open).
	Enabled bool `yaml:"enabled"`
}

// noID is (uid_t)-1 and (gid_t)-1, which the kernel takes for "no id".
const noID = 1<<32 - 1

// CSIConfig configures the CSI node driver csi.bpfd.io (docs/kubernetes.md).
type CSIConfig struct {
	// Enabled serves the driver (default false).
	Enabled bool `yaml:"enabled"`
	// Socket is the driver's socket, which the kubelet and the
	// node-driver-registrar dial (default
	// /var/lib/kubelet/plugins/csi.bpfd.io/csi.sock). Only root may call it.
	Socket string `yaml:"socket"`
	// NodeName is the node's name in the cluster, which the driver reports
	// to the kubelet. Required when enabled.
	NodeName string `yaml:"nodeName"`
	// PodsDir is the kubelet's pods directory; the driver mounts volumes
	// only at pods' CSI volume paths there (default /var/lib/kubelet/pods).
	PodsDir string `yaml:"podsDir"`
	// StagingDir is where the driver assembles volumes before mounting them
	// (default: the socket's directory/staging).
	StagingDir string `yaml:"stagingDir"`
}

// Defaults.
const (
	defaultSocketPath      = "/run/bpfd/bpfd.sock"
	defaultSocketGroup     = "bpfd"
	defaultStateDir        = "/var/lib/bpfd"
	defaultBpffsDir        = "/run/bpfd/fs"
	defaultPolicyFile      = "/etc/bpfd/policy.yaml"
	defaultPullPolicy      = "IfNotPresent"
	defaultMaxRequestBytes = 1 << 20
	defaultCacheMaxSize    = 4 << 30
)

// defaultLimits are the cache's default limits: artifact's, but for blobs
// no larger than the largest object bpfd loads, and smaller artifacts,
// referrers and archives.
var defaultLimits = LimitsConfig{
	ManifestSize: artifact.DefaultManifestSize, ConfigSize: artifact.DefaultConfigSize,
	BlobSize: artifact.MaxObjectSize, TotalSize: 1 << 30, Blobs: artifact.DefaultBlobs,
	ReferrerSize: 16 << 20, ReferrersPerSubject: artifact.DefaultReferrersPerSubject, Referrers: artifact.DefaultReferrers,
	ArchiveSize: 1 << 30, ArchiveEntries: artifact.DefaultArchiveEntries,
}

// Override changes a configuration read from a file before its defaults
// are applied: command-line flags are overrides, so that a flag's value
// (say --state-dir) also moves what defaults to it (the cache dir).
type Override func(*Config)

// LoadConfig reads, overrides, defaults and validates the configuration file
// at path. A missing file at the default path yields the defaults; a
// missing file named explicitly is an error.
func LoadConfig(path string, explicit bool, overrides ...Override) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		data = nil
	} else if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	cfg, err := ParseConfig(data, overrides...)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig decodes, overrides, defaults and validates a configuration.
// Its error lists every problem found, one per line.
func ParseConfig(data []byte, overrides ...Override) (*Config, error) {
	var cfg Config
	if len(bytes.TrimSpace(data)) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			return nil, yamlError(err)
		}
	}
	for _, o := range overrides {
		o(&cfg)
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// yamlError turns the decoder's multi-line type errors into one error per
// problem, without the library's prefix.
func yamlError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("not valid YAML: %w", err)
	}
	errs := make([]error, len(te.Errors))
	for i, e := range te.Errors {
		errs[i] = errors.New(e)
	}
	return errors.Join(errs...)
}

func (c *Config) setDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.APIVersion, ConfigAPIVersion)
	def(&c.Kind, ConfigKind)
	def(&c.Socket.Path, defaultSocketPath)
	def(&c.Socket.Group, defaultSocketGroup)
	def(&c.StateDir, defaultStateDir)
	def(&c.CacheDir, filepath.Join(c.StateDir, "cache"))
	def(&c.BpffsDir, defaultBpffsDir)
	def(&c.PolicyFile, defaultPolicyFile)
	def(&c.PullPolicy, defaultPullPolicy)
	def(&c.Log.Level, "info")
	def(&c.Log.Format, "text")
	def(&c.Dispatcher.Mode, "auto")
	if c.Socket.MaxRequestBytes == 0 {
		c.Socket.MaxRequestBytes = defaultMaxRequestBytes
	}
	def(&c.Revocation, RevocationReport)
	if c.Cache.MaxSize == 0 {
		c.Cache.MaxSize = defaultCacheMaxSize
	}
	l, d := &c.Cache.Limits, defaultLimits
	for _, f := range []struct{ v, d *ByteSize }{
		{&l.ManifestSize, &d.ManifestSize}, {&l.ConfigSize, &d.ConfigSize}, {&l.BlobSize, &d.BlobSize},
		{&l.TotalSize, &d.TotalSize}, {&l.ReferrerSize, &d.ReferrerSize}, {&l.ArchiveSize, &d.ArchiveSize},
	} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	for _, f := range []struct{ v, d *int }{
		{&l.Blobs, &d.Blobs}, {&l.ReferrersPerSubject, &d.ReferrersPerSubject}, {&l.Referrers, &d.Referrers}, {&l.ArchiveEntries, &d.ArchiveEntries},
	} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	def(&c.CSI.Socket, csi.DefaultPluginDir+"/csi.sock")
	def(&c.CSI.PodsDir, csi.DefaultPodsDir)
	if filepath.IsAbs(c.CSI.Socket) {
		def(&c.CSI.StagingDir, filepath.Join(filepath.Dir(c.CSI.Socket), "staging"))
	}
}

// Validate checks a defaulted configuration and returns every problem found.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.APIVersion != ConfigAPIVersion {
		bad("apiVersion: %q is not %s", c.APIVersion, ConfigAPIVersion)
	}
	if c.Kind != ConfigKind {
		bad("kind: %q is not %s", c.Kind, ConfigKind)
	}
	for _, p := range []struct{ field, path string }{
		{"socket.path", c.Socket.Path}, {"stateDir", c.StateDir}, {"cacheDir", c.CacheDir},
		{"bpffsDir", c.BpffsDir}, {"policyFile", c.PolicyFile},
		{"registryAuthFile", c.RegistryAuthFile}, {"log.auditFile", c.Log.AuditFile},
		{"csi.socket", c.CSI.Socket}, {"csi.podsDir", c.CSI.PodsDir}, {"csi.stagingDir", c.CSI.StagingDir},
	} {
		if p.path != "" && !filepath.IsAbs(p.path) {
			bad("%s: %q is not an absolute path", p.field, p.path)
		}
	}
	oneOf := func(field, value string, allowed ...string) {
		for _, a := range allowed {
			if value == a {
				return
			}
		}
		bad("%s: %q is not one of %s", field, value, strings.Join(allowed, ", "))
	}
	oneOf("pullPolicy", c.PullPolicy, "Always", "IfNotPresent", "Never")
	oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf("log.format", c.Log.Format, "text", "json")
	oneOf("dispatcher.mode", c.Dispatcher.Mode, "auto", "freplace", "linked")
	if c.Socket.MaxRequestBytes < 4096 || c.Socket.MaxRequestBytes > 64<<20 {
		bad("socket.maxRequestBytes: %d is outside 4096..%d", c.Socket.MaxRequestBytes, 64<<20)
	}
	if c.Metrics.Address != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Address); err != nil {
			bad("metrics.address: %q is not host:port", c.Metrics.Address)
		}
	}
	for _, f := range []struct {
		field string
		ids   []uint32
	}{{"socket.allowedUIDs", c.Socket.AllowedUIDs}, {"socket.allowedGIDs", c.Socket.AllowedGIDs}, {"socket.adminGIDs", c.Socket.AdminGIDs}} {
		seen := map[uint32]bool{}
		for _, id := range f.ids {
			switch {
			case id == noID:
				bad("%s: %d is not a valid id", f.field, id)
			case seen[id]:
				bad("%s: %d is listed twice", f.field, id)
			}
			seen[id] = true
		}
	}
	if c.CSI.Enabled {
		if c.CSI.NodeName == "" {
			bad("csi.nodeName: empty: the driver is enabled and reports the node's name to the kubelet")
		} else if msgs := validation.IsDNS1123Subdomain(c.CSI.NodeName); len(msgs) > 0 {
			bad("csi.nodeName: %q is not a node name: %s", c.CSI.NodeName, strings.Join(msgs, "; "))
		}
		if c.CSI.Socket == c.Socket.Path {
			bad("csi.socket: %q is the API's socket", c.CSI.Socket)
		}
	}
	for _, r := range c.PlainHTTPRegistries {
		if r == "" || strings.ContainsAny(r, "/ ") {
			bad("plainHTTPRegistries: %q is not host[:port]", r)
		}
	}
	oneOf("revocation", c.Revocation, RevocationReport, RevocationUnload)
	errs = append(errs, c.Cache.validate()...)
	return errors.Join(errs...)
}

// validate checks the defaulted cache configuration.
func (c *CacheConfig) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	l := &c.Limits
	for _, f := range []struct {
		field string
		v     int64
	}{
		{"manifestSize", int64(l.ManifestSize)}, {"configSize", int64(l.ConfigSize)}, {"blobSize", int64(l.BlobSize)},
		{"totalSize", int64(l.TotalSize)}, {"blobs", int64(l.Blobs)}, {"referrerSize", int64(l.ReferrerSize)},
		{"referrersPerSubject", int64(l.ReferrersPerSubject)}, {"referrers", int64(l.Referrers)},
		{"archiveSize", int64(l.ArchiveSize)}, {"archiveEntries", int64(l.ArchiveEntries)},
	} {
		if f.v <= 0 {
			bad("cache.limits.%s: %d is not positive", f.field, f.v)
		}
	}
	if l.ReferrersPerSubject > verify.MaxSignatures {
		bad("cache.limits.referrersPerSubject: %d is more than the %d signatures a verification reads", l.ReferrersPerSubject, verify.MaxSignatures)
	}
	if l.BlobSize > l.TotalSize {
		bad("cache.limits.blobSize: %s is more than cache.limits.totalSize, %s", l.BlobSize, l.TotalSize)
	}
	if c.MaxSize < l.TotalSize {
		bad("cache.maxSize: %s is less than cache.limits.totalSize, %s: an artifact pulled could not stay", c.MaxSize, l.TotalSize)
	}
	return errs
}

// SlogLevel returns the configured log level.
func (c *Config) SlogLevel() slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.Log.Level)) // validated
	return l
}
