package main

import (
	"github.com/opencontainers/go-digest"

	"github.com/bpfd-dev/bpfd/pkg/artifact"
)

// outputSchemaVersion is the schemaVersion of every JSON document below. Fields
// are only added within a version; docs/bpfctl-image.md describes them.
const outputSchemaVersion = 1

// Envelope begins every JSON document bpfctl-image writes: the version of the
// documents' schema, and which document it is (one kind per command).
type Envelope struct {
	SchemaVersion int    `json:"schemaVersion"`
	Kind          string `json:"kind"`
}

func newEnvelope(kind string) Envelope {
	return Envelope{SchemaVersion: outputSchemaVersion, Kind: kind}
}

// buildOutput is what `build --output json` writes.
type buildOutput struct {
	Envelope
	// Reference is where the artifact was written, pinned to its digest.
	Reference string        `json:"reference"`
	Digest    digest.Digest `json:"digest"`
	// MediaType is the root's: an image manifest, or an index with
	// --platform.
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
	// Platforms are the index's platforms, "os/arch[/variant]".
	Platforms []string `json:"platforms,omitempty"`
	// Programs are the names of the programs in the artifact, sorted.
	Programs []string `json:"programs"`
}

// copyOutput is what `push --output json` and `copy --output json` write.
type copyOutput struct {
	Envelope
	Source string `json:"source"`
	// Destination is the destination reference, pinned to the digest.
	Destination string        `json:"destination"`
	Digest      digest.Digest `json:"digest"`
	MediaType   string        `json:"mediaType"`
	Size        int64         `json:"size"`
	// Referrers are the referrers carried along (signatures, attestations).
	Referrers []referrerOutput `json:"referrers"`
	// Tags are the cosign-style tags carried along ("sha256-<hex>.sig").
	Tags []string `json:"tags"`
	// Skipped are the referrers left behind: of another type, over a
	// limit, or malformed.
	Skipped []skippedOutput `json:"skipped"`
}

// skippedOutput describes one referrer copy or push left behind.
type skippedOutput struct {
	// Digest is the referrer's; empty when the listing itself was at
	// fault or the skip stands for the rest of a listing.
	Digest digest.Digest `json:"digest,omitempty"`
	// Subject is the digest of what it refers to.
	Subject digest.Digest `json:"subject,omitempty"`
	// Reason is "type", "limit" or "invalid"; Detail says more.
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}

// referrerOutput describes one referrer copied.
type referrerOutput struct {
	Digest       digest.Digest `json:"digest"`
	MediaType    string        `json:"mediaType"`
	ArtifactType string        `json:"artifactType,omitempty"`
}

// pullOutput is what `pull --output json` writes, and what pull stores as
// metadata.json beside the objects.
type pullOutput struct {
	Envelope
	Reference string `json:"reference"`
	// Digest is the root's (what signatures cover); Manifest is the
	// platform's manifest within it (the same unless Digest is an index).
	Digest   digest.Digest `json:"digest"`
	Manifest digest.Digest `json:"manifest"`
	Platform string        `json:"platform,omitempty"`
	Format   string        `json:"format"`
	// Directory and Files say where the objects were written.
	Directory   string            `json:"directory"`
	Files       []string          `json:"files"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Config      artifact.Config   `json:"config"`
}

// inspectOutput is what `inspect --output json` writes.
type inspectOutput struct {
	Envelope
	Reference    string        `json:"reference"`
	Digest       digest.Digest `json:"digest"`
	MediaType    string        `json:"mediaType"`
	ArtifactType string        `json:"artifactType,omitempty"`
	// Size is the total of the root and everything it references.
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Manifests are the root manifest, or the index's entries.
	Manifests []inspectManifest `json:"manifests"`
}

// inspectManifest describes one manifest of an inspected artifact.
type inspectManifest struct {
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
	// Platform is "os/arch[/variant]" for an index entry.
	Platform string `json:"platform,omitempty"`
	// Format is "bpfd" or "bpfman".
	Format      string            `json:"format"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Config      artifact.Config   `json:"config"`
}
