package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
)

var inspectCommand = &cli.Command{
	Name:      "inspect",
	Usage:     "show an artifact's programs, maps, globals, platforms, digest, size and format",
	ArgsUsage: "REF",
	Description: `Reads the manifest (or index) and configs REF names, without the object
layers of bpfd artifacts, and shows what they declare. Reads bpfd artifacts
and bpfman images, and says which format it read.`,
	Flags:  flags([]cli.Flag{outputFlag}, registryFlags),
	Action: inspect,
}

func inspect(c *cli.Context) error {
	args, err := arguments(c, 1, 1, "inspect REF")
	if err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	ref, err := parseReference(args[0])
	if err != nil {
		return err
	}
	src, err := open(c, ref, false)
	if err != nil {
		return err
	}
	defer src.Close()
	root, err := src.ResolveReference(c.Context)
	if err != nil {
		return err
	}
	d, err := artifact.Inspect(c.Context, src, root)
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	out := inspectOutput{
		Envelope:     newEnvelope("Inspect"),
		Reference:    ref.WithDigest(root.Digest).String(),
		Digest:       root.Digest,
		MediaType:    d.Root.MediaType, // the content's, not the one claimed
		ArtifactType: d.Root.ArtifactType,
		Size:         d.Size,
		Annotations:  d.Annotations,
	}
	for _, m := range d.Manifests {
		im := inspectManifest{
			Digest:      m.Descriptor.Digest,
			Size:        m.Descriptor.Size,
			Format:      string(m.Format),
			Annotations: m.Annotations,
			Labels:      m.Labels,
			Config:      m.Config,
		}
		if m.Platform != nil {
			im.Platform = artifact.FormatPlatform(*m.Platform)
		}
		if out.ArtifactType == "" && m.Format == artifact.FormatBpfd {
			out.ArtifactType = artifact.ArtifactType
		}
		out.Manifests = append(out.Manifests, im)
	}
	if asJSON {
		return cliutil.WriteJSON(c.App.Writer, out)
	}
	return renderInspect(c.App.Writer, out)
}

// renderInspect writes the text form of inspect.
func renderInspect(w io.Writer, out inspectOutput) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Reference:\t%s\n", out.Reference)
	fmt.Fprintf(tw, "Digest:\t%s\n", out.Digest)
	fmt.Fprintf(tw, "Media type:\t%s\n", out.MediaType)
	if out.ArtifactType != "" {
		fmt.Fprintf(tw, "Artifact type:\t%s\n", out.ArtifactType)
	}
	fmt.Fprintf(tw, "Format:\t%s\n", formats(out.Manifests))
	fmt.Fprintf(tw, "Size:\t%s (%d bytes)\n", humanSize(out.Size), out.Size)
	var platforms []string
	for _, m := range out.Manifests {
		if m.Platform != "" {
			platforms = append(platforms, m.Platform)
		}
	}
	if len(platforms) > 0 {
		fmt.Fprintf(tw, "Platforms:\t%s\n", strings.Join(platforms, ", "))
	}
	for _, k := range slices.Sorted(maps.Keys(out.Annotations)) {
		fmt.Fprintf(tw, "Annotation:\t%s=%s\n", k, out.Annotations[k])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, m := range out.Manifests {
		if err := renderManifest(w, m, len(out.Manifests) > 1); err != nil {
			return err
		}
	}
	return nil
}

func formats(ms []inspectManifest) string {
	var fs []string
	for _, m := range ms {
		if !slices.Contains(fs, m.Format) {
			fs = append(fs, m.Format)
		}
	}
	return strings.Join(fs, ", ")
}

func renderManifest(w io.Writer, m inspectManifest, inIndex bool) error {
	cfg := m.Config
	fmt.Fprintln(w)
	if inIndex || m.Platform != "" {
		platform := m.Platform
		if platform == "" {
			platform = "(none)"
		}
		fmt.Fprintf(w, "Platform %s: manifest %s, %s-endian\n", platform, m.Digest, cfg.ByteOrder)
	} else {
		fmt.Fprintf(w, "Byte order: %s-endian\n", cfg.ByteOrder)
	}
	for _, k := range slices.Sorted(maps.Keys(m.Labels)) {
		fmt.Fprintf(w, "Label: %s=%s\n", k, m.Labels[k])
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nOBJECT\tSIZE\tBTF\tDIGEST")
	for _, o := range cfg.Objects {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", o.Name, humanSize(o.Size), yesNo(o.BTF), o.Digest)
	}
	fmt.Fprintln(tw, "\nPROGRAM\tTYPE\tSECTION\tATTACH TYPE\tTARGET\tKINDS\tOBJECT")
	for _, o := range cfg.Objects {
		for _, p := range o.Programs {
			kinds := make([]string, len(p.Kinds))
			for i, k := range p.Kinds {
				kinds[i] = string(k)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Type, p.Section, dash(p.AttachType), dash(p.AttachTarget), dash(strings.Join(kinds, ",")), o.Name)
		}
	}
	if hasMaps(cfg) {
		fmt.Fprintln(tw, "\nMAP\tTYPE\tKEY\tVALUE\tMAX ENTRIES\tFLAGS\tPINNING\tOBJECT")
		for _, o := range cfg.Objects {
			for _, mp := range o.Maps {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%#x\t%s\t%s\n", mp.Name, mp.Type, mp.KeySize, mp.ValueSize, mp.MaxEntries, mp.Flags, mp.Pinning, o.Name)
			}
		}
	}
	if hasGlobals(cfg) {
		fmt.Fprintln(tw, "\nGLOBAL\tSECTION\tREAD-ONLY\tSIZE\tTYPE\tOBJECT")
		for _, o := range cfg.Objects {
			for _, s := range o.DataSections {
				for _, g := range s.Globals {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", g.Name, s.Name, yesNo(s.ReadOnly), g.Size, dash(g.Type), o.Name)
				}
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	r := cfg.Requires
	fmt.Fprintln(w, "\nRequires:")
	fmt.Fprintf(w, "  program types: %s\n", list(r.ProgramTypes))
	if len(r.AttachTypes) > 0 {
		fmt.Fprintf(w, "  attach types:  %s\n", list(r.AttachTypes))
	}
	fmt.Fprintf(w, "  map types:     %s\n", list(r.MapTypes))
	fmt.Fprintf(w, "  helpers:       %s\n", list(r.Helpers))
	if len(r.Kfuncs) > 0 {
		fmt.Fprintf(w, "  kfuncs:        %s\n", list(r.Kfuncs))
	}
	_, err := fmt.Fprintf(w, "  kernel BTF:    %s\n", yesNo(r.KernelBTF))
	if b := cfg.Build; err == nil && b.Tool != "" {
		_, err = fmt.Fprintf(w, "Built by: %s\n", b.Tool)
	}
	return err
}

func hasMaps(cfg artifact.Config) bool {
	for _, o := range cfg.Objects {
		if len(o.Maps) > 0 {
			return true
		}
	}
	return false
}

func hasGlobals(cfg artifact.Config) bool {
	for _, o := range cfg.Objects {
		for _, s := range o.DataSections {
			if len(s.Globals) > 0 {
				return true
			}
		}
	}
	return false
}

func list(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ", ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
