package operator

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// DaemonSetName is the name of the bpfd DaemonSet.
const DaemonSetName = "bpfd"

// AgentServiceAccount is the service account of the bpfd pods; only the
// agent container gets its token.
const AgentServiceAccount = "bpfd-agent"

// Paths inside the bpfd pod; bpfd and bpfd-agent are started with them.
const (
	// RunDir is the host's /run/bpfd: bpfd's socket and its bpffs
	// (PinDir), shared with the host so pins outlive the pod.
	RunDir = "/run/bpfd"
	// SocketPath is bpfd's gRPC socket.
	SocketPath = RunDir + "/bpfd.sock"
	// PinDir is where bpfd mounts its bpffs and pins programs, links and
	// maps.
	PinDir = RunDir + "/fs"
	// BpffsDir is the host's bpffs.
	BpffsDir = "/sys/fs/bpf"
	// StateDir is the host's /var/lib/bpfd: bpfd's store and image cache.
	StateDir = "/var/lib/bpfd"
	// TrustDir holds the keys of the trust-policy ConfigMap as files: the
	// policy and the public keys it names relative to itself.
	TrustDir = "/etc/bpfd/trust"
	// TrustPolicyFile is the trust policy, the key policy.yaml of the
	// trust-policy ConfigMap.
	TrustPolicyFile = TrustDir + "/policy.yaml"
	// RegistryAuthFile is the Docker config file with registry credentials,
	// from the key .dockerconfigjson of the credentials Secret.
	RegistryAuthFile = "/etc/bpfd/registry/config.json"

	// CSIPluginDir is the kubelet's directory of bpfd's CSI driver
	// csi.bpfd.io, on the host and in the pod: its socket, and the
	// directory bpfd assembles volumes in.
	CSIPluginDir = "/var/lib/kubelet/plugins/csi.bpfd.io"
	// CSISocket is the CSI driver's socket, which the kubelet and the
	// registrar dial.
	CSISocket = CSIPluginDir + "/csi.sock"
	// KubeletPodsDir is the kubelet's directory of pods' volumes, where
	// bpfd mounts CSI volumes (propagated to the host).
	KubeletPodsDir = "/var/lib/kubelet/pods"
	// KubeletRegistrationDir is where the kubelet finds plugins to register.
	KubeletRegistrationDir = "/var/lib/kubelet/plugins_registry"
	// registrarCSIDir is where the registrar sees CSIPluginDir.
	registrarCSIDir = "/csi"
)

// The bpfd-agent container's user and group. bpfd gives its socket this
// group (--socket-group), so the agent reaches it as a user without
// privileges or capabilities, and makes it an admin group
// (--socket-admin-gid), so the agent may name its programs' owner (the
// config) and unload what it loaded before under another uid. The pod
// shares the host's PID namespace, where a process may read the /proc
// files (environ, root) of every other process of its uid: so the uid is
// one of the agent's own, not 65532 ("nonroot"), which many images share.
const (
	AgentUID = 65530
	AgentGID = 65530
)

// NodeSCC is the OpenShift SecurityContextConstraints the DaemonSet's pods
// run under (config/openshift/scc-node.yaml); the pod template names it in
// the annotation openshift.io/required-scc, which other platforms ignore.
const NodeSCC = "bpfd-node"

// RequiredSCCAnnotation names the SCC a pod must be admitted by on
// OpenShift, instead of the one OpenShift would pick.
const RequiredSCCAnnotation = "openshift.io/required-scc"

// podLabels label the DaemonSet and its pods; the first two select them.
var podLabels = map[string]string{
	"app.kubernetes.io/name":       "bpfd",
	"app.kubernetes.io/component":  "node",
	"app.kubernetes.io/managed-by": "bpfd-operator",
}

