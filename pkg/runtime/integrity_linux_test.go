package runtime_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

// TestChainStoredObjectAltered alters the ELF objects the state store keeps
// to rebuild chains, while bpfd is stopped. The restarted Manager adopts the
// chain as it runs; the next load on the hook, which rebuilds the chain
// from the store, refuses the altered object: nothing of it is loaded, the
// hook keeps running the chain it ran, and the program whose object it is
// is marked. Unloading that program clears the hook.
func TestChainStoredObjectAltered(t *testing.T) {
	forEachKit(t, func(t *testing.T, mode runtime.DispatcherMode, k chainKit) {
		e := newModeEnv(t, mode)
		m := e.open(t)
		v := newVethPair(t)
		ctx := context.Background()
		a := k.loadCounter(t, m, v, 10)
		running := assertChain(t, e, m, a).ProgramID
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if n, err := runtime.AlterStoredObjects(e.stateDir); err != nil || n != 1 {
			t.Fatalf("altered %d stored objects (%v), want 1", n, err)
		}

		m2 := e.open(t)
		_, err := load(ctx, m2, k.verdictRef, runtime.LoadRequest{
			Programs: []runtime.ProgramRequest{{Name: k.verdict, Kind: k.kind, Attach: k.attach(v, 20)}},
			Globals:  map[string][]byte{k.global: le32(k.stop)},
		})
		if !errors.Is(err, runtime.ErrIntegrity) || !strings.Contains(err.Error(), "stored object "+strings.TrimPrefix(k.counterRef, "file:")) {
			t.Fatalf("load on a hook whose chain has an altered stored object: %v, want ErrIntegrity naming the object", err)
		}
		if got := assertChain(t, e, m2, a).ProgramID; got != running {
			t.Errorf("the hook runs chain program %d, want the one it ran, %d", got, running)
		}
		got, err := m2.Get(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(got.Fault, runtime.ErrIntegrity.Error()) {
			t.Errorf("program %d's fault %q, want it marked", a.ID, got.Fault)
		}
		progs, err := m2.List(ctx, runtime.ListOptions{})
		if err != nil || len(progs) != 1 {
			t.Fatalf("List: %d programs (%v), want only the adopted one", len(progs), err)
		}

		if err := m2.Unload(ctx, a.ID); err != nil {
			t.Fatalf("unload the marked program: %v", err)
		}
		assertEmpty(t, e, m2)
		b := k.loadCounter(t, m2, v, 10)
		if b.Fault != "" {
			t.Errorf("a fresh program is marked: %q", b.Fault)
		}
		if err := m2.Unload(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
	})
}
