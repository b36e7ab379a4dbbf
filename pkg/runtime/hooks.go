package runtime

import (
	"slices"
	"sync"

	"github.com/cilium/ebpf"

	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// hookTable keeps per-hook state: the programs on each hook, in the order
// the hook runs them, the dispatcher of an XDP or TC hook, and a lock that
// serializes the operations on a hook while operations on other hooks run
// in parallel.
type hookTable struct {
	mu    sync.Mutex
	hooks map[string]*hookState
}

// hookState is one hook.
type hookState struct {
	// op is held for the whole of a load or unload that touches the hook;
	// disp is used under it.
	op sync.Mutex
	// disp is the dispatcher of an XDP or TC hook that has programs (or is
	// getting its first); nil otherwise.
	disp *dispatcher.Dispatcher

	// mu guards members, chain and chainProg, so readers need not wait for
	// an operation.
	mu sync.Mutex
	// members are the bpfd programs on the hook, in the order it runs them:
	// by rank (priority, then attach time, then id). On an XDP or TC hook
	// they are the dispatcher's chain.
	members []*member
	// chain is what the dispatcher of an XDP or TC hook runs.
	chain dispatcher.State
	// chainProg holds chain's program open for readers: a rebuild closes
	// the chain it replaces before the hook's state names the new one, and
	// a reader opening the old one by id then would find it gone.
	chainProg *ebpf.Program
}

// member is a program on a hook.
type member struct {
	rec *record
	// program is the spec of a program in a chain, kept for rebuilding the
	// chain; nil until a rebuild needs it after a restart.
	program *ebpf.ProgramSpec
}

// rank places the program on its hook.
func (mb *member) rank() dispatcher.Rank {
	return dispatcher.Rank{Priority: hookPriority(mb.rec.Attach), Attached: mb.rec.LoadedAt, ID: uint64(mb.rec.ID)}
}

// sortMembers sorts ms into run order.
func sortMembers(ms []*member) {
	slices.SortFunc(ms, func(a, b *member) int { return a.rank().Compare(b.rank()) })
}

func (t *hookTable) state(key string) *hookState {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.hooks == nil {
		t.hooks = make(map[string]*hookState)
	}
	h := t.hooks[key]
	if h == nil {
		h = new(hookState)
		t.hooks[key] = h
	}
	return h
}

// lock locks the hooks named by keys, in a fixed order so that concurrent
// multi-hook operations cannot deadlock, and returns their states and the
// function that unlocks them.
func (t *hookTable) lock(keys ...string) (map[string]*hookState, func()) {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	states := make(map[string]*hookState, len(keys))
	for _, k := range keys {
		h := t.state(k)
		h.op.Lock()
		states[k] = h
	}
	return states, func() {
		for i := len(keys) - 1; i >= 0; i-- {
			states[keys[i]].op.Unlock()
		}
	}
}

// states returns every hook's state.
func (t *hookTable) states() []*hookState {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*hookState, 0, len(t.hooks))
	for _, h := range t.hooks {
		out = append(out, h)
	}
	return out
}

// add puts mb on the hook in its place.
func (h *hookState) add(mb *member) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.members = append(h.members, mb)
	sortMembers(h.members)
}

func (h *hookState) remove(id ID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.members = slices.DeleteFunc(h.members, func(mb *member) bool { return mb.rec.ID == id })
}

// setChain makes ms, in run order, the hook's programs, which its
// dispatcher runs as chain. The caller holds the hook, so chain's program
// is alive.
func (h *hookState) setChain(ms []*member, chain dispatcher.State) {
	var prog *ebpf.Program
	if chain.ProgramID != 0 && chain.ProgramID != h.chainState().ProgramID {
		// Without it readers fall back to opening the chain by id.
		prog, _ = ebpf.NewProgramFromID(chain.ProgramID)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.members = slices.Clone(ms)
	if chain.ProgramID != h.chain.ProgramID {
		if h.chainProg != nil {
			h.chainProg.Close()
		}
		h.chainProg = prog
	}
	h.chain = chain
}

// chainState returns what the hook's dispatcher runs.
func (h *hookState) chainState() dispatcher.State {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.chain
}

// chainProgram returns a new descriptor of the program that runs the
// hook's chain; the caller closes it.
func (h *hookState) chainProgram() (*ebpf.Program, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.chainProg != nil {
		return h.chainProg.Clone()
	}
	return ebpf.NewProgramFromID(h.chain.ProgramID)
}

// release closes what the hook's state holds open.
func (h *hookState) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.chainProg != nil {
		h.chainProg.Close()
		h.chainProg = nil
	}
}

// snapshot returns the programs on the hook, in run order.
func (h *hookState) snapshot() []*member {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.members)
}

// positions returns each program's 0-based place in the order the hook
// runs them.
func (t *hookTable) positions(key string) map[ID]int {
	members := t.state(key).snapshot()
	pos := make(map[ID]int, len(members))
	for i, mb := range members {
		pos[mb.rec.ID] = i
	}
	return pos
}

// chainPrograms returns the kernel ids of the programs that run the chains
// of XDP and TC hooks: dispatchers and their extension programs.
func (t *hookTable) chainPrograms() map[uint32]bool {
	ids := map[uint32]bool{}
	for _, h := range t.states() {
		st := h.chainState()
		if st.ProgramID != 0 {
			ids[uint32(st.ProgramID)] = true
		}
		for _, s := range st.Slots {
			ids[uint32(s.ProgramID)] = true
		}
	}
	return ids
}
