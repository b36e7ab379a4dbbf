package badinput_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// The csi surface sends each entry's file, a protojson NodePublishVolume
// request, to the CSI driver csi.bpfd.io of the request surface's bpfd, as
// the kubelet would. Before each entry bpfd loads tracepoint_counter for
// config corpus, whose maps pods of namespace apps may mount, and the
// kubelet's directory of a fresh pod is made: {{target}} is its volume's
// target path, {{pod.uid}} its uid, {{other.uid}} another pod's, {{pods}} the
// kubelet's pods directory and {{staging}} the driver's staging directory.
// After each entry (a control's volume unpublished) nothing may be mounted
// under the pods or staging directories, the staging directory must be
// empty and the target absent.
func init() {
	surfaces["csi"] = surface{
		prepare: prepareCSI,
		ops:     map[string]func(context.Context, *run) error{"publish": publishCSI},
		classes: map[string]func(error) bool{
			"invalid-argument":    hasCode(codes.InvalidArgument),
			"not-found":           hasCode(codes.NotFound),
			"permission-denied":   hasCode(codes.PermissionDenied),
			"failed-precondition": hasCode(codes.FailedPrecondition),
		},
		leftovers: csiLeftovers,
	}
}

// csiConfig is the config the entries' program is loaded for, and the
// namespace it admits.
const (
	csiConfig    = "corpus"
	csiNamespace = "apps"
)

func prepareCSI(t *testing.T, r *run) {
	prepareRequest(t, r)
	d := r.daemon
	uid, other := "corpus-"+testutil.RandomSuffix(8), "corpus-"+testutil.RandomSuffix(8)
	volume := filepath.Join(d.podsDir, uid, "volumes", "kubernetes.io~csi", "maps")
	if err := os.MkdirAll(volume, 0o750); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Join(d.podsDir, uid)) })
	r.vars["target"] = filepath.Join(volume, "mount")
	r.vars["pod.uid"], r.vars["other.uid"] = uid, other
	r.vars["pods"], r.vars["staging"] = d.podsDir, d.stagingDir

	resp, err := d.client.Load(t.Context(), &pb.LoadRequest{
		Bytecode: &pb.Bytecode{Reference: d.image},
		Programs: []*pb.LoadProgram{{Name: "tracepoint_counter", Type: pb.ProgramType_PROGRAM_TYPE_TRACEPOINT,
			Attach: &pb.AttachSpec{Spec: &pb.AttachSpec_Tracepoint{Tracepoint: &pb.TracepointAttach{}}}}},
		Owner: &pb.Owner{Config: csiConfig, MapReaderNamespaces: []string{csiNamespace}},
	})
	if err != nil {
		t.Fatalf("load the entries' program: %v", err)
	}
	for _, p := range resp.GetPrograms() {
		d.loaded = append(d.loaded, p.GetId())
	}
}

// publishCSI expands the entry's file, decodes it strictly and sends it to
// the driver.
func publishCSI(ctx context.Context, r *run) error {
	raw, err := os.ReadFile(r.entry.FilePaths()[0])
	if err != nil {
		return err
	}
	tmpl, err := r.entry.Template(r.vars)
	if err != nil {
		return err
	}
	data, err := tmpl.Expand(raw)
	if err != nil {
		return fmt.Errorf("corpus: %s: %w", r.entry.Files[0], err)
	}
	req := &csipb.NodePublishVolumeRequest{}
	if err := protojson.Unmarshal(data, req); err != nil {
		return fmt.Errorf("corpus: %s: %w", r.entry.Files[0], err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err = csipb.NewNodeClient(r.daemon.csiConn).NodePublishVolume(ctx, req)
	return err
}

// csiLeftovers unpublishes a control's volume, checks that nothing is left
// of the entry's volume and unloads the entry's program (requestLeftovers).
func csiLeftovers(t *testing.T, r *run) {
	t.Helper()
	d := r.daemon
	if d == nil {
		return
	}
	target := r.vars["target"]
	if _, err := os.Lstat(target); err == nil {
		node := csipb.NewNodeClient(d.csiConn)
		if _, err := node.NodeUnpublishVolume(t.Context(), &csipb.NodeUnpublishVolumeRequest{VolumeId: "csi-" + r.vars["pod.uid"], TargetPath: target}); err != nil {
			t.Errorf("unpublish %s: %v", target, err)
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (strings.HasPrefix(f[4], d.podsDir+"/") || strings.HasPrefix(f[4], d.stagingDir+"/")) {
			t.Errorf("left mounted: %s", f[4])
		}
	}
	if entries, err := os.ReadDir(d.stagingDir); err != nil || len(entries) > 0 {
		t.Errorf("staging directory %s: %v, %v; want it empty", d.stagingDir, entries, err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("target %s: %v, want it absent", target, err)
	}
	requestLeftovers(t, r)
}

// startCSI connects to the driver of the request surface's bpfd.
func (d *requestDaemon) startCSI() (err error) {
	d.csiConn, err = grpc.NewClient("unix://"+d.csiSocket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	return err
}
