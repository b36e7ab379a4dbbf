package agent

import (
	"context"
	"fmt"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

// The agent's client-side limits on requests to the API server, the
// kubelet's defaults: one agent runs on every node, so a cluster's agents
// together can send thousands of requests a second when every config
// changes at once. The API server's priority and fairness queue what gets
// through.
const (
	ClientQPS   = 50
	ClientBurst = 100
)

// Options are the agent's: its Reconciler's and its NodeReporter's, and
// how it finds the processes of its node's pods.
type Options struct {
	Reconciler ReconcilerOptions
	NodeReport NodeReportOptions
	// Pods finds the processes of the node's pods, for tenant configs. Nil
	// runs no TenantReconciler: the node's BpfTenantProgramConfigs are
	// left alone.
	Pods PodScanner
}

// NewManager returns node's agent as a controller manager, ready to Start:
// a manager on cfg (with the agent's client limits, ClientQPS and
// ClientBurst, in place of cfg's) and opts (whose cache it sets with
// CacheOptions), running node's Reconciler and NodeReporter with daemon and
// aopts, with ping health and readiness checks. bpfd-agent runs it; so does
// the scale bench, with one manager per simulated node.
func NewManager(cfg *rest.Config, opts ctrl.Options, daemon Daemon, node string, aopts Options) (ctrl.Manager, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = ClientQPS, ClientBurst
	opts.Cache = CacheOptions(node)
	mgr, err := ctrl.NewManager(cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("controller manager: %w", err)
	}
	if err := NewReconciler(mgr.GetClient(), daemon, node, aopts.Reconciler).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("agent controller: %w", err)
	}
	if aopts.Pods != nil {
		if err := NewTenantReconciler(mgr.GetClient(), daemon, node, aopts.Pods, aopts.Reconciler).SetupWithManager(mgr); err != nil {
			return nil, fmt.Errorf("agent tenant controller: %w", err)
		}
	}
	if err := IndexPodUIDs(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return nil, fmt.Errorf("index pods: %w", err)
	}
	if err := mgr.Add(NewNodeReporter(mgr.GetClient(), daemon, node, mgr.GetEventRecorder("bpfd-agent"), aopts.NodeReport)); err != nil {
		return nil, fmt.Errorf("BpfNode reporter: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, fmt.Errorf("health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return nil, fmt.Errorf("readiness check: %w", err)
	}
	return mgr, nil
}
