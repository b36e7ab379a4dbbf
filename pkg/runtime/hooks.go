package runtime

import (
	"cmp"
	"slices"
	"strings"
	"sync"
)

// hookTable keeps per-hook state: which programs are attached to each hook,
// and a lock that serializes the operations on it while operations on other
// hooks run in parallel. It is the place a dispatcher takes ownership of a
// hook: the hook's state is what a dispatcher rebuilds from.
type hookTable struct {
	mu    sync.Mutex
	hooks map[string]*hookState
}

// hookState is one hook.
type hookState struct {
	// op is held for the whole of a load or unload that touches the hook.
	op sync.Mutex
	// mu guards members, so readers need not wait for an operation.
	mu sync.Mutex
	// members are the bpfd programs attached to the hook, in attach order.
	members []hookMember
}

// hookMember is a program on a hook. order is what the hook runs programs by
// (lower first, ties in attach order): the priority on XDP and TC hooks, 0 on
// hooks that run programs in attach order.
type hookMember struct {
	id    ID
	order int
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

func (h *hookState) add(id ID, order int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.members = append(h.members, hookMember{id: id, order: order})
}

func (h *hookState) remove(id ID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.members = slices.DeleteFunc(h.members, func(m hookMember) bool { return m.id == id })
}

// ids returns the programs on the hook, in attach order.
func (h *hookState) ids() []ID {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]ID, len(h.members))
	for i, m := range h.members {
		ids[i] = m.id
	}
	return ids
}

// positions returns each program's 0-based place in the order the hook runs
// them. On a tc hook equal priorities run newest first: cls_bpf puts a new
// filter at the head of its preference's list.
func (t *hookTable) positions(key string) map[ID]int {
	h := t.state(key)
	h.mu.Lock()
	members := slices.Clone(h.members)
	h.mu.Unlock()
	if strings.HasPrefix(key, "tc/") {
		slices.Reverse(members)
	}
	slices.SortStableFunc(members, func(a, b hookMember) int { return cmp.Compare(a.order, b.order) })
	pos := make(map[ID]int, len(members))
	for i, m := range members {
		pos[m.id] = i
	}
	return pos
}
