// Package e2e is the end-to-end suite of bpfd on Kubernetes, run on this
// machine with real components only: envtest's kube-apiserver and etcd, the
// manifests of config/default applied with the real kubectl, bpfd-operator,
// bpfd and bpfd-agent built from cmd/ and run as processes, a registry
// process holding signed artifacts of bytecode/, and this machine's kernel.
//
// bpfd and bpfd-agent run as the DaemonSet the operator made says, with the
// arguments of its pod template, and bpfd-operator as its Deployment says:
// a small stand-in for the kubelet (pod_linux_test.go) lays the pod's
// volumes out under a directory of the test's — ConfigMaps and Secrets as
// files read from the API server, host paths as fresh directories — and
// rewrites every path in the containers' arguments to the directory of the
// volume mounted there. The agent and the operator authenticate as their
// service accounts (impersonated; the agent with its node's name, as its
// pod-bound token would), so the shipped RBAC and admission policy apply.
//
// The tests are privileged (testutil.RequirePrivileged): they need root to
// load programs and make veth pairs. `make test` runs them.
package e2e
