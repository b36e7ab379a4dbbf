package controllercmd

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/go-logr/logr"
	"github.com/urfave/cli/v2"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

// Flags are the flags of every controller manager.
var Flags = []cli.Flag{
	&cli.StringFlag{
		Name:    "kubeconfig",
		Usage:   "kubeconfig file; empty means in-cluster, then $HOME/.kube/config",
		EnvVars: []string{"KUBECONFIG"},
	},
	&cli.StringFlag{
		Name:    "log-level",
		Usage:   "debug, info, warn or error",
		Value:   "info",
		EnvVars: []string{"BPFD_LOG_LEVEL"},
	},
	&cli.StringFlag{
		Name:    "metrics-bind-address",
		Usage:   "address of the Prometheus metrics endpoint; 0 turns it off",
		Value:   "0",
		EnvVars: []string{"BPFD_METRICS_BIND_ADDRESS"},
	},
	&cli.StringFlag{
		Name:    "health-probe-bind-address",
		Usage:   "address of the /healthz and /readyz endpoints; 0 turns them off",
		Value:   "0",
		EnvVars: []string{"BPFD_HEALTH_PROBE_BIND_ADDRESS"},
	},
}

// Setup reads Flags: it installs a JSON logger on stderr for
// controller-runtime and client-go and returns the REST config and the
// manager options (scheme with bpfd's types, metrics, health).
func Setup(c *cli.Context) (*rest.Config, ctrl.Options, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, ctrl.Options{}, cliutil.UsageError{Err: fmt.Errorf("--log-level %q: want debug, info, warn or error", c.String("log-level"))}
	}
	logger := logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctrl.SetLogger(logger)
	klog.SetLogger(logger)

	var cfg *rest.Config
	var err error
	if path := c.String("kubeconfig"); path != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", path)
	} else {
		cfg, err = ctrl.GetConfig()
	}
	if err != nil {
		return nil, ctrl.Options{}, fmt.Errorf("kubernetes client config: %w", err)
	}

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, ctrl.Options{}, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, ctrl.Options{}, err
	}
	return cfg, ctrl.Options{
		Scheme:                 scheme,
		Logger:                 logger,
		Metrics:                metricsserver.Options{BindAddress: c.String("metrics-bind-address")},
		HealthProbeBindAddress: c.String("health-probe-bind-address"),
	}, nil
}

// Main runs app, a controller manager's command line, with os.Args and
// exits: 0 when it returns, 2 on a usage error, 1 on any other error, which
// it prints once on stderr.
func Main(app *cli.App) {
	app.ExitErrHandler = func(*cli.Context, error) {} // reported once, below
	app.OnUsageError = cliutil.OnUsageError
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", app.Name, err)
		if errors.As(err, new(cliutil.UsageError)) {
			os.Exit(cliutil.ExitUsage)
		}
		os.Exit(cliutil.ExitError)
	}
}

// Required returns a UsageError unless the string flag name is set.
func Required(c *cli.Context, name string) (string, error) {
	v := strings.TrimSpace(c.String(name))
	if v == "" {
		return "", cliutil.Usagef("--%s is required", name)
	}
	return v, nil
}
