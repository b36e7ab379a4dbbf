package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

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
(the pull --output json document, with the config) into the directory -o
names. Reads bpfd artifacts and bpfman images. Nothing is written unless the
whole artifact was read and verified.`,
	Flags: flags([]cli.Flag{
		&cli.StringFlag{
			Name:    "dir",
			Aliases: []string{"o"},
			Usage:   "`DIR` to write the objects and metadata.json to, created if missing (required)",
			EnvVars: []string{"BPFCTL_IMAGE_PULL_DIR"},
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
	args, err := arguments(c, 1, 1, "pull -o DIR REF")
	if err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	if c.String("dir") == "" {
		return cliutil.Usagef("pull: -o DIR is required")
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

	src, err := artifact.Open(c.Context, ref, openOptions(c, false))
	if err != nil {
		return err
	}
	defer src.Close()
	root, err := src.ResolveReference(c.Context)
	if err != nil {
		return err
	}
	dir := c.String("dir")
	files := &stagedFiles{dir: dir}
	if err := files.mkdir(); err != nil {
		return err
	}
	defer files.discard()
	bc, err := artifact.FetchObjects(c.Context, src, root, platform, func(name string, r io.Reader) error {
		if name == metadataFile {
			return fmt.Errorf("an object is named %s, which pull writes itself", metadataFile)
		}
		return files.write(name, r)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}

	out := pullOutput{
		SchemaVersion: outputSchemaVersion,
		Reference:     ref.WithDigest(bc.Root.Digest).String(),
		Digest:        bc.Root.Digest,
		Manifest:      bc.Descriptor.Digest,
		Format:        string(bc.Format),
		Directory:     dir,
		Files:         []string{},
		Annotations:   bc.Annotations,
		Labels:        bc.Labels,
		Config:        bc.Config,
	}
	if bc.Platform != nil {
		out.Platform = artifact.FormatPlatform(*bc.Platform)
	}
	for _, name := range files.names {
		out.Files = append(out.Files, filepath.Join(dir, name))
	}
	out.Files = append(out.Files, filepath.Join(dir, metadataFile))
	metadata, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := files.write(metadataFile, bytes.NewReader(append(metadata, '\n'))); err != nil {
		return err
	}
	if err := files.commit(); err != nil {
		return err
	}
	if asJSON {
		return cliutil.WriteJSON(c.App.Writer, out)
	}
	for _, f := range out.Files {
		if _, err := fmt.Fprintln(c.App.Writer, f); err != nil {
			return err
		}
	}
	return nil
}

// stagedFiles writes files into dir as hidden temporary files, streamed,
// and renames them into place on commit; discard removes what is left, so
// that a failed pull leaves no file behind (and a pull that fails while
// renaming removes those it renamed).
type stagedFiles struct {
	dir   string
	names []string
	temps []string
	done  []string
	// made are the directories mkdir made, deepest first.
	made []string
}

// mkdir makes dir and its missing parents, remembering which it made.
func (s *stagedFiles) mkdir() error {
	for d := filepath.Clean(s.dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil || d == filepath.Dir(d) {
			break
		}
		s.made = append(s.made, d)
	}
	return os.MkdirAll(s.dir, 0o755)
}

func (s *stagedFiles) write(name string, r io.Reader) error {
	if slices.Contains(s.names, name) {
		return fmt.Errorf("two objects are named %s", name)
	}
	path := filepath.Join(s.dir, name)
	if info, err := os.Lstat(path); err == nil && !info.Mode().IsRegular() {
		return fmt.Errorf("%s: exists and is not a regular file", path)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	tmp, err := os.CreateTemp(s.dir, "."+name+".tmp-")
	if err != nil {
		return err
	}
	s.temps = append(s.temps, tmp.Name())
	_, err = io.Copy(tmp, r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err != nil {
		return err
	}
	s.names = append(s.names, name)
	return nil
}

func (s *stagedFiles) commit() error {
	for i, name := range s.names {
		path := filepath.Join(s.dir, name)
		if err := os.Rename(s.temps[i], path); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		s.done = append(s.done, path)
	}
	s.temps, s.done, s.made = nil, nil, nil
	return nil
}

func (s *stagedFiles) discard() {
	for _, p := range append(s.temps, s.done...) {
		os.Remove(p)
	}
	for _, d := range s.made {
		os.Remove(d) // only if empty
	}
}
