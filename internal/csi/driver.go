package csi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// DriverName is the driver's name, the CSIDriver object's and the one pods
// name in their volumes.
const DriverName = "csi.bpfd.io"

// Defaults of Options.
const (
	// DefaultPluginDir is the kubelet's directory for the driver's socket.
	DefaultPluginDir = "/var/lib/kubelet/plugins/" + DriverName
	// DefaultPodsDir is the kubelet's directory of pods' volumes.
	DefaultPodsDir = "/var/lib/kubelet/pods"
)

// Driver serves the CSI identity and node services of csi.bpfd.io.
type Driver struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedNodeServer

	programs Programs
	opts     Options
	log      *slog.Logger
	busy     targets
}

var (
	_ csi.IdentityServer = (*Driver)(nil)
	_ csi.NodeServer     = (*Driver)(nil)
)

// Options configure a Driver.
type Options struct {
	// NodeID is the node's name, as NodeGetInfo reports it. Required.
	NodeID string
	// PodsDir is the kubelet's pods directory; every target path must be
	// a CSI volume's mount directory of a pod there. Required.
	PodsDir string
	// StagingDir is where volumes are assembled before they are mounted
	// at their target; bpfd's own, not shared with the host's mounts.
	// Required.
	StagingDir string
	// Version is reported by GetPluginInfo.
	Version string
	// Logger receives a line per published, refused and removed volume;
	// nil logs nothing.
	Logger *slog.Logger
}

// New returns a driver over bpfd's programs. It creates the staging
// directory.
func New(programs Programs, opts Options) (*Driver, error) {
	var errs []error
	for _, f := range []struct{ name, value string }{{"node id", opts.NodeID}, {"pods directory", opts.PodsDir}, {"staging directory", opts.StagingDir}} {
		if f.value == "" {
			errs = append(errs, fmt.Errorf("csi: no %s", f.name))
		}
	}
	for _, d := range []struct{ name, value string }{{"pods directory", opts.PodsDir}, {"staging directory", opts.StagingDir}} {
		if d.value != "" && (!filepath.IsAbs(d.value) || filepath.Clean(d.value) != d.value) {
			errs = append(errs, fmt.Errorf("csi: %s %q is not an absolute, clean path", d.name, d.value))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.StagingDir, 0o700); err != nil {
		return nil, fmt.Errorf("csi: staging directory: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Driver{programs: programs, opts: opts, log: log.With("component", "csi"), busy: targets{held: map[string]bool{}}}, nil
}

// Register registers the driver's identity and node services on s.
func (d *Driver) Register(s *grpc.Server) {
	csi.RegisterIdentityServer(s, d)
	csi.RegisterNodeServer(s, d)
}

// GetPluginInfo names the driver.
func (d *Driver) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: DriverName, VendorVersion: d.opts.Version}, nil
}

// GetPluginCapabilities reports none: the driver is a node plugin only,
// without a controller service or topology.
func (d *Driver) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	return &csi.GetPluginCapabilitiesResponse{}, nil
}

// Probe reports the driver ready: it serves once bpfd has opened its state.
func (d *Driver) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return &csi.ProbeResponse{Ready: wrapperspb.Bool(true)}, nil
}

// NodeGetInfo names the node; the driver sets no volume limit and no
// topology.
func (d *Driver) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: d.opts.NodeID}, nil
}

// NodeGetCapabilities reports VOLUME_MOUNT_GROUP: the kubelet passes the
// pod's fsGroup and leaves the volume's ownership to the driver.
func (d *Driver) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return &csi.NodeGetCapabilitiesResponse{Capabilities: []*csi.NodeServiceCapability{{
		Type: &csi.NodeServiceCapability_Rpc{Rpc: &csi.NodeServiceCapability_RPC{Type: csi.NodeServiceCapability_RPC_VOLUME_MOUNT_GROUP}},
	}}}, nil
}

// NodePublishVolume gives the pod the maps its volume asks for at the
// target path; see the package documentation.
func (d *Driver) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	r, err := parsePublish(req, d.opts.PodsDir)
	if err != nil {
		d.refused("publish", req.GetTargetPath(), err, nil)
		return nil, toStatus(err)
	}
	pod := slog.Group("pod", "namespace", r.namespace, "name", r.pod, "uid", r.podUID)
	if err := d.publish(ctx, r); err != nil {
		d.refused("publish", r.target, err, pod)
		return nil, toStatus(err)
	}
	return &csi.NodePublishVolumeResponse{}, nil
}

func (d *Driver) publish(ctx context.Context, r *publishRequest) error {
	release, err := d.busy.hold(r.target)
	if err != nil {
		return err
	}
	defer release()
	progs, err := d.programs.LoadedPrograms(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	c, err := mapsOf(progs, r.config, r.configNamespace())
	if err != nil {
		return err
	}
	if !c.admits(r.namespace) {
		return fmt.Errorf("%w: %s does not admit pods of namespace %s to its maps (its spec.mapReaderNamespaces: %s)",
			ErrDenied, c, r.namespace, listOrNone(c.namespaces))
	}
	srcs, err := openSources(c, r.maps)
	if err != nil {
		return err
	}
	spec := &volumeSpec{gid: r.gid, writable: r.writable, maps: srcs}
	defer spec.close()
	mounted, same, why, err := published(r.target, spec)
	switch {
	case err != nil:
		return err
	case mounted && same:
		return nil // published before: the kubelet retried
	case mounted:
		return fmt.Errorf("target_path %s: %w (%s)", r.target, ErrConflict, why)
	}
	if err := publish(d.opts.StagingDir, r.target, spec); err != nil {
		return err
	}
	names := make([]string, len(srcs))
	for i, s := range srcs {
		names[i] = s.name
	}
	d.log.Info("volume published", "config", r.config, "tenant_namespace", r.configNamespace(), "maps", names, "writable", r.writable, "gid", r.gid,
		slog.Group("pod", "namespace", r.namespace, "name", r.pod, "uid", r.podUID), "target_path", r.target)
	return nil
}

// NodeUnpublishVolume unmounts the volume at the target path and removes
// the directory; a target already gone is fine.
func (d *Driver) NodeUnpublishVolume(_ context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	target, err := parseUnpublish(req, d.opts.PodsDir)
	if err == nil {
		var release func()
		if release, err = d.busy.hold(target); err == nil {
			err = unpublish(target)
			release()
		}
	}
	if err != nil {
		d.refused("unpublish", req.GetTargetPath(), err, nil)
		return nil, toStatus(err)
	}
	d.log.Info("volume removed", "target_path", target)
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// refused logs a refused or failed request.
func (d *Driver) refused(op, target string, err error, pod any) {
	args := []any{"operation", op, "target_path", target, "error", err.Error()}
	if pod != nil {
		args = append(args, pod)
	}
	d.log.Warn("volume request failed", args...)
}

// targets are the target paths an operation is under way on.
type targets struct {
	mu   sync.Mutex
	held map[string]bool
}

// hold marks target busy until the returned function is called; ErrBusy
// when it already is.
func (t *targets) hold(target string) (func(), error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.held[target] {
		return nil, fmt.Errorf("target_path %s: %w", target, ErrBusy)
	}
	t.held[target] = true
	return func() {
		t.mu.Lock()
		delete(t.held, target)
		t.mu.Unlock()
	}, nil
}
