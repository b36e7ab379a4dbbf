package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bpfd-dev/bpfd/internal/csi"
	"github.com/bpfd-dev/bpfd/internal/grpccodec"
	"github.com/bpfd-dev/bpfd/internal/peercred"
	"github.com/bpfd-dev/bpfd/internal/supplychain"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
	"github.com/bpfd-dev/bpfd/pkg/runtime/inventory"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// Daemon is bpfd: the supply chain, the runtime Manager and the API server
// that wires them. New opens the state and the cache, Serve serves until its context
// ends, Close releases the state; loaded programs stay attached throughout
// and the next New adopts them.
type Daemon struct {
	cfg     *Config
	log     *slog.Logger
	chain   *supplychain.Chain
	manager *runtime.Manager
	metrics *Metrics
	server  *server
	health  *health.Server
	// csi is the CSI driver csi.bpfd.io; nil unless enabled.
	csi     *csi.Driver
	closers []io.Closer
	// releaseStats ends the hold on BPF statistics of stats.enabled.
	releaseStats func()
	// startJudgement starts the judgement of the programs adopted at
	// start, once.
	startJudgement sync.Once
}

// Options configure New. The zero value logs nothing.
type Options struct {
	// Logger receives the daemon's log.
	Logger *slog.Logger
	// HTTPClient reaches registries; nil means artifact.DefaultHTTPClient()
	// (whose stall timeout gives up on a registry that stops sending).
	HTTPClient *http.Client
}

// shutdownGrace is how long Serve lets requests under way finish.
const shutdownGrace = 15 * time.Second

// New reads the trust policy, opens the cache and the state (reconciling
// it with the kernel) and prepares the API; Serve starts serving it.
func New(ctx context.Context, cfg *Config, opts Options) (*Daemon, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	defaultPull, err := supplychain.ParsePullPolicy(cfg.PullPolicy)
	if err != nil {
		return nil, fmt.Errorf("config: pullPolicy: %w", err)
	}
	d := &Daemon{cfg: cfg, log: log, metrics: NewMetrics(log)}
	audit, auditCloser, err := openAuditLog(cfg, log)
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, auditCloser)

	d.chain, err = supplychain.Open(ctx, supplychain.Options{
		CacheDir:            cfg.CacheDir,
		PolicyFile:          cfg.PolicyFile,
		CredentialsFile:     cfg.RegistryAuthFile,
		PlainHTTPRegistries: cfg.PlainHTTPRegistries,
		HTTPClient:          opts.HTTPClient,
		Limits:              cfg.Cache.Limits.Artifact(),
		MaxSize:             int64(cfg.Cache.MaxSize),
		Logger:              log,
	})
	if err != nil {
		d.Close()
		return nil, err
	}
	d.metrics.policyInForce(d.chain.PolicyFingerprint())
	log.Info("trust policy loaded", "path", cfg.PolicyFile, "fingerprint", d.chain.PolicyFingerprint())

	d.manager, err = runtime.Open(ctx, runtime.Options{
		StateDir:       cfg.StateDir,
		BPFFS:          cfg.BpffsDir,
		DispatcherMode: runtime.DispatcherMode(cfg.Dispatcher.Mode),
		Logger:         log,
	})
	if err != nil {
		d.Close()
		return nil, err // it names the state dir or the bpffs
	}
	if cfg.Stats.Enabled {
		if d.releaseStats, err = d.manager.HoldStats(ctx); err != nil {
			d.Close()
			return nil, fmt.Errorf("config: stats.enabled: %w", err)
		}
		log.Info("BPF statistics on (stats.enabled)")
	}
	scanner := inventory.NewScanner()
	d.closers = append(d.closers, scanner)
	d.metrics.setPrograms(func(ctx context.Context) ([]runtime.Program, error) {
		// Statistics switched on through BPF_ENABLE_STATS do not show in
		// the sysctl: a scrape reads them all.
		return d.manager.List(ctx, runtime.ListOptions{Stats: true})
	})
	if cfg.CSI.Enabled {
		d.csi, err = csi.New(csiPrograms{manager: d.manager, judged: func(ctx context.Context, what string, ids ...runtime.ID) error {
			return d.server.awaitJudged(ctx, what, ids...)
		}}, csi.Options{
			NodeID:     cfg.CSI.NodeName,
			PodsDir:    cfg.CSI.PodsDir,
			StagingDir: cfg.CSI.StagingDir,
			Logger:     log,
		})
		if err != nil {
			d.Close()
			return nil, err
		}
	}
	d.server = &server{
		manager:      d.manager,
		chain:        d.chain,
		defaultPull:  defaultPull,
		access:       access{uids: cfg.Socket.AllowedUIDs, gids: cfg.Socket.AllowedGIDs, adminGIDs: cfg.Socket.AdminGIDs},
		audit:        &auditor{log: audit},
		metrics:      d.metrics,
		log:          log,
		scanner:      scanner,
		revocation:   cfg.Revocation,
		maxCacheSize: int64(cfg.Cache.MaxSize),
		startJudged:  make(chan struct{}),
	}
	d.metrics.setStats(d.server.stats)
	d.metrics.setNotAdmitted(d.server.admissions.notAdmitted)
	d.metrics.setAwaitingJudgement(d.server.admissions.awaiting)
	// The programs adopted are judged again under the policy in force once
	// bpfd serves (startjudgement.go); until then they are pending.
	if err := d.server.markPending(ctx); err != nil {
		d.Close()
		return nil, err
	}
	d.server.collectSoon()
	d.health = health.NewServer()
	return d, nil
}

