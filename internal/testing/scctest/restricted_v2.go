package scctest

import (
	securityv1 "github.com/openshift/api/security/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// RestrictedV2 returns OpenShift's built-in restricted-v2 SCC, the one every
// authenticated user's pods may use, as OpenShift 4.11 defined it (later
// releases may allow more volume types, such as csi).
// It is not bpfd's to ship: tests evaluate bpfd's operator against it.
func RestrictedV2() *securityv1.SecurityContextConstraints {
	return &securityv1.SecurityContextConstraints{
		TypeMeta:                 metav1.TypeMeta{APIVersion: "security.openshift.io/v1", Kind: "SecurityContextConstraints"},
		ObjectMeta:               metav1.ObjectMeta{Name: "restricted-v2"},
		AllowPrivilegeEscalation: ptr.To(false),
		AllowedCapabilities:      []corev1.Capability{"NET_BIND_SERVICE"},
		RequiredDropCapabilities: []corev1.Capability{"ALL"},
		FSGroup:                  securityv1.FSGroupStrategyOptions{Type: securityv1.FSGroupStrategyMustRunAs},
		RunAsUser:                securityv1.RunAsUserStrategyOptions{Type: securityv1.RunAsUserStrategyMustRunAsRange},
		SELinuxContext:           securityv1.SELinuxContextStrategyOptions{Type: securityv1.SELinuxStrategyMustRunAs},
		SupplementalGroups:       securityv1.SupplementalGroupsStrategyOptions{Type: securityv1.SupplementalGroupsStrategyRunAsAny},
		SeccompProfiles:          []string{"runtime/default"},
		Volumes: []securityv1.FSType{
			securityv1.FSTypeConfigMap, securityv1.FSTypeDownwardAPI, securityv1.FSTypeEmptyDir, securityv1.FSTypeEphemeral,
			securityv1.FSTypePersistentVolumeClaim, securityv1.FSProjected, securityv1.FSTypeSecret,
		},
	}
}
