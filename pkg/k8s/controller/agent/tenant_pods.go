package agent

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

// PodScanner finds the processes of this node's pods from the node's /proc,
// by the pod uids the kubelet names their cgroups after (package podproc's
// Scan is one, wrapped by bpfd-agent).
type PodScanner interface {
	// ScanPods returns, for each uid of uids whose pod has processes on
	// this node, those processes; a uid without any is absent. An error
	// means the scan as a whole failed.
	ScanPods(uids []string) (map[string]PodProcesses, error)
}

// PodProcesses is one pod's processes on this node.
type PodProcesses interface {
	// NetnsPID returns a process in the pod's own network namespace, not
	// the node's; false when there is none.
	NetnsPID() (int, bool)
	// ContainerPID returns a process of the container whose id is
	// containerID, as the pod's status shows it ("containerd://<id>");
	// false when there is none.
	ContainerPID(containerID string) (int, bool)
}

// tenantPod is a selected pod of a tenant config on this node, with the
// processes its programs attach by: netnsPID (0: none, e.g. hostNetwork)
// and, per container name, a process of that container.
type tenantPod struct {
	name, uid  string
	netnsPID   int
	containers map[string]int
}

// selectedPods returns the pods on this node that cfg's podSelector
// matches. It lists pods of cfg's namespace only (the agent's pod cache
// holds this node's pods only), and checks each pod's namespace and node
// again: a pod of another namespace or node is never selected, whatever
// the selector says. Pods being deleted or finished are not selected.
func selectedPods(ctx context.Context, c client.Reader, cfg *v1alpha1.BpfTenantProgramConfig, node string) ([]*corev1.Pod, error) {
	var list corev1.PodList
	if err := c.List(ctx, &list, client.InNamespace(cfg.Namespace)); err != nil {
		return nil, fmt.Errorf("pods of namespace %s: %w", cfg.Namespace, err)
	}
	var pods []*corev1.Pod
	for i := range list.Items {
		pod := &list.Items[i]
		if pod.Namespace != cfg.Namespace || pod.Spec.NodeName != node || !pod.DeletionTimestamp.IsZero() ||
			pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		ok, err := cfg.SelectsPod(pod.Namespace, pod.Labels)
		if err != nil {
			return nil, err
		}
		if ok {
			pods = append(pods, pod)
		}
	}
	slices.SortFunc(pods, func(a, b *corev1.Pod) int { return cmp.Compare(a.Name, b.Name) })
	return pods, nil
}

// resolvePods finds the processes of pods through scan. A pod without
// processes on the node (not started yet, or gone) is left out; so is a
// hostNetwork pod's network namespace, which is the node's.
func resolvePods(scan PodScanner, pods []*corev1.Pod) ([]tenantPod, error) {
	if len(pods) == 0 {
		return nil, nil
	}
	uids := make([]string, len(pods))
	for i, p := range pods {
		uids[i] = string(p.UID)
	}
	procs, err := scan.ScanPods(uids)
	if err != nil {
		return nil, fmt.Errorf("find the processes of pods: %w", err)
	}
	var out []tenantPod
	for _, p := range pods {
		pp, ok := procs[string(p.UID)]
		if !ok || pp == nil {
			continue
		}
		tp := tenantPod{name: p.Name, uid: string(p.UID), containers: map[string]int{}}
		if pid, ok := pp.NetnsPID(); ok && !p.Spec.HostNetwork {
			tp.netnsPID = pid
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.ContainerID == "" {
				continue
			}
			if pid, ok := pp.ContainerPID(cs.ContainerID); ok {
				tp.containers[cs.Name] = pid
			}
		}
		out = append(out, tp)
	}
	return out, nil
}

// podOfPID maps "/proc/<pid>/ns/net" netns paths and container pids to the
// pods of tenant pods, for the report.
func podOfPID(pods []tenantPod) map[int]string {
	m := map[int]string{}
	for _, p := range pods {
		if p.netnsPID != 0 {
			m[p.netnsPID] = p.name
		}
		for _, pid := range p.containers {
			m[pid] = p.name
		}
	}
	return m
}

func netnsPath(pid int) string { return "/proc/" + strconv.Itoa(pid) + "/ns/net" }
