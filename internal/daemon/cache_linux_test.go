package daemon

import (
	"context"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// TestCacheThroughAPI: ListCache shows each cached artifact with its
// origins and the programs loaded from it; after pulls the cache is
// collected down to cache.maxSize in the background, never removing a
// loaded program's artifact; PruneCache with all removes every artifact no
// program needs, and what it removed loads again only after a pull.
func TestCacheThroughAPI(t *testing.T) {
	const limit = 32 << 10
	td := newTestDaemon(t, func(c *Config) {
		c.Cache.MaxSize = limit
		c.Cache.Limits.BlobSize, c.Cache.Limits.TotalSize = limit, limit
	})
	ctx := context.Background()
	loaded := td.image(t, "tracepoint", true, "tracepoint_counter.bpf.o")
	p := td.mustLoad(t, loaded, tracepointProg("tracepoint_counter", "syscalls/sys_enter_getpid"))[0]
	loadedDigest := strings.SplitN(loaded, "@", 2)[1]

	// Pulls of other artifacts fill the cache past its limit.
	var pulled []string
	for _, obj := range []string{"xdp_counter.bpf.o", "tc_counter.bpf.o", "kprobe_counter.bpf.o", "cgroup_counter.bpf.o", "uprobe_counter.bpf.o"} {
		ref := td.image(t, strings.TrimSuffix(obj, ".bpf.o"), true, obj)
		if _, err := td.client.PullImage(ctx, &pb.PullImageRequest{Bytecode: &pb.Bytecode{Reference: ref}}); err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		pulled = append(pulled, ref)
	}
	var list *pb.ListCacheResponse
	eventually(t, "the cache collected down to its limit", func() bool {
		var err error
		if list, err = td.client.ListCache(ctx, &pb.ListCacheRequest{}); err != nil {
			t.Fatalf("ListCache: %v", err)
		}
		return list.GetSize() <= limit
	})
	if list.GetMaxSize() != limit || len(list.GetEntries()) >= 1+len(pulled) {
		t.Errorf("cache list: max size %d, %d entries: want %d and some of the %d artifacts collected", list.GetMaxSize(), len(list.GetEntries()), limit, 1+len(pulled))
	}
	var found *pb.CacheEntry
	for _, e := range list.GetEntries() {
		if e.GetDigest() == loadedDigest {
			found = e
		}
	}
	if found == nil {
		t.Fatalf("the loaded program's artifact %s was collected: %v", loadedDigest, list.GetEntries())
	}
	if !slices.Equal(found.GetProgramIds(), []uint64{p.GetId()}) || !found.GetComplete() || len(found.GetOrigins()) != 1 ||
		found.GetOrigins()[0].GetName() != "oci:"+td.images+"/tracepoint" || found.GetOrigins()[0].GetDecision() != "allow" {
		t.Errorf("entry of the loaded artifact %v: want program %d, complete, one origin that allowed it", found, p.GetId())
	}
	if a := td.lastAudit(t, "list-cache"); a["result"] != "ok" || a["entries"] != float64(len(list.GetEntries())) {
		t.Errorf("audit line %v: want ok with %d entries", a, len(list.GetEntries()))
	}

	// Prune all: only the loaded program's artifact stays.
	prune, err := td.client.PruneCache(ctx, &pb.PruneCacheRequest{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(prune.GetRemoved()) != len(list.GetEntries())-1 || prune.GetSize() > list.GetSize() {
		t.Errorf("prune removed %d, size %d; want all %d but the loaded one's", len(prune.GetRemoved()), prune.GetSize(), len(list.GetEntries())-1)
	}
	list, err = td.client.ListCache(ctx, &pb.ListCacheRequest{})
	if err != nil || len(list.GetEntries()) != 1 || list.GetEntries()[0].GetDigest() != loadedDigest {
		t.Fatalf("cache after prune: %v, %v; want the loaded artifact only", list, err)
	}
	if a := td.lastAudit(t, "prune-cache"); a["result"] != "ok" || a["entries"] != float64(len(prune.GetRemoved())) {
		t.Errorf("audit line %v", a)
	}
	never := func(ref string) error {
		_, err := td.client.Load(ctx, &pb.LoadRequest{Bytecode: &pb.Bytecode{Reference: ref, PullPolicy: pb.PullPolicy_PULL_POLICY_NEVER},
			Programs: []*pb.LoadProgram{tracepointProg("tracepoint_counter", "syscalls/sys_enter_getppid")}})
		return err
	}
	if err := never(loaded); err != nil {
		t.Errorf("the kept artifact under Never: %v", err)
	}
	_, err = td.client.PullImage(ctx, &pb.PullImageRequest{Bytecode: &pb.Bytecode{Reference: pulled[0], PullPolicy: pb.PullPolicy_PULL_POLICY_NEVER}})
	wantCode(t, err, codes.NotFound, "not in the cache")
	if _, err := td.client.PullImage(ctx, &pb.PullImageRequest{Bytecode: &pb.Bytecode{Reference: pulled[0]}}); err != nil {
		t.Errorf("pull again after prune: %v", err)
	}
}
