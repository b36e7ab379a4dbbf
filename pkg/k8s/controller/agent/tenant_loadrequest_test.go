package agent

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

func tenantConfig(programs ...v1alpha1.TenantProgram) *v1alpha1.BpfTenantProgramConfig {
	return &v1alpha1.BpfTenantProgramConfig{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "counters", UID: "uid-1"},
		Spec: v1alpha1.BpfTenantProgramConfigSpec{
			Bytecode: v1alpha1.BytecodeImage{Image: image, PullPolicy: v1alpha1.PullIfNotPresent},
			Programs: programs,
		},
	}
}

// TestTenantLoadRequests: network programs attach per pod and interface in
// the pod's netns, uprobes in the named container of each pod that has it,
// granted global programs once; every request carries the tenant scope.
func TestTenantLoadRequests(t *testing.T) {
	pods := []tenantPod{
		{name: "web-1", uid: "uid-b", netnsPID: 100, containers: map[string]int{"app": 101}},
		{name: "web-2", uid: "uid-a", netnsPID: 200, containers: map[string]int{"sidecar": 201}},
		{name: "host", uid: "uid-c", containers: map[string]int{"app": 301}}, // hostNetwork
	}
	tcx := v1alpha1.TenantProgram{Name: "tcx_counter", Type: "tcx", TCX: &v1alpha1.TCXAttach{
		InterfaceSelector: v1alpha1.InterfaceSelector{Interfaces: []string{"eth0"}}, Direction: v1alpha1.Ingress}}
	uprobe := v1alpha1.TenantProgram{Name: "uprobe_counter", Type: "uprobe", Uprobe: &v1alpha1.TenantUprobeAttach{
		Container: "app", Library: "libc", Function: "malloc"}}
	kprobe := v1alpha1.TenantProgram{Name: "kprobe_counter", Type: "kprobe", Kprobe: &v1alpha1.KprobeAttach{Function: "do_unlinkat"}}

	reqs, err := TenantLoadRequests(tenantConfig(tcx, uprobe, kprobe), pods, []v1alpha1.ProgramType{"kprobe", "kprobe"})
	if err != nil {
		t.Fatal(err)
	}
	tcxIn := func(pid string) *bpfdv1.LoadProgram {
		return &bpfdv1.LoadProgram{Name: "tcx_counter", Type: bpfdv1.ProgramType_PROGRAM_TYPE_TCX, Attach: &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Tcx{Tcx: &bpfdv1.TcxAttach{
			Interface: "eth0", Netns: "/proc/" + pid + "/ns/net", Direction: bpfdv1.Direction_DIRECTION_INGRESS}}}}
	}
	uprobeIn := func(pid int32) *bpfdv1.LoadProgram {
		return &bpfdv1.LoadProgram{Name: "uprobe_counter", Type: bpfdv1.ProgramType_PROGRAM_TYPE_UPROBE, Attach: &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Uprobe{Uprobe: &bpfdv1.UprobeAttach{
			Library: "libc", Function: "malloc", ContainerPid: pid}}}}
	}
	kp := &bpfdv1.LoadProgram{Name: "kprobe_counter", Type: bpfdv1.ProgramType_PROGRAM_TYPE_KPROBE, Attach: &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Kprobe{Kprobe: &bpfdv1.KprobeAttach{Function: "do_unlinkat"}}}}
	want := [][]*bpfdv1.LoadProgram{
		{tcxIn("100"), uprobeIn(101), kp},
		{tcxIn("200")},
		{uprobeIn(301)},
	}
	if len(reqs) != len(want) {
		t.Fatalf("%d requests, want %d", len(reqs), len(want))
	}
	hash := reqs[0].GetMetadata()[MetadataRequestHash]
	for i, req := range reqs {
		if diff := cmp.Diff(want[i], req.GetPrograms(), protocmp.Transform()); diff != "" {
			t.Errorf("request %d programs (-want +got):\n%s", i, diff)
		}
		wantScope := &bpfdv1.Tenant{PodUids: []string{"uid-a", "uid-b", "uid-c"}, Grants: []bpfdv1.ProgramType{bpfdv1.ProgramType_PROGRAM_TYPE_KPROBE}}
		if diff := cmp.Diff(wantScope, req.GetTenant(), protocmp.Transform()); diff != "" {
			t.Errorf("request %d tenant (-want +got):\n%s", i, diff)
		}
		if diff := cmp.Diff(&bpfdv1.Owner{Config: "counters", Namespace: "team-a"}, req.GetOwner(), protocmp.Transform()); diff != "" {
			t.Errorf("request %d owner (-want +got):\n%s", i, diff)
		}
		wantMD := map[string]string{MetadataManagedBy: ManagedByAgentTenant, MetadataConfig: "counters", MetadataNamespace: "team-a",
			MetadataConfigUID: "uid-1", MetadataRequestHash: hash}
		if diff := cmp.Diff(wantMD, req.GetMetadata()); diff != "" {
			t.Errorf("request %d metadata (-want +got):\n%s", i, diff)
		}
	}
	// A pod's new process (a restarted container) is a new request.
	pods[0].netnsPID = 150
	again, err := TenantLoadRequests(tenantConfig(tcx, uprobe, kprobe), pods, []v1alpha1.ProgramType{"kprobe"})
	if err != nil {
		t.Fatal(err)
	}
	if again[0].GetMetadata()[MetadataRequestHash] == hash {
		t.Error("the request hash did not change with the pod's process")
	}
	// Nothing to attach in: no request, even for the global program.
	if reqs, err := TenantLoadRequests(tenantConfig(tcx, kprobe), nil, []v1alpha1.ProgramType{"kprobe"}); err != nil || reqs != nil {
		t.Errorf("no pods: %v, %v; want no requests", reqs, err)
	}
	// A type neither the tenant's nor granted, pods or not.
	for _, p := range [][]tenantPod{pods, nil} {
		if _, err := TenantLoadRequests(tenantConfig(tcx, kprobe), p, []v1alpha1.ProgramType{"tracepoint"}); !errors.Is(err, ErrTenantScope) {
			t.Errorf("an ungranted kprobe with %d pods: %v, want ErrTenantScope", len(p), err)
		}
	}
}

