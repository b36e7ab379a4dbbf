package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
)

// metadataFile is the file pull writes beside the objects.
const metadataFile = "metadata.json"

var pullCommand = &cli.Command{
	Name:      "pull",
	Usage:     "pull an artifact's objects and metadata into a directory",
	ArgsUsage: "REF",
	Description: `Fetches the artifact REF names for a platform (default: this host's; from
an index, else its arch-neutral entry), verifies every blob against its
digest, and writes the ELF objects under their file names and metadata.json
(the pull --output json document, with the config) into the directory --dest
names. The text output says which platform's manifest it chose, then lists
the files. Reads bpfd artifacts and bpfman images. Nothing is written unless the
whole artifact was read and verified.`,
	Flags: flags([]cli.Flag{
		&cli.StringFlag{
			Name:    "dest",
			Aliases: []string{"d"},
			Usage:   "`DIR` to write the objects and metadata.json to, created if missing (required)",
			EnvVars: []string{"BPFCTL_IMAGE_PULL_DEST"},
		},
		&cli.StringFlag{
			Name:    "platform",
			Usage:   "`os/arch[/variant]` to pull (default: this host's)",
			EnvVars: []string{"BPFCTL_IMAGE_PULL_PLATFORM"},
		},
		outputFlag,
	}, registryFlags),
	Action: pull,
}

func pull(c *cli.Context) error {
	args, err := arguments(c, 1, 1, "pull --dest DIR REF")
	if err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	if c.String("dest") == "" {
		return cliutil.Usagef("pull: --dest DIR is required")
	}
	ref, err := parseReference(args[0])
	if err != nil {
		return err
	}
	platform := artifact.HostPlatform()
	if p := c.String("platform"); p != "" {
		if platform, err = artifact.ParsePlatform(p); err != nil {
			return cliutil.Usagef("pull: --platform: %v", err)
		}
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
	m := newMeter(c, "pulled")
	bc, err := artifact.Fetch(c.Context, m.fetcher(src), root, platform)
	m.finish()
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}

	dir := c.String("dest")
	out := pullOutput{
		Envelope:    newEnvelope("Pull"),
		Reference:   ref.WithDigest(root.Digest).String(),
		Digest:      root.Digest,
		Manifest:    bc.Descriptor.Digest,
		Format:      string(bc.Format),
		Directory:   dir,
		Files:       []string{},
		Annotations: bc.Annotations,
		Labels:      bc.Labels,
		Config:      bc.Config,
	}
	if bc.Platform != nil {
		out.Platform = artifact.FormatPlatform(*bc.Platform)
	}
	files := map[string][]byte{}
	for _, o := range bc.Objects {
		if o.Name == metadataFile {
			return fmt.Errorf("%s: an object is named %s, which pull writes itself", ref, metadataFile)
		}
		files[o.Name] = o.Data
		out.Files = append(out.Files, filepath.Join(dir, o.Name))
	}
	out.Files = append(out.Files, filepath.Join(dir, metadataFile))
	metadata, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	files[metadataFile] = append(metadata, '\n')
	if err := writeFiles(dir, files); err != nil {
		return err
	}
	if asJSON {
		return cliutil.WriteJSON(c.App.Writer, out)
	}
	if _, err := fmt.Fprintf(c.App.Writer, "Pulled %s for %s\n", out.Reference, choice(out, platform)); err != nil {
		return err
	}
	for _, f := range out.Files {
		if _, err := fmt.Fprintln(c.App.Writer, f); err != nil {
			return err
		}
	}
	return nil
}

// writeFiles writes each file into dir (created if missing), each through a
// temporary file renamed into place; on failure it removes what it wrote.
func writeFiles(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var written []string
	fail := func(err error) error {
		for _, p := range written {
			os.Remove(p)
		}
		return err
	}
	for name, data := range files {
		path := filepath.Join(dir, name)
		if info, err := os.Lstat(path); err == nil && !info.Mode().IsRegular() {
			return fail(fmt.Errorf("%s: exists and is not a regular file", path))
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fail(err)
		}
		tmp, err := os.CreateTemp(dir, "."+name+".tmp-")
		if err != nil {
			return fail(err)
		}
		_, err = tmp.Write(data)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Chmod(tmp.Name(), 0o644)
		}
		if err == nil {
			err = os.Rename(tmp.Name(), path)
		}
		if err != nil {
			os.Remove(tmp.Name())
			return fail(fmt.Errorf("%s: %w", path, err))
		}
		written = append(written, path)
	}
	return nil
}

// choice says which manifest pull took for the platform asked for.
func choice(out pullOutput, asked ocispec.Platform) string {
	want := artifact.FormatPlatform(asked)
	switch {
	case out.Platform == "":
		return fmt.Sprintf("%s: the artifact's only manifest (not an index)", want)
	case out.Platform == want:
		return fmt.Sprintf("%s: the index's manifest %s", want, out.Manifest)
	default:
		return fmt.Sprintf("%s: the index's %s manifest %s (no %s entry; its objects are arch-neutral)", want, out.Platform, out.Manifest, want)
	}
}
