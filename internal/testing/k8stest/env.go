package k8stest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	bpfdv1alpha1 "github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

// Env is a running control plane: kube-apiserver and etcd with bpfd's CRDs.
type Env struct {
	// Config reaches the API server as an administrator (system:masters).
	Config *rest.Config
	// Client is an uncached administrator client.
	Client client.Client
	// Scheme knows the built-in types and bpfd's.
	Scheme *runtime.Scheme
	// Root is the repository's root directory.
	Root string
	// Assets is the directory of etcd, kube-apiserver and kubectl.
	Assets string
	env    *envtest.Environment
}

// Start starts a control plane with the CRDs of config/crd/bases installed.
// The binaries come from $KUBEBUILDER_ASSETS, else bin/k8s in the repository.
func Start() (*Env, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(root, "bin", "k8s")
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, bin)); err != nil {
			return nil, fmt.Errorf("envtest binary %s not found in %s (run `make tools`, which builds bin/k8s): %w", bin, assets, err)
		}
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := bpfdv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
		Scheme:                scheme,
	}
	cfg, err := startControlPlane(env, assets)
	if err != nil {
		return nil, fmt.Errorf("start envtest: %w", err)
	}
	// The control plane runs: envtest installs the CRDs into it as into a
	// cluster it did not start.
	env.Config, env.UseExistingCluster = cfg, ptr.To(true)
	if _, err := env.Start(); err != nil {
		return nil, errors.Join(fmt.Errorf("start envtest: %w", err), env.ControlPlane.Stop())
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("client: %w", err), env.ControlPlane.Stop())
	}
	return &Env{Config: cfg, Client: c, Scheme: scheme, Root: root, Assets: assets, env: env}, nil
}

// controlPlaneTimeout bounds the start of etcd and kube-apiserver, and then
// the API server's creation of the default namespace, each.
const controlPlaneTimeout = 2 * time.Minute

// startControlPlane starts env's etcd and kube-apiserver and waits until the
// API server created the default namespace, as envtest's Start does, but
// for up to controlPlaneTimeout: envtest gives the API server's bootstrap 5s,
// which a loaded machine outruns ("default namespace didn't register within
// deadline"). It returns an administrator's config (system:masters).
func startControlPlane(env *envtest.Environment, assets string) (*rest.Config, error) {
	plane := &env.ControlPlane
	plane.Etcd = &envtest.Etcd{Path: filepath.Join(assets, "etcd"), StartTimeout: controlPlaneTimeout, StopTimeout: time.Minute}
	plane.APIServer = &envtest.APIServer{Path: filepath.Join(assets, "kube-apiserver"), StartTimeout: controlPlaneTimeout, StopTimeout: time.Minute}
	plane.KubectlPath = filepath.Join(assets, "kubectl")
	// Retried as envtest does: a port picked free may be taken before
	// etcd or the API server binds it.
	var err error
	for range 5 {
		if err = plane.Start(); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("control plane: %w", err)
	}
	admin, err := plane.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, &rest.Config{QPS: 1000, Burst: 2000})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("administrator: %w", err), plane.Stop())
	}
	cfg := admin.Config()
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("client: %w", err), plane.Stop())
	}
	ctx, cancel := context.WithTimeout(context.Background(), controlPlaneTimeout)
	defer cancel()
	for {
		err := c.Get(ctx, client.ObjectKey{Name: metav1.NamespaceDefault}, &corev1.Namespace{})
		if err == nil {
			return cfg, nil
		}
		select {
		case <-ctx.Done():
			return nil, errors.Join(fmt.Errorf("namespace %s not created by the API server within %s: %w", metav1.NamespaceDefault, controlPlaneTimeout, err), plane.Stop())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop stops the control plane.
func (e *Env) Stop() error { return errors.Join(e.env.Stop(), e.env.ControlPlane.Stop()) }

// Main is a TestMain body: it starts a control plane into *env, runs the
// package's tests and stops it.
//
//	var testEnv *k8stest.Env
//	func TestMain(m *testing.M) { k8stest.Main(m, &testEnv) }
func Main(m *testing.M, env **Env) {
	flag.Parse() // for testing.Verbose in Logger
	ctrl.SetLogger(Logger())
	e, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
	*env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop envtest:", err)
	}
	os.Exit(code)
}

// ClientAs returns a client that impersonates user with the groups and extra
// attributes given, as a token of that identity would authenticate.
func (e *Env) ClientAs(user string, groups []string, extra map[string][]string) (client.Client, error) {
	cfg := rest.CopyConfig(e.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups, Extra: extra}
	return client.New(cfg, client.Options{Scheme: e.Scheme})
}

// repoRoot finds the directory holding go.mod above the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root (go.mod) not found above the working directory")
		}
		dir = parent
	}
}

// Kubeconfig writes a kubeconfig file for a new administrator of e into the
// test's temporary directory, for processes such as bpfd-agent run against
// it, and returns its path.
func (e *Env) Kubeconfig(tb testing.TB) string {
	tb.Helper()
	return e.KubeconfigAs(tb, "", nil, nil)
}

// KubeconfigAs writes a kubeconfig file into the test's temporary directory
// whose requests impersonate user with the groups and extra attributes
// given, as a token of that identity would authenticate (a pod-bound
// service-account token carries the node's name as an extra), and returns
// its path. An empty user means the administrator itself.
func (e *Env) KubeconfigAs(tb testing.TB, user string, groups []string, extra map[string][]string) string {
	tb.Helper()
	admin, err := e.env.AddUser(envtest.User{Name: "bpfd-test-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		tb.Fatalf("kubeconfig: %v", err)
	}
	data, err := admin.KubeConfig()
	if err != nil {
		tb.Fatalf("kubeconfig: %v", err)
	}
	if user != "" {
		cfg, err := clientcmd.Load(data)
		if err != nil {
			tb.Fatalf("kubeconfig: %v", err)
		}
		for _, auth := range cfg.AuthInfos {
			auth.Impersonate, auth.ImpersonateGroups, auth.ImpersonateUserExtra = user, groups, extra
		}
		if data, err = clientcmd.Write(*cfg); err != nil {
			tb.Fatalf("kubeconfig: %v", err)
		}
	}
	path := filepath.Join(tb.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}
