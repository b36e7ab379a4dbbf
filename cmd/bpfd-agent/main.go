// Command bpfd-agent runs on every node of a Kubernetes cluster beside bpfd,
// in the pod bpfd-operator's DaemonSet starts. It loads the programs of the
// BpfProgramConfigs that select its node through the node's bpfd and reports
// in the node's BpfPrograms. It never pulls, verifies or loads bytecode
// itself, and has no access to Secrets.
//
// To run it outside a cluster, e.g. against a test API server:
//
//	bpfd-agent --node-name worker-1 --bpfd-socket /tmp/bpfd.sock --kubeconfig kubeconfig
package main

import (
	"time"

	"github.com/urfave/cli/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/internal/controllercmd"
	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/agent"
)

func main() {
	app := &cli.App{
		Name:  "bpfd-agent",
		Usage: "load the BpfProgramConfigs that select this node through its bpfd",
		Flags: append([]cli.Flag{
			&cli.StringFlag{
				Name:    "node-name",
				Usage:   "name of the Node object of this node",
				EnvVars: []string{"NODE_NAME"},
			},
			&cli.StringFlag{
				Name:    "bpfd-socket",
				Usage:   "bpfd's gRPC unix socket",
				Value:   "/run/bpfd/bpfd.sock",
				EnvVars: []string{"BPFD_SOCKET"},
			},
			&cli.DurationFlag{
				Name:    "resync-period",
				Usage:   "how often each config is checked against bpfd's programs when nothing else happens",
				Value:   5 * time.Minute,
				EnvVars: []string{"BPFD_AGENT_RESYNC_PERIOD"},
			},
			&cli.DurationFlag{
				Name:    "node-report-period",
				Usage:   "how often the node's BPF programs are read from bpfd; its BpfNode is written at most this often, and only on change",
				Value:   agent.DefaultNodeReportPeriod,
				EnvVars: []string{"BPFD_AGENT_NODE_REPORT_PERIOD"},
			},
			&cli.StringFlag{
				Name:    "proc-dir",
				Usage:   "the node's /proc (the pod's hostPID), where the processes of the pods that tenant configs select are found",
				Value:   "/proc",
				EnvVars: []string{"BPFD_AGENT_PROC_DIR"},
			},
		}, controllercmd.Flags...),
		Action: run,
	}
	controllercmd.Main(app)
}

func run(c *cli.Context) error {
	node, err := controllercmd.Required(c, "node-name")
	if err != nil {
		return err
	}
	cfg, opts, err := controllercmd.Setup(c)
	if err != nil {
		return err
	}
	daemon, err := agent.DialDaemon(c.String("bpfd-socket"))
	if err != nil {
		return err
	}
	defer daemon.Close()
	if c.Duration("node-report-period") < time.Second {
		return cliutil.Usagef("--node-report-period %s: at least 1s", c.Duration("node-report-period"))
	}
	mgr, err := agent.NewManager(cfg, opts, daemon, node, agent.Options{
		Reconciler: agent.ReconcilerOptions{ResyncPeriod: c.Duration("resync-period")},
		NodeReport: agent.NodeReportOptions{Period: c.Duration("node-report-period")},
		Pods:       agent.ProcScanner{ProcDir: c.String("proc-dir")},
	})
	if err != nil {
		return err
	}
	ctrl.Log.Info("starting", "node", node, "bpfd_socket", c.String("bpfd-socket"))
	return mgr.Start(ctrl.SetupSignalHandler())
}
