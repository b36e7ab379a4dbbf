package main

import (
	"fmt"
	"io"
	"os"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// progress returns a function that reports each blob written, on stderr, when
// stderr is a terminal; nil otherwise, so piped output stays parseable.
func progress(c *cli.Context, verb string) func(ocispec.Descriptor) {
	f, ok := c.App.ErrWriter.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressTo(f, verb)
}

func progressTo(w io.Writer, verb string) func(ocispec.Descriptor) {
	var mu sync.Mutex
	return func(d ocispec.Descriptor) {
		mu.Lock()
		defer mu.Unlock()
		name := d.Annotations[ocispec.AnnotationTitle]
		if name == "" {
			name = d.MediaType
		}
		fmt.Fprintf(w, "%s %s %9s  %s\n", verb, shortDigest(d.Digest.String()), humanSize(d.Size), name)
	}
}

// shortDigest abbreviates "sha256:<64 hex>" to its first 12 hex digits.
func shortDigest(d string) string {
	const prefix = len("sha256:")
	if len(d) > prefix+12 {
		return d[prefix : prefix+12]
	}
	return d
}

// humanSize formats a byte count with binary units.
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
