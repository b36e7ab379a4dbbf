// Command bpfd is bpfd's node daemon: it serves the bpfd.v1 API on a unix
// socket, admits bytecode artifacts through the node's trust policy, and
// loads, attaches and pins their programs.
//
//	bpfd [--config /etc/bpfd/bpfd.yaml] [--socket PATH] [--state-dir DIR] ...
//
// Every path of the configuration file has a flag that overrides it. SIGHUP
// re-reads the trust policy (an invalid file keeps the policy in force; one
// received during start is applied once bpfd serves);
// SIGTERM and SIGINT stop serving, and programs stay loaded: the next start
// adopts them. Under systemd (Type=notify) bpfd reports READY=1 once it
// serves.
//
// Exit codes: 0 stopped by a signal, 1 failed, 2 invalid configuration,
// policy or flags (or a file they name is missing).
package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/daemon"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// Exit codes.
const (
	exitFailed = 1
	exitConfig = 2
)

// configError marks errors of the configuration, the policy or the flags.
type configError struct{ error }

func (e configError) Unwrap() error { return e.error }

func main() {
	os.Exit(run(os.Args, os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	app := newApp(stderr)
	err := app.Run(args)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "bpfd: %s\n", oneLine(err))
	var ce configError
	// A configuration, flag or policy problem, or a file they name missing.
	if errors.As(err, &ce) || errors.Is(err, verify.ErrInvalidPolicy) || errors.Is(err, fs.ErrNotExist) {
		return exitConfig
	}
	return exitFailed
}

// Flags overriding the configuration file, by the field they set.
var (
	configFlag = &cli.StringFlag{Name: "config", Value: daemon.DefaultConfigPath, Usage: "configuration `FILE`; a missing file at the default path means the defaults", EnvVars: []string{"BPFD_CONFIG"}}
	pathFlags  = []struct {
		flag *cli.StringFlag
		set  func(*daemon.Config, string)
	}{
		{&cli.StringFlag{Name: "socket", Usage: "API unix socket `PATH` (socket.path)", EnvVars: []string{"BPFD_SOCKET"}}, func(c *daemon.Config, v string) { c.Socket.Path = v }},
		{&cli.StringFlag{Name: "socket-group", Usage: "`GROUP` owning the socket, when it exists (socket.group)", EnvVars: []string{"BPFD_SOCKET_GROUP"}}, func(c *daemon.Config, v string) { c.Socket.Group = v }},
		{&cli.StringFlag{Name: "state-dir", Usage: "state store `DIR` (stateDir)", EnvVars: []string{"BPFD_STATE_DIR"}}, func(c *daemon.Config, v string) { c.StateDir = v }},
		{&cli.StringFlag{Name: "cache-dir", Usage: "artifact cache `DIR` (cacheDir; default STATE_DIR/cache)", EnvVars: []string{"BPFD_CACHE_DIR"}}, func(c *daemon.Config, v string) { c.CacheDir = v }},
		{&cli.StringFlag{Name: "bpffs", Usage: "`DIR` programs are pinned under, a bpffs mounted if needed (bpffsDir)", EnvVars: []string{"BPFD_BPFFS"}}, func(c *daemon.Config, v string) { c.BpffsDir = v }},
		{&cli.StringFlag{Name: "policy", Usage: "trust policy `FILE` (policyFile)", EnvVars: []string{"BPFD_POLICY"}}, func(c *daemon.Config, v string) { c.PolicyFile = v }},
		{&cli.StringFlag{Name: "pull-policy", Usage: "default pull `POLICY`: Always, IfNotPresent or Never (pullPolicy)", EnvVars: []string{"BPFD_PULL_POLICY"}}, func(c *daemon.Config, v string) { c.PullPolicy = v }},
		{&cli.StringFlag{Name: "registry-auth-file", Usage: "Docker config.json `FILE` with registry credentials (registryAuthFile)", EnvVars: []string{"BPFD_REGISTRY_AUTH_FILE"}}, func(c *daemon.Config, v string) { c.RegistryAuthFile = v }},
		{&cli.StringFlag{Name: "log-level", Usage: "`LEVEL`: debug, info, warn or error (log.level)", EnvVars: []string{"BPFD_LOG_LEVEL"}}, func(c *daemon.Config, v string) { c.Log.Level = v }},
		{&cli.StringFlag{Name: "log-format", Usage: "`FORMAT`: text or json (log.format)", EnvVars: []string{"BPFD_LOG_FORMAT"}}, func(c *daemon.Config, v string) { c.Log.Format = v }},
		{&cli.StringFlag{Name: "audit-file", Usage: "audit log `FILE`, JSON lines (log.auditFile; default: the log, log=audit)", EnvVars: []string{"BPFD_AUDIT_FILE"}}, func(c *daemon.Config, v string) { c.Log.AuditFile = v }},
		{&cli.StringFlag{Name: "dispatcher-mode", Usage: "how programs share XDP and TC hooks, `MODE`: auto, freplace or linked (dispatcher.mode)", EnvVars: []string{"BPFD_DISPATCHER_MODE"}}, func(c *daemon.Config, v string) { c.Dispatcher.Mode = v }},
		{&cli.StringFlag{Name: "metrics-address", Usage: "serve Prometheus metrics at `HOST:PORT`/metrics (metrics.address)", EnvVars: []string{"BPFD_METRICS_ADDRESS"}}, func(c *daemon.Config, v string) { c.Metrics.Address = v }},
		{&cli.StringFlag{Name: "csi-socket", Usage: "the CSI driver's socket `PATH`, dialed by the kubelet (csi.socket)", EnvVars: []string{"BPFD_CSI_SOCKET"}}, func(c *daemon.Config, v string) { c.CSI.Socket = v }},
		{&cli.StringFlag{Name: "csi-node-name", Usage: "the node's `NAME` in the cluster, reported by the CSI driver (csi.nodeName)", EnvVars: []string{"BPFD_CSI_NODE_NAME"}}, func(c *daemon.Config, v string) { c.CSI.NodeName = v }},
		{&cli.StringFlag{Name: "csi-pods-dir", Usage: "the kubelet's pods `DIR`, where the CSI driver mounts pods' volumes (csi.podsDir)", EnvVars: []string{"BPFD_CSI_PODS_DIR"}}, func(c *daemon.Config, v string) { c.CSI.PodsDir = v }},
		{&cli.StringFlag{Name: "csi-staging-dir", Usage: "`DIR` the CSI driver assembles volumes in (csi.stagingDir; default the socket's dir/staging)", EnvVars: []string{"BPFD_CSI_STAGING_DIR"}}, func(c *daemon.Config, v string) { c.CSI.StagingDir = v }},
	}
	csiFlag       = &cli.BoolFlag{Name: "csi", Usage: "serve the CSI node driver csi.bpfd.io, which mounts configs' maps into the pods they admit (csi.enabled)", EnvVars: []string{"BPFD_CSI"}}
	adminGIDFlag  = &cli.UintSliceFlag{Name: "socket-admin-gid", Usage: "`GID` whose members, like root, may set program owners and unload or borrow the maps of any program, repeatable (socket.adminGIDs)", EnvVars: []string{"BPFD_SOCKET_ADMIN_GIDS"}}
	plainHTTPFlag = &cli.StringSliceFlag{Name: "plain-http-registry", Usage: "`HOST[:PORT]` reached over plain HTTP, repeatable (plainHTTPRegistries)", EnvVars: []string{"BPFD_PLAIN_HTTP_REGISTRIES"}}
)

func newApp(stderr io.Writer) *cli.App {
	flags := []cli.Flag{configFlag, plainHTTPFlag, adminGIDFlag, csiFlag}
	for _, f := range pathFlags {
		flags = append(flags, f.flag)
	}
	return &cli.App{
		Name:      "bpfd",
		Usage:     "verify signed BPF bytecode artifacts and load their programs",
		UsageText: "bpfd [--config FILE] [flags]",
		Description: `bpfd serves the bpfd.v1 API on a unix socket. It resolves each artifact
reference to a digest, pulls it with its signatures into its cache, verifies
it against the trust policy, and loads, attaches and pins the programs asked
for. Flags override the configuration file's fields (named in parentheses).
SIGHUP re-reads the trust policy; SIGTERM stops serving and leaves the
programs loaded for the next start to adopt.`,
		Flags:           flags,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return configError{err}
		},
		Action: serve,
	}
}

