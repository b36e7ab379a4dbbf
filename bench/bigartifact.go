package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/oci"
)

// bigSize is the size of the artifact the copy and pull rows with memory
// figures move: large enough that a tool holding it in memory shows.
const bigSize = 200 << 20

// rssRuns is how many times each side runs for its peak RSS; the median is
// reported.
const rssRuns = 3

// gnuTime is GNU time, which reports the peak resident set of the command
// it runs (%M). The bench cannot read it from the rusage of its own
// children: Go starts them with vfork, and a child's peak then counts the
// bench's own.
const gnuTime = "/usr/bin/time"

// bigArtifactRows builds a one-platform artifact of bigSize, pushes it to
// the registry, and returns the rows that copy it from the registry into an
// OCI layout and pull its objects, each timed against oras and measured for
// peak RSS.
func (sc *supplyChain) bigArtifactRows(ctx context.Context, env *Env) ([]Row, error) {
	a, err := sc.buildArtifact(ctx, env, "200 MiB", bigSize, []string{pullPlatform})
	if err != nil {
		return nil, fmt.Errorf("200 MiB artifact: %w", err)
	}
	repo := "big-" + repoSlug(a.Name)
	if err := sc.copyToRegistry(ctx, a, repo); err != nil {
		return nil, err
	}
	ref := sc.ref(repo, ":"+artifactTag)
	shape := fmt.Sprintf("%s (%d blobs)", humanBytes(a.Bytes), a.Blobs)

	copyOut := func(tool string) string { return filepath.Join(sc.dir, "big-copy-"+tool) }
	ours := sc.bpfctlImageCommand("copy", ref, "oci:"+copyOut("bpfctl-image")+":"+artifactTag)
	peer := sc.orasCommand("", "cp", "-r", "--from-plain-http", ref, "--to-oci-layout", copyOut("oras")+":"+artifactTag)
	side := func(name, out string, c command) *Side {
		return &Side{
			Name:    name,
			Prepare: func(context.Context) error { return os.RemoveAll(out) },
			Run:     func(ctx context.Context) error { return runCommands(ctx, c) },
			Check:   func(ctx context.Context) error { return checkCopied(ctx, out, a) },
		}
	}
	rows := []Row{{
		Name: "copy " + shape + " registry -> OCI layout",
		Ours: *side("bpfctl-image copy", copyOut("bpfctl-image"), ours),
		Peer: side("oras cp -r --to-oci-layout", copyOut("oras"), peer),
	}, {
		Name: "peak RSS, copy " + shape + " registry -> OCI layout",
		Ours: Side{Name: "bpfctl-image copy"},
		Figures: func(ctx context.Context) ([]Figure, error) {
			return peakRSSFigures(ctx, []rssSide{
				{"bpfctl-image copy", copyOut("bpfctl-image"), ours},
				{"oras cp -r", copyOut("oras"), peer},
			})
		},
	}}

	pull, err := sc.pullRow(ctx, a)
	if err != nil {
		return nil, err
	}
	// bpfd pulls from a repository of its own, where the artifact is
	// signed: the signature would be copied in the copy rows.
	daemonRepo := "bigd-" + repoSlug(a.Name)
	if err := sc.copyToRegistry(ctx, a, daemonRepo); err != nil {
		return nil, err
	}
	pullOut := func(tool string) string { return filepath.Join(sc.dir, "big-pull-"+tool) }
	rows = append(rows, pull, Row{
		Name:    "bpfd peak RSS, bpfctl pull " + shape + " (signed, verified, into bpfd's cache)",
		Ours:    Side{Name: "bpfctl pull --pull-policy Always"},
		Figures: sc.daemonPullFigures(env, a, daemonRepo),
	}, Row{
		Name: "peak RSS, pull " + shape,
		Ours: Side{Name: "bpfctl-image pull"},
		Figures: func(ctx context.Context) ([]Figure, error) {
			return peakRSSFigures(ctx, []rssSide{
				{"bpfctl-image pull", pullOut("bpfctl-image"), sc.bpfctlImageCommand("pull", "--platform", pullPlatform, "--dest", pullOut("bpfctl-image"), ref)},
				{"oras pull", pullOut("oras"), sc.orasCommand("", "pull", "--plain-http", "--platform", pullPlatform, "-o", pullOut("oras"), ref)},
			})
		},
	})
	return rows, nil
}

// rssSide is one tool whose peak RSS a row reports: its command, and the
// directory to empty before each run.
type rssSide struct {
	name string
	out  string
	cmd  command
}

// peakRSSFigures runs each side rssRuns times under GNU time and reports the
// median of its peak resident set.
func peakRSSFigures(ctx context.Context, sides []rssSide) ([]Figure, error) {
	var figs []Figure
	for _, s := range sides {
		var peaks []float64
		for range rssRuns {
			if err := os.RemoveAll(s.out); err != nil {
				return nil, err
			}
			mib, err := peakRSS(ctx, s.cmd)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
			peaks = append(peaks, mib)
		}
		slices.Sort(peaks)
		figs = append(figs, Figure{Name: s.name + " peak RSS", Value: peaks[len(peaks)/2], Unit: "MiB"})
	}
	return figs, nil
}

// peakRSS runs c under GNU time and returns its peak resident set in MiB.
func peakRSS(ctx context.Context, c command) (float64, error) {
	if _, err := os.Stat(gnuTime); err != nil {
		return 0, fmt.Errorf("peak RSS needs GNU time (apt install time): %w", err)
	}
	f, err := os.CreateTemp("", "bench-rss-")
	if err != nil {
		return 0, err
	}
	f.Close()
	defer os.Remove(f.Name())
	timed := command{Path: gnuTime, Args: append([]string{"-f", "%M", "-o", f.Name(), c.Path}, c.Args...), Dir: c.Dir, Env: c.Env}
	if err := runCommands(ctx, timed); err != nil {
		return 0, err
	}
	data, err := os.ReadFile(f.Name())
	if err != nil {
		return 0, err
	}
	kib, err := strconv.ParseFloat(strings.TrimSpace(string(data)), 64)
	if err != nil {
		return 0, fmt.Errorf("GNU time wrote %q: %w", data, err)
	}
	return kib / 1024, nil
}

// checkCopied confirms that the OCI layout dir holds a's artifact, tagged
// artifactTag, with every blob of its graph.
func checkCopied(ctx context.Context, dir string, a *builtArtifact) error {
	store, err := oci.NewFromFS(ctx, os.DirFS(dir))
	if err != nil {
		return err
	}
	root, err := store.Resolve(ctx, artifactTag)
	if err != nil {
		return err
	}
	if root.Digest != a.Digest {
		return fmt.Errorf("%s: %s is %s, want %s", dir, artifactTag, root.Digest, a.Digest)
	}
	blobs := 0
	queue := []ocispec.Descriptor{root}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		ok, err := store.Exists(ctx, d)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s: blob %s missing", dir, d.Digest)
		}
		blobs++
		next, err := content.Successors(ctx, store, d)
		if err != nil {
			return err
		}
		queue = append(queue, next...)
	}
	if blobs != a.Blobs {
		return fmt.Errorf("%s: %d blobs, want %d", dir, blobs, a.Blobs)
	}
	return nil
}
