// Package artifact builds, stores and moves bpfd's bytecode artifacts: OCI 1.1
// manifests (or indexes, one manifest per platform) whose config blob describes
// the BPF programs, maps and globals of the ELF objects in their layers. The
// format is specified in docs/artifact-spec.md.
//
// Writing: ReadObjectFile reads objects, Describe extracts their Config with
// cilium/ebpf, Build and BuildIndex push an artifact into any oras-go store
// (a memory store, so that nothing reaches the destination unless the build
// succeeded), and Copy moves it, with its signatures and other referrers, to
// a Target, streaming each blob, verified, within Limits.
//
// Building blocks for readers that decide before they fetch (signatures
// before layers): FetchNode reads one manifest or index, bounded, verified
// and typed by its content; ListReferrers lists and fetches a subject's
// referrers with caps and a type filter, skipping what is hostile; FetchBlob
// reads a small blob (a signature bundle), CopyBlob streams a large one; and
// Copy with SkipLayers copies an artifact's manifests, configs and referrers,
// a later Copy its layers.
//
// Reading: ParseReference and Open turn "host/repo:tag", "oci:DIR:tag" or
// "oci-archive:FILE:tag" into a Target; Target.ResolveReference gives the
// root descriptor; Fetch returns the objects for a platform, verified against
// their digests (FetchObjects streams them to a writer instead); Inspect
// describes every platform without fetching objects.
// Both read bpfd artifacts and bpfman's bytecode images (FormatBpfman).
//
// Errors wrap the sentinels in errors.go (ErrNotFound, ErrInvalidObject,
// ErrUnsupported, ErrDigestMismatch, ErrUnreachable, ErrInvalidReference,
// ErrLimit with a *LimitError) with the identity of the file, reference or
// blob at fault.
package artifact
