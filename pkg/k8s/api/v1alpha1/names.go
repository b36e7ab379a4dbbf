package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// NodeFinalizerPrefix begins the finalizers the operator puts on a
// BpfProgramConfig, one per node that may hold its programs. Each is removed
// once that node unloaded them, or once the node is gone.
const NodeFinalizerPrefix = "nodes.bpfd.io/"

// NodeFinalizer returns the finalizer of node on a BpfProgramConfig:
// nodes.bpfd.io/<node>, with names over 63 characters shortened and made
// unique by a hash.
func NodeFinalizer(node string) string {
	return NodeFinalizerPrefix + shorten(node, 63)
}

// Labels the agent puts on every BpfProgram, so that `kubectl get bp -l
// bpfd.io/node=worker-1` reads well. Names longer than a label value may be
// (63 characters) are shortened by LabelValue. A label says where to look,
// never what an object is: its spec and its controller reference say that.
const (
	// LabelConfig holds LabelValue of the config's name.
	LabelConfig = "bpfd.io/config"
	// LabelNode holds LabelValue of the node's name.
	LabelNode = "bpfd.io/node"
	// LabelConfigUID holds the config's uid.
	LabelConfigUID = "bpfd.io/config-uid"
)

// BpfProgramHashLen is the length of the hash that ends a BpfProgram's name:
// 16 hex digits, 64 bits of SHA-256, so that no one can make up a config or
// node name whose BpfProgram name another pair already has.
const BpfProgramHashLen = 16

// BpfProgramName returns the name of the BpfProgram in which node reports on
// config: <config>-<node>-<hash>, where hash is the first 16 hex digits of
// the SHA-256 of config and node with a NUL byte between them (which no name
// contains). The readable prefix is cut short so that the name keeps to 253
// characters. Two different (config, node) pairs never share a name, even
// where their prefixes read the same ("a-b" on "c" and "a" on "b-c").
func BpfProgramName(config, node string) string {
	sum := sha256.Sum256([]byte(config + "\x00" + node))
	hash := hex.EncodeToString(sum[:])[:BpfProgramHashLen]
	prefix := config + "-" + node
	if max := 253 - 1 - len(hash); len(prefix) > max {
		prefix = strings.TrimRight(prefix[:max], "-.")
	}
	return prefix + "-" + hash
}

// BpfProgramLabels returns the labels of the BpfProgram in which node
// reports on config, whose uid is configUID.
func BpfProgramLabels(config, node string, configUID types.UID) map[string]string {
	return map[string]string{
		LabelConfig:    LabelValue(config),
		LabelNode:      LabelValue(node),
		LabelConfigUID: string(configUID),
	}
}

// LabelValue returns name as a label value: name itself when it has at most
// 63 characters, else a prefix and a hash of all of it, 63 characters
// together. Object names (DNS subdomains) are valid label values but for
// their length.
func LabelValue(name string) string {
	return shorten(name, 63)
}

// Reports reports whether bp is node's report on the config named config
// whose uid is configUID: its spec names both, it carries the name
// BpfProgramName gives them, and that config is its controller. An object
// that merely has the right name, or merely the right spec, is not.
func (bp *BpfProgram) Reports(config string, configUID types.UID, node string) bool {
	ref := metav1.GetControllerOf(bp)
	if ref == nil {
		return false
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	return err == nil && gv.Group == GroupVersion.Group && ref.Kind == "BpfProgramConfig" && ref.UID == configUID &&
		bp.Spec.ConfigName == config && bp.Spec.NodeName == node && bp.Name == BpfProgramName(config, node)
}

// ReportSpec returns bp's spec, for code that handles BpfPrograms and
// BpfTenantPrograms alike.
func (bp *BpfProgram) ReportSpec() *BpfProgramSpec { return &bp.Spec }

// ReportStatus returns bp's status, for code that handles BpfPrograms and
// BpfTenantPrograms alike.
func (bp *BpfProgram) ReportStatus() *BpfProgramStatus { return &bp.Status }

// shorten returns s when it has at most max characters, else a prefix of s
// and a hash of all of s, max characters together.
func shorten(s string, max int) string {
	if len(s) <= max {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	hash := hex.EncodeToString(sum[:])[:10]
	return strings.TrimRight(s[:max-len(hash)-1], "-.") + "-" + hash
}

// Reports reports whether btp is node's report on the tenant config named
// config, whose uid is configUID, in btp's namespace: its spec names both,
// it carries the name BpfProgramName gives them, and that config is its
// controller.
func (btp *BpfTenantProgram) Reports(config string, configUID types.UID, node string) bool {
	ref := metav1.GetControllerOf(btp)
	if ref == nil {
		return false
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	return err == nil && gv.Group == GroupVersion.Group && ref.Kind == "BpfTenantProgramConfig" && ref.UID == configUID &&
		btp.Spec.ConfigName == config && btp.Spec.NodeName == node && btp.Name == BpfProgramName(config, node)
}

// ReportSpec returns btp's spec, as BpfProgram's ReportSpec does.
func (btp *BpfTenantProgram) ReportSpec() *BpfProgramSpec { return &btp.Spec }

// ReportStatus returns btp's status, as BpfProgram's ReportStatus does.
func (btp *BpfTenantProgram) ReportStatus() *BpfProgramStatus { return &btp.Status }