// config reads the configuration file with the flags' overrides.
func config(c *cli.Context) (*daemon.Config, error) {
	if c.NArg() > 0 {
		return nil, configError{fmt.Errorf("unexpected argument %q (bpfd takes flags only)", c.Args().First())}
	}
	var overrides []daemon.Override
	for _, f := range pathFlags {
		if c.IsSet(f.flag.Name) {
			v, set := c.String(f.flag.Name), f.set
			overrides = append(overrides, func(cfg *daemon.Config) { set(cfg, v) })
		}
	}
	if c.IsSet(csiFlag.Name) {
		v := c.Bool(csiFlag.Name)
		overrides = append(overrides, func(cfg *daemon.Config) { cfg.CSI.Enabled = v })
	}
	if c.IsSet(adminGIDFlag.Name) {
		var gids []uint32
		for _, g := range c.UintSlice(adminGIDFlag.Name) {
			gids = append(gids, uint32(g)) // the flag parses 32-bit values only
		}
		overrides = append(overrides, func(cfg *daemon.Config) { cfg.Socket.AdminGIDs = gids })
	}
	if c.IsSet(plainHTTPFlag.Name) {
		v := c.StringSlice(plainHTTPFlag.Name)
		overrides = append(overrides, func(cfg *daemon.Config) { cfg.PlainHTTPRegistries = v })
	}
	cfg, err := daemon.LoadConfig(c.String(configFlag.Name), c.IsSet(configFlag.Name), overrides...)
	if err != nil {
		return nil, configError{err}
	}
	return cfg, nil
}

