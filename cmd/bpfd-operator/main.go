// Command bpfd-operator runs bpfd on a Kubernetes cluster: it turns the
// bpfd-config ConfigMap into the bpfd DaemonSet (bpfd and bpfd-agent on
// every node), holds each BpfProgramConfig until every node unloaded it, and
// sums the nodes' BpfPrograms up in each config's status.
package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"

	"github.com/bpfd-dev/bpfd/internal/controllercmd"
	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/operator"
)

func main() {
	app := &cli.App{
		Name:  "bpfd-operator",
		Usage: "run bpfd on every node and keep BpfProgramConfigs' finalizers and status",
		Flags: append([]cli.Flag{
			&cli.StringFlag{
				Name:    "namespace",
				Usage:   "namespace of the operator, its ConfigMap and the bpfd DaemonSet",
				EnvVars: []string{"POD_NAMESPACE"},
			},
			&cli.StringFlag{
				Name:    "config-map",
				Usage:   "name of the ConfigMap that configures the bpfd DaemonSet",
				Value:   operator.ConfigMapName,
				EnvVars: []string{"BPFD_CONFIG_MAP"},
			},
			&cli.StringFlag{
				Name:    "bpfd-image",
				Usage:   "bpfd's image unless the ConfigMap names one",
				EnvVars: []string{"BPFD_IMAGE"},
			},
			&cli.StringFlag{
				Name:    "agent-image",
				Usage:   "bpfd-agent's image unless the ConfigMap names one",
				EnvVars: []string{"BPFD_AGENT_IMAGE"},
			},
			&cli.StringFlag{
				Name:    "csi-registrar-image",
				Usage:   "the CSI node-driver-registrar's image unless the ConfigMap names one",
				Value:   operator.DefaultCSIRegistrarImage,
				EnvVars: []string{"BPFD_CSI_REGISTRAR_IMAGE"},
			},
			&cli.BoolFlag{
				Name:    "leader-elect",
				Usage:   "elect a leader among operator replicas (a Lease in the namespace)",
				EnvVars: []string{"BPFD_LEADER_ELECT"},
			},
		}, controllercmd.Flags...),
		Action: run,
	}
	controllercmd.Main(app)
}

func run(c *cli.Context) error {
	ns, err := controllercmd.Required(c, "namespace")
	if err != nil {
		return err
	}
	cfg, opts, err := controllercmd.Setup(c)
	if err != nil {
		return err
	}
	opts.Cache = operator.CacheOptions(ns)
	opts.LeaderElection = c.Bool("leader-elect")
	opts.LeaderElectionID = "bpfd-operator.bpfd.io"
	opts.LeaderElectionNamespace = ns
	mgr, err := ctrl.NewManager(cfg, opts)
	if err != nil {
		return fmt.Errorf("controller manager: %w", err)
	}
	ctx := ctrl.SetupSignalHandler()
	if err := operator.NewConfigReconciler(mgr.GetClient(), mgr.GetAPIReader(), operator.ConfigReconcilerOptions{}).SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("config controller: %w", err)
	}
	if err := operator.NewTenantConfigReconciler(mgr.GetClient(), mgr.GetAPIReader()).SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("tenant config controller: %w", err)
	}
	defaults := operator.Settings{BpfdImage: c.String("bpfd-image"), AgentImage: c.String("agent-image"), CSIRegistrarImage: c.String("csi-registrar-image")}
	cm := types.NamespacedName{Namespace: ns, Name: c.String("config-map")}
	if err := operator.NewDaemonSetReconciler(mgr.GetClient(), cm, defaults).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("DaemonSet controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	ctrl.Log.Info("starting", "namespace", ns, "config_map", cm.Name)
	return mgr.Start(ctx)
}
