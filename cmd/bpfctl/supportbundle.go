package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/internal/version"
)

var supportBundleCommand = &cli.Command{
	Name:      "support-bundle",
	Usage:     "write one archive of what support needs from this node: versions, config, trust policy's fingerprint and rule names, programs, hooks, inventory, metrics, recent audit and log lines, the kernel",
	ArgsUsage: " ",
	Description: `Collects into a gzip-compressed tar (--file, "-" for stdout) with index.json first,
listing each item, its source, size, digest, and whether it was cut, redacted or failed.
An item that cannot be collected (bpfd down, no metrics address) is an error in the index,
not a failure of the command. The archive stays within --max-size; logs keep their end.

Never collected: the trust policy's file (only its default, rule names, modes and images),
keys, registry credentials. Private keys' PEM blocks, values of keys named like password,
secret, token or auth, HTTP credentials and URLs' user info are redacted from everything.`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "the archive to write (default bpfd-support-HOST-TIME.tar.gz; - for stdout)"},
		&cli.StringFlag{Name: "config", Value: "/etc/bpfd/bpfd.yaml", Usage: "bpfd's configuration file, for the policy, audit file and metrics address", EnvVars: []string{"BPFD_CONFIG"}},
		&cli.StringFlag{Name: "policy", Usage: "the trust policy file (default: the config's policyFile)"},
		&cli.StringFlag{Name: "audit-file", Usage: "bpfd's audit log (default: the config's log.auditFile)"},
		&cli.StringFlag{Name: "log-file", Usage: "bpfd's log, when it goes to a file (default: journalctl -u bpfd where there is a journal)"},
		&cli.StringFlag{Name: "metrics-address", Usage: "bpfd's metrics address, host:port (default: the config's metrics.address)"},
		&cli.Int64Flag{Name: "max-size", Value: 16 << 20, Usage: "the archive's size bound in bytes (at least 256 KiB)"},
		&cli.Int64Flag{Name: "log-bytes", Value: 2 << 20, Usage: "at most this much of the end of each log"},
	},
	Action: func(c *cli.Context) error {
		if c.NArg() != 0 {
			return cliutil.Usagef("support-bundle takes no arguments")
		}
		maxSize := c.Int64("max-size")
		if maxSize < 2*bundleOverhead {
			return cliutil.Usagef("--max-size %d: want at least %d", maxSize, 2*bundleOverhead)
		}
		host, _ := os.Hostname()
		now := time.Now()
		b := collectSupport(c, host, now, maxSize)
		name := c.String("file")
		if name == "-" {
			return b.write(c.App.Writer)
		}
		if name == "" {
			name = fmt.Sprintf("bpfd-support-%s-%s.tar.gz", host, now.UTC().Format("20060102T150405Z"))
		}
		if err := writeFileAtomic(name, b.write); err != nil {
			return fmt.Errorf("support bundle %s: %w", name, err)
		}
		var failed []string
		for _, f := range b.index.Files {
			if f.Error != "" {
				failed = append(failed, f.Name)
			}
		}
		fmt.Fprintf(c.App.Writer, "wrote %s (%d items", name, len(b.index.Files)-len(failed))
		if len(failed) > 0 {
			fmt.Fprintf(c.App.Writer, "; not collected, see index.json: %s", strings.Join(failed, ", "))
		}
		fmt.Fprintln(c.App.Writer, ")")
		return nil
	},
}

// runSelf is run, for the commands the bundle runs (set in init: run's
// commands include this one).
var runSelf func(ctx context.Context, args []string, stdout, stderr io.Writer) int

func init() { runSelf = run }

// supportConfig is what the bundle reads of bpfd's configuration.
type supportConfig struct {
	PolicyFile string `yaml:"policyFile"`
	Log        struct {
		AuditFile string `yaml:"auditFile"`
	} `yaml:"log"`
	Metrics struct {
		Address string `yaml:"address"`
	} `yaml:"metrics"`
}

