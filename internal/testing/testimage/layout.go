package testimage

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// BlobPath returns where an OCI image layout keeps the blob d.
func BlobPath(layout string, d digest.Digest) string {
	return filepath.Join(layout, "blobs", d.Algorithm().String(), d.Encoded())
}

// ReadManifest reads the image manifest desc from an OCI image layout.
func ReadManifest(tb testing.TB, layout string, desc ocispec.Descriptor) ocispec.Manifest {
	tb.Helper()
	data, err := os.ReadFile(BlobPath(layout, desc.Digest))
	if err != nil {
		tb.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

// Damage flips the first byte of the blob d in an OCI image layout.
func Damage(tb testing.TB, layout string, d digest.Digest) {
	tb.Helper()
	path := BlobPath(layout, d)
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	data[0] ^= 0xff
	if err := os.Chmod(path, 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o444); err != nil {
		tb.Fatal(err)
	}
}

// Fingerprint returns the fingerprint of the public key in pubFile, as
// bpfd records a signer.
func Fingerprint(tb testing.TB, pubFile string) string {
	tb.Helper()
	data, err := os.ReadFile(pubFile)
	if err != nil {
		tb.Fatal(err)
	}
	pub, err := verify.ParsePublicKey(data)
	if err != nil {
		tb.Fatal(err)
	}
	return pub.Fingerprint()
}
