// Command xdp-counter is the user-space half of an example application
// built on bpfd: bpfd loads its XDP program (bytecode/xdp_counter.bpf.c,
// which counts packets per IP protocol) on each node, and this program,
// run as an unprivileged pod with no capabilities, reads the counters from
// the volume csi.bpfd.io mounts into the pod and serves them as Prometheus
// metrics.
//
//	xdp-counter [--maps-dir /run/bpfd/maps] [--listen :9100]
//
// GET /metrics serves xdp_counter_packets_total{protocol="udp"} and the
// like, read from the map at each scrape; GET /healthz answers 200 once
// the map is open. Exit codes: 0 stopped by SIGTERM or SIGINT, 1 failed
// (the volume or the map could not be opened, the address not listened on).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/pkg/maps"
)

func main() {
	os.Exit(run(os.Args, os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	app := &cli.App{
		Name:      "xdp-counter",
		Usage:     "serve the packet counters of bpfd's xdp_counter program as Prometheus metrics",
		UsageText: "xdp-counter [--maps-dir DIR] [--listen HOST:PORT]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "maps-dir", Value: "/run/bpfd/maps", Usage: "`DIR` where the pod mounts its csi.bpfd.io volume", EnvVars: []string{"XDP_COUNTER_MAPS_DIR"}},
			&cli.StringFlag{Name: "map", Value: "xdp_stats", Usage: "`NAME` of the counters' map", EnvVars: []string{"XDP_COUNTER_MAP"}},
			&cli.StringFlag{Name: "listen", Value: ":9100", Usage: "`HOST:PORT` to serve /metrics and /healthz on", EnvVars: []string{"XDP_COUNTER_LISTEN"}},
		},
		ErrWriter:       stderr,
		HideHelpCommand: true,
		Action:          serve,
	}
	if err := app.Run(args); err != nil {
		fmt.Fprintf(stderr, "xdp-counter: %v\n", err)
		return 1
	}
	return 0
}

func serve(c *cli.Context) error {
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, nil))
	v, err := maps.Open(c.String("maps-dir"))
	if err != nil {
		return err
	}
	stats, err := v.Map(c.String("map"))
	if err != nil {
		return err
	}
	defer stats.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(stats))

	l, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errs := make(chan error, 1)
	go func() { errs <- srv.Serve(l) }()
	log.Info("serving", "address", l.Addr().String(), "volume", v.Dir(), "map", c.String("map"), "read_only", v.ReadOnly())
	select {
	case err := <-errs:
		return err
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
