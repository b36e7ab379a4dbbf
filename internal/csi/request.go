package csi

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Volume attributes a pod sets on its CSI volume (volumeAttributes).
const (
	// AttrConfig names the cluster-scoped BpfProgramConfig whose maps the
	// volume holds. A volume names AttrConfig or AttrTenantConfig, not
	// both.
	AttrConfig = "config"
	// AttrTenantConfig names the BpfTenantProgramConfig of the pod's own
	// namespace whose maps the volume holds. The namespace is the pod's,
	// as the kubelet says it; no attribute names another.
	AttrTenantConfig = "tenantConfig"
	// AttrMaps lists the maps to publish, by their names in the object,
	// separated by commas; absent, every map of the config that may be
	// given to a pod.
	AttrMaps = "maps"
	// AttrReadOnly is "true" (the default: the maps are readable by the
	// pod's fsGroup only) or "false" (also writable). The volume's
	// readOnly flag makes it read-only whatever this says.
	AttrReadOnly = "readOnly"
)

// Attributes the kubelet adds to a volume's attributes when the CSIDriver
// object sets podInfoOnMount.
const (
	PodNamespaceKey = "csi.storage.k8s.io/pod.namespace"
	PodNameKey      = "csi.storage.k8s.io/pod.name"
	PodUIDKey       = "csi.storage.k8s.io/pod.uid"
	EphemeralKey    = "csi.storage.k8s.io/ephemeral"
	// The kubelet's prefix for the attributes it adds.
	kubeletPrefix = "csi.storage.k8s.io/"
)

// Bounds on what a request may carry.
const (
	maxVolumeIDLength = 256
	maxPathLength     = 4096
	maxMaps           = 64
	maxMapNameLength  = 128
)

// mapName is a map's name in an ELF object: a C identifier, or a section
// name such as .bss or .rodata.config.
var mapName = regexp.MustCompile(`^[A-Za-z0-9_.]+$`)

// podUID is a pod's uid as the kubelet names its directory.
var podUIDSyntax = regexp.MustCompile(`^[0-9A-Za-z-]{1,64}$`)

// publishRequest is a checked NodePublishVolume request.
type publishRequest struct {
	volumeID  string
	target    string
	config    string
	tenant    bool     // config names a BpfTenantProgramConfig of the pod's namespace
	maps      []string // nil: every map of the config
	writable  bool
	gid       uint32
	namespace string
	pod       string
	podUID    string
}

// parsePublish checks a NodePublishVolume request against the kubelet's
// pods directory and returns what it asks for.
func parsePublish(req *csi.NodePublishVolumeRequest, podsDir string) (*publishRequest, error) {
	r := &publishRequest{volumeID: req.GetVolumeId(), target: req.GetTargetPath()}
	if err := checkVolumeID(r.volumeID); err != nil {
		return nil, err
	}
	if err := checkTargetSyntax(r.target); err != nil {
		return nil, err
	}
	gid, err := checkCapability(req.GetVolumeCapability())
	if err != nil {
		return nil, err
	}
	if req.GetStagingTargetPath() != "" {
		return nil, fmt.Errorf("%w: staging_target_path: this driver does not stage volumes", ErrInvalid)
	}
	attrs := req.GetVolumeContext()
	if err := r.podInfo(attrs); err != nil {
		return nil, err
	}
	if err := checkTarget(podsDir, r.target, r.podUID); err != nil {
		return nil, err
	}
	if err := r.attributes(attrs); err != nil {
		return nil, err
	}
	if gid == nil {
		return nil, fmt.Errorf("%w: no volume_mount_group: pod %s/%s sets no securityContext.fsGroup, the group the volume's maps are given to", ErrInvalid, r.namespace, r.pod)
	}
	r.gid = *gid
	mode := req.GetVolumeCapability().GetAccessMode().GetMode()
	if req.GetReadonly() || mode == csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY || mode == csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY {
		r.writable = false
	}
	return r, nil
}

func checkVolumeID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: no volume_id", ErrInvalid)
	case len(id) > maxVolumeIDLength:
		return fmt.Errorf("%w: volume_id longer than %d bytes", ErrInvalid, maxVolumeIDLength)
	}
	return nil
}

// checkTargetSyntax checks that a target path is given, absolute and clean.
func checkTargetSyntax(target string) error {
	switch {
	case target == "":
		return fmt.Errorf("%w: no target_path", ErrInvalid)
	case len(target) > maxPathLength:
		return fmt.Errorf("%w: target_path longer than %d bytes", ErrInvalid, maxPathLength)
	case !filepath.IsAbs(target) || filepath.Clean(target) != target:
		return fmt.Errorf("%w: target_path %q is not an absolute, clean path", ErrInvalid, target)
	}
	return nil
}

// checkCapability accepts a mount volume of no or the bpf file system type,
// without mount flags, and returns the volume mount group, if any.
func checkCapability(c *csi.VolumeCapability) (*uint32, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: no volume_capability", ErrInvalid)
	}
	m := c.GetMount()
	if m == nil {
		return nil, fmt.Errorf("%w: volume_capability: only mount volumes (a bpffs), not block volumes", ErrInvalid)
	}
	if t := m.GetFsType(); t != "" && t != "bpf" {
		return nil, fmt.Errorf("%w: volume_capability: fs_type %q (the volume is a bpffs)", ErrInvalid, t)
	}
	if len(m.GetMountFlags()) > 0 {
		return nil, fmt.Errorf("%w: volume_capability: mount flags %q (the driver sets them)", ErrInvalid, m.GetMountFlags())
	}
	if c.GetAccessMode() == nil {
		return nil, fmt.Errorf("%w: volume_capability: no access_mode", ErrInvalid)
	}
	g := m.GetVolumeMountGroup()
	if g == "" {
		return nil, nil
	}
	gid, err := strconv.ParseUint(g, 10, 32)
	if err != nil || gid == 1<<32-1 {
		return nil, fmt.Errorf("%w: volume_mount_group %q is not a group id", ErrInvalid, g)
	}
	v := uint32(gid)
	return &v, nil
}

