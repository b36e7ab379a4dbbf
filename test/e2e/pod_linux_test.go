package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// pod is a pod template run on this host the way a kubelet would, but rooted
// in a directory of the test's. Each volume is a directory there: hostPath
// and projected volumes start empty (nothing of the host's paths is used),
// ConfigMap and Secret volumes hold their objects' keys as files, read from
// the API server when the pod is made. A container's command line is its
// arguments with every absolute path rewritten to the same path under the
// volume mounted there.
type pod struct {
	dir       string
	namespace string
	node      string
	spec      corev1.PodSpec
	volumes   map[string]string // volume name -> its directory
}

// newPod lays out the volumes of spec, a pod in namespace on node; it is
// removed when t ends.
func newPod(t *testing.T, c client.Reader, namespace, node string, spec corev1.PodSpec) *pod {
	t.Helper()
	// A short path: unix socket paths are limited to 107 bytes.
	dir, err := os.MkdirTemp("", "bpfd-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	p := &pod{dir: dir, namespace: namespace, node: node, spec: spec, volumes: map[string]string{}}
	t.Cleanup(p.remove)
	ctx := context.Background()
	for _, v := range spec.Volumes {
		vdir := filepath.Join(dir, v.Name)
		if err := os.MkdirAll(vdir, 0o755); err != nil {
			t.Fatal(err)
		}
		p.volumes[v.Name] = vdir
		switch {
		case v.ConfigMap != nil:
			cm := &corev1.ConfigMap{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: v.ConfigMap.Name}, cm); err != nil {
				t.Fatalf("volume %s: %v", v.Name, err)
			}
			data := map[string][]byte{}
			for k, s := range cm.Data {
				data[k] = []byte(s)
			}
			writeKeys(t, vdir, v.Name, data, v.ConfigMap.Items)
		case v.Secret != nil:
			s := &corev1.Secret{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: v.Secret.SecretName}, s); err != nil {
				t.Fatalf("volume %s: %v", v.Name, err)
			}
			writeKeys(t, vdir, v.Name, s.Data, v.Secret.Items)
		case v.HostPath != nil, v.Projected != nil, v.EmptyDir != nil:
			// An empty directory.
		default:
			t.Fatalf("volume %s: a kind of volume this test does not lay out", v.Name)
		}
	}
	return p
}

// writeKeys writes the items of data (every key when items is empty) as
// files under dir.
func writeKeys(t *testing.T, dir, volume string, data map[string][]byte, items []corev1.KeyToPath) {
	t.Helper()
	if len(items) == 0 {
		for k := range data {
			items = append(items, corev1.KeyToPath{Key: k, Path: k})
		}
	}
	for _, it := range items {
		b, ok := data[it.Key]
		if !ok {
			t.Fatalf("volume %s: no key %s", volume, it.Key)
		}
		path := filepath.Join(dir, it.Path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// command returns the arguments and environment of the container named
// name: paths in the arguments rewritten (an absolute path that no volume
// mount of the container holds fails the test, as the container would not
// find it either), and the environment's values and the downward-API fields
// spec.nodeName and metadata.namespace.
func (p *pod) command(t *testing.T, name string) (args, env []string) {
	t.Helper()
	i := slices.IndexFunc(p.spec.Containers, func(c corev1.Container) bool { return c.Name == name })
	if i < 0 {
		t.Fatalf("the pod has no container %s", name)
	}
	c := p.spec.Containers[i]
	for _, a := range c.Args {
		flag, value, ok := strings.Cut(a, "=")
		if ok && strings.HasPrefix(value, "/") {
			a = flag + "=" + p.hostPath(t, c, value)
		}
		args = append(args, a)
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName":
			env = append(env, e.Name+"="+p.node)
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			env = append(env, e.Name+"="+p.namespace)
		default:
			t.Fatalf("container %s: environment variable %s from a source this test does not provide", name, e.Name)
		}
	}
	return args, env
}

// credential returns the user and group container name runs as (its
// securityContext's, else the pod's runAsUser and runAsGroup), nil for
// root.
func (p *pod) credential(t *testing.T, name string) *syscall.Credential {
	t.Helper()
	i := slices.IndexFunc(p.spec.Containers, func(c corev1.Container) bool { return c.Name == name })
	if i < 0 {
		t.Fatalf("the pod has no container %s", name)
	}
	var uid, gid *int64
	if psc := p.spec.SecurityContext; psc != nil {
		uid, gid = psc.RunAsUser, psc.RunAsGroup
	}
	if sc := p.spec.Containers[i].SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = sc.RunAsGroup
		}
	}
	if uid == nil || *uid == 0 {
		return nil
	}
	cred := &syscall.Credential{Uid: uint32(*uid), Gid: uint32(*uid), Groups: []uint32{}}
	if gid != nil {
		cred.Gid = uint32(*gid)
	}
	return cred
}

// hostPath returns where path, inside container c, lies on this host: under
// the directory of the volume mounted deepest above it.
func (p *pod) hostPath(t *testing.T, c corev1.Container, path string) string {
	t.Helper()
	var best *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if (path == m.MountPath || strings.HasPrefix(path, m.MountPath+"/")) && (best == nil || len(m.MountPath) > len(best.MountPath)) {
			best = &c.VolumeMounts[i]
		}
	}
	if best == nil {
		t.Fatalf("container %s is given %s, which no volume mount of it holds", c.Name, path)
	}
	return filepath.Join(p.volumes[best.Name], strings.TrimPrefix(path, best.MountPath))
}

// remove removes the pod's directory, once every mount below it (such as
// the bpffs bpfd mounts) is detached.
func (p *pod) remove() {
	unmountUnder(p.dir)
	os.RemoveAll(p.dir)
}

// unmountUnder detaches every mount below dir, such as the bpffs bpfd
// mounted in a pod's directory.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			unix.Unmount(f[1], unix.MNT_DETACH)
		}
	}
}
