package k8stest

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// StartManager runs a controller manager against e until the test ends or
// stop is called, with setup registering its controllers. opts may set the
// cache; metrics and health endpoints are off and controller names need not
// be unique, so one process can run an operator and several agents.
func (e *Env) StartManager(tb testing.TB, opts ctrl.Options, setup func(ctrl.Manager) error) (stop func()) {
	tb.Helper()
	opts.Scheme = e.Scheme
	opts.Metrics = metricsserver.Options{BindAddress: "0"}
	opts.HealthProbeBindAddress = "0"
	opts.Controller.SkipNameValidation = ptr.To(true)
	opts.Logger = Logger()
	mgr, err := ctrl.NewManager(e.Config, opts)
	if err != nil {
		tb.Fatalf("manager: %v", err)
	}
	if err := setup(mgr); err != nil {
		tb.Fatalf("set up controllers: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				tb.Errorf("manager: %v", err)
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}

// Logger logs to stderr when the tests run with -v, and nowhere otherwise.
func Logger() logr.Logger {
	if !testing.Verbose() {
		return logr.Discard()
	}
	return logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Name turns the test's name into a prefix fit for object names.
func Name(tb testing.TB) string {
	s := strings.ToLower(tb.Name())
	s = regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(s, "-")
	s = strings.Trim(s, "-")
	if len(s) > 40 {
		s = strings.Trim(s[len(s)-40:], "-")
	}
	return s
}
