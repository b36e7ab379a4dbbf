// Package crdcompat compares a CustomResourceDefinition with the same
// definition as an earlier release shipped it, by the rules bpfd keeps for
// its CRDs (docs/kubernetes.md, API versions): objects stored and clients
// written against the earlier one stay valid. Every version served before
// is served, the storage version is the same, every field keeps its type
// and format, no field becomes required, and no validation tightens (enum
// values removed, bounds narrowed, patterns or CEL rules added or
// changed). A change these rules refuse comes in a new API version served
// beside the old one, with conversion.
package crdcompat
