package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/urfave/cli/v2"
	"oras.land/oras-go/v2/content/memory"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
)

var buildCommand = &cli.Command{
	Name:      "build",
	Usage:     "build a bytecode artifact from BPF object files",
	ArgsUsage: "FILE.o [FILE.o...]",
	Description: `Builds an OCI artifact of the objects and writes it to the reference --dest
names (a registry, oci:DIR or oci-archive:FILE), tagged (default: latest).
The metadata (programs, maps, globals, kernel requirements) is extracted
from the objects. With --platform instead of files, it builds one manifest
per platform and an index over them; linux/bpfel and linux/bpfeb mark
arch-neutral CO-RE objects. The created time is SOURCE_DATE_EPOCH, or the
Unix epoch: the same objects give the same digest. Prints the digest.`,
	Flags: flags([]cli.Flag{
		&cli.StringFlag{
			Name:    "dest",
			Aliases: []string{"d"},
			Usage:   "`REF` to write the artifact to (required)",
			EnvVars: []string{"BPFCTL_IMAGE_BUILD_DEST"},
		},
		&cli.StringSliceFlag{
			Name:    "platform",
			Usage:   "`os/arch[/variant]=FILE.o[,FILE.o...]`: objects for one platform (repeat for several)",
			EnvVars: []string{"BPFCTL_IMAGE_BUILD_PLATFORM"},
		},
		&cli.StringSliceFlag{
			Name:    "annotation",
			Usage:   "`key=value` manifest annotation, e.g. org.opencontainers.image.source=URL (repeatable)",
			EnvVars: []string{"BPFCTL_IMAGE_BUILD_ANNOTATION"},
		},
		outputFlag,
	}, registryFlags),
	Action: build,
}

func build(c *cli.Context) error {
	files, err := arguments(c, 0, -1, "build --dest REF FILE.o [FILE.o...] or build --dest REF --platform os/arch=FILE.o...")
	if err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	platformSpecs := c.StringSlice("platform")
	switch {
	case len(files) == 0 && len(platformSpecs) == 0:
		return cliutil.Usagef("build: no object files (give FILE.o or --platform os/arch=FILE.o)")
	case len(files) > 0 && len(platformSpecs) > 0:
		return cliutil.Usagef("build: give object files or --platform, not both")
	}
	if c.String("dest") == "" {
		return cliutil.Usagef("build: --dest REF is required")
	}
	ref, err := parseReference(c.String("dest"))
	if err != nil {
		return err
	}
	if ref.Digest != "" {
		return cliutil.Usagef("build: --dest %s: a build destination takes a tag, not a digest", ref)
	}
	opts, err := buildOptions(c)
	if err != nil {
		return err
	}

	// Build in memory: the destination is touched only once all is well.
	staged := memory.New()
	var root ocispec.Descriptor
	var platforms []string
	if len(files) > 0 {
		objects, err := readObjects(files)
		if err != nil {
			return err
		}
		if root, err = artifact.Build(c.Context, staged, objects, opts); err != nil {
			return err
		}
	} else {
		var inputs []artifact.PlatformObjects
		for _, s := range platformSpecs {
			in, err := parsePlatformSpec(s)
			if err != nil {
				return err
			}
			inputs = append(inputs, in)
			platforms = append(platforms, artifact.FormatPlatform(in.Platform))
		}
		slices.Sort(platforms)
		if root, err = artifact.BuildIndex(c.Context, staged, inputs, opts); err != nil {
			return err
		}
	}
	desc, err := artifact.Inspect(c.Context, staged, root)
	if err != nil {
		return err
	}

	if ref.Tag == "" {
		ref.Tag = artifact.DefaultTag
	}
	m := newMeter(c, "wrote")
	_, err = write(c, staged, root, ref, ref.Tag, artifact.CopyOptions{SkipReferrers: true, OnCopied: m.onCopied()})
	m.finish()
	if err != nil {
		return err
	}
	if !asJSON {
		_, err := fmt.Fprintln(c.App.Writer, root.Digest)
		return err
	}
	out := buildOutput{
		Envelope:  newEnvelope("Build"),
		Reference: ref.WithDigest(root.Digest).String(),
		Digest:    root.Digest,
		MediaType: root.MediaType,
		Size:      desc.Size,
		Platforms: platforms,
		Programs:  programNames(desc),
	}
	return cliutil.WriteJSON(c.App.Writer, out)
}

// buildOptions reads the annotations and SOURCE_DATE_EPOCH.
func buildOptions(c *cli.Context) (artifact.BuildOptions, error) {
	opts := artifact.BuildOptions{Tool: toolName(), Annotations: map[string]string{}}
	for _, a := range c.StringSlice("annotation") {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return opts, cliutil.Usagef("build: --annotation %q: want key=value", a)
		}
		opts.Annotations[k] = v
	}
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		secs, err := strconv.ParseInt(s, 10, 64)
		if err != nil || secs < 0 {
			return opts, cliutil.Usagef("build: SOURCE_DATE_EPOCH=%q: want seconds since the Unix epoch", s)
		}
		opts.Created = time.Unix(secs, 0)
	}
	return opts, nil
}

// parsePlatformSpec parses "os/arch[/variant]=FILE.o[,FILE.o...]".
func parsePlatformSpec(s string) (artifact.PlatformObjects, error) {
	p, list, ok := strings.Cut(s, "=")
	if !ok || list == "" {
		return artifact.PlatformObjects{}, cliutil.Usagef("build: --platform %q: want os/arch=FILE.o", s)
	}
	platform, err := artifact.ParsePlatform(p)
	if err != nil {
		return artifact.PlatformObjects{}, cliutil.Usagef("build: --platform: %v", err)
	}
	objects, err := readObjects(strings.Split(list, ","))
	if err != nil {
		return artifact.PlatformObjects{}, err
	}
	return artifact.PlatformObjects{Platform: platform, Objects: objects}, nil
}

func readObjects(paths []string) ([]artifact.ObjectFile, error) {
	var objects []artifact.ObjectFile
	for _, p := range paths {
		if filepath.Base(p) == metadataFile {
			return nil, fmt.Errorf("%s: %w: an object may not be named %s, which pull writes beside the objects", p, artifact.ErrInvalidObject, metadataFile)
		}
		o, err := artifact.ReadObjectFile(p)
		if err != nil {
			return nil, err
		}
		objects = append(objects, o)
	}
	return objects, nil
}

func programNames(d *artifact.Description) []string {
	seen := map[string]bool{}
	names := []string{}
	for _, m := range d.Manifests {
		for _, o := range m.Config.Objects {
			for _, p := range o.Programs {
				if !seen[p.Name] {
					seen[p.Name] = true
					names = append(names, p.Name)
				}
			}
		}
	}
	slices.Sort(names)
	return names
}