func serve(c *cli.Context) error {
	// Signals first, before any start-up work: a SIGTERM during start ends
	// it, and a SIGHUP during start is kept (not fatal, as an unhandled one
	// is) and re-reads the policy once bpfd serves.
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	cfg, err := config(c)
	if err != nil {
		return err
	}
	log := daemon.NewLogger(c.App.ErrWriter, cfg)
	d, err := daemon.New(ctx, cfg, daemon.Options{Logger: log})
	if err != nil {
		return err
	}
	defer d.Close()

	go func() {
		for range hup {
			if err := d.ReloadPolicy(); err != nil {
				log.Error("TRUST POLICY NOT RELOADED: the new file is invalid; the policy in force stays", "path", cfg.PolicyFile, "error", err.Error())
			}
		}
	}()

	err = d.Serve(ctx, func() {
		if err := daemon.Notify("READY=1"); err != nil {
			log.Warn("cannot notify the service manager", "error", err)
		}
	})
	daemon.Notify("STOPPING=1")
	if err != nil {
		return err
	}
	log.Info("stopped; loaded programs stay attached")
	return d.Close()
}

// oneLine joins the lines of a multi-line error (a configuration's or a
// policy's list of problems) into one.
func oneLine(err error) string {
	lines := strings.Split(err.Error(), "\n")
	var b strings.Builder
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if i > 0 {
			if strings.HasSuffix(b.String(), ":") {
				b.WriteString(" ")
			} else {
				b.WriteString("; ")
			}
		}
		b.WriteString(l)
	}
	return b.String()
}
