package main

import (
	"fmt"
	"runtime/debug"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/urfave/cli/v2"
	"oras.land/oras-go/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
)

// commands lists bpfctl-image's subcommands, one per file.
var commands = []*cli.Command{
	buildCommand,
	pushCommand,
	pullCommand,
	copyCommand,
	inspectCommand,
	keygenCommand,
	signCommand,
	verifyCommand,
}

// registryFlags configure access to registries.
var registryFlags = []cli.Flag{
	&cli.BoolFlag{
		Name:    "plain-http",
		Usage:   "talk plain HTTP to registries (loopback registries always are)",
		EnvVars: []string{"BPFCTL_IMAGE_PLAIN_HTTP"},
	},
	&cli.StringFlag{
		Name:    "registry-config",
		Usage:   "Docker `config.json` with registry credentials and credential helpers (default: ~/.docker/config.json)",
		EnvVars: []string{"BPFCTL_IMAGE_REGISTRY_CONFIG"},
	},
}

// outputFlag selects how results are written to stdout.
var outputFlag = &cli.StringFlag{
	Name:    "output",
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

// openOptions returns the options for opening a reference, from the registry
// flags.
func openOptions(c *cli.Context, create bool) artifact.OpenOptions {
	return artifact.OpenOptions{
		Create:          create,
		PlainHTTP:       c.Bool("plain-http"),
		CredentialsFile: c.String("registry-config"),
	}
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
		return false, cliutil.Usagef("--output %q: want text or json", f)
	}
}

// version returns bpfctl-image's module version, "(devel)" when built from a
// work tree.
func version() string {
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "(devel)"
}

// toolName names bpfctl-image in the build info of artifacts.
func toolName() string { return "bpfctl-image " + version() }

// write copies the artifact root from src to the reference ref, tagging it
// tag, and leaves the destination as it was when that fails.
func write(c *cli.Context, src oras.ReadOnlyGraphTarget, root ocispec.Descriptor, ref artifact.Reference, tag string, opts artifact.CopyOptions) (*artifact.CopyResult, error) {
	dst, err := artifact.Open(c.Context, ref, openOptions(c, true))
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