// Serve listens on the configured socket (and metrics address), calls ready
// once it accepts requests, and serves until ctx ends; then it stops
// accepting, lets requests under way finish and returns nil. It returns an
// error when it cannot listen or serving fails.
func (d *Daemon) Serve(ctx context.Context, ready func()) error {
	sock, err := listenSocket(d.cfg.Socket.Path, d.cfg.Socket.Group, d.log)
	if err != nil {
		return err
	}
	var metricsListener net.Listener
	if addr := d.cfg.Metrics.Address; addr != "" {
		if metricsListener, err = net.Listen("tcp", addr); err != nil {
			sock.Close()
			return fmt.Errorf("metrics address %s: %w", addr, err)
		}
	}

	var csiListener net.Listener
	if d.csi != nil {
		if csiListener, err = listenSocket(d.cfg.CSI.Socket, "", d.log); err != nil {
			sock.Close()
			if metricsListener != nil {
				metricsListener.Close()
			}
			return err
		}
	}

	gs := grpc.NewServer(
		grpc.Creds(peercred.TransportCredentials()),
		grpc.ForceServerCodecV2(grpccodec.Codec()),
		grpc.MaxRecvMsgSize(d.cfg.Socket.MaxRequestBytes),
		grpc.MaxConcurrentStreams(256),
		grpc.ChainUnaryInterceptor(d.server.interceptor(), recovery(d.log)),
		grpc.ChainStreamInterceptor(d.server.streamInterceptor(), streamRecovery(d.log)),
	)
	pb.RegisterBpfdServer(gs, d.server)
	healthpb.RegisterHealthServer(gs, d.health)

	errs := make(chan error, 3)
	go func() { errs <- gs.Serve(sock) }()
	csiCtx, stopCSI := context.WithCancel(context.Background())
	defer stopCSI()
	csiDone := make(chan struct{})
	if csiListener != nil {
		go func() {
			defer close(csiDone)
			if err := d.serveCSI(csiCtx, csiListener); err != nil {
				errs <- err
			}
		}()
		d.log.Info("serving the CSI driver", "driver", csi.DriverName, "socket", d.cfg.CSI.Socket, "node", d.cfg.CSI.NodeName, "pods_dir", d.cfg.CSI.PodsDir)
	} else {
		close(csiDone)
	}
	var httpServer *http.Server
	if metricsListener != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(d.metrics.Registry(), promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelWarn)}))
		httpServer = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := httpServer.Serve(metricsListener); !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("metrics: %w", err)
			}
		}()
		d.log.Info("serving metrics", "address", metricsListener.Addr().String())
	}
	d.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	d.health.SetServingStatus(pb.Bpfd_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	d.log.Info("serving", "socket", d.cfg.Socket.Path, "state_dir", d.cfg.StateDir, "cache_dir", d.cfg.CacheDir, "bpffs", d.cfg.BpffsDir)
	if ready != nil {
		ready()
	}
	judgeCtx, stopJudging := context.WithCancel(ctx)
	defer stopJudging()
	d.startJudgement.Do(func() {
		d.server.judging.Add(1)
		go func() {
			defer d.server.judging.Done()
			d.server.judgeAtStart(judgeCtx)
		}()
	})

	select {
	case <-ctx.Done():
		err = nil
	case err = <-errs:
	}
	d.health.Shutdown()
	stopped := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(shutdownGrace):
		d.log.Warn("requests still running after the grace period; stopping them", "grace", shutdownGrace)
		gs.Stop()
		<-stopped
	}
	if httpServer != nil {
		shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		httpServer.Shutdown(shutCtx)
		cancel()
	}
	stopCSI()
	<-csiDone
	stopJudging()
	d.server.judging.Wait()
	return err
}

// StartJudged is closed once the programs adopted at start have been
// judged under the trust policy in force, and, under revocation: unload,
// those not admitted unloaded. Serve starts that judgement once it
// serves; the log line "programs adopted at start judged" says the same.
func (d *Daemon) StartJudged() <-chan struct{} { return d.server.startJudged }

// ReloadPolicy re-reads the trust policy file. When the file is invalid the
// policy in force stays and the error says why.
func (d *Daemon) ReloadPolicy() error {
	changed, err := d.chain.ReloadPolicy()
	d.metrics.policyReload(err)
	if err != nil {
		return err
	}
	fp := d.chain.PolicyFingerprint()
	d.metrics.policyInForce(fp)
	if changed {
		d.log.Info("trust policy reloaded", "path", d.cfg.PolicyFile, "fingerprint", fp)
	} else {
		d.log.Info("trust policy reloaded, unchanged", "path", d.cfg.PolicyFile, "fingerprint", fp)
	}
	// Key files may have changed under an unchanged policy file, and
	// signatures in the cache since the last judgement: judge every
	// loaded program again either way.
	if err := d.server.rejudge(context.Background(), "reload", nil); err != nil {
		d.log.Error("programs no longer admitted could not all be unloaded", "error", err)
	}
	return nil
}

// Metrics returns the daemon's metrics.
func (d *Daemon) Metrics() *Metrics { return d.metrics }

// Close closes the state store and the audit log. Programs stay loaded.
func (d *Daemon) Close() error {
	if d.server != nil {
		d.server.collectWG.Wait()
	}
	var errs []error
	if d.releaseStats != nil {
		d.releaseStats()
		d.releaseStats = nil
	}
	if d.manager != nil {
		errs = append(errs, d.manager.Close())
	}
	if d.chain != nil {
		errs = append(errs, d.chain.Close())
	}
	for _, c := range d.closers {
		errs = append(errs, c.Close())
	}
	d.closers = nil
	return errors.Join(errs...)
}
