// Package badinput reads testdata/bad, bpfd's corpus of hostile input: ELF
// objects, artifacts, signatures, trust policies, daemon configuration files,
// references and gRPC requests that bpfd must refuse with a clear error,
// without panicking and without writing (or loading) anything.
// testdata/bad/README.md describes the format.
//
// Each surface (a directory of testdata/bad) has a table, corpus.yaml, whose
// entries name their input files and the error class and message they must
// produce. Artifact and signature entries are directories of blobs whose
// JSON refers to other blobs through templates ({{digest config.json}}, see
// Expand); Layout writes such an entry as an OCI image layout.
//
// The package only reads the corpus and builds inputs from it. The tests
// that feed the entries to bpfd's entry points live beside it
// (surfaces_test.go; request_test.go sends the requests to a real bpfd) and
// in cmd/bpfctl-image; the fuzz targets of pkg/artifact, pkg/verify and
// internal/daemon take their seeds from it.
package badinput
