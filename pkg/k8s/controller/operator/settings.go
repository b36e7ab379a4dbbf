package operator

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// ConfigMapName is the default name of the ConfigMap that configures the
// bpfd DaemonSet, in the operator's namespace.
const ConfigMapName = "bpfd-config"

// Keys of the bpfd-config ConfigMap. Every key is optional.
const (
	// KeyBpfdImage is bpfd's container image.
	KeyBpfdImage = "bpfd.image"
	// KeyAgentImage is bpfd-agent's container image.
	KeyAgentImage = "bpfd.agent.image"
	// KeyLogLevel is the log level of both: debug, info, warn or error.
	KeyLogLevel = "bpfd.log.level"
	// KeyTrustPolicy names the ConfigMap holding bpfd's trust policy under
	// the key policy.yaml. bpfd does not start without it.
	KeyTrustPolicy = "bpfd.trust-policy.configmap"
	// KeyRegistryCredentials names a kubernetes.io/dockerconfigjson Secret
	// mounted into bpfd (only) as a Docker config file for pulling.
	KeyRegistryCredentials = "bpfd.registry-credentials.secret"
	// KeyMaxUnavailable is how many nodes' bpfd pods an update of the
	// DaemonSet restarts at once: a number of nodes (at least 1) or a
	// percentage of them (1% to 100%). Programs keep running while their
	// node's pod restarts; what waits is loading and unloading there.
	KeyMaxUnavailable = "bpfd.update.max-unavailable"
	// KeyCSIRegistrarImage is the image of the CSI node-driver-registrar
	// sidecar, which registers bpfd's CSI driver csi.bpfd.io with the
	// kubelet.
	KeyCSIRegistrarImage = "bpfd.csi.registrar.image"
)

// DefaultMaxUnavailable is the DaemonSet's maxUnavailable unless
// bpfd-config sets another: one node at a time.
var DefaultMaxUnavailable = intstr.FromInt32(1)

// DefaultCSIRegistrarImage is the node-driver-registrar's image unless
// bpfd-config or the operator's flag names another.
const DefaultCSIRegistrarImage = "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.13.0"

// Settings configure the bpfd DaemonSet.
type Settings struct {
	BpfdImage  string
	AgentImage string
	LogLevel   string
	// TrustPolicyConfigMap names the ConfigMap with the trust policy.
	TrustPolicyConfigMap string
	// RegistryCredentialsSecret names the Secret with registry credentials;
	// empty means none.
	RegistryCredentialsSecret string
	// MaxUnavailable is the DaemonSet's rolling update's maxUnavailable.
	MaxUnavailable intstr.IntOrString
	// CSIRegistrarImage is the CSI node-driver-registrar's image.
	CSIRegistrarImage string
}

// DefaultTrustPolicyConfigMap is the trust policy's ConfigMap unless
// bpfd-config names another.
const DefaultTrustPolicyConfigMap = "bpfd-trust-policy"

var logLevels = []string{"debug", "info", "warn", "error"}

// SettingsFromConfigMap reads the bpfd-config ConfigMap over defaults (which
// carry the images the operator was deployed with) and validates the result,
// returning every problem at once.
func SettingsFromConfigMap(cm *corev1.ConfigMap, defaults Settings) (Settings, error) {
	s := defaults
	if s.LogLevel == "" {
		s.LogLevel = "info"
	}
	if s.TrustPolicyConfigMap == "" {
		s.TrustPolicyConfigMap = DefaultTrustPolicyConfigMap
	}
	if s.MaxUnavailable == (intstr.IntOrString{}) {
		s.MaxUnavailable = DefaultMaxUnavailable
	}
	if s.CSIRegistrarImage == "" {
		s.CSIRegistrarImage = DefaultCSIRegistrarImage
	}
	var errs []error
	for _, k := range sortedKeys(cm.Data) {
		v := strings.TrimSpace(cm.Data[k])
		switch k {
		case KeyBpfdImage:
			s.BpfdImage = v
		case KeyAgentImage:
			s.AgentImage = v
		case KeyLogLevel:
			s.LogLevel = v
		case KeyTrustPolicy:
			s.TrustPolicyConfigMap = v
		case KeyRegistryCredentials:
			s.RegistryCredentialsSecret = v
		case KeyMaxUnavailable:
			m, err := parseMaxUnavailable(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", KeyMaxUnavailable, err))
			}
			s.MaxUnavailable = m
		case KeyCSIRegistrarImage:
			s.CSIRegistrarImage = v
		default:
			errs = append(errs, fmt.Errorf("unknown key %q", k))
		}
	}
	if s.BpfdImage == "" {
		errs = append(errs, fmt.Errorf("%s: no image (set it, or start the operator with --bpfd-image)", KeyBpfdImage))
	}
	if s.AgentImage == "" {
		errs = append(errs, fmt.Errorf("%s: no image (set it, or start the operator with --agent-image)", KeyAgentImage))
	}
	if s.CSIRegistrarImage == "" {
		errs = append(errs, fmt.Errorf("%s: no image", KeyCSIRegistrarImage))
	}
	if !slices.Contains(logLevels, s.LogLevel) {
		errs = append(errs, fmt.Errorf("%s: %q is not one of %s", KeyLogLevel, s.LogLevel, strings.Join(logLevels, ", ")))
	}
	checkName := func(key, name string) {
		if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a valid name: %s", key, name, strings.Join(msgs, "; ")))
		}
	}
	checkName(KeyTrustPolicy, s.TrustPolicyConfigMap)
	if s.RegistryCredentialsSecret != "" {
		checkName(KeyRegistryCredentials, s.RegistryCredentialsSecret)
	}
	if err := errors.Join(errs...); err != nil {
		return Settings{}, fmt.Errorf("ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	return s, nil
}

// parseMaxUnavailable reads a number of nodes, at least 1, or a percentage
// from 1% to 100%. Zero would stop every update: the DaemonSet surges no
// pod (two bpfds on a node would share its store and pins).
func parseMaxUnavailable(v string) (intstr.IntOrString, error) {
	num, percent := strings.CutSuffix(v, "%")
	n, err := strconv.ParseInt(num, 10, 32)
	switch {
	case err != nil || num != strconv.FormatInt(n, 10):
		return intstr.IntOrString{}, fmt.Errorf("%q is not a number of nodes or a percentage", v)
	case n < 1:
		return intstr.IntOrString{}, fmt.Errorf("%q: at least one node must be updated at a time", v)
	case percent && n > 100:
		return intstr.IntOrString{}, fmt.Errorf("%q is more than 100%%", v)
	case percent:
		return intstr.FromString(v), nil
	}
	return intstr.FromInt32(int32(n)), nil
}
