package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
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

// BpfProgramName returns the name of the BpfProgram in which node reports on
// config: <config>-<node>, shortened and made unique by a hash when longer
// than a name may be.
func BpfProgramName(config, node string) string {
	return shorten(config+"-"+node, 253)
}

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
