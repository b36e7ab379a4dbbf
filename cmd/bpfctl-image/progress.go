package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
	"oras.land/oras-go/v2/content"
)

// meter shows, on a terminal, how many blobs and bytes a push, pull or copy
// has moved, on one line redrawn in place (at most ten times a second), and
// leaves a summary line when done. A nil *meter does nothing: output piped
// or redirected stays quiet and parseable.
type meter struct {
	w     io.Writer
	verb  string
	now   func() time.Time
	mu    sync.Mutex
	blobs int
	bytes int64
	drawn time.Time
}

// newMeter returns a meter on stderr when stderr is a terminal, else nil.
func newMeter(c *cli.Context, verb string) *meter {
	f, ok := c.App.ErrWriter.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return newMeterTo(f, verb)
}

func newMeterTo(w io.Writer, verb string) *meter {
	return &meter{w: w, verb: verb, now: time.Now}
}

// onCopied returns a copy's OnCopied hook: each blob written counts whole.
func (m *meter) onCopied() func(ocispec.Descriptor) {
	if m == nil {
		return nil
	}
	return func(d ocispec.Descriptor) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.blobs++
		m.bytes += d.Size
		m.draw(false)
	}
}

// fetcher wraps src so that the bytes read from it count as they arrive.
func (m *meter) fetcher(src content.Fetcher) content.Fetcher {
	if m == nil {
		return src
	}
	return meteredFetcher{src: src, m: m}
}

// finish ends the line with the totals.
func (m *meter) finish() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.draw(true)
	fmt.Fprintln(m.w)
}

// draw redraws the line; force ignores the rate limit. Callers hold mu.
func (m *meter) draw(force bool) {
	now := m.now()
	if !force && now.Sub(m.drawn) < 100*time.Millisecond {
		return
	}
	m.drawn = now
	fmt.Fprintf(m.w, "\r%s %d blobs, %s\x1b[K", m.verb, m.blobs, humanSize(m.bytes))
}

type meteredFetcher struct {
	src content.Fetcher
	m   *meter
}

func (f meteredFetcher) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	rc, err := f.src.Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	f.m.mu.Lock()
	f.m.blobs++
	f.m.mu.Unlock()
	return &meteredReader{ReadCloser: rc, m: f.m}, nil
}

type meteredReader struct {
	io.ReadCloser
	m *meter
}

func (r *meteredReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.m.mu.Lock()
	r.m.bytes += int64(n)
	r.m.draw(false)
	r.m.mu.Unlock()
	return n, err
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
