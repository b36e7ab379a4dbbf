package operator

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestSettingsFromConfigMap(t *testing.T) {
	defaults := Settings{BpfdImage: "bpfd:1", AgentImage: "agent:1"}
	cases := map[string]struct {
		data     map[string]string
		defaults Settings
		want     Settings
		wantErrs []string
	}{
		"empty": {
			defaults: defaults,
			want: Settings{BpfdImage: "bpfd:1", AgentImage: "agent:1", LogLevel: "info", TrustPolicyConfigMap: "bpfd-trust-policy", MaxUnavailable: intstr.FromInt32(1),
				CSIRegistrarImage: DefaultCSIRegistrarImage},
		},
		"max unavailable nodes": {
			data:     map[string]string{KeyMaxUnavailable: "3"},
			defaults: defaults,
			want: Settings{BpfdImage: "bpfd:1", AgentImage: "agent:1", LogLevel: "info", TrustPolicyConfigMap: "bpfd-trust-policy", MaxUnavailable: intstr.FromInt32(3),
				CSIRegistrarImage: DefaultCSIRegistrarImage},
		},
		"max unavailable percentage": {
			data:     map[string]string{KeyMaxUnavailable: "25%"},
			defaults: defaults,
			want: Settings{BpfdImage: "bpfd:1", AgentImage: "agent:1", LogLevel: "info", TrustPolicyConfigMap: "bpfd-trust-policy", MaxUnavailable: intstr.FromString("25%"),
				CSIRegistrarImage: DefaultCSIRegistrarImage},
		},
		"max unavailable zero": {
			data: map[string]string{KeyMaxUnavailable: "0"}, defaults: defaults,
			wantErrs: []string{`bpfd.update.max-unavailable: "0": at least one node must be updated at a time`},
		},
		"max unavailable zero percent": {
			data: map[string]string{KeyMaxUnavailable: "0%"}, defaults: defaults,
			wantErrs: []string{`bpfd.update.max-unavailable: "0%": at least one node`},
		},
		"max unavailable over 100%": {
			data: map[string]string{KeyMaxUnavailable: "101%"}, defaults: defaults,
			wantErrs: []string{`bpfd.update.max-unavailable: "101%" is more than 100%`},
		},
		"max unavailable not a number": {
			data: map[string]string{KeyMaxUnavailable: "one"}, defaults: defaults,
			wantErrs: []string{`bpfd.update.max-unavailable: "one" is not a number of nodes or a percentage`},
		},
		"max unavailable padded number": {
			data: map[string]string{KeyMaxUnavailable: "+01"}, defaults: defaults,
			wantErrs: []string{`bpfd.update.max-unavailable: "+01" is not a number`},
		},
		"max unavailable negative": {
			data: map[string]string{KeyMaxUnavailable: "-1"}, defaults: defaults,
			wantErrs: []string{`bpfd.update.max-unavailable: "-1": at least one node`},
		},
		"max unavailable too big": {
			data: map[string]string{KeyMaxUnavailable: "99999999999"}, defaults: defaults,
			wantErrs: []string{`bpfd.update.max-unavailable: "99999999999" is not a number`},
		},
		"everything": {
			data: map[string]string{
				KeyBpfdImage: "bpfd:2", KeyAgentImage: " agent:2\n", KeyLogLevel: "debug",
				KeyTrustPolicy: "strict-policy", KeyRegistryCredentials: "pull-secret", KeyMaxUnavailable: "10%",
				KeyCSIRegistrarImage: "registrar:3",
			},
			defaults: defaults,
			want: Settings{BpfdImage: "bpfd:2", AgentImage: "agent:2", LogLevel: "debug",
				TrustPolicyConfigMap: "strict-policy", RegistryCredentialsSecret: "pull-secret", MaxUnavailable: intstr.FromString("10%"),
				CSIRegistrarImage: "registrar:3"},
		},
		"every problem at once": {
			data: map[string]string{
				"bpfd.imag": "typo", KeyLogLevel: "loud", KeyTrustPolicy: "Not_A_Name", KeyRegistryCredentials: "also bad",
				KeyCSIRegistrarImage: " ",
			},
			wantErrs: []string{
				`unknown key "bpfd.imag"`,
				"bpfd.image: no image",
				"bpfd.agent.image: no image",
				"bpfd.csi.registrar.image: no image",
				`bpfd.log.level: "loud" is not one of debug, info, warn, error`,
				`bpfd.trust-policy.configmap: "Not_A_Name" is not a valid name`,
				`bpfd.registry-credentials.secret: "also bad" is not a valid name`,
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "bpfd", Name: "bpfd-config"}, Data: tc.data}
			got, err := SettingsFromConfigMap(cm, tc.defaults)
			if len(tc.wantErrs) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("settings (-want +got):\n%s", diff)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), "ConfigMap bpfd/bpfd-config: ") {
				t.Errorf("error %q does not name the ConfigMap", err)
			}
			for _, want := range tc.wantErrs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

