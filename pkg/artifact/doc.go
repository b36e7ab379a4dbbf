// Package artifact builds, stores and moves bpfd's bytecode artifacts: OCI 1.1
// manifests (or indexes, one manifest per platform) whose config blob describes
// the BPF programs, maps and globals of the ELF objects in their layers. The
// format is specified in docs/artifact-spec.md.
//
// Writing: ReadObjectFile reads objects, Describe extracts their Config with
// cilium/ebpf, Build and BuildIndex push an artifact into any oras-go store
// (a memory store, so that nothing reaches the destination unless the build
// succeeded), and Copy moves it, with its signatures and other referrers, to
// a Target.
//
// Reading: ParseReference and Open turn "host/repo:tag", "oci:DIR:tag" or
// "oci-archive:FILE:tag" into a Target; Target.ResolveReference gives the
// root descriptor; Fetch returns the objects for a platform, verified against
// their digests; Inspect describes every platform without fetching objects.
// Both read bpfd artifacts and bpfman's bytecode images (FormatBpfman).
//
// Errors wrap the sentinels in errors.go (ErrNotFound, ErrInvalidObject,
// ErrUnsupported, ErrDigestMismatch, ErrUnreachable, ErrInvalidReference)
// with the identity of the file, reference or blob at fault.
package artifact
