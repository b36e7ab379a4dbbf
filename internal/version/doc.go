// Package version tells which release and commit bpfd's binaries were built
// from. The Makefile stamps both with -ldflags -X (see its LDFLAGS); a
// binary built otherwise reports what Go recorded of the module and its
// version control, and never "(devel)".
package version
