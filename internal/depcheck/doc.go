// Package depcheck holds a test that enforces bpfd's package boundaries: the
// Kubernetes side never links bytecode, signing or kernel libraries, the three
// core packages never import each other, the supply chain never reaches the
// runtime or the API (the load path goes one way), pkg/ never imports
// internal/, nothing but tests links test support, pkg/podproc (which
// bpfd-agent links) carries no BPF, Kubernetes or daemon code, and bpfctl stays free of
// Kubernetes.
package depcheck
