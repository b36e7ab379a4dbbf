package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bpfd-dev/bpfd/internal/testing/k8stest"
	"github.com/bpfd-dev/bpfd/internal/testing/testimage"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/agent"
	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/operator"
	"github.com/bpfd-dev/bpfd/pkg/verify"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

var testEnv *k8stest.Env

func TestMain(m *testing.M) {
	testutil.ServeHelpers() // StartPodProcess's
	k8stest.Main(m, &testEnv)
}

const (
	// namespace is config/default's.
	namespace = "bpfd"
	// registrySecret holds the registry's credentials; bpfd-config names it.
	registrySecret = "bpfd-registry-credentials"
	// resync is the agent's resync period here (5 minutes in a cluster), so
	// that the tests see it check its configs against bpfd again and again.
	resync = 2 * time.Second
	// nodeReport is the agent's BpfNode report period here (30s in a
	// cluster).
	nodeReport = time.Second
	timeout    = 60 * time.Second
)

// cluster is envtest's control plane with config/default applied and
// bpfd-operator running, one Node named like this host whose bpfd and
// bpfd-agent run as the operator's DaemonSet says, and a registry (with
// basic authentication) holding signed artifacts.
type cluster struct {
	t *testing.T
	// admin is a kubeconfig of an administrator, for kubectl.
	admin string
	// node is the Node's name: this host's.
	node string
	bins string
	// images maps an artifact's name to its reference by digest.
	images   map[string]string
	registry *testutil.Registry
	trusted  *testimage.Key

	pod         *pod // the DaemonSet's pod on node
	bpfd        *process
	metricsAddr string
	daemon      pb.BpfdClient
	agent       *process
	agentConfig string // the agent's kubeconfig
	// processes are the bpfd and agent processes run so far.
	processes []*process
}

// startCluster starts everything; it all stops, and every program bpfd
// loaded is unloaded, when t ends.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	testutil.RequirePrivileged(t)
	ctx := context.Background()
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, admin: testEnv.Kubeconfig(t), node: strings.ToLower(host), images: map[string]string{}}
	c.bins = buildCommands(t, "bpfd", "bpfd-agent", "bpfd-operator")

	t.Logf("kubectl apply -k config/default:\n%s", kubectl(t, c.admin, "apply", "-k", filepath.Join(testEnv.Root, "config", "default")))
	c.startRegistry(t)
	c.configureDaemonSet(t)
	c.startOperator(t)

	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: c.node, Labels: map[string]string{
		"kubernetes.io/hostname": c.node, "kubernetes.io/os": "linux",
	}}}
	if err := testEnv.Client.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	ds := c.waitDaemonSet(t)

	t.Run("the DaemonSet's bpfd starts with the shipped trust policy", func(t *testing.T) {
		p := newPod(t, testEnv.Client, namespace, c.node, ds.Spec.Template.Spec)
		b, _ := c.startBpfd(t, p)
		b.stopAtEnd(t)
		if st := b.stop(t); st.ExitCode() != 0 {
			t.Errorf("bpfd exited with %v after SIGTERM:\n%s", st, b.tail(20))
		}
	})

	c.trustTestKey(t)
	c.pod = newPod(t, testEnv.Client, namespace, c.node, ds.Spec.Template.Spec)
	conn, err := grpc.NewClient("unix://"+c.pod.hostPath(t, container(t, c.pod, "bpfd"), operator.SocketPath),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c.daemon = pb.NewBpfdClient(conn)
	// Runs before the pod's directory goes and the connection closes.
	t.Cleanup(c.teardown)
	c.bpfd, c.metricsAddr = c.startBpfd(t, c.pod)
	c.agentConfig = testEnv.KubeconfigAs(t, serviceAccount(operator.AgentServiceAccount),
		serviceAccountGroups, map[string][]string{"authentication.kubernetes.io/node-name": {c.node}})
	return c
}

// teardown stops the agent, unloads every program bpfd holds and stops
// bpfd, showing the output of each process the cluster ran if t failed.
func (c *cluster) teardown() {
	t := c.t
	if c.agent != nil {
		c.agent.stop(t)
	}
	if c.bpfd != nil && !c.bpfd.exited() {
		c.unloadAll(t)
		c.bpfd.stop(t)
	}
	for _, p := range c.processes {
		p.logIfFailed(t)
	}
}

