package agent

import (
	"fmt"

	"github.com/bpfd-dev/bpfd/pkg/podproc"
)

// ProcScanner is the PodScanner of a node's /proc: podproc.Scan, with the
// agent's own network namespace (the node's: the agent runs with
// hostNetwork) as the one a pod's must not be.
type ProcScanner struct {
	// ProcDir is the node's /proc as the agent sees it: /proc with the
	// pod's hostPID.
	ProcDir string
}

// ScanPods implements PodScanner.
func (s ProcScanner) ScanPods(uids []string) (map[string]PodProcesses, error) {
	hostNetns, err := podproc.SelfNetns(s.ProcDir)
	if err != nil {
		return nil, fmt.Errorf("the node's network namespace: %w", err)
	}
	pods, err := podproc.Scan(s.ProcDir, uids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]PodProcesses, len(pods))
	for uid, p := range pods {
		out[uid] = scannedPod{pod: p, hostNetns: hostNetns}
	}
	return out, nil
}

type scannedPod struct {
	pod       podproc.Pod
	hostNetns uint64
}

func (p scannedPod) NetnsPID() (int, bool)              { return p.pod.NetnsPID(p.hostNetns) }
func (p scannedPod) ContainerPID(id string) (int, bool) { return p.pod.ContainerPID(id) }

var _ PodScanner = ProcScanner{}
