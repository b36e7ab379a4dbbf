package main

import "github.com/bpfd-dev/bpfd/internal/cliutil"

// completionCommand prints bpfctl-image's shell completion script.
var completionCommand = cliutil.CompletionCommand("bpfctl-image")
