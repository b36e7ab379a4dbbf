package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bpfd-dev/bpfd/internal/testing/k8stest"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/operator"
)

// appNamespace is the example application's namespace.
const appNamespace = "xdp-counter"

// testApplication deploys examples/xdp-counter with kubectl apply -k,
// points its config at the test's artifact and veth, and plays the kubelet
// for the DaemonSet's pod on this node: the pod is created (the API
// server's Pod Security admission enforces restricted in the namespace),
// its csi.bpfd.io volume is published through bpfd's CSI socket with the
// pod's info, and the container's command, the example's user-space half,
// runs as its uid with its fsGroup and no capabilities. It serves the
// counters the XDP program counts for the veth's traffic. A pod of a
// namespace the config does not admit is refused its volume, until the
// config admits it: then bpfd updates the programs' owner without
// reloading them, and their counts go on.
func (c *cluster) testApplication(t *testing.T) {
	ctx := context.Background()
	v := testutil.NewVethPair(t)
	testutil.AllowUnprivilegedMapAccess(t)
	example := filepath.Join(testEnv.Root, "examples", "xdp-counter")
	t.Logf("kubectl apply -k examples/xdp-counter:\n%s", kubectl(t, c.admin, "apply", "-k", example))
	t.Cleanup(func() { c.deleteConfig(t, "xdp-counter") })

	// The application's operator points the config at its artifact and
	// interface, as a user edits the example.
	editConfig(t, "xdp-counter", func(cfg *v1alpha1.BpfProgramConfig) {
		cfg.Spec.Bytecode.Image = c.images["xdp"]
		cfg.Spec.Programs[0].XDP.InterfaceSelector = v1alpha1.InterfaceSelector{Interfaces: []string{v.Host}}
	})
	bp := c.waitProgram(t, "xdp-counter", v1alpha1.ReasonLoaded)
	ids := programIDs(bp)
	stats := mapNamed(t, bp.Status.Programs[0], "xdp_stats")

	ds := &appsv1.DaemonSet{}
	if err := testEnv.Client.Get(ctx, client.ObjectKey{Namespace: appNamespace, Name: "xdp-counter"}, ds); err != nil {
		t.Fatal(err)
	}
	csiConn := c.dialCSI(t)
	node := csipb.NewNodeClient(csiConn)
	bins := appBinary(t)

	pod := c.createPod(t, appNamespace, ds.Spec.Template)
	target, err := c.publish(t, node, pod)
	if err != nil {
		t.Fatalf("publish the volume of pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	app := c.runApp(t, bins, pod, target)
	for _, n := range []int{10, 25} {
		v.SendUDPFromPeer(t, n)
		want := testutil.ReadU64(t, stats.PinPath, udp)
		k8stest.Eventually(t, 10*time.Second, func() error {
			if got := app.metric(t, `xdp_counter_packets_total{protocol="udp"}`); got != want {
				return fmt.Errorf("the application serves %d UDP packets, the map holds %d", got, want)
			}
			return nil
		})
	}
	t.Logf("the unprivileged application counts %d UDP packets", app.metric(t, `xdp_counter_packets_total{protocol="udp"}`))

	t.Run("a pod of a namespace the config does not admit is refused", func(t *testing.T) {
		c.createNamespace(t, "web")
		other := c.createPod(t, "web", ds.Spec.Template)
		_, err := c.publish(t, node, other)
		if st := status.Convert(err); st.Code() != codes.PermissionDenied ||
			!strings.Contains(st.Message(), "config xdp-counter does not admit pods of namespace web") {
			t.Fatalf("publish for a pod of web: %v, want PermissionDenied naming the config and the namespace", err)
		}
		t.Logf("refused: %s", status.Convert(err).Message())
		c.checkNoVolume(t, other)

		// Admitted now: bpfd updates the owner of the loaded programs,
		// which keep their maps and counts.
		before := testutil.ReadU64(t, stats.PinPath, udp)
		editConfig(t, "xdp-counter", func(cfg *v1alpha1.BpfProgramConfig) {
			cfg.Spec.MapReaderNamespaces = append(cfg.Spec.MapReaderNamespaces, "web")
		})
		after := c.waitProgram(t, "xdp-counter", v1alpha1.ReasonLoaded)
		if !slices.Equal(programIDs(after), ids) {
			t.Errorf("admitting a namespace reloaded the programs: %v, before %v", programIDs(after), ids)
		}
		k8stest.Eventually(t, timeout, func() error {
			for _, p := range c.programsOf(t, "xdp-counter") {
				if !slices.Contains(p.GetOwner().GetMapReaderNamespaces(), "web") {
					return fmt.Errorf("program %d's owner admits %v", p.GetId(), p.GetOwner().GetMapReaderNamespaces())
				}
			}
			return nil
		})
		if got := testutil.ReadU64(t, stats.PinPath, udp); got < before {
			t.Errorf("the counter went from %d to %d", before, got)
		}
		if _, err := c.publish(t, node, other); err != nil {
			t.Fatalf("publish for a pod of web once admitted: %v", err)
		}
	})

	t.Run("unpublish removes the volume; repeated, it still succeeds", func(t *testing.T) {
		app.stop(t)
		for i := range 2 {
			if _, err := node.NodeUnpublishVolume(ctx, &csipb.NodeUnpublishVolumeRequest{VolumeId: volumeID(pod), TargetPath: target}); err != nil {
				t.Fatalf("unpublish #%d: %v", i+1, err)
			}
		}
		c.checkNoVolume(t, pod)
	})
}

// editConfig applies edit to the config named name, again on the latest
// version when the operator or the agent wrote it meanwhile.
func editConfig(t *testing.T, name string, edit func(*v1alpha1.BpfProgramConfig)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cfg := &v1alpha1.BpfProgramConfig{}
		if err := testEnv.Client.Get(context.Background(), client.ObjectKey{Name: name}, cfg); err != nil {
			return err
		}
		edit(cfg)
		return testEnv.Client.Update(context.Background(), cfg)
	})
	if err != nil {
		t.Fatalf("edit config %s: %v", name, err)
	}
}