// startRegistry starts a registry that demands a password and pushes the
// test's artifacts to it: the xdp and tracepoint counters and a program
// the verifier rejects signed by the key the node will trust, and another
// XDP program signed by another key.
func (c *cluster) startRegistry(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	c.registry = testutil.StartRegistry(t, testutil.WithBasicAuth("bpfd", "e2e-secret"))
	dockerConfig := t.TempDir()
	if err := os.WriteFile(filepath.Join(dockerConfig, "config.json"), c.registryCredentials(), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dockerConfig) // for the pushes below

	keys := t.TempDir()
	var err error
	if c.trusted, err = testimage.NewKey(keys, "trusted"); err != nil {
		t.Fatal(err)
	}
	untrusted, err := testimage.NewKey(keys, "untrusted")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []struct {
		name, repo, object string
		key                *testimage.Key
	}{
		{"xdp", "bpfd/xdp_counter", "bytecode/xdp_counter.bpf.o", c.trusted},
		{"tracepoint", "bpfd/tracepoint_counter", "bytecode/tracepoint_counter.bpf.o", c.trusted},
		{"verifier", "bpfd/verifier_reject", "pkg/runtime/testdata/verifier_reject.bpf.o", c.trusted},
		// For namespace tenantNamespace alone (trustTestKey's rule tenants).
		{"tenant", "bpfd/tenants/tc_counter", "bytecode/tc_counter.bpf.o", c.trusted},
		// Not the bytes of an artifact the trusted key signed: a signature
		// is over a digest, whatever the repository.
		{"untrusted", "bpfd/untrusted/xdp_verdict", "bytecode/xdp_verdict.bpf.o", untrusted},
	} {
		ref, err := testimage.Build(ctx, c.registry.Host+"/"+a.repo+":v1", filepath.Join(testEnv.Root, a.object))
		if err != nil {
			t.Fatalf("push %s: %v", a.repo, err)
		}
		if err := a.key.Sign(ctx, ref, verify.FormatBundle); err != nil {
			t.Fatalf("sign %s: %v", ref, err)
		}
		c.images[a.name] = ref
	}
}

// registryCredentials returns a Docker config file with the registry's
// credentials.
func (c *cluster) registryCredentials() []byte {
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{
		c.registry.Host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte("bpfd:e2e-secret"))},
	}})
	return b
}

// configureDaemonSet puts the registry's credentials in a Secret and names
// it in bpfd-config, as an administrator of a cluster with a private
// registry would.
func (c *cluster) configureDaemonSet(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: registrySecret},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: c.registryCredentials()},
	}
	if err := testEnv.Client.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{}
	if err := testEnv.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: operator.ConfigMapName}, cm); err != nil {
		t.Fatal(err)
	}
	cm.Data[operator.KeyRegistryCredentials] = registrySecret
	if err := testEnv.Client.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
}

// trustTestKey replaces the shipped trust policy with one that trusts the
// test's key for the registry's bpfd/ repositories, and for bpfd/tenants/
// in namespace tenantNamespace alone.
func (c *cluster) trustTestKey(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	pub, err := os.ReadFile(c.trusted.PubFile)
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{}
	if err := testEnv.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: operator.DefaultTrustPolicyConfigMap}, cm); err != nil {
		t.Fatal(err)
	}
	cm.Data = map[string]string{
		"policy.yaml": fmt.Sprintf(`apiVersion: bpfd.io/v1alpha1
kind: TrustPolicy
default: deny
rules:
- name: tenants
  images: ["%[1]s/bpfd/tenants/**"]
  namespaces: [%[2]s]
  authorities: [{key: {path: e2e.pub}}]
- name: e2e
  images: ["%[1]s/bpfd/**"]
  authorities: [{key: {path: e2e.pub}}]
`, c.registry.Host, tenantNamespace),
		"e2e.pub": string(pub),
	}
	if err := testEnv.Client.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
}

// startOperator runs bpfd-operator as config/default's Deployment does, as
// its service account, with its health endpoint on a free port.
func (c *cluster) startOperator(t *testing.T) {
	t.Helper()
	dep := &appsv1.Deployment{}
	if err := testEnv.Client.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: "bpfd-operator"}, dep); err != nil {
		t.Fatal(err)
	}
	args, env := newPod(t, testEnv.Client, namespace, "", dep.Spec.Template.Spec).command(t, "operator")
	kubeconfig := testEnv.KubeconfigAs(t, serviceAccount("bpfd-operator"), serviceAccountGroups, nil)
	args = append(args, "--kubeconfig="+kubeconfig, "--health-probe-bind-address=127.0.0.1:0")
	startProcess(t, "bpfd-operator", filepath.Join(c.bins, "bpfd-operator"), args, env).stopAtEnd(t)
}

// waitDaemonSet waits for the operator's DaemonSet with the registry
// credentials.
func (c *cluster) waitDaemonSet(t *testing.T) *appsv1.DaemonSet {
	t.Helper()
	ds := &appsv1.DaemonSet{}
	k8stest.Eventually(t, timeout, func() error {
		if err := testEnv.Client.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: operator.DaemonSetName}, ds); err != nil {
			return err
		}
		for _, v := range ds.Spec.Template.Spec.Volumes {
			if v.Secret != nil && v.Secret.SecretName == registrySecret {
				return nil
			}
		}
		return fmt.Errorf("DaemonSet %s has no volume of Secret %s yet", ds.Name, registrySecret)
	})
	return ds
}

