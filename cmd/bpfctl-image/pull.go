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
	dir := c.String("dest")
	files := &stagedFiles{dir: dir}
	if err := files.mkdir(); err != nil {
		return err
	}
	defer files.discard()
	m := newMeter(c, "pulled")
	bc, err := artifact.FetchObjects(c.Context, m.fetcher(src), root, platform, func(name string, r io.Reader) (io.ReaderAt, error) {
		if name == metadataFile {
			return nil, fmt.Errorf("an object is named %s, which pull writes itself", metadataFile)
		}
		return files.write(name, r)
	})
	m.finish()
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}

	out := pullOutput{
		Envelope:    newEnvelope("Pull"),
		Reference:   ref.WithDigest(bc.Root.Digest).String(),
		Digest:      bc.Root.Digest,
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
	for _, name := range files.names {
		out.Files = append(out.Files, filepath.Join(dir, name))
	}
	out.Files = append(out.Files, filepath.Join(dir, metadataFile))
	metadata, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if _, err := files.write(metadataFile, bytes.NewReader(append(metadata, '\n'))); err != nil {
		return err
	}
	if err := files.commit(); err != nil {
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

// stagedFiles writes files into dir as hidden temporary files, streamed,
// and renames them into place on commit; discard removes what is left, so
// that a failed pull leaves no file behind (and a pull that fails while
// renaming removes those it renamed). Each file stays open, for reading
// back, until commit or discard.
type stagedFiles struct {
	dir   string
	names []string
	temps []*os.File
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

// write streams r into a temporary file for name and returns the file, to
// read it back.
func (s *stagedFiles) write(name string, r io.Reader) (io.ReaderAt, error) {
	if slices.Contains(s.names, name) {
		return nil, fmt.Errorf("two objects are named %s", name)
	}
	path := filepath.Join(s.dir, name)
	if info, err := os.Lstat(path); err == nil && !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: exists and is not a regular file", path)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	tmp, err := os.CreateTemp(s.dir, "."+name+".tmp-")
	if err != nil {
		return nil, err
	}
	s.temps = append(s.temps, tmp)
	if _, err := io.Copy(tmp, r); err != nil {
		return nil, err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return nil, err
	}
	s.names = append(s.names, name)
	return tmp, nil
}

func (s *stagedFiles) commit() error {
	for i, name := range s.names {
		tmp := s.temps[i]
		if err := tmp.Close(); err != nil {
			return fmt.Errorf("%s: %w", tmp.Name(), err)
		}
		path := filepath.Join(s.dir, name)
		if err := os.Rename(tmp.Name(), path); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		s.done = append(s.done, path)
	}
	s.temps, s.done, s.made = nil, nil, nil
	return nil
}

func (s *stagedFiles) discard() {
	for _, f := range s.temps {
		f.Close()
		os.Remove(f.Name())
	}
	for _, p := range s.done {
		os.Remove(p)
	}
	for _, d := range s.made {
		os.Remove(d) // only if empty
	}
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
