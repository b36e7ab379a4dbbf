package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/cilium/ebpf"

	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// TestCSIServed: with csi.enabled bpfd serves csi.bpfd.io on its own
// socket, to root alone.
func TestCSIServed(t *testing.T) {
	dir := publicDir(t)
	td := newTestDaemon(t, func(c *Config) {
		c.CSI = CSIConfig{Enabled: true, NodeName: "worker-1", Socket: filepath.Join(dir, "csi", "csi.sock"),
			PodsDir: filepath.Join(dir, "pods"), StagingDir: filepath.Join(dir, "staging")}
	})
	conn, err := grpc.NewClient("unix://"+td.cfg.CSI.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	info, err := csipb.NewIdentityClient(conn).GetPluginInfo(ctx, &csipb.GetPluginInfoRequest{})
	if err != nil || info.GetName() != "csi.bpfd.io" {
		t.Fatalf("GetPluginInfo: %v, %v", info, err)
	}
	node, err := csipb.NewNodeClient(conn).NodeGetInfo(ctx, &csipb.NodeGetInfoRequest{})
	if err != nil || node.GetNodeId() != "worker-1" {
		t.Errorf("NodeGetInfo: %v, %v; want node worker-1", node, err)
	}

	st, err := os.Stat(td.cfg.CSI.Socket)
	if err != nil || st.Mode().Perm() != 0o660 {
		t.Fatalf("CSI socket mode %v (%v), want 0660", st.Mode().Perm(), err)
	}
	// Open to all, the socket still answers root alone.
	if err := os.Chmod(td.cfg.CSI.Socket, 0o666); err != nil {
		t.Fatal(err)
	}
	if code, msg := callAs(t, publicCopy(t, dir), td.cfg.CSI.Socket, "csi-info"); code != "PermissionDenied" || !strings.Contains(msg, "uid 65534") {
		t.Errorf("nobody on the CSI socket: %s %s, want PermissionDenied naming the uid", code, msg)
	}

	// A volume of a config no program of this bpfd belongs to.
	pods := filepath.Join(dir, "pods", "0b5f4c6e-6f1a-4b39-9a65-2f7d1f3c9e10", "volumes", "kubernetes.io~csi", "maps")
	if err := os.MkdirAll(pods, 0o750); err != nil {
		t.Fatal(err)
	}
	_, err = csipb.NewNodeClient(conn).NodePublishVolume(ctx, &csipb.NodePublishVolumeRequest{
		VolumeId: "csi-1", TargetPath: filepath.Join(pods, "mount"),
		VolumeCapability: &csipb.VolumeCapability{
			AccessType: &csipb.VolumeCapability_Mount{Mount: &csipb.VolumeCapability_MountVolume{VolumeMountGroup: "2000"}},
			AccessMode: &csipb.VolumeCapability_AccessMode{Mode: csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		},
		VolumeContext: map[string]string{"config": "xdp-counter", "csi.storage.k8s.io/pod.namespace": "apps",
			"csi.storage.k8s.io/pod.name": "reader", "csi.storage.k8s.io/pod.uid": "0b5f4c6e-6f1a-4b39-9a65-2f7d1f3c9e10",
			"csi.storage.k8s.io/ephemeral": "true"},
	})
	if status.Code(err) != codes.NotFound {
		t.Errorf("publish a volume of a config bpfd holds nothing of: %v, want NotFound", err)
	}
}

// TestCSITenantConfig: tenant team-a loads a config named like the cluster
// config "counter". Through bpfd's CSI socket the cluster config's volume
// still holds the cluster config's map in the namespace it admits; a pod
// of team-a asking for tenantConfig counter gets the tenant's map; a pod of
// team-b asking for that name gets NotFound and nothing mounted.
func TestCSITenantConfig(t *testing.T) {
	dir := publicDir(t)
	td := newTestDaemon(t, func(c *Config) {
		c.CSI = CSIConfig{Enabled: true, NodeName: "worker-1", Socket: filepath.Join(dir, "csi", "csi.sock"),
			PodsDir: filepath.Join(dir, "pods"), StagingDir: filepath.Join(dir, "staging")}
	})
	td.writePolicy(t, policyRule{Name: "team-a", Images: []string{"oci:" + filepath.Join(td.images, "team-a") + "/**"}, Keys: []string{td.key.pub}, Namespaces: []string{"team-a"}})
	if _, err := td.d.chain.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	load := func(ref string, owner *pb.Owner) *pb.Program {
		t.Helper()
		resp, err := td.client.Load(ctx, &pb.LoadRequest{
			Bytecode: &pb.Bytecode{Reference: ref},
			Programs: []*pb.LoadProgram{tracepointProg("tracepoint_counter", "syscalls/sys_enter_getpid")},
			Owner:    owner,
		})
		if err != nil {
			t.Fatalf("Load for %v: %v", owner, err)
		}
		return resp.GetPrograms()[0]
	}
	cluster := load(td.image(t, "shared", true, "tracepoint_counter.bpf.o"), &pb.Owner{Config: "counter", MapReaderNamespaces: []string{"apps"}})
	tenant := load(td.image(t, "team-a/counter", true, "tracepoint_counter.bpf.o"), &pb.Owner{Config: "counter", Namespace: "team-a"})
	mapID := func(p *pb.Program) uint32 {
		for _, m := range p.GetMaps() {
			if m.GetName() == "openat_calls" {
				return m.GetId()
			}
		}
		t.Fatalf("program %d has no map openat_calls: %v", p.GetId(), p.GetMaps())
		return 0
	}

	conn, err := grpc.NewClient("unix://"+td.cfg.CSI.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() }) // after the volumes' unpublish
	node := csipb.NewNodeClient(conn)
	publish := func(uid, namespace string, attrs map[string]string) (string, error) {
		t.Helper()
		vol := filepath.Join(td.cfg.CSI.PodsDir, uid, "volumes", "kubernetes.io~csi", "maps")
		if err := os.MkdirAll(vol, 0o750); err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(vol, "mount")
		vc := map[string]string{"csi.storage.k8s.io/pod.namespace": namespace, "csi.storage.k8s.io/pod.name": "reader",
			"csi.storage.k8s.io/pod.uid": uid, "csi.storage.k8s.io/ephemeral": "true", "maps": "openat_calls"}
		for k, v := range attrs {
			vc[k] = v
		}
		_, err := node.NodePublishVolume(ctx, &csipb.NodePublishVolumeRequest{
			VolumeId: "csi-" + uid, TargetPath: target,
			VolumeCapability: &csipb.VolumeCapability{
				AccessType: &csipb.VolumeCapability_Mount{Mount: &csipb.VolumeCapability_MountVolume{VolumeMountGroup: "2000"}},
				AccessMode: &csipb.VolumeCapability_AccessMode{Mode: csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
			},
			VolumeContext: vc,
		})
		if err == nil {
			t.Cleanup(func() {
				if _, err := node.NodeUnpublishVolume(ctx, &csipb.NodeUnpublishVolumeRequest{VolumeId: "csi-" + uid, TargetPath: target}); err != nil {
					t.Errorf("unpublish %s: %v", target, err)
				}
			})
		}
		return target, err
	}
	holds := func(target string, want uint32) {
		t.Helper()
		m, err := ebpf.LoadPinnedMap(filepath.Join(target, "openat_calls"), &ebpf.LoadPinOptions{ReadOnly: true})
		if err != nil {
			t.Fatalf("the volume's openat_calls: %v", err)
		}
		defer m.Close()
		info, err := m.Info()
		if err != nil {
			t.Fatal(err)
		}
		if id, _ := info.ID(); uint32(id) != want {
			t.Errorf("the volume at %s holds map %d, want %d", target, id, want)
		}
	}

	target, err := publish("0b5f4c6e-6f1a-4b39-9a65-2f7d1f3c9e11", "apps", map[string]string{"config": "counter"})
	if err != nil {
		t.Fatalf("publish the cluster config's volume in apps: %v", err)
	}
	holds(target, mapID(cluster))

	target, err = publish("0b5f4c6e-6f1a-4b39-9a65-2f7d1f3c9e12", "team-a", map[string]string{"tenantConfig": "counter"})
	if err != nil {
		t.Fatalf("publish team-a's tenant config volume: %v", err)
	}
	holds(target, mapID(tenant))

	target, err = publish("0b5f4c6e-6f1a-4b39-9a65-2f7d1f3c9e13", "team-b", map[string]string{"tenantConfig": "counter"})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "tenant config counter of namespace team-b") {
		t.Errorf("team-b asks for team-a's tenant config name: %v, want NotFound naming tenant config counter of namespace team-b", err)
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Errorf("team-b's target %s: %v, want it absent", target, err)
	}
	_, err = publish("0b5f4c6e-6f1a-4b39-9a65-2f7d1f3c9e14", "team-a", map[string]string{"config": "counter"})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("team-a asks for the cluster config: %v, want PermissionDenied", err)
	}
}
