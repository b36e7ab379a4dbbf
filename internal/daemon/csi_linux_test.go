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
