package daemon

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/bpfd-dev/bpfd/internal/peercred"
	"github.com/bpfd-dev/bpfd/internal/supplychain"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// The cache's collection: after each request that pulled, and at start,
// the cache is collected down to cache.maxSize in the background; PruneCache
// does it on demand. What loaded programs need is kept: their artifacts,
// with every origin's signatures (revocation judges them again offline),
// and those of loads under way.

// collectTimeout bounds how long a background collection waits for fetches
// under way.
const collectTimeout = time.Minute

// inflight counts the artifacts of loads between their fetch and their
// record in the runtime: kept by collections like loaded programs'.
type inflight struct {
	mu sync.Mutex
	m  map[digest.Digest]int
}

// hold keeps d until the function returned is called.
func (f *inflight) hold(d digest.Digest) func() {
	if d == "" {
		return func() {}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[digest.Digest]int{}
	}
	f.m[d]++
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.m[d]--; f.m[d] <= 0 {
			delete(f.m, d)
		}
	}
}

func (f *inflight) digests() []digest.Digest {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]digest.Digest, 0, len(f.m))
	for d := range f.m {
		out = append(out, d)
	}
	return out
}

// inUse returns the digests loaded programs and loads under way need, and
// the programs loaded from each.
func (s *server) inUse(ctx context.Context) ([]digest.Digest, map[digest.Digest][]runtime.ID, error) {
	progs, err := s.manager.List(ctx, runtime.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	byDigest := map[digest.Digest][]runtime.ID{}
	for _, p := range progs {
		if d := digest.Digest(p.Provenance.Digest); d != "" {
			byDigest[d] = append(byDigest[d], p.ID)
		}
	}
	keep := s.inflight.digests()
	for d := range byDigest {
		keep = append(keep, d)
	}
	return keep, byDigest, nil
}

// collectSoon starts a background collection unless one runs; one more
// runs after it when asked meanwhile.
func (s *server) collectSoon() {
	s.collectMu.Lock()
	defer s.collectMu.Unlock()
	if s.collecting {
		s.collectAgain = true
		return
	}
	s.collecting = true
	s.collectWG.Add(1)
	go func() {
		defer s.collectWG.Done()
		for {
			s.collect()
			s.collectMu.Lock()
			if !s.collectAgain {
				s.collecting = false
				s.collectMu.Unlock()
				return
			}
			s.collectAgain = false
			s.collectMu.Unlock()
		}
	}()
}

// collect collects the cache down to its size limit.
func (s *server) collect() {
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	since := time.Now()
	keep, _, err := s.inUse(ctx)
	if err != nil {
		s.log.Warn("cache: not collected: cannot list the programs loaded", "error", err)
		return
	}
	col, err := s.chain.Collect(ctx, supplychain.CollectOptions{Keep: keep, Since: since})
	if err != nil {
		s.log.Warn("cache: not collected", "error", err)
		return
	}
	s.metrics.cacheSize(col.Size)
	if len(col.Removed) > 0 || col.Freed > 0 {
		s.log.Info("cache: collected", "removed", len(col.Removed), "freed", col.Freed, "size", col.Size)
	}
}

func (s *server) ListCache(ctx context.Context, _ *pb.ListCacheRequest) (*pb.ListCacheResponse, error) {
	who, _ := client(ctx)
	rec := auditRecord{Action: "list-cache", Peer: requesterOf(who)}
	resp, err := s.listCache(ctx, who)
	if resp != nil {
		rec.Cache = &cacheInfo{Entries: len(resp.GetEntries()), Size: int64(resp.GetSize())}
	}
	rec.Err = err
	s.audit.write(ctx, rec)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

func (s *server) listCache(ctx context.Context, who peercred.Cred) (*pb.ListCacheResponse, error) {
	if err := s.access.mayAdminister(who, "list the cache"); err != nil {
		return nil, err
	}
	_, programs, err := s.inUse(ctx)
	if err != nil {
		return nil, err
	}
	entries, size, err := s.chain.Entries(ctx)
	if err != nil {
		return nil, err
	}
	s.metrics.cacheSize(size)
	out := &pb.ListCacheResponse{Size: uint64(size), MaxSize: uint64(s.maxCacheSize)}
	for _, e := range entries {
		out.Entries = append(out.Entries, cacheEntryProto(e, programs[e.Digest]))
	}
	return out, nil
}

func (s *server) PruneCache(ctx context.Context, in *pb.PruneCacheRequest) (*pb.PruneCacheResponse, error) {
	who, _ := client(ctx)
	rec := auditRecord{Action: "prune-cache", Peer: requesterOf(who)}
	resp, err := s.pruneCache(ctx, who, in.GetAll())
	if resp != nil {
		rec.Cache = &cacheInfo{Entries: len(resp.GetRemoved()), Freed: int64(resp.GetFreed()), Size: int64(resp.GetSize())}
	}
	rec.Err = err
	s.audit.write(ctx, rec)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

func (s *server) pruneCache(ctx context.Context, who peercred.Cred, all bool) (*pb.PruneCacheResponse, error) {
	if err := s.access.mayAdminister(who, "prune the cache"); err != nil {
		return nil, err
	}
	since := time.Now()
	keep, _, err := s.inUse(ctx)
	if err != nil {
		return nil, err
	}
	col, err := s.chain.Collect(ctx, supplychain.CollectOptions{Keep: keep, All: all, Since: since})
	if err != nil {
		return nil, err
	}
	s.metrics.cacheSize(col.Size)
	out := &pb.PruneCacheResponse{Freed: uint64(col.Freed), Size: uint64(col.Size)}
	for _, e := range col.Removed {
		out.Removed = append(out.Removed, cacheEntryProto(e, nil))
	}
	return out, nil
}

func cacheEntryProto(e supplychain.CacheEntry, programs []runtime.ID) *pb.CacheEntry {
	out := &pb.CacheEntry{Digest: e.Digest.String(), MediaType: e.MediaType, Size: uint64(e.Size), Complete: e.Complete, UsedAt: timestamp(e.UsedAt)}
	for _, o := range e.Origins {
		co := &pb.CacheOrigin{Name: o.Name, PulledAt: timestamp(o.PulledAt)}
		if v := o.Verdict; v != nil {
			co.Decision, co.Reason, co.Rule, co.PolicyFingerprint, co.Signers = string(v.Decision), string(v.Reason), v.Rule, v.Policy, v.Signers
		}
		out.Origins = append(out.Origins, co)
	}
	for _, id := range slices.Sorted(slices.Values(programs)) {
		out.ProgramIds = append(out.ProgramIds, uint64(id))
	}
	return out
}
