// Package controllercmd holds what bpfd-agent's and bpfd-operator's mains
// share: the flags every controller manager takes (kubeconfig, log level,
// metrics and health endpoints) and turning them into a REST config, a
// logger and manager options, and running the command line with the exit
// codes of every bpfd tool (internal/cliutil).
package controllercmd
