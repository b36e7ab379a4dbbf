package controllercmd

import (
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
		return nil, ctrl.Options{}, UsageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", c.String("log-level"))}
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

// UsageError marks a command line that does not parse or lacks a value;
// mains exit with 2 on it.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Required returns a UsageError unless the string flag name is set.
func Required(c *cli.Context, name string) (string, error) {
	v := strings.TrimSpace(c.String(name))
	if v == "" {
		return "", UsageError{fmt.Errorf("--%s is required", name)}
	}
	return v, nil
}
