// Package artifact builds, stores and moves bpfd's bytecode artifacts: OCI 1.1
// manifests (or indexes, one manifest per platform) whose config blob describes
// the BPF programs, maps and globals of the ELF objects in their layers. It
// reads and writes registries, OCI image layouts on disk and layout archives,
// and also reads bpfman's bytecode images. The format is specified in
// docs/artifact-spec.md.
package artifact