// startBpfd runs the bpfd container of p and waits until it serves; the
// caller stops it. Two
// flags are added to the pod's: a configuration file (the host's
// /etc/bpfd/bpfd.yaml is not the container's) and a metrics address, whose
// request counts tell what the agent asked.
func (c *cluster) startBpfd(t *testing.T, p *pod) (_ *process, metricsAddr string) {
	t.Helper()
	args, env := p.command(t, "bpfd")
	config := filepath.Join(p.dir, "bpfd.yaml")
	if err := os.WriteFile(config, []byte("apiVersion: bpfd.io/v1alpha1\nkind: DaemonConfig\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	metricsAddr = testutil.FreeLoopbackAddr(t)
	args = append(args, "--config="+config, "--metrics-address="+metricsAddr)
	b := startProcess(t, "bpfd", filepath.Join(c.bins, "bpfd"), args, env)
	c.processes = append(c.processes, b)
	waitServing(t, b, p.hostPath(t, container(t, p, "bpfd"), operator.SocketPath))
	return b, metricsAddr
}

// restartBpfd stops bpfd (its programs stay loaded) and starts it again.
func (c *cluster) restartBpfd(t *testing.T) {
	t.Helper()
	if st := c.bpfd.stop(t); st.ExitCode() != 0 {
		t.Fatalf("bpfd exited with %v after SIGTERM", st)
	}
	c.bpfd, c.metricsAddr = c.startBpfd(t, c.pod)
}

// startAgent runs the bpfd-agent container of the pod, as its service
// account bound to the node, checking its configs every resync. It runs
// until the cluster's teardown or stopAgent.
func (c *cluster) startAgent(t *testing.T) {
	t.Helper()
	args, env := c.pod.command(t, "bpfd-agent")
	args = append(args, "--kubeconfig="+c.agentConfig, fmt.Sprintf("--resync-period=%s", resync), fmt.Sprintf("--node-report-period=%s", nodeReport))
	// As its container's user (not root, no capabilities): it reaches
	// bpfd's socket by the group bpfd gives it.
	cred := c.pod.credential(t, "bpfd-agent")
	if cred == nil {
		t.Fatal("the DaemonSet runs bpfd-agent as root")
	}
	bin := filepath.Join(c.bins, "bpfd-agent")
	passable(t, bin)
	shareWith(t, c.agentConfig, int(cred.Uid))
	passable(t, c.pod.volumes["run"])
	c.agent = startProcessAs(t, "bpfd-agent", bin, args, env, cred)
	c.processes = append(c.processes, c.agent)
}

// unloadAll unloads every program bpfd holds.
func (c *cluster) unloadAll(t *testing.T) {
	ctx := context.Background()
	resp, err := c.daemon.List(ctx, &pb.ListRequest{})
	if err != nil {
		t.Errorf("list programs: %v", err)
		return
	}
	var ids []uint64
	for _, p := range resp.GetPrograms() {
		ids = append(ids, p.GetId())
	}
	if len(ids) == 0 {
		return
	}
	if _, err := c.daemon.Unload(ctx, &pb.UnloadRequest{Ids: ids}); err != nil {
		t.Errorf("unload %v: %v", ids, err)
	}
}

// programsOf returns what bpfd holds for the config name, as the agent
// finds it: by the metadata the agent put on the programs.
func (c *cluster) programsOf(t *testing.T, config string) []*pb.Program {
	t.Helper()
	resp, err := c.daemon.List(context.Background(), &pb.ListRequest{Selector: map[string]string{
		agent.MetadataManagedBy: agent.ManagedByAgent, agent.MetadataConfig: config,
	}})
	if err != nil {
		t.Fatalf("list programs of %s: %v", config, err)
	}
	return resp.GetPrograms()
}

func container(t *testing.T, p *pod, name string) corev1.Container {
	t.Helper()
	i := slices.IndexFunc(p.spec.Containers, func(c corev1.Container) bool { return c.Name == name })
	if i < 0 {
		t.Fatalf("the pod has no container %s", name)
	}
	return p.spec.Containers[i]
}

// waitServing waits until the bpfd process b serves its health service on
// socket.
func waitServing(t *testing.T, b *process, socket string) {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: "bpfd.v1.Bpfd"})
		cancel()
		switch {
		case err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING:
			return
		case b.exited():
			t.Fatalf("bpfd exited at start (%v):\n%s", b.cmd.ProcessState, b.tail(30))
		case time.Now().After(deadline):
			t.Fatalf("bpfd not serving on %s after 30s (%v):\n%s", socket, err, b.tail(30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func serviceAccount(name string) string { return "system:serviceaccount:" + namespace + ":" + name }

var serviceAccountGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}
