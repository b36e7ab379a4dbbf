// Package depcheck holds a test that enforces bpfd's package boundaries: the
// Kubernetes side never links bytecode, signing or kernel libraries, the three
// core packages never import each other, and bpfctl stays free of Kubernetes.
package depcheck