// collectSupport gathers every item, in order of importance: the bound
// cuts the last ones first.
func collectSupport(c *cli.Context, host string, now time.Time, maxSize int64) *bundle {
	b := newBundle(host, maxSize, now)
	// Shares of the bound, so that every item gets some: the small ones a
	// 64th each, bpfctl's outputs and the metrics an 8th, the logs a 5th.
	budget := b.left
	small := min(budget/64, 1<<20)
	fileLimit := min(budget/8, 4<<20)
	logLimit := min(budget/5, c.Int64("log-bytes"))

	b.add("version.txt", "bpfctl version; bpfd --version", versions(c.Context), nil, small, false)
	kernel, err := kernelReport()
	b.add("kernel.txt", "uname, /proc/sys, /sys/kernel, /proc/self/mountinfo", kernel, err, small, false)

	cfgPath := c.String("config")
	cfgData, err := readBounded(cfgPath, fileLimit)
	var cfg supportConfig
	if err == nil {
		if yerr := yaml.Unmarshal(cfgData, &cfg); yerr != nil {
			err = fmt.Errorf("%s: %w", cfgPath, yerr)
			cfgData = nil
		}
	}
	b.add("config/bpfd.yaml", cfgPath, cfgData, err, small, false)
	policyFile := firstOf(c.String("policy"), cfg.PolicyFile, "/etc/bpfd/policy.yaml")
	auditFile := firstOf(c.String("audit-file"), cfg.Log.AuditFile)
	metricsAddr := firstOf(c.String("metrics-address"), cfg.Metrics.Address)

	sub := func(name string, args ...string) {
		var out, errOut bytes.Buffer
		full := append([]string{"bpfctl", "--socket", c.String("socket"), "--timeout", c.Duration("timeout").String()}, args...)
		var err error
		if code := runSelf(c.Context, full, &out, &errOut); code != cliutil.ExitOK {
			err = fmt.Errorf("exit %d: %s", code, strings.TrimSpace(errOut.String()))
		}
		b.add(name, "bpfctl "+strings.Join(args, " "), out.Bytes(), err, fileLimit, false)
	}
	sub("programs.json", "list", "--all", "-o", "json")
	sub("hooks.txt", "list", "--hooks")
	sub("inventory.json", "inventory", "-o", "json")

	var metrics []byte
	err = errors.New("no metrics address (metrics.address in the config, or --metrics-address)")
	if metricsAddr != "" {
		metrics, err = scrape(c.Context, metricsAddr, fileLimit)
	}
	metricsSource := ""
	if metricsAddr != "" {
		metricsSource = "http://" + metricsAddr + "/metrics"
	}
	b.add("metrics.txt", metricsSource, metrics, err, fileLimit, false)

	var audit []byte
	err = errors.New("no audit file (log.auditFile in the config, or --audit-file): the audit lines are in bpfd's log")
	if auditFile != "" {
		audit, err = readTail(auditFile, logLimit)
	}
	b.add("audit.log", auditFile, audit, err, logLimit, true)

	logs, source, err := bpfdLog(c.Context, c.String("log-file"), logLimit)
	b.add("bpfd.log", source, logs, err, logLimit, true)

	summary, err := policySummary(policyFile, metrics, audit, logs)
	b.add("policy.txt", policyFile+" (default, rule names, modes, images; never the file)", summary, err, small, false)
	return b
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// versions is bpfctl's version and, where bpfd is on the PATH, bpfd's.
func versions(ctx context.Context) []byte {
	info := version.Get()
	var out bytes.Buffer
	fmt.Fprintf(&out, "bpfctl %s\ncommit: %s\ngo: %s\nplatform: %s\n", info.Version, info.Commit, info.GoVersion, info.Platform)
	if path, err := exec.LookPath("bpfd"); err == nil {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		v, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
		fmt.Fprintf(&out, "\n%s --version: %s", path, bytes.TrimSpace(v))
		if err != nil {
			fmt.Fprintf(&out, " (%v)", err)
		}
		out.WriteByte('\n')
	} else {
		out.WriteString("\nbpfd: not on the PATH\n")
	}
	return out.Bytes()
}

// kernelReport is the kernel's release and what bpfd depends on.
func kernelReport() ([]byte, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return nil, fmt.Errorf("uname: %w", err)
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "release: %s\nversion: %s\nmachine: %s\n", unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Version[:]), unix.ByteSliceToString(u.Machine[:]))
	_, err := os.Stat("/sys/kernel/btf/vmlinux")
	fmt.Fprintf(&out, "btf (/sys/kernel/btf/vmlinux): %v\n", err == nil)
	for _, p := range []string{"/proc/sys/kernel/unprivileged_bpf_disabled", "/proc/sys/net/core/bpf_jit_enable", "/proc/sys/net/core/bpf_jit_harden", "/proc/sys/kernel/bpf_stats_enabled", "/sys/kernel/security/lockdown"} {
		v, err := os.ReadFile(p)
		if err != nil {
			fmt.Fprintf(&out, "%s: %v\n", p, err)
			continue
		}
		fmt.Fprintf(&out, "%s: %s\n", p, bytes.TrimSpace(v))
	}
	out.WriteString("bpffs mounts:\n")
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			// ... - fstype source options
			if _, rest, ok := strings.Cut(s.Text(), " - "); ok && strings.HasPrefix(rest, "bpf ") {
				fmt.Fprintf(&out, "  %s\n", s.Text())
			}
		}
		f.Close()
	}
	return out.Bytes(), nil
}

