package main

import (
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/urfave/cli/v2"
	"oras.land/oras-go/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/internal/version"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
)

// commands lists bpfctl-image's subcommands, one per file.
var commands = []*cli.Command{
	buildCommand,
	extractCommand,
	pushCommand,
	pullCommand,
	copyCommand,
	tagCommand,
	lsCommand,
	inspectCommand,
	discoverCommand,
	keygenCommand,
	publicKeyCommand,
	signCommand,
	attestCommand,
	verifyCommand,
	policyCommand,
	loginCommand,
	logoutCommand,
	versionCommand,
	completionCommand,
}

// outputFlag selects how results are written to stdout.
var outputFlag = &cli.StringFlag{
	Name:    "output",
	Aliases: []string{"o"},
	Value:   "text",
	Usage:   "result `format`: text or json (a versioned document, see docs/bpfctl-image.md)",
	EnvVars: []string{"BPFCTL_IMAGE_OUTPUT"},
}

// flags joins flag groups for a command.
func flags(groups ...[]cli.Flag) []cli.Flag {
	var all []cli.Flag
	for _, g := range groups {
		all = append(all, g...)
	}
	return all
}

// arguments returns the command's positional arguments, checking their
// number.
func arguments(c *cli.Context, min, max int, usage string) ([]string, error) {
	args := c.Args().Slice()
	if len(args) < min || (max >= 0 && len(args) > max) {
		return nil, cliutil.Usagef("%s: want %s", c.Command.Name, usage)
	}
	return args, nil
}

// parseReference parses a reference given on the command line; a reference
// that does not parse is a usage error.
func parseReference(s string) (artifact.Reference, error) {
	ref, err := artifact.ParseReference(s)
	if err != nil {
		return artifact.Reference{}, cliutil.UsageError{Err: err}
	}
	return ref, nil
}

// jsonOutput reports whether --output asks for JSON, refusing unknown formats.
func jsonOutput(c *cli.Context) (bool, error) {
	switch f := c.String("output"); f {
	case "text", "":
		return false, nil
	case "json":
		return true, nil
	default:
		return false, cliutil.Usagef("--output %q: want text or json (-o is the output format; build and pull write to --dest)", f)
	}
}

// toolName names bpfctl-image, its version and commit, in the build info of
// artifacts: "bpfctl-image v0.3.0 (commit 1a2b3c4d5e6f)".
func toolName() string { return "bpfctl-image " + version.Get().String() }

// write copies the artifact root from src to the reference ref, tagging it
// tag, and leaves the destination as it was when that fails.
func write(c *cli.Context, src oras.ReadOnlyGraphTarget, root ocispec.Descriptor, ref artifact.Reference, tag string, opts artifact.CopyOptions) (*artifact.CopyResult, error) {
	dst, err := open(c, ref, true)
	if err != nil {
		return nil, err
	}
	result, err := artifact.Copy(c.Context, src, root, dst, tag, opts)
	if err != nil {
		dst.Discard()
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	if err := dst.Close(); err != nil {
		return nil, err
	}
	return result, nil
}
