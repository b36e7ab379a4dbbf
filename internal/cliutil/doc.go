// Package cliutil holds what bpfd's command-line tools share: exit codes,
// usage errors, JSON output, and the argument order they accept.
package cliutil