// readBounded reads at most limit bytes of the file at path.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit+1))
}

// readTail reads the last limit bytes (and one more, so that the bundle
// knows to cut and says so) of the file at path.
func readTail(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	off := st.Size() - limit - 1
	if off < 0 {
		off = 0
	}
	return io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
}

// bpfdLog is the end of bpfd's log: the file named, or the journal's bpfd
// unit.
func bpfdLog(ctx context.Context, file string, limit int64) ([]byte, string, error) {
	if file != "" {
		b, err := readTail(file, limit)
		return b, file, err
	}
	path, err := exec.LookPath("journalctl")
	if err != nil {
		return nil, "journalctl -u bpfd", errors.New("no --log-file and no journalctl: in a pod, bpfd's log is the container's (oc logs)")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-u", "bpfd", "--no-pager", "-o", "short-iso", "-n", "20000")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &limitedBuffer{buf: &out, tail: limit}, &errOut
	if err := cmd.Run(); err != nil {
		return nil, "journalctl -u bpfd", fmt.Errorf("journalctl: %v: %s", err, strings.TrimSpace(errOut.String()))
	}
	return out.Bytes(), "journalctl -u bpfd", nil
}

// limitedBuffer keeps the last tail bytes written (and one more).
type limitedBuffer struct {
	buf  *bytes.Buffer
	tail int64
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.buf.Write(p)
	if over := int64(l.buf.Len()) - l.tail - 1; over > 0 {
		rest := append([]byte(nil), l.buf.Bytes()[over:]...)
		l.buf.Reset()
		l.buf.Write(rest)
	}
	return len(p), nil
}

// scrape gets bpfd's metrics, at most limit bytes.
func scrape(ctx context.Context, addr string, limit int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", req.URL, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, limit+1))
}

// summaryPolicy is what the bundle reads of a trust policy: no keys,
// identities or attestation requirements.
type summaryPolicy struct {
	Default string `yaml:"default"`
	Rules   []struct {
		Name   string   `yaml:"name"`
		Mode   string   `yaml:"mode"`
		Images []string `yaml:"images"`
	} `yaml:"rules"`
}

var (
	metricsFingerprint = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`bpfd_policy_info\{[^}]*fingerprint="(sha256:[0-9a-f]{64})"`)
	})
	logFingerprint = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?:"policy":"|policy=|fingerprint=)(sha256:[0-9a-f]{64})`)
	})
)

// policySummary is the trust policy's fingerprint in force (from bpfd's
// metrics, else the latest audit or log line naming it), its default, and
// its rules' names, modes and images.
func policySummary(path string, metrics, audit, logs []byte) ([]byte, error) {
	var out bytes.Buffer
	fp, from := "", ""
	if m := metricsFingerprint().FindSubmatch(metrics); m != nil {
		fp, from = string(m[1]), "metrics (bpfd_policy_info)"
	} else {
		for _, src := range []struct {
			name string
			b    []byte
		}{{"the audit log's last line naming it", audit}, {"bpfd's log's last line naming it", logs}} {
			if all := logFingerprint().FindAllSubmatch(src.b, -1); len(all) > 0 {
				fp, from = string(all[len(all)-1][1]), src.name
				break
			}
		}
	}
	if fp == "" {
		fp, from = "unknown", "neither metrics nor logs name it"
	}
	fmt.Fprintf(&out, "fingerprint in force: %s (from %s)\nfile: %s\n", fp, from, path)
	data, err := readBounded(path, 4<<20)
	if err != nil {
		fmt.Fprintf(&out, "rules: not read: %v\n", err)
		return out.Bytes(), nil
	}
	var p summaryPolicy
	if err := yaml.Unmarshal(data, &p); err != nil {
		fmt.Fprintf(&out, "rules: not read: %s: %v\n", filepath.Base(path), err)
		return out.Bytes(), nil
	}
	fmt.Fprintf(&out, "default: %s\nrules:\n", p.Default)
	for _, r := range p.Rules {
		mode := r.Mode
		if mode == "" {
			mode = "enforce"
		}
		fmt.Fprintf(&out, "- %s (mode %s): %s\n", r.Name, mode, strings.Join(r.Images, ", "))
	}
	return out.Bytes(), nil
}

// writeFileAtomic writes the file at name with write, through a temporary
// file in the same directory renamed into place: an error leaves nothing.
func writeFileAtomic(name string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".bpfd-support-*")
	if err != nil {
		return err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o600)
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
