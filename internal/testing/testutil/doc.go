// Package testutil holds helpers shared by bpfd's tests: gates for tests that
// need privileges or kernel features, and a TestMain that fails packages which
// leak file descriptors.
package testutil
