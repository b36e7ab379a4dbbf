package main

import "github.com/urfave/cli/v2"

// commands lists bpfctl-image's subcommands, one per file.
var commands = []*cli.Command{}