// dialCSI connects to the CSI socket of the DaemonSet's bpfd, as the
// kubelet does.
func (c *cluster) dialCSI(t *testing.T) *grpc.ClientConn {
	t.Helper()
	sock := c.pod.hostPath(t, container(t, c.pod, "bpfd"), operator.CSISocket)
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func (c *cluster) createNamespace(t *testing.T, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}
	if err := testEnv.Client.Create(context.Background(), ns); client.IgnoreAlreadyExists(err) != nil {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: "xdp-counter"}}
	if err := testEnv.Client.Create(context.Background(), sa); client.IgnoreAlreadyExists(err) != nil {
		t.Fatal(err)
	}
}

// createPod creates the pod a DaemonSet controller would for template on
// this node; the API server's admission (Pod Security) decides.
func (c *cluster) createPod(t *testing.T, namespace string, template corev1.PodTemplateSpec) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, GenerateName: "xdp-counter-", Labels: template.Labels},
		Spec:       *template.Spec.DeepCopy(),
	}
	pod.Spec.NodeName = c.node
	if err := testEnv.Client.Create(context.Background(), pod); err != nil {
		t.Fatalf("create a pod of the DaemonSet in %s: %v", namespace, err)
	}
	t.Cleanup(func() {
		testEnv.Client.Delete(context.Background(), pod, client.GracePeriodSeconds(0))
	})
	return pod
}

// podDir returns the kubelet's directory of pod under the DaemonSet pod's
// kubelet-pods volume.
func (c *cluster) podDir(t *testing.T, pod *corev1.Pod) string {
	return filepath.Join(c.pod.hostPath(t, container(t, c.pod, "bpfd"), operator.KubeletPodsDir), string(pod.UID))
}

// volumeID is the handle the kubelet gives a pod's ephemeral volume.
func volumeID(pod *corev1.Pod) string { return "csi-" + string(pod.UID) }

