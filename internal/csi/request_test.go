package csi

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/google/go-cmp/cmp"
)

const testPodUID = "0b5f4c6e-6f1a-4b39-9a65-2f7d1f3c9e10"

// podVolume makes the directory the kubelet makes for a pod's CSI volume
// under podsDir and returns its target path (not made).
func podVolume(t testing.TB, podsDir, uid, volume string) string {
	t.Helper()
	dir := filepath.Join(podsDir, uid, "volumes", "kubernetes.io~csi", volume)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "mount")
}

// validPublish is a request the kubelet would make for a pod of namespace
// apps with fsGroup 2000.
func validPublish(target string) *csi.NodePublishVolumeRequest {
	return &csi.NodePublishVolumeRequest{
		VolumeId:   "csi-0123456789abcdef",
		TargetPath: target,
		VolumeCapability: &csi.VolumeCapability{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{VolumeMountGroup: "2000"}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		},
		VolumeContext: map[string]string{
			AttrConfig:                               "xdp-counter",
			PodNamespaceKey:                          "apps",
			PodNameKey:                               "reader-0",
			PodUIDKey:                                testPodUID,
			EphemeralKey:                             "true",
			"csi.storage.k8s.io/serviceAccount.name": "reader",
		},
	}
}

func TestParsePublish(t *testing.T) {
	podsDir := t.TempDir()
	target := podVolume(t, podsDir, testPodUID, "maps")
	otherPod := podVolume(t, podsDir, "c2f4b1aa-0000-4000-8000-000000000001", "maps")
	outside := filepath.Join(t.TempDir(), "mount")
	// A symbolic link on the way: pods/<uid> leads elsewhere.
	linked := filepath.Join(podsDir, "3e0e3c1c-1111-4111-8111-111111111111")
	if err := os.Symlink(filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(target)))), linked); err != nil {
		t.Fatal(err)
	}
	type edit func(r *csi.NodePublishVolumeRequest)
	attr := func(k, v string) edit { return func(r *csi.NodePublishVolumeRequest) { r.VolumeContext[k] = v } }
	drop := func(k string) edit { return func(r *csi.NodePublishVolumeRequest) { delete(r.VolumeContext, k) } }
	valid := publishRequest{volumeID: "csi-0123456789abcdef", target: target, config: "xdp-counter", gid: 2000,
		namespace: "apps", pod: "reader-0", podUID: testPodUID}

	cases := map[string]struct {
		edit edit
		want *publishRequest
		err  error
		msg  string // part of the error's message
	}{
		"valid: read-only, every map": {func(*csi.NodePublishVolumeRequest) {}, &valid, nil, ""},
		"valid: two maps, writable": {func(r *csi.NodePublishVolumeRequest) {
			r.VolumeContext[AttrMaps] = "xdp_stats, .bss"
			r.VolumeContext[AttrReadOnly] = "false"
		}, func() *publishRequest {
			v := valid
			v.maps = []string{"xdp_stats", ".bss"}
			v.writable = true
			return &v
		}(), nil, ""},
		"the readonly flag wins over readOnly: false": {func(r *csi.NodePublishVolumeRequest) {
			r.VolumeContext[AttrReadOnly] = "false"
			r.Readonly = true
		}, &valid, nil, ""},
		"a reader-only access mode wins over readOnly: false": {func(r *csi.NodePublishVolumeRequest) {
			r.VolumeContext[AttrReadOnly] = "false"
			r.VolumeCapability.AccessMode.Mode = csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY
		}, &valid, nil, ""},

		"valid: a tenant config of the pod's namespace": {func(r *csi.NodePublishVolumeRequest) {
			delete(r.VolumeContext, AttrConfig)
			r.VolumeContext[AttrTenantConfig] = "xdp-counter"
		}, func() *publishRequest {
			v := valid
			v.tenant = true
			return &v
		}(), nil, ""},
		"config and tenantConfig both": {attr(AttrTenantConfig, "xdp-counter"), nil, ErrInvalid, "config and tenantConfig both set"},
		"an empty tenantConfig": {func(r *csi.NodePublishVolumeRequest) {
			delete(r.VolumeContext, AttrConfig)
			r.VolumeContext[AttrTenantConfig] = ""
		}, nil, ErrInvalid, "no volume attribute tenantConfig"},
		"a tenantConfig naming a namespace": {func(r *csi.NodePublishVolumeRequest) {
			delete(r.VolumeContext, AttrConfig)
			r.VolumeContext[AttrTenantConfig] = "team-a/xdp-counter"
		}, nil, ErrInvalid, "volume attribute tenantConfig"},
		"no volume id":                        {func(r *csi.NodePublishVolumeRequest) { r.VolumeId = "" }, nil, ErrInvalid, "no volume_id"},
		"a volume id of 257 bytes":            {func(r *csi.NodePublishVolumeRequest) { r.VolumeId = strings.Repeat("v", 257) }, nil, ErrInvalid, "volume_id longer"},
		"no target path":                      {func(r *csi.NodePublishVolumeRequest) { r.TargetPath = "" }, nil, ErrInvalid, "no target_path"},
		"a relative target path":              {func(r *csi.NodePublishVolumeRequest) { r.TargetPath = "pods/x/mount" }, nil, ErrInvalid, "absolute, clean"},
		"a target path with ..":               {func(r *csi.NodePublishVolumeRequest) { r.TargetPath = target + "/../../x/mount" }, nil, ErrInvalid, "absolute, clean"},
		"a target outside the pods directory": {func(r *csi.NodePublishVolumeRequest) { r.TargetPath = outside }, nil, ErrInvalid, "under the kubelet's pods directory"},
		"the pods directory itself":           {func(r *csi.NodePublishVolumeRequest) { r.TargetPath = podsDir }, nil, ErrInvalid, "under the kubelet's pods directory"},
		"another pod's volume":                {func(r *csi.NodePublishVolumeRequest) { r.TargetPath = otherPod }, nil, ErrInvalid, "not of pod " + testPodUID},
		"a volume of another plugin": {func(r *csi.NodePublishVolumeRequest) {
			r.TargetPath = strings.Replace(target, "kubernetes.io~csi", "kubernetes.io~empty-dir", 1)
		}, nil, ErrInvalid, "kubernetes.io~csi"},
		"a target through a symbolic link": {func(r *csi.NodePublishVolumeRequest) {
			r.TargetPath = strings.Replace(target, testPodUID, filepath.Base(linked), 1)
			r.VolumeContext[PodUIDKey] = filepath.Base(linked)
		}, nil, ErrInvalid, "symbolic link"},
		"a target whose parent the kubelet did not make": {func(r *csi.NodePublishVolumeRequest) {
			r.TargetPath = strings.Replace(target, "/maps/", "/other/", 1)
		}, nil, ErrInvalid, "parent does not exist"},
		"no volume capability": {func(r *csi.NodePublishVolumeRequest) { r.VolumeCapability = nil }, nil, ErrInvalid, "no volume_capability"},
		"a block volume": {func(r *csi.NodePublishVolumeRequest) {
			r.VolumeCapability.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
		}, nil, ErrInvalid, "block"},
		"an ext4 volume":                {func(r *csi.NodePublishVolumeRequest) { r.VolumeCapability.GetMount().FsType = "ext4" }, nil, ErrInvalid, "fs_type"},
		"mount flags":                   {func(r *csi.NodePublishVolumeRequest) { r.VolumeCapability.GetMount().MountFlags = []string{"exec"} }, nil, ErrInvalid, "mount flags"},
		"no access mode":                {func(r *csi.NodePublishVolumeRequest) { r.VolumeCapability.AccessMode = nil }, nil, ErrInvalid, "access_mode"},
		"no fsGroup":                    {func(r *csi.NodePublishVolumeRequest) { r.VolumeCapability.GetMount().VolumeMountGroup = "" }, nil, ErrInvalid, "securityContext.fsGroup"},
		"a group name":                  {func(r *csi.NodePublishVolumeRequest) { r.VolumeCapability.GetMount().VolumeMountGroup = "wheel" }, nil, ErrInvalid, "not a group id"},
		"a negative gid":                {func(r *csi.NodePublishVolumeRequest) { r.VolumeCapability.GetMount().VolumeMountGroup = "-1" }, nil, ErrInvalid, "not a group id"},
		"gid 4294967295":                {func(r *csi.NodePublishVolumeRequest) { r.VolumeCapability.GetMount().VolumeMountGroup = "4294967295" }, nil, ErrInvalid, "not a group id"},
		"a staging path":                {func(r *csi.NodePublishVolumeRequest) { r.StagingTargetPath = "/var/lib/kubelet/plugins/x" }, nil, ErrInvalid, "does not stage"},
		"no pod info":                   {func(r *csi.NodePublishVolumeRequest) { r.VolumeContext = map[string]string{AttrConfig: "xdp-counter"} }, nil, ErrInvalid, "podInfoOnMount"},
		"no pod namespace":              {drop(PodNamespaceKey), nil, ErrInvalid, "no pod info"},
		"no pod uid":                    {drop(PodUIDKey), nil, ErrInvalid, "no pod info"},
		"a persistent volume":           {attr(EphemeralKey, "false"), nil, ErrInvalid, "ephemeral inline volumes only"},
		"no ephemeral key":              {drop(EphemeralKey), nil, ErrInvalid, "ephemeral inline volumes only"},
		"a pod uid unlike the target's": {attr(PodUIDKey, "c2f4b1aa-0000-4000-8000-000000000001"), nil, ErrInvalid, "not of pod c2f4b1aa"},
		"a namespace that is no name":   {attr(PodNamespaceKey, "Apps/../x"), nil, ErrInvalid, "pod namespace"},
		"no config":                     {drop(AttrConfig), nil, ErrInvalid, "no volume attribute config"},
		"a config that is no name":      {attr(AttrConfig, "XDP counter"), nil, ErrInvalid, "volume attribute config"},
		"an unknown attribute":          {attr("readonly", "false"), nil, ErrInvalid, `unknown volume attribute "readonly"`},
		"readOnly: yes":                 {attr(AttrReadOnly, "yes"), nil, ErrInvalid, "neither true nor false"},
		"an empty map name":             {attr(AttrMaps, "a,,b"), nil, ErrInvalid, `"" is not a map name`},
		"a map name with a slash":       {attr(AttrMaps, "../program"), nil, ErrInvalid, "not a map name"},
		"a map named twice":             {attr(AttrMaps, "a,a"), nil, ErrInvalid, "names a twice"},
		"65 maps":                       {attr(AttrMaps, manyMaps(65)), nil, ErrInvalid, "at most 64"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			req := validPublish(target)
			tc.edit(req)
			got, err := parsePublish(req, podsDir)
			if !errors.Is(err, tc.err) || err != nil && !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want %v naming %q", err, tc.err, tc.msg)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(publishRequest{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseUnpublish(t *testing.T) {
	podsDir := t.TempDir()
	target := podVolume(t, podsDir, testPodUID, "maps")
	cases := map[string]struct {
		req *csi.NodeUnpublishVolumeRequest
		err error
	}{
		"valid":                {&csi.NodeUnpublishVolumeRequest{VolumeId: "v", TargetPath: target}, nil},
		"no volume id":         {&csi.NodeUnpublishVolumeRequest{TargetPath: target}, ErrInvalid},
		"no target path":       {&csi.NodeUnpublishVolumeRequest{VolumeId: "v"}, ErrInvalid},
		"outside the pods dir": {&csi.NodeUnpublishVolumeRequest{VolumeId: "v", TargetPath: "/etc/mount"}, ErrInvalid},
		"not a volume's mount": {&csi.NodeUnpublishVolumeRequest{VolumeId: "v", TargetPath: filepath.Dir(target)}, ErrInvalid},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := parseUnpublish(tc.req, podsDir); !errors.Is(err, tc.err) {
				t.Errorf("error %v, want %v", err, tc.err)
			}
		})
	}
}

// manyMaps lists n distinct map names.
func manyMaps(n int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("m%d", i)
	}
	return strings.Join(names, ",")
}
