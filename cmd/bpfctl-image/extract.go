package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/pkg/artifact"
)

var extractCommand = &cli.Command{
	Name:      "extract",
	Usage:     "write the BPF object a program binary embeds (a libbpf skeleton, e.g. bcc's tools)",
	ArgsUsage: "BINARY",
	Description: `Finds the one BPF ELF object embedded in BINARY, as libbpf skeletons embed
it (Debian's libbpf-tools: /usr/sbin/opensnoop, ...), checks that it is whole
and describes a BPF object, and writes it unchanged to --out (default:
BINARY's base name with .bpf.o, in the current directory; an existing
file is not overwritten), ready for
"bpfctl-image build". Prints the file written.`,
	Flags: []cli.Flag{
		&cli.StringFlag{
			Name:    "out",
			Usage:   "`FILE` to write the object to",
			EnvVars: []string{"BPFCTL_IMAGE_EXTRACT_OUT"},
		},
	},
	Action: extract,
}

func extract(c *cli.Context) error {
	args, err := arguments(c, 1, 1, "extract [--out FILE] BINARY")
	if err != nil {
		return err
	}
	obj, err := artifact.ReadEmbeddedObject(args[0])
	if err != nil {
		return err
	}
	if _, err := artifact.Describe([]artifact.ObjectFile{obj}); err != nil {
		return err
	}
	out := c.String("out")
	if out == "" {
		out = obj.Name
	}
	if err := writeNew(out, obj.Data, 0o644); err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.App.Writer, out)
	return err
}
