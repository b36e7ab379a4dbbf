package main

import "github.com/bpfd-dev/bpfd/internal/cliutil"

// completionCommand prints bpfctl's shell completion script.
var completionCommand = cliutil.CompletionCommand("bpfctl")
