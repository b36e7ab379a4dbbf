package runtime

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
)

// kernelView is what the Manager knows of kernel programs: for each, the
// facts that never change while it lives (name, tag, type, load time,
// maps), read from the kernel once. What changes, whether a program still
// exists and its run statistics, is read when asked for: List walks the
// kernel's program ids once (BPF_PROG_GET_NEXT_ID, no descriptor opened)
// rather than opening every program, and reads statistics only while the
// kernel collects them.
type kernelView struct {
	mu    sync.Mutex
	facts map[ebpf.ProgramID]*programFacts
	// pruneAt is the number of facts above which learning one more first
	// forgets those of programs that are gone.
	pruneAt int
}

// programFacts are what never changes of a kernel program.
type programFacts struct {
	name, tag string
	typ       ebpf.ProgramType
	loadedAt  time.Time
	mapIDs    []uint32
}

// minPruneAt is the least pruneAt.
const minPruneAt = 256

// factsOf returns the facts of the program prog, reading them when they
// are not known yet; nil when the kernel does not say.
func (v *kernelView) factsOf(id ebpf.ProgramID, prog *ebpf.Program) *programFacts {
	v.mu.Lock()
	f := v.facts[id]
	v.mu.Unlock()
	if f != nil {
		return f
	}
	info, err := prog.Info()
	if err != nil {
		return nil
	}
	f = factsFromInfo(info)
	v.learn(id, f)
	return f
}

// factsFromInfo returns the facts in a program's info.
func factsFromInfo(info *ebpf.ProgramInfo) *programFacts {
	f := &programFacts{name: info.Name, tag: info.Tag, typ: info.Type}
	if ids, ok := info.MapIDs(); ok {
		f.mapIDs = make([]uint32, len(ids))
		for i, id := range ids {
			f.mapIDs[i] = uint32(id)
		}
	}
	if t, ok := info.LoadTime(); ok {
		if boot := bootTime(); !boot.IsZero() {
			f.loadedAt = boot.Add(t).UTC().Truncate(time.Millisecond)
		}
	}
	return f
}

// kernelRecord is what a record keeps of the facts of the kernel program
// it names (ProgramID), read once when it was loaded: after a restart the
// Manager knows them from the store rather than asking the kernel for each
// program (an info read of some kilobytes, and four system calls) on the
// first List.
type kernelRecord struct {
	ProgramID uint32    `json:"programId"`
	Name      string    `json:"name,omitempty"`
	Tag       string    `json:"tag,omitempty"`
	Type      uint32    `json:"type"`
	LoadedAt  time.Time `json:"loadedAt"`
	MapIDs    []uint32  `json:"mapIds,omitempty"`
}

func (f *programFacts) record(id ebpf.ProgramID) *kernelRecord {
	return &kernelRecord{ProgramID: uint32(id), Name: f.name, Tag: f.tag, Type: uint32(f.typ), LoadedAt: f.loadedAt, MapIDs: f.mapIDs}
}

// seed learns the facts the loaded records keep of the kernel programs
// they name, at Open.
func (v *kernelView) seed(rs []*record) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, r := range rs {
		k := r.Kernel
		if k == nil || r.Chain != nil || k.ProgramID != r.ProgramID || k.ProgramID == 0 {
			continue
		}
		if v.facts == nil {
			v.facts = map[ebpf.ProgramID]*programFacts{}
		}
		v.facts[ebpf.ProgramID(k.ProgramID)] = &programFacts{name: k.Name, tag: k.Tag, typ: ebpf.ProgramType(k.Type), loadedAt: k.LoadedAt, mapIDs: k.MapIDs}
	}
	v.pruneAt = max(v.pruneAt, 2*len(v.facts))
}

func (v *kernelView) learn(id ebpf.ProgramID, f *programFacts) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.facts == nil {
		v.facts = map[ebpf.ProgramID]*programFacts{}
	}
	if len(v.facts) >= max(v.pruneAt, minPruneAt) {
		if live, err := liveProgramIDs(); err == nil {
			v.pruneLocked(live)
		}
		v.pruneAt = 2 * len(v.facts)
	}
	v.facts[id] = f
}

// forget drops the facts of a program that is gone.
func (v *kernelView) forget(id ebpf.ProgramID) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.facts, id)
}

// prune drops the facts of the programs not in live.
func (v *kernelView) prune(live map[ebpf.ProgramID]bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.pruneLocked(live)
}

func (v *kernelView) pruneLocked(live map[ebpf.ProgramID]bool) {
	for id := range v.facts {
		if !live[id] {
			delete(v.facts, id)
		}
	}
}

// liveProgramIDs returns the ids of the kernel's programs: one
// BPF_PROG_GET_NEXT_ID per program, no descriptor opened.
func liveProgramIDs() (map[ebpf.ProgramID]bool, error) {
	live := map[ebpf.ProgramID]bool{}
	id := ebpf.ProgramID(0)
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			return live, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list kernel programs: %w", err)
		}
		live[next] = true
		id = next
	}
}

// kernelInfo returns what the kernel reports of the program id, opened as
// prog when the caller has it open (nil: opened by id here): its facts, and
// run statistics when withStats. Statistics are reported when statsOn or
// when they moved (statistics switched on through BPF_ENABLE_STATS do not
// show in the sysctl). It returns nil when the program is gone, and the
// program's type. With neither prog nor withStats, the caller knows that
// the program exists.
func (v *kernelView) kernelInfo(id ebpf.ProgramID, prog *ebpf.Program, withStats, statsOn bool) (*KernelInfo, ebpf.ProgramType) {
	v.mu.Lock()
	f := v.facts[id]
	v.mu.Unlock()
	if prog == nil && (f == nil || withStats) {
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			return nil, ebpf.UnspecifiedProgram
		}
		defer p.Close()
		prog = p
	}
	if f == nil {
		if f = v.factsOf(id, prog); f == nil {
			return nil, ebpf.UnspecifiedProgram
		}
	}
	k := &KernelInfo{ProgramID: uint32(id), Name: f.name, Tag: f.tag, Type: f.typ.String(), LoadedAt: f.loadedAt}
	if len(f.mapIDs) > 0 {
		k.MapIDs = append([]uint32(nil), f.mapIDs...)
	}
	if withStats {
		if st, err := prog.Stats(); err == nil && (st.RunCount > 0 || st.Runtime > 0 || statsOn) {
			k.Stats = &RunStats{RunCount: st.RunCount, RunTime: st.Runtime}
		}
	}
	return k, f.typ
}

// statsEnabled reports whether the sysctl kernel.bpf_stats_enabled is on.
// Statistics switched on through BPF_ENABLE_STATS do not show there; they
// show as counters that move.
func statsEnabled() bool {
	b, err := os.ReadFile("/proc/sys/kernel/bpf_stats_enabled")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}