type fakeProcs struct {
	netns      int
	containers map[string]int
}

func (f fakeProcs) NetnsPID() (int, bool) { return f.netns, f.netns != 0 }
func (f fakeProcs) ContainerPID(id string) (int, bool) {
	pid, ok := f.containers[id]
	return pid, ok
}

type fakeScanner map[string]PodProcesses

func (f fakeScanner) ScanPods([]string) (map[string]PodProcesses, error) { return f, nil }

// TestResolvePods: a pod without processes is left out, a hostNetwork pod
// gets no network namespace, containers are found by the ids in the pod's
// status.
func TestResolvePods(t *testing.T) {
	pod := func(name, uid string, hostNetwork bool, containers map[string]string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(uid)}, Spec: corev1.PodSpec{HostNetwork: hostNetwork}}
		for n, id := range containers {
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: n, ContainerID: id})
		}
		return p
	}
	scan := fakeScanner{
		"u1": fakeProcs{netns: 10, containers: map[string]int{"containerd://c1": 11}},
		"u2": fakeProcs{netns: 20, containers: map[string]int{"containerd://c2": 21}},
	}
	got, err := resolvePods(scan, []*corev1.Pod{
		pod("a", "u1", false, map[string]string{"app": "containerd://c1", "waiting": ""}),
		pod("b", "u2", true, map[string]string{"app": "containerd://c2"}),
		pod("c", "u3", false, map[string]string{"app": "containerd://c3"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []tenantPod{
		{name: "a", uid: "u1", netnsPID: 10, containers: map[string]int{"app": 11}},
		{name: "b", uid: "u2", containers: map[string]int{"app": 21}},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(tenantPod{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
