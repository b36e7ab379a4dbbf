// Package release builds bpfd's commands as an earlier release of this
// repository had them, for the upgrade and skew tests: bpfd and bpfctl of
// the previous release (Previous, a git tag) run against this tree's, over
// the same state, pins and socket.
//
// The source at the tag comes from git archive; it is built with the go
// command and module cache that run the tests, and the binaries are cached
// under bin/release/<commit>/ so that a test run builds them once. A clone
// without the tag (CI checkouts often fetch none) finds the release by its
// commit, recorded in Known; a tag naming another commit, or a shallow
// clone without the commit, fails the tests that need it, with a line
// saying so.
package release