// DaemonSet returns the bpfd DaemonSet in namespace for s: on every node,
// bpfd (privileged: it loads programs, and serves the CSI driver
// csi.bpfd.io, whose volumes it mounts in the kubelet's pods directory),
// bpfd-agent (unprivileged: it talks to bpfd over the socket and to the
// API server with the pod's service-account token, which only it gets)
// and the CSI node-driver-registrar (no capabilities: it registers the
// driver's socket with the kubelet). Registry credentials are mounted into
// bpfd alone, so the agent needs no access to Secrets.
func DaemonSet(namespace string, s Settings) *appsv1.DaemonSet {
	if s.MaxUnavailable == (intstr.IntOrString{}) {
		s.MaxUnavailable = DefaultMaxUnavailable
	}
	hostPath := func(name, path string, t corev1.HostPathType) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path, Type: &t}}}
	}
	bidirectional := corev1.MountPropagationBidirectional
	volumes := []corev1.Volume{
		hostPath("bpffs", BpffsDir, corev1.HostPathDirectory),
		hostPath("run", RunDir, corev1.HostPathDirectoryOrCreate),
		hostPath("state", StateDir, corev1.HostPathDirectoryOrCreate),
		hostPath("csi-plugin", CSIPluginDir, corev1.HostPathDirectoryOrCreate),
		hostPath("csi-registration", KubeletRegistrationDir, corev1.HostPathDirectory),
		hostPath("kubelet-pods", KubeletPodsDir, corev1.HostPathDirectory),
		{Name: "trust-policy", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: s.TrustPolicyConfigMap},
		}}},
		{Name: "agent-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3607)}},
			{ConfigMap: &corev1.ConfigMapProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
			}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}},
			}}},
		}}}},
	}
	// bpfd's flags (cmd/bpfd); test/e2e runs bpfd with exactly these.
	bpfdArgs := []string{
		"--socket=" + SocketPath,
		"--state-dir=" + StateDir,
		"--bpffs=" + PinDir,
		"--policy=" + TrustPolicyFile,
		"--log-level=" + s.LogLevel,
		fmt.Sprintf("--socket-group=%d", AgentGID),
		fmt.Sprintf("--socket-admin-gid=%d", AgentGID),
		"--csi",
		"--csi-socket=" + CSISocket,
		"--csi-pods-dir=" + KubeletPodsDir,
	}
	bpfdMounts := []corev1.VolumeMount{
		{Name: "bpffs", MountPath: BpffsDir, MountPropagation: &bidirectional},
		{Name: "run", MountPath: RunDir, MountPropagation: &bidirectional},
		{Name: "state", MountPath: StateDir},
		{Name: "trust-policy", MountPath: TrustDir, ReadOnly: true},
		{Name: "csi-plugin", MountPath: CSIPluginDir},
		// The volumes bpfd mounts for pods must reach the host's mount
		// namespace, where the container runtime binds them into the pods.
		{Name: "kubelet-pods", MountPath: KubeletPodsDir, MountPropagation: &bidirectional},
	}
	if s.RegistryCredentialsSecret != "" {
		volumes = append(volumes, corev1.Volume{Name: "registry-credentials", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: s.RegistryCredentialsSecret,
			Items:      []corev1.KeyToPath{{Key: corev1.DockerConfigJsonKey, Path: "config.json"}},
		}}})
		bpfdMounts = append(bpfdMounts, corev1.VolumeMount{Name: "registry-credentials", MountPath: "/etc/bpfd/registry", ReadOnly: true})
		bpfdArgs = append(bpfdArgs, "--registry-auth-file="+RegistryAuthFile)
	}

	return &appsv1.DaemonSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{Name: DaemonSetName, Namespace: namespace, Labels: podLabels},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{
				"app.kubernetes.io/name":      podLabels["app.kubernetes.io/name"],
				"app.kubernetes.io/component": podLabels["app.kubernetes.io/component"],
			}},
			// A rolling update replaces the pods of MaxUnavailable nodes at
			// a time and surges none: a second bpfd on a node would find
			// the first's store locked and exit. The programs are pinned, so they
			// run through their node's restart; loads and unloads wait.
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{
					MaxUnavailable: ptr.To(s.MaxUnavailable),
					MaxSurge:       ptr.To(intstr.FromInt32(0)),
				},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: map[string]string{RequiredSCCAnnotation: NodeSCC}},
				Spec: corev1.PodSpec{
					ServiceAccountName: AgentServiceAccount,
					// The token is projected into the agent's container only.
					AutomountServiceAccountToken: ptr.To(false),
					// bpfd attaches to the host's interfaces; the agent reads
					// the host's default route.
					HostNetwork: true,
					// Tenants' programs attach inside their pods: the agent
					// finds a pod's processes by their cgroups, and bpfd
					// enters their network namespaces and container roots.
					HostPID:           true,
					DNSPolicy:         corev1.DNSClusterFirstWithHostNet,
					PriorityClassName: "system-node-critical",
					Tolerations:       []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					// bpfd is privileged, so its seccomp profile is the
					// runtime's concern; the agent's is the runtime's default.
					SecurityContext: &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{
						{
							Name:  "bpfd",
							Image: s.BpfdImage,
							Args:  bpfdArgs,
							// The CSI driver's node id is the node's name.
							Env: []corev1.EnvVar{{Name: "BPFD_CSI_NODE_NAME", ValueFrom: &corev1.EnvVarSource{
								FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"},
							}}},
							SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
							VolumeMounts:    bpfdMounts,
							Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
								corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("128Mi"),
							}},
						},
						{
							Name:  "bpfd-agent",
							Image: s.AgentImage,
							Args:  []string{"--bpfd-socket=" + SocketPath, "--log-level=" + s.LogLevel},
							Env: []corev1.EnvVar{{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{
								FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"},
							}}},
							// Not root, no capabilities: it reaches bpfd's
							// socket by its group.
							SecurityContext: &corev1.SecurityContext{
								RunAsNonRoot:             ptr.To(true),
								RunAsUser:                ptr.To[int64](AgentUID),
								RunAsGroup:               ptr.To[int64](AgentGID),
								AllowPrivilegeEscalation: ptr.To(false),
								ReadOnlyRootFilesystem:   ptr.To(true),
								Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							},
							VolumeMounts: []corev1.VolumeMount{
								{Name: "run", MountPath: RunDir, ReadOnly: true},
								{Name: "agent-token", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true},
							},
							Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
								corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("64Mi"),
							}},
						},
						registrar(s),
					},
					Volumes: volumes,
				},
			},
		},
	}
}

// registrar is the CSI node-driver-registrar sidecar: it tells the kubelet,
// through a socket in its plugin registration directory, that csi.bpfd.io
// serves at CSISocket. It runs as root (the kubelet's directories are
// root's) with every capability dropped and a read-only root.
func registrar(s Settings) corev1.Container {
	return corev1.Container{
		Name:  "csi-node-driver-registrar",
		Image: s.CSIRegistrarImage,
		Args: []string{
			"--csi-address=" + registrarCSIDir + "/csi.sock",
			"--kubelet-registration-path=" + CSISocket,
		},
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr.To[int64](0),
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "csi-plugin", MountPath: registrarCSIDir},
			{Name: "csi-registration", MountPath: "/registration"},
		},
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("5m"), corev1.ResourceMemory: resource.MustParse("16Mi"),
		}},
	}
}