// TestDaemonSetPrivileges checks the split of privileges between the two
// containers: credentials and privilege for bpfd, the API token for the
// agent.
func TestDaemonSetPrivileges(t *testing.T) {
	ds := DaemonSet("bpfd", Settings{BpfdImage: "bpfd:1", AgentImage: "agent:1", LogLevel: "info",
		TrustPolicyConfigMap: "bpfd-trust-policy", RegistryCredentialsSecret: "pull-secret"})
	pod := ds.Spec.Template.Spec
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod automounts the service-account token into every container")
	}
	if pod.ServiceAccountName != AgentServiceAccount || !pod.HostNetwork {
		t.Errorf("service account %q, host network %v", pod.ServiceAccountName, pod.HostNetwork)
	}
	containers := map[string]corev1.Container{}
	for _, c := range pod.Containers {
		containers[c.Name] = c
	}
	mounts := func(c corev1.Container) map[string]string {
		m := map[string]string{}
		for _, vm := range c.VolumeMounts {
			m[vm.Name] = vm.MountPath
		}
		return m
	}
	bpfd, agent := containers["bpfd"], containers["bpfd-agent"]
	if diff := cmp.Diff(map[string]string{
		"bpffs": "/sys/fs/bpf", "run": "/run/bpfd", "state": "/var/lib/bpfd",
		"trust-policy": "/etc/bpfd/trust", "registry-credentials": "/etc/bpfd/registry",
		"csi-plugin": "/var/lib/kubelet/plugins/csi.bpfd.io", "kubelet-pods": "/var/lib/kubelet/pods",
	}, mounts(bpfd)); diff != "" {
		t.Errorf("bpfd mounts (-want +got):\n%s", diff)
	}
	for _, m := range bpfd.VolumeMounts {
		if m.Name == "kubelet-pods" && (m.MountPropagation == nil || *m.MountPropagation != corev1.MountPropagationBidirectional) {
			t.Errorf("bpfd mounts the kubelet's pods directory with propagation %v, want Bidirectional (its volumes reach the host)", m.MountPropagation)
		}
	}
	registrar := containers["csi-node-driver-registrar"]
	if diff := cmp.Diff(map[string]string{"csi-plugin": "/csi", "csi-registration": "/registration"}, mounts(registrar)); diff != "" {
		t.Errorf("registrar mounts (-want +got):\n%s", diff)
	}
	if sc := registrar.SecurityContext; sc == nil || sc.Privileged != nil || *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem || len(sc.Capabilities.Drop) != 1 {
		t.Errorf("registrar security context %+v, want unprivileged with every capability dropped", sc)
	}
	if !slices.Contains(registrar.Args, "--kubelet-registration-path=/var/lib/kubelet/plugins/csi.bpfd.io/csi.sock") ||
		!slices.Contains(bpfd.Args, "--csi-socket=/var/lib/kubelet/plugins/csi.bpfd.io/csi.sock") || !slices.Contains(bpfd.Args, "--csi") {
		t.Errorf("registrar args %v, bpfd args %v: the socket the registrar registers is not the one bpfd serves", registrar.Args, bpfd.Args)
	}
	if diff := cmp.Diff(map[string]string{
		"run": "/run/bpfd", "agent-token": "/var/run/secrets/kubernetes.io/serviceaccount",
	}, mounts(agent)); diff != "" {
		t.Errorf("agent mounts (-want +got):\n%s", diff)
	}
	if bpfd.SecurityContext == nil || bpfd.SecurityContext.Privileged == nil || !*bpfd.SecurityContext.Privileged {
		t.Error("bpfd is not privileged")
	}
	if sc := agent.SecurityContext; sc == nil || sc.Privileged != nil || *sc.AllowPrivilegeEscalation || len(sc.Capabilities.Drop) != 1 {
		t.Errorf("agent security context %+v, want unprivileged with every capability dropped", sc)
	}
	if !slices.Contains(bpfd.Args, "--registry-auth-file="+RegistryAuthFile) || !slices.Contains(bpfd.Args, "--policy="+TrustPolicyFile) {
		t.Errorf("bpfd args %v", bpfd.Args)
	}
	if len(agent.Env) != 1 || agent.Env[0].Name != "NODE_NAME" || agent.Env[0].ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("agent env %+v, want NODE_NAME from spec.nodeName", agent.Env)
	}

	without := DaemonSet("bpfd", Settings{BpfdImage: "bpfd:1", AgentImage: "agent:1", LogLevel: "info", TrustPolicyConfigMap: "p"})
	for _, v := range without.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			t.Errorf("a Secret volume without registry credentials: %+v", v)
		}
	}
}

// TestDaemonSetUpdateStrategy: a rolling update of MaxUnavailable nodes at
// a time (one unless set) that surges no second pod onto a node, which
// would find bpfd's store locked.
func TestDaemonSetUpdateStrategy(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  intstr.IntOrString
		want intstr.IntOrString
	}{
		{name: "default", want: intstr.FromInt32(1)},
		{name: "nodes", set: intstr.FromInt32(4), want: intstr.FromInt32(4)},
		{name: "percentage", set: intstr.FromString("20%"), want: intstr.FromString("20%")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := DaemonSet("bpfd", Settings{BpfdImage: "bpfd:1", AgentImage: "agent:1", LogLevel: "info", TrustPolicyConfigMap: "p", MaxUnavailable: tc.set})
			u := ds.Spec.UpdateStrategy
			if u.Type != "RollingUpdate" || u.RollingUpdate == nil || u.RollingUpdate.MaxUnavailable == nil || u.RollingUpdate.MaxSurge == nil {
				t.Fatalf("update strategy %+v, want a rolling update with maxUnavailable and maxSurge", u)
			}
			if *u.RollingUpdate.MaxUnavailable != tc.want || *u.RollingUpdate.MaxSurge != intstr.FromInt32(0) {
				t.Errorf("maxUnavailable %s, maxSurge %s; want %s and 0", u.RollingUpdate.MaxUnavailable, u.RollingUpdate.MaxSurge, &tc.want)
			}
		})
	}
}
