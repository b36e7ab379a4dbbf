package supplychain

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bpfd-dev/bpfd/internal/testing/testimage"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// TestCollect fills the cache with three artifacts, then collects it down
// to a size limit: the least recently used artifacts not kept go first,
// what is kept stays however old, and All empties it of everything not
// kept. Leftovers no record references (an earlier bpfd's referrers in the
// content layout, signatures of an interrupted pull) go too.
func TestCollect(t *testing.T) {
	e := newChainEnv(t)
	ctx := context.Background()
	var refs []string
	var digests []digest.Digest
	for _, name := range []string{"xdp_counter.bpf.o", "tc_counter.bpf.o", "tracepoint_counter.bpf.o"} {
		_, ref := e.signed(t, name, name)
		if _, err := e.chain.Fetch(ctx, ref, PullIfNotPresent); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
		digests = append(digests, rootOf(t, ref).Digest)
		time.Sleep(10 * time.Millisecond) // distinct use times
	}
	// The first is used again: the second is now the least recently used.
	if _, err := e.chain.Fetch(ctx, refs[0], PullIfNotPresent); err != nil {
		t.Fatal(err)
	}
	// Leftovers: a blob no artifact references, an interrupted pull's
	// signatures.
	stray := testimage.BlobPath(e.cacheDir, digest.FromString("stray"))
	writeFile(t, stray, "stray")
	interrupted := filepath.Join(e.cacheDir, evidenceParent(digests[0]), ".new-123")
	writeFile(t, filepath.Join(interrupted, "index.json"), "{}")

	entries, total, err := e.chain.Entries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Fatalf("%d entries, want 3", len(entries))
	}
	var sizes = map[digest.Digest]int64{}
	for _, ce := range entries {
		if !ce.Complete || ce.Size == 0 || len(ce.Origins) != 1 || ce.Origins[0].Verdict == nil || ce.Origins[0].Verdict.Decision != verify.DecisionAllow {
			t.Errorf("entry %+v: want complete, sized, one origin that admitted it", ce)
		}
		sizes[ce.Digest] = ce.Size
	}

	// A limit that only the two most recently used... of which the third
	// is kept: the second goes, the first stays.
	e.chain.maxSize = total - sizes[digests[1]] + 1
	col, err := e.chain.Collect(ctx, CollectOptions{Keep: []digest.Digest{digests[2]}})
	if err != nil {
		t.Fatal(err)
	}
	if len(col.Removed) != 1 || col.Removed[0].Digest != digests[1] {
		t.Fatalf("removed %+v, want only the least recently used, %s", col.Removed, digests[1])
	}
	if col.Size > e.chain.maxSize || col.Freed < sizes[digests[1]] {
		t.Errorf("size after %d (limit %d), freed %d (the artifact alone is %d)", col.Size, e.chain.maxSize, col.Freed, sizes[digests[1]])
	}
	for _, p := range []string{stray, interrupted} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("leftover %s stays: %v", p, err)
		}
	}
	if _, err := e.chain.Fetch(ctx, refs[1], PullNever); !errors.Is(err, ErrNotCached) {
		t.Errorf("the removed artifact under Never: %v, want not cached", err)
	}
	since := time.Now()
	for _, i := range []int{0, 2} {
		if _, err := e.chain.Fetch(ctx, refs[i], PullNever); err != nil {
			t.Errorf("an artifact left: %v", err)
		}
	}

	// Since: what a fetch used at or after it stays, though not kept (a
	// load not yet recorded).
	col, err = e.chain.Collect(ctx, CollectOptions{All: true, Since: since})
	if err != nil || len(col.Removed) != 0 {
		t.Errorf("All since the last fetches removed %+v (%v), want nothing", col.Removed, err)
	}

	// All: everything not kept goes, whatever the limit.
	e.chain.maxSize = 0
	col, err = e.chain.Collect(ctx, CollectOptions{Keep: []digest.Digest{digests[2]}, All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(col.Removed) != 1 || col.Removed[0].Digest != digests[0] {
		t.Errorf("All removed %+v, want %s", col.Removed, digests[0])
	}
	if _, err := e.chain.Fetch(ctx, refs[2], PullNever); err != nil {
		t.Errorf("the kept artifact: %v", err)
	}
	entries, _, err = e.chain.Entries(ctx)
	if err != nil || len(entries) != 1 || entries[0].Digest != digests[2] {
		t.Errorf("entries after All: %+v, %v", entries, err)
	}
	// What is left is exactly the kept artifact's: a pull again of the
	// others works.
	if _, err := e.chain.Fetch(ctx, refs[0], PullIfNotPresent); err != nil {
		t.Errorf("pull again after collection: %v", err)
	}
}

// TestCollectWaitsForFetches: Collect does not run while a fetch is under
// way, and gives up when its context ends.
func TestCollectWaitsForFetches(t *testing.T) {
	e := newChainEnv(t)
	e.chain.cache.gc.RLock() // a fetch under way
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := e.chain.Collect(ctx, CollectOptions{All: true})
	e.chain.cache.gc.RUnlock()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Collect during a fetch: %v, want it to wait and give up", err)
	}
	if _, err := e.chain.Collect(context.Background(), CollectOptions{All: true}); err != nil {
		t.Errorf("Collect after: %v", err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