// podInfo reads the pod info the kubelet adds.
func (r *publishRequest) podInfo(attrs map[string]string) error {
	r.namespace, r.pod, r.podUID = attrs[PodNamespaceKey], attrs[PodNameKey], attrs[PodUIDKey]
	if r.namespace == "" || r.pod == "" || r.podUID == "" {
		return fmt.Errorf("%w: no pod info (%s, %s, %s): the CSIDriver object %s must set podInfoOnMount: true",
			ErrInvalid, PodNamespaceKey, PodNameKey, PodUIDKey, DriverName)
	}
	if eph := attrs[EphemeralKey]; eph != "true" {
		return fmt.Errorf("%w: %s is %q: %s serves CSI ephemeral inline volumes only (volumeLifecycleModes: [Ephemeral])", ErrInvalid, EphemeralKey, eph, DriverName)
	}
	if msgs := validation.IsDNS1123Label(r.namespace); len(msgs) > 0 {
		return fmt.Errorf("%w: pod namespace %q: %s", ErrInvalid, r.namespace, strings.Join(msgs, "; "))
	}
	if msgs := validation.IsDNS1123Subdomain(r.pod); len(msgs) > 0 {
		return fmt.Errorf("%w: pod name %q: %s", ErrInvalid, r.pod, strings.Join(msgs, "; "))
	}
	if !podUIDSyntax.MatchString(r.podUID) {
		return fmt.Errorf("%w: pod uid %q", ErrInvalid, r.podUID)
	}
	return nil
}

// configNamespace is the namespace of the config the volume names: the
// pod's own for a tenant config, empty for a cluster-scoped one.
func (r *publishRequest) configNamespace() string {
	if r.tenant {
		return r.namespace
	}
	return ""
}

// attributes reads the pod's volume attributes.
func (r *publishRequest) attributes(attrs map[string]string) error {
	for k := range attrs {
		if k != AttrConfig && k != AttrTenantConfig && k != AttrMaps && k != AttrReadOnly && !strings.HasPrefix(k, kubeletPrefix) {
			return fmt.Errorf("%w: unknown volume attribute %q (known: %s, %s, %s, %s)", ErrInvalid, k, AttrConfig, AttrTenantConfig, AttrMaps, AttrReadOnly)
		}
	}
	cluster, clusterSet := attrs[AttrConfig]
	tenant, tenantSet := attrs[AttrTenantConfig]
	attr := AttrConfig
	switch {
	case clusterSet && tenantSet:
		return fmt.Errorf("%w: volume attributes %s and %s both set: a volume holds the maps of one config", ErrInvalid, AttrConfig, AttrTenantConfig)
	case tenantSet:
		r.config, r.tenant, attr = tenant, true, AttrTenantConfig
	default:
		r.config = cluster
	}
	if r.config == "" {
		return fmt.Errorf("%w: no volume attribute %s naming a BpfProgramConfig (or %s naming a BpfTenantProgramConfig of the pod's namespace)", ErrInvalid, attr, AttrTenantConfig)
	}
	if msgs := validation.IsDNS1123Subdomain(r.config); len(msgs) > 0 {
		return fmt.Errorf("%w: volume attribute %s %q: %s", ErrInvalid, attr, r.config, strings.Join(msgs, "; "))
	}
	if v, ok := attrs[AttrMaps]; ok {
		for _, n := range strings.Split(v, ",") {
			n = strings.TrimSpace(n)
			switch {
			case len(n) > maxMapNameLength || !mapName.MatchString(n):
				return fmt.Errorf("%w: volume attribute %s: %q is not a map name", ErrInvalid, AttrMaps, n)
			case slices.Contains(r.maps, n):
				return fmt.Errorf("%w: volume attribute %s names %s twice", ErrInvalid, AttrMaps, n)
			}
			r.maps = append(r.maps, n)
		}
		if len(r.maps) > maxMaps {
			return fmt.Errorf("%w: volume attribute %s names %d maps, at most %d", ErrInvalid, AttrMaps, len(r.maps), maxMaps)
		}
	}
	switch v, ok := attrs[AttrReadOnly]; {
	case !ok || v == "true":
		r.writable = false
	case v == "false":
		r.writable = true
	default:
		return fmt.Errorf("%w: volume attribute %s %q is neither true nor false", ErrInvalid, AttrReadOnly, v)
	}
	return nil
}

// parseUnpublish checks a NodeUnpublishVolume request.
func parseUnpublish(req *csi.NodeUnpublishVolumeRequest, podsDir string) (target string, err error) {
	if err := checkVolumeID(req.GetVolumeId()); err != nil {
		return "", err
	}
	if err := checkTargetSyntax(req.GetTargetPath()); err != nil {
		return "", err
	}
	return req.GetTargetPath(), checkTarget(podsDir, req.GetTargetPath(), "")
}
