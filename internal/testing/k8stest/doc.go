// Package k8stest holds helpers for the tests of bpfd's Kubernetes side: a
// real control plane (envtest's kube-apiserver and etcd, built by `make
// tools` into bin/k8s) with bpfd's CRDs installed, a client that counts its
// writes, and an in-memory bpfd serving the node API on a unix socket.
package k8stest