// publish makes the kubelet's NodePublishVolume request for the pod's
// csi.bpfd.io volume and returns its target path.
func (c *cluster) publish(t *testing.T, node csipb.NodeClient, pod *corev1.Pod) (string, error) {
	t.Helper()
	var vol *corev1.Volume
	for i, v := range pod.Spec.Volumes {
		if v.CSI != nil && v.CSI.Driver == "csi.bpfd.io" {
			vol = &pod.Spec.Volumes[i]
		}
	}
	if vol == nil {
		t.Fatalf("pod %s/%s has no csi.bpfd.io volume", pod.Namespace, pod.Name)
	}
	dir := filepath.Join(c.podDir(t, pod), "volumes", "kubernetes.io~csi", vol.Name)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	// The kubelet's own attributes win over the pod's.
	attrs := map[string]string{}
	for k, v := range vol.CSI.VolumeAttributes {
		attrs[k] = v
	}
	attrs["csi.storage.k8s.io/pod.name"] = pod.Name
	attrs["csi.storage.k8s.io/pod.namespace"] = pod.Namespace
	attrs["csi.storage.k8s.io/pod.uid"] = string(pod.UID)
	attrs["csi.storage.k8s.io/serviceAccount.name"] = pod.Spec.ServiceAccountName
	attrs["csi.storage.k8s.io/ephemeral"] = "true"
	mount := &csipb.VolumeCapability_MountVolume{}
	if g := pod.Spec.SecurityContext.FSGroup; g != nil {
		mount.VolumeMountGroup = strconv.FormatInt(*g, 10)
	}
	target := filepath.Join(dir, "mount")
	_, err := node.NodePublishVolume(context.Background(), &csipb.NodePublishVolumeRequest{
		VolumeId:   volumeID(pod),
		TargetPath: target,
		VolumeCapability: &csipb.VolumeCapability{
			AccessType: &csipb.VolumeCapability_Mount{Mount: mount},
			AccessMode: &csipb.VolumeCapability_AccessMode{Mode: csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		},
		Readonly:      ptr.Deref(vol.CSI.ReadOnly, false),
		VolumeContext: attrs,
	})
	if err == nil {
		t.Cleanup(func() {
			node.NodeUnpublishVolume(context.Background(), &csipb.NodeUnpublishVolumeRequest{VolumeId: volumeID(pod), TargetPath: target})
		})
	}
	return target, err
}

// checkNoVolume checks that nothing of the pod's volume is mounted or left.
func (c *cluster) checkNoVolume(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	dir := c.podDir(t, pod)
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			t.Errorf("left mounted: %s", f[4])
		}
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "volumes", "kubernetes.io~csi", "*", "mount"))
	if len(matches) > 0 {
		t.Errorf("left behind: %v", matches)
	}
}

// appBinary builds the example's user-space half where any user may run it.
func appBinary(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "bpfd-e2e-app-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goTool(), "build", "-trimpath", "-o", dir+"/", "./examples/xdp-counter")
	cmd.Dir = testEnv.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build examples/xdp-counter: %v\n%s", err, out)
	}
	return filepath.Join(dir, "xdp-counter")
}

// app is the example's user-space half running as its pod's container.
type app struct {
	p    *process
	addr string
}

// runApp runs the pod's container command with its maps volume at target,
// as the pod's uid, gid and fsGroup, with no capabilities (setpriv), and
// waits until it serves.
func (c *cluster) runApp(t *testing.T, bin string, pod *corev1.Pod, target string) *app {
	t.Helper()
	// The stand-in runs the container on the host's paths: the reader must
	// be able to walk down to its volume, as it could to the bind mount
	// the container runtime would make.
	for d := filepath.Dir(target); strings.HasPrefix(d, c.pod.dir); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	sc := pod.Spec.SecurityContext
	ctr := pod.Spec.Containers[0]
	a := &app{addr: testutil.FreeLoopbackAddr(t)}
	var args []string
	for _, arg := range ctr.Args {
		switch {
		case strings.HasPrefix(arg, "--maps-dir="):
			arg = "--maps-dir=" + target
		case strings.HasPrefix(arg, "--listen="):
			arg = "--listen=" + a.addr
		}
		args = append(args, arg)
	}
	priv := []string{
		fmt.Sprintf("--reuid=%d", *sc.RunAsUser), fmt.Sprintf("--regid=%d", *sc.RunAsGroup),
		fmt.Sprintf("--groups=%d", *sc.FSGroup), "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--", bin,
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatalf("setpriv (util-linux): %v", err)
	}
	a.p = startProcess(t, "xdp-counter", setpriv, append(priv, args...), nil)
	a.p.stopAtEnd(t)
	c.processes = append(c.processes, a.p)
	k8stest.Eventually(t, 10*time.Second, func() error {
		if a.p.exited() {
			t.Fatalf("xdp-counter exited: %s", a.p.tail(20))
		}
		resp, err := http.Get("http://" + a.addr + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "Cap") && !strings.HasSuffix(line, "0000000000000000") {
			t.Errorf("the application runs with capabilities: %s", line)
		}
		if strings.HasPrefix(line, "Uid:") || strings.HasPrefix(line, "Groups:") {
			t.Logf("the application's %s", line)
		}
	}
	return a
}

// metric returns the value of the sample named exactly series, 0 when
// absent.
func (a *app) metric(t *testing.T, series string) uint64 {
	t.Helper()
	resp, err := http.Get("http://" + a.addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape xdp-counter: %v (%s)", err, a.p.tail(10))
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("sample %q: %v", sc.Text(), err)
			}
			return uint64(n)
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return 0
}

func (a *app) stop(t *testing.T) {
	if st := a.p.stop(t); st.ExitCode() != 0 {
		t.Errorf("xdp-counter exited with %v after SIGTERM: %s", st, a.p.tail(10))
	}
}
